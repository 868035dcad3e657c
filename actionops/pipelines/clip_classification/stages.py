"""Stages of the clip-classification method: train, evaluate, predict.

Outputs go under `out` (default `outputs/clip-classification/<dataset name>/`):
    init.pt                 initial weights when `classifier.weights` is set
    classifier.pt           best checkpoint by validation macro-F1 (dict rebuilt through the registry)
    metrics.json            evaluation: accuracy, macro-F1, per class, confusion matrix, params, latency
    confusion_matrix.json/.png
    predictions.json/.csv   `predict classifier`: per video label and per-window scores
Every stage logs a run to the MLflow experiment `clip-classification`; training registers the
best model as `classifier.registered_model` (default `clip-classifier`) with alias `candidate`.
"""

from __future__ import annotations

import csv
import json
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from actionops.errors import ActionopsError, DataError
from actionops.pipelines.context import Context

CHECKPOINT = "classifier.pt"
NO_MODEL_HINT = "train one with `actionops train classifier DATASET` or pass --model models:/clip-classifier@champion"


def _method():
    from actionops.pipelines.method import get_method

    return get_method("clip-classification")


def dataset_splits(ctx: Context):
    """Index the dataset when needed, then train/val/test rows and the class list (warnings shown)."""
    from actionops.pipelines.clip_classification.data import make_splits
    layout, rows = ctx.rows()
    if layout not in ("csv", "class-folders"):
        raise DataError(f"{ctx.dataset} is in the {layout} layout",
                        "classification needs class folders (DATASET/<label>/<video>) or train/val/test.csv with path,label")
    c = ctx.cfg.classifier
    splits = make_splits(rows, val_fraction=c.val_fraction, test_fraction=c.test_fraction, dataset=ctx.dataset)
    for text in splits.warnings:
        ctx.say(f"[yellow]warning:[/] {text}")
    short = [r for r in splits.train + splits.val + splits.test if int(r["frames"]) < c.num_frames]
    if short:
        ctx.say(f"[yellow]warning:[/] {len(short)} videos are shorter than {c.num_frames} frames "
                f"(e.g. {short[0]['path']}, {short[0]['frames']} frames): their clips repeat the last frame")
    return splits


def prepare_tune(ctx: Context) -> list[Path]:
    """Before a campaign (driver side): index once, so parallel trials never all write the manifest."""
    dataset_splits(ctx)
    return []


def predict_test(ctx: Context, model: str | None = None) -> dict:
    """`predict_classifier` on the videos of the test split (what the method contract compares
    across model sources); None: this dataset's classifier.pt."""
    rows = dataset_splits(ctx).test
    if not rows:
        raise DataError(f"the test split of {ctx.dataset} is empty")
    result = predict_classifier(ctx.cfg, [Path(r["path"]) for r in rows], ctx.out / "predictions",
                                model or str(ctx.out / CHECKPOINT), ctx.console)
    return {**result, "outputs": str(ctx.out / "predictions" / "predictions.csv")}


def model_args(c: Any, num_classes: int) -> dict:
    return {"num_classes": num_classes, "num_frames": c.num_frames, "image_size": c.size}


def model_build(c: Any, num_classes: int) -> tuple[str, dict]:
    """The registry name and arguments of the network for `classifier.model` and `clip_input`:
    the model itself, or `two_stream` of it (one per stream) for rgb+flow / rgb_diff+flow."""
    from actionops.pipelines.clip_classification.data import input_channels

    args = model_args(c, num_classes)
    if input_channels(c.clip_input) == 6:
        return "two_stream", {"stream": c.model, **args}
    return c.model, args


def state_channels(state: dict) -> int:
    """Input channels of a classifier checkpoint (3; 6 for a two-stream input)."""
    from actionops.pipelines.clip_classification.data import input_channels

    return input_channels(state.get("clip_input", "rgb"))


# ----------------------------------------------------------------------------- stage: train
def train_classifier(ctx: Context, *, parent_run_id: str | None = None, register: bool = True,
                     callbacks: list | None = None, run_name: str | None = None) -> dict:
    """Train `classifier.model` on the train split (best epoch by val macro-F1), write
    classifier.pt, log curves, register the best model with alias `candidate`.

    Inside a Tune trial: `parent_run_id` (the campaign's MLflow run), `register=False`,
    `callbacks=[TuneReportCallback()]`, `run_name` (the trial: its Train run resumes by name)."""
    import torch

    from actionops.models import create_model
    from actionops.models.checkpoint import save_checkpoint
    from actionops.models.classifiers import count_parameters, freeze_until, load_weights
    from actionops.pipelines.clip_classification.data import cache_frames, draw_spec, eval_dataset, flow_options
    from actionops.pipelines.clip_classification.loops import classifier_loop
    from actionops.pipelines.spine import train_stage

    cfg, c = ctx.cfg, ctx.cfg.classifier
    splits = dataset_splits(ctx)
    name, args = model_build(c, len(splits.labels))
    torch.manual_seed(cfg.train.seed)
    model = create_model(name, **args)  # fails here, on the driver, for an unknown name or bad size
    init_path = None
    if c.weights:
        from actionops.models.pretrain import check_consumer

        initial = weights_state(c.weights)
        check_consumer(initial, c.weights, model=c.model, num_frames=c.num_frames, size=c.size, clip_input=c.clip_input,
                       keys={k: f"classifier.{k}" for k in ("model", "num_frames", "size", "clip_input")})
        report = load_weights(model, initial, c.weights)
        ctx.say(f"weights: {report['loaded']} tensors from {c.weights}, {len(report['skipped'])} skipped (new head)")
        init_path = save_checkpoint(ctx.out / "init.pt", model.state_dict())
    frozen = freeze_until(model, c.freeze_until) if c.freeze_until else 0
    params = count_parameters(model)
    flow = flow_options(c, cfg.flow)  # None unless a flow input reads the flow stage's flow
    if flow is not None:
        from actionops.pipelines.runner import flow_stage

        done = flow_stage(ctx)  # once for every video (resumable); clips then read the files
        ctx.say(f"flow stage: {done['computed']} videos computed, {done['up_to_date']} up to date")
    datasets = {}
    if splits.val:
        datasets["val"] = eval_dataset(splits.val, splits.labels, c, flow).select_columns(["clip", "label"]).materialize()
    ctx.say(f"classifier {c.model} ({params / 1e6:.2f} M params, {frozen} tensors frozen): {len(splits.labels)} classes, "
            f"{len(splits.train)} train / {len(splits.val)} val / {len(splits.test)} test videos")
    loop_config = {"model_name": name, "model_args": args, "labels": splits.labels, "classifier": c,
                   "init_path": str(init_path.resolve()) if init_path else None, "has_val": bool(splits.val),
                   "train_draws": cache_frames(draw_spec(splits.train, splits.labels, c, cfg.train.seed, flow))}

    def keep(state: dict) -> dict:
        best = state["best_model"] if state.get("best_model") is not None else state["model"]
        return {"model_name": name, "model_args": args, "model": best, "labels": splits.labels,
                "clip_input": c.clip_input, "flow": flow, "epoch": state["epoch"], "best_epoch": state["best_epoch"],
                "best_val_macro_f1": float(state["best_macro_f1"])}

    def finish(result: Any, state: dict) -> dict:
        # best_val_macro_f1 / best_epoch are already per-epoch series (their last point is the final value)
        throughput = [h["train_clips_per_s"] for h in result.history if "train_clips_per_s" in h]
        return {"model": c.model, "parameters_m": round(params / 1e6, 3), "stopped_early": bool(state.get("stopped_early")),
                "best_epoch": state["best_epoch"], "best_val_macro_f1": float(state["best_macro_f1"]),
                "train_clips_per_s": float(np.median(throughput)) if throughput else None}

    def register_best(path: Path, tags: dict) -> str | None:
        state = torch.load(path, map_location="cpu", weights_only=True)
        return register_classifier(ctx, path, {**tags, "best_val_macro_f1": f"{state['best_val_macro_f1']:.4f}"})

    return train_stage(
        ctx, _method(), loop=classifier_loop, loop_config=loop_config, name=run_name or f"classifier-{c.model}-{ctx.dataset.name}",
        run_name=run_name or f"train-{c.model}", checkpoint_file=CHECKPOINT, checkpoint=keep,
        history_file="history_classifier.json",
        curves={"loss_curves.png": (f"{c.model} loss", ("train_loss", "val_loss")),
                "accuracy_curves.png": (f"{c.model} accuracy / F1", ("train_accuracy", "val_accuracy", "val_macro_f1"))},
        tags={"actionops.stage": "train_classifier", "actionops.model": c.model},
        params={"model_parameters": params, "num_classes": len(splits.labels)},
        datasets=datasets, datasets_to_split=[], streams_data=True, finish=finish,
        register=register_best if register else None,
        version_tags={"model": c.model, "labels": ",".join(splits.labels), "clip_input": c.clip_input},
        parent_run_id=parent_run_id, callbacks=callbacks)


def weights_state(source: str) -> dict:
    """Initial weights from a local file (a state dict or an actionops checkpoint) or an MLflow model."""
    from actionops.models.checkpoint import load_checkpoint
    from actionops.models.classifiers import check_local_weights
    from actionops.platform.tracking import load_checkpoint_state

    check_local_weights(source)
    if source.startswith(("models:/", "runs:/")):
        return load_checkpoint_state(source)
    return load_checkpoint(source, "pass a local .pt file (state dict or actionops checkpoint) or models:/NAME@ALIAS")


def register_classifier(ctx: Context, checkpoint: Path, version_tags: dict) -> str | None:
    """Log a classifier checkpoint as an MLflow pyfunc model in the active run and register it
    as `classifier.registered_model` with alias `candidate`; returns the version."""
    import torch

    from actionops.pipelines.spine import register_checkpoint

    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    args = state["model_args"]
    example = {"clip": np.zeros((2, args["num_frames"], state_channels(state), args["image_size"], args["image_size"]),
                                np.float32)}
    return register_checkpoint(checkpoint, example, ctx.cfg.classifier.registered_model, version_tags)


# ----------------------------------------------------------------------------- loading, scoring
def load_classifier_state(ctx_out: Path, model: str | None) -> tuple[dict, str]:
    """The checkpoint dict of `model` (models:/NAME@ALIAS, models:/NAME/V, runs:/..., a .pt file;
    None: this dataset's classifier.pt) and a printable source."""
    from actionops.pipelines.spine import load_model_state

    return load_model_state(model, Path(ctx_out) / CHECKPOINT, NO_MODEL_HINT, _method())


class ClipScorer:
    """Ray Data batch-inference UDF: the model is built once per actor from a checkpoint dict
    (passed through the object store); each batch of items is decoded by `make_clip(item) -> clip`
    inside the actor, then scored (one stage, so the actors never wait on a separate decode stage
    for CPUs they hold)."""

    def __init__(self, state: Any, make_clip: Any, threads: int | None = None, inference: str = "eager") -> None:
        import ray
        import torch

        from actionops.models.checkpoint import build_from_checkpoint
        from actionops.models.inference import optimized

        if isinstance(state, ray.ObjectRef):
            state = ray.get(state)
        if threads:
            torch.set_num_threads(threads)
        self.model = build_from_checkpoint(state)
        args = state["model_args"]
        example = torch.zeros(1, args["num_frames"], state_channels(state), args["image_size"], args["image_size"])
        self.forward = optimized(self.model, example, inference)
        self.make_clip = make_clip

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        keys = list(batch)
        items = [{k: batch[k][i] for k in keys} for i in range(len(batch[keys[0]]))]
        clips = np.stack([self.make_clip(item) for item in items])
        with torch.no_grad():
            probs = torch.softmax(self.forward(torch.from_numpy(clips)).float(), dim=1).numpy()
        return {**batch, "probs": probs.astype(np.float32)}


def score_items(items: list[dict], make_clip: Any, state: dict, batch_size: int, actors: int | None = None,
                inference: str = "eager") -> list[dict]:
    """Score `items` (dicts of scalars) with `actors` model replicas (Ray Data actor pool), each
    running the model along inference path `inference`: returns the items with a `probs` column."""
    import os

    import ray

    from actionops.platform.data import _from_items

    from actionops.errors import ConfigError
    from actionops.models.inference import PATHS

    if inference not in PATHS:
        raise ConfigError(f"classifier.inference: unknown inference path {inference!r}", f"choose one of {', '.join(PATHS)}")
    if not items:
        return []
    cpus = int(ray.available_resources().get("CPU", os.cpu_count() or 1)) or 1
    actors = actors or max(1, min(2, cpus))
    threads = max(1, (os.cpu_count() or 1) // actors)
    with warnings.catch_warnings():  # max_restarts travels as a "ray_remote_args" (deprecation notice)
        warnings.simplefilter("ignore")
        scored = _from_items(items, rows_per_block=max(1, batch_size // 2)).map_batches(
            ClipScorer, fn_constructor_kwargs={"state": ray.put(state), "make_clip": make_clip, "threads": threads,
                                             "inference": inference},
            batch_size=batch_size, concurrency=actors, batch_format="numpy",
            max_restarts=0)  # the model state lives in the object store: no silent actor restarts
    return list(scored.iter_rows())


def measure_latency(model: Any, num_frames: int, size: int, batch_sizes: Sequence[int] = (1, 2, 4, 8, 16),
                    min_seconds: float = 1.0, min_repeats: int = 3, inference: str = "eager", channels: int = 3) -> dict:
    """ms/clip of `model` along inference path `inference` (eval, no grad) at each batch size on
    random input; stops growing the batch once ms/clip gets worse. Returns batch1_ms,
    best_batch, best_ms and the table."""
    import torch

    from actionops.models.inference import optimized

    table = {}
    forward = optimized(model, torch.zeros(batch_sizes[0], num_frames, channels, size, size), inference)
    with torch.no_grad():
        for bs in batch_sizes:
            x = torch.randn(bs, num_frames, channels, size, size)
            forward(x)  # warm-up (and, for compile, the compilation of this shape)
            times, start = [], time.perf_counter()
            while len(times) < min_repeats or time.perf_counter() - start < min_seconds:
                tick = time.perf_counter()
                forward(x)
                times.append(time.perf_counter() - tick)
                if len(times) >= 50:
                    break
            table[bs] = 1000 * float(np.median(times)) / bs
            if len(table) > 1 and table[bs] > min(table.values()) * 1.05:
                break
    best = min(table, key=table.get)
    return {"batch1_ms_per_clip": table[batch_sizes[0]], "best_batch": best, "best_ms_per_clip": table[best],
            "ms_per_clip_by_batch": {str(k): round(v, 3) for k, v in table.items()}, "device": "cpu",
            "threads": torch.get_num_threads(), "inference": inference}


# ----------------------------------------------------------------------------- stage: evaluate
def evaluate_classifier(ctx: Context, model: str | None = None, split: str = "test", latency: bool = True) -> dict:
    """Video-level scores of a classifier on `split` (eval clips averaged per video): accuracy,
    macro-F1, per class, confusion matrix (PNG + JSON), parameters, latency; metrics.json + MLflow.
    When `model` is a registry URI, the version gets `eval.*` tags (what `registry promote` compares)."""
    from actionops.evaluation.metrics import classification_report
    from actionops.evaluation.plots import confusion_matrix_figure
    from actionops.models.checkpoint import build_from_checkpoint
    from actionops.models.classifiers import count_parameters
    from actionops.pipelines.clip_classification.data import eval_clip_maker, eval_items
    from actionops.pipelines.spine import dataset_version, evaluate_stage

    c = ctx.cfg.classifier
    state, source = load_classifier_state(ctx.out, model)
    splits = dataset_splits(ctx)
    rows = {"train": splits.train, "val": splits.val, "test": splits.test}.get(split)
    if rows is None:
        raise ActionopsError(f"unknown split {split!r}", "use --split train, val or test")
    if not rows:
        raise DataError(f"the {split} split of {ctx.dataset} is empty")
    labels = list(state["labels"])
    unknown = sorted({r["label"] for r in rows} - set(labels))
    if unknown:
        raise DataError(f"class {unknown[0]!r} of the {split} split is unknown to the model ({source})",
                        f"the model knows: {', '.join(labels)}")
    args = state["model_args"]
    items = [{**item, "k": k} for item in eval_items(rows, labels) for k in range(c.eval_clips)]
    scored = score_items(items, eval_clip_maker(args["num_frames"], args["image_size"], c.eval_clips,
                                                  state.get("clip_input", "rgb"), state.get("flow")), state, c.batch_size,
                         inference=c.inference)
    by_video: dict[str, list[np.ndarray]] = {}
    truth_of: dict[str, int] = {}
    for row in scored:
        by_video.setdefault(row["video_id"], []).append(np.asarray(row["probs"]))
        truth_of[row["video_id"]] = int(row["label"])
    videos = sorted(by_video)
    mean_probs = np.stack([np.mean(by_video[v], axis=0) for v in videos])
    pred = [labels[i] for i in mean_probs.argmax(1)]
    truth = [labels[truth_of[v]] for v in videos]
    report = classification_report(truth, pred, labels=labels)
    module = build_from_checkpoint(state)
    version = dataset_version(ctx)
    metrics = {"split": split, "model": state["model_name"], "source": source, "videos": len(videos),
               "clips": len(scored), "accuracy": report["accuracy"], "macro_f1": report["macro_f1"],
               "chance": chance_accuracy(truth), "per_class": report["per_class"], "labels": labels,
               "confusion_matrix": report["confusion_matrix"],
               "parameters_m": round(count_parameters(module) / 1e6, 3), "dataset_version": version}
    if latency:
        metrics["latency"] = measure_latency(module, args["num_frames"], args["image_size"], inference=c.inference,
                                             channels=state_channels(state))
    headline = {f"{split}_accuracy": report["accuracy"], f"{split}_macro_f1": report["macro_f1"]}
    if latency:
        headline.update({"latency_batch1_ms": metrics["latency"]["batch1_ms_per_clip"],
                         "latency_best_ms": metrics["latency"]["best_ms_per_clip"],
                         "model_parameters_m": metrics["parameters_m"]})
    figure = confusion_matrix_figure(report["confusion_matrix"], labels, labels, f"{split}: true x predicted", "predicted")
    files = {"confusion_matrix.json": json.dumps({"labels": labels, "matrix": report["confusion_matrix"], "rows": "true",
                                                  "cols": "predicted"}, indent=2),
             "predictions_eval.csv": "video_id,truth,prediction,score\n" + "".join(
                 f"{v},{t},{p},{float(mp.max()):.4f}\n" for v, t, p, mp in zip(videos, truth, pred, mean_probs))}
    return evaluate_stage(ctx, _method(), split=split, metrics=metrics, headline=headline, source=source,
                          metrics_file="metrics.json", figures={"figures/confusion_matrix.png": figure}, files=files,
                          eval_tags={"accuracy": report["accuracy"], "macro_f1": report["macro_f1"]},
                          primary="macro_f1")


def chance_accuracy(truth: Sequence[str]) -> float:
    """Accuracy of always answering the most frequent true class (the bar a model must clear)."""
    from collections import Counter

    return max(Counter(truth).values()) / len(truth) if truth else 0.0


# ----------------------------------------------------------------------------- stage: predict
def predict_classifier(cfg: Any, inputs: Sequence[Path], out: Path, model: str | None, console: Any = None) -> dict:
    """Label videos with sliding windows (`classifier.window_frames`, `window_stride`) as a Ray Data
    batch-inference job; writes predictions.json (per video: label, score, windows) and
    predictions.csv (one row per window with every class score). Unreadable videos are listed."""
    from actionops.pipelines.clip_classification.data import window_clip_maker, windows
    from actionops.platform.data import probe_videos
    from actionops.platform.layout import video_files

    c = cfg.classifier
    files = video_files(inputs)
    state, source = load_classifier_state(out, model)
    labels, args = list(state["labels"]), state["model_args"]
    probes = probe_videos(files)
    failed = [{"path": p["path"], "reason": p["error"]} for p in probes if p["error"]]
    items = [{"video": p["path"], "start": s, "end": e}
             for p in probes if not p["error"] for s, e in windows(int(p["frames"]), c.window_frames, c.window_stride)]
    make_clip = window_clip_maker(args["num_frames"], args["image_size"], state.get("clip_input", "rgb"), state.get("flow"))
    scored = score_items(items, make_clip, state, c.batch_size, inference=c.inference)
    scored.sort(key=lambda r: (r["video"], int(r["start"])))
    per_video: dict[str, dict] = {}
    for row in scored:
        probs = np.asarray(row["probs"])
        entry = per_video.setdefault(row["video"], {"windows": []})
        entry["windows"].append({"start": int(row["start"]), "end": int(row["end"]), "label": labels[int(probs.argmax())],
                                 "score": float(probs.max()), "scores": {lab: float(p) for lab, p in zip(labels, probs)}})
    for entry in per_video.values():
        mean = np.mean([[w["scores"][lab] for lab in labels] for w in entry["windows"]], axis=0)
        entry["label"], entry["score"] = labels[int(mean.argmax())], float(mean.max())
    out.mkdir(parents=True, exist_ok=True)
    (out / "predictions.json").write_text(json.dumps({"model": source, "labels": labels, "videos": per_video,
                                                      "failed": failed}, indent=2))
    with open(out / "predictions.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["video", "start", "end", "label", "score", *[f"p_{lab}" for lab in labels]])
        for video, entry in per_video.items():
            for w in entry["windows"]:
                writer.writerow([video, w["start"], w["end"], w["label"], f"{w['score']:.4f}",
                                 *[f"{w['scores'][lab]:.4f}" for lab in labels]])
    if failed and console is not None:
        console.print(f"[yellow]warning:[/] {len(failed)} videos could not be read, e.g. {failed[0]['reason']}")
    return {"videos": len(per_video), "windows": len(scored), "failed": len(failed), "model": source,
            "predictions": str(out / "predictions.json"),
            "labels": {Path(v).name: e["label"] for v, e in list(per_video.items())[:20]}}
