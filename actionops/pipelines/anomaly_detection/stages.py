"""Stages of embedding anomaly detection: embed, analyze, train, evaluate, predict.

Outputs go under `out` (default `outputs/anomaly-detection/<dataset name>/`):
    embeddings.parquet      clip / video embeddings with the backbone's identity in its metadata
    analysis.json, embeddings-*.png, centroid_distances.csv   `analyze embeddings`
    anomaly.pt              the detector: autoencoder, threshold, baselines, backbone identity
    metrics_anomaly.json    evaluation on the test split (roc_auc, pr_auc, f1 at the threshold, ...)
    scores_<split>.csv, error_hist*.png
    predictions/            `predict anomaly`: per video (and per window) score and flag
Runs are logged to the MLflow experiment `anomaly-detection`; training registers the detector
as `anomaly-<normal action>` (anomaly.registered_name) with alias candidate.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from actionops.errors import ActionopsError, ConfigError, DataError
from actionops.pipelines.context import Context

CHECKPOINT = "anomaly.pt"
EMBEDDINGS = "embeddings.parquet"
NO_MODEL_HINT = "train one with `actionops train anomaly EMB.parquet --normal ACTION` or pass --model models:/anomaly-ACTION@candidate"


def _method():
    from actionops.pipelines.method import get_method

    return get_method("anomaly-detection")


def embeddings_path(ctx: Context) -> Path:
    return Path(ctx.cfg.anomaly.embeddings) if ctx.cfg.anomaly.embeddings else Path(ctx.out) / EMBEDDINGS


def metrics_name(split: str) -> str:
    return "metrics_anomaly.json" if split == "test" else f"metrics_anomaly_{split}.json"


# ----------------------------------------------------------------------------- embed / analyze
def embed_stage(ctx: Context, split: str | None = None, out_path: Path | None = None, per_clip: bool | None = None,
                backbone: tuple[dict, dict] | None = None) -> dict:
    """Embed the dataset (Ray Data batch inference) into `out_path` (default <out>/embeddings.parquet)."""
    from actionops.pipelines.anomaly_detection.embeddings import embed_dataset

    result = embed_dataset(ctx, Path(out_path) if out_path else Path(ctx.out) / EMBEDDINGS, split=split, per_clip=per_clip,
                           backbone=backbone)
    return {"embeddings": str(result.path), "rows": result.rows, "videos": result.videos, "failed": len(result.failed),
            "backbone": result.identity["resolved"], "dim": result.identity["dim"],
            "weights_digest": result.identity["weights_digest"], "clips_per_s": round(result.clips_per_s, 2),
            "seconds": round(result.seconds, 2)}


def analyze_stage(ctx: Context, path: Path | None = None, log: bool = True) -> dict:
    """`analyze embeddings` on the pipeline's (or the given) embeddings file."""
    from actionops.pipelines.anomaly_detection.analysis import analyze_file

    return analyze_file(Path(path) if path else embeddings_path(ctx), ctx, log=log)


# ----------------------------------------------------------------------------- data of the detector
def _videos(emb: Any, mask: np.ndarray) -> int:
    return len(set(emb.video_id[mask]))


def detector_data(ctx: Context) -> dict:
    """The embeddings split for the detector: normal train rows (every view), normal / other
    validation rows (plain views); clear errors for a missing action or too few videos."""
    from actionops.pipelines.anomaly_detection.embeddings import read_embeddings

    c = ctx.cfg.anomaly
    emb = read_embeddings(embeddings_path(ctx))
    labels = sorted({lab for lab in emb.label if lab})
    if not c.normal:
        raise ConfigError("anomaly.normal is not set: which action is the normal one?",
                          f"pass --normal ACTION (one of {', '.join(labels)})")
    if c.normal not in labels:
        raise DataError(f"action {c.normal!r} is not among the labels of {emb.path}", f"labels there: {', '.join(labels)}")
    normal = emb.label == c.normal
    plain = emb.view < 0
    counts = {s: _videos(emb, normal & (emb.split == s)) for s in ("train", "val", "test")}
    needs = {"train": c.min_train, "val": 1, "test": 1}
    short = [s for s in needs if counts[s] < needs[s]]
    if short:
        total = len(set(emb.video_id[normal]))
        raise DataError(f"action {c.normal!r} has {total} videos (train {counts['train']}, val {counts['val']}, "
                        f"test {counts['test']}); the detector needs at least {sum(needs.values())}: "
                        f"{c.min_train} to train, 1 to choose the threshold, 1 to test",
                        "record more videos of the action, or lower anomaly.min_train")
    if len(labels) < 2:
        raise DataError(f"{emb.path} holds only action {c.normal!r}", "the threshold and the scores need other actions too")
    train = normal & (emb.split == "train")
    val_normal, val_other = normal & (emb.split == "val") & plain, ~normal & (emb.split == "val") & plain & (emb.label != "")
    return {"emb": emb, "labels": labels, "x_train": emb.X[train], "x_val": emb.X[val_normal],
            "x_val_other": emb.X[val_other], "counts": counts}


def check_identity(state: dict, emb: Any, source: str) -> None:
    """The detector and the embeddings must come from the same backbone (dimension and weights)."""
    mine, theirs = state.get("backbone", {}), emb.identity
    dim = int(state["model_args"]["dim"])
    if emb.X.shape[1] != dim:
        raise DataError(f"{emb.path} holds {emb.X.shape[1]}-d embeddings of {theirs.get('backbone', '?')} "
                        f"({theirs.get('resolved', '?')}); detector {source} takes {dim}-d embeddings of "
                        f"{mine.get('backbone', '?')} ({mine.get('resolved', '?')})",
                        "embed the data with the detector's backbone (actionops embed --backbone ...)")
    if mine.get("weights_digest") and theirs.get("weights_digest") and mine["weights_digest"] != theirs["weights_digest"]:
        raise DataError(f"{emb.path} was embedded by {theirs.get('backbone')} {theirs.get('resolved')} "
                        f"(weights {theirs['weights_digest']}); detector {source} was trained on embeddings of "
                        f"{mine.get('backbone')} {mine.get('resolved')} (weights {mine['weights_digest']})",
                        "embed the data with the detector's backbone (actionops embed --backbone ...)")


def autoencoder_scores(state: dict, X: np.ndarray) -> np.ndarray:
    import torch

    from actionops.models.checkpoint import build_from_checkpoint

    module = build_from_checkpoint(state)
    with torch.no_grad():
        return module.errors(torch.as_tensor(np.asarray(X, np.float32))).numpy().astype(np.float64)


def per_video(video_ids: Sequence[str], values: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Mean of `values` per video (first-seen order)."""
    order: dict[str, list[int]] = {}
    for i, v in enumerate(video_ids):
        order.setdefault(str(v), []).append(i)
    return list(order), np.array([float(np.mean(values[idx])) for idx in order.values()])


def _val_threshold(emb: Any, normal_label: str, scores: np.ndarray, c: Any) -> tuple[float, str]:
    from actionops.pipelines.anomaly_detection.scoring import choose_threshold

    mask = (emb.split == "val") & (emb.view < 0) & (emb.label != "")
    ids, video = per_video(emb.video_id[mask], scores[mask])
    label = dict(zip(emb.video_id[mask], emb.label[mask]))
    is_normal = np.array([label[v] == normal_label for v in ids])
    return choose_threshold(video[is_normal], video[~is_normal], c.threshold, c.target_fpr)


# ----------------------------------------------------------------------------- stage: train
def finetuned_embeddings_path(ctx: Context, digest: str) -> Path:
    """Where the end-to-end detector's own embeddings (its fine-tuned backbone) are kept."""
    return Path(ctx.out) / f"embeddings-ft-{digest[:8]}.parquet"


def detector_state(emb: Any, ae_state: dict, args: dict, labels: list[str], c: Any, fit: dict) -> dict:
    """The detector checkpoint for autoencoder weights on embeddings `emb`: threshold chosen on
    the validation split, baseline scorers (fitted on the normal training rows) and theirs."""
    import torch

    from actionops.pipelines.anomaly_detection.scoring import BASELINES, baseline_scores

    detector = {"model_name": "embedding_autoencoder", "model_args": args, "model": ae_state}
    threshold, rule = _val_threshold(emb, c.normal, autoencoder_scores(detector, emb.X), c)
    base = baseline_scores(fit, emb.X)
    thresholds = {name: _val_threshold(emb, c.normal, base[name], c)[0] for name in BASELINES}
    return {**detector, "normal": c.normal, "labels": labels, "threshold": threshold, "threshold_rule": rule,
            "target_fpr": float(c.target_fpr), "backbone": dict(emb.identity),
            "embedding": {k: emb.meta.get(k) for k in ("clips", "per_clip", "augment_copies", "seed")},
            "baselines": {"mean": torch.from_numpy(fit["mean"]), "precision": torch.from_numpy(fit["precision"]),
                          "train": torch.from_numpy(fit["train"]), "knn_k": fit["knn_k"], "thresholds": thresholds}}


def train_anomaly(ctx: Context, *, parent_run_id: str | None = None, register: bool = True,
                  callbacks: list | None = None, run_name: str | None = None) -> dict:
    """Train the embedding autoencoder on the normal action's training embeddings (Ray Train),
    pick its threshold on the validation split, fit the baseline scorers; write anomaly.pt and
    register it as anomaly-<action> with alias candidate. With anomaly.end_to_end the backbone is
    trained too, on clips (see `loops.clip_autoencoder_loop`)."""
    import torch

    from actionops.models import create_model
    from actionops.pipelines.anomaly_detection.loops import autoencoder_loop
    from actionops.pipelines.anomaly_detection.scoring import fit_baselines
    from actionops.pipelines.spine import train_stage

    c = ctx.cfg.anomaly
    data = detector_data(ctx)
    emb = data["emb"]
    args = {"dim": int(emb.X.shape[1]), "hidden": [int(h) for h in c.hidden], "dropout": float(c.dropout)}
    create_model("embedding_autoencoder", **args)  # bad widths fail here, on the driver
    ctx.say(f"anomaly detector for {c.normal!r}: {len(data['x_train'])} training rows "
            f"({data['counts']['train']} videos), {len(data['x_val'])} normal / {len(data['x_val_other'])} other "
            f"validation rows, {args['dim']}-d embeddings of {emb.identity.get('backbone', '?')}"
            + (f"; end to end (backbone trained after epoch {c.unfreeze_after})" if c.end_to_end else ""))
    datasets: dict = {}
    if c.end_to_end:
        loop, loop_config, keep_e2e, datasets = end_to_end_setup(ctx, data, args)
    else:
        fit = fit_baselines(data["x_train"], c.knn_k)
        loop = autoencoder_loop
        loop_config = {"anomaly": c, "model_name": "embedding_autoencoder", "model_args": args,
                       "x_train": data["x_train"], "x_val": data["x_val"], "x_val_other": data["x_val_other"]}

    def keep(state: dict) -> dict:
        best = state["best_model"] if state.get("best_model") is not None else state["model"]
        out = keep_e2e(best, state["best_epoch"]) if c.end_to_end else detector_state(emb, best, args, data["labels"], c, fit)
        return {**out, "epoch": state["epoch"], "best_epoch": state["best_epoch"]}

    def finish(result: Any, state: dict) -> dict:
        return {"normal": c.normal, "best_epoch": state["best_epoch"], "train_rows": len(data["x_train"]),
                "end_to_end": bool(c.end_to_end)}

    def register_best(path: Path, tags: dict) -> str | None:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        return register_anomaly(ctx, path, {**tags, "normal": c.normal, "threshold": f"{saved['threshold']:.6f}",
                                            "backbone": saved["backbone"].get("resolved", "?"),
                                            "backbone_digest": saved["backbone"].get("weights_digest", "?"),
                                            "end_to_end": str(bool(c.end_to_end)).lower()})

    return train_stage(
        ctx, _method(), loop=loop, loop_config=loop_config, name=run_name or f"anomaly-{c.normal}-{Path(ctx.out).name}",
        run_name=run_name or f"train-anomaly-{c.normal}", checkpoint_file=CHECKPOINT, checkpoint=keep,
        history_file="history_anomaly.json",
        curves={"loss_curves.png": (f"autoencoder ({c.normal}) loss", ("train_loss", "val_loss")),
                "val_roc_auc.png": ("validation ROC-AUC", ("val_roc_auc",))},
        tags={"actionops.stage": "train_anomaly", "actionops.normal": c.normal},
        params={"embedding_dim": args["dim"], "backbone": emb.identity.get("resolved", "?"),
                "backbone_digest": emb.identity.get("weights_digest", "?")},
        datasets=datasets, datasets_to_split=[], streams_data=bool(c.end_to_end),
        finish=finish, register=register_best if register else None,
        version_tags={"model": "embedding_autoencoder"}, parent_run_id=parent_run_id, callbacks=callbacks)


def end_to_end_setup(ctx: Context, data: dict, args: dict):
    """(loop, loop config, keep(best weights) -> detector checkpoint, datasets) of the end-to-end
    mode: training clips drawn from the normal action's training videos, validation clips of every
    val video (decoded once), the backbone the embeddings came from as the starting point."""
    from types import SimpleNamespace

    from actionops.models.checkpoint import build_from_checkpoint
    from actionops.models.embedding import clip_embedder, weights_digest
    from actionops.pipelines.anomaly_detection.embeddings import clip_maker, reembed
    from actionops.pipelines.anomaly_detection.loops import clip_autoencoder_loop
    from actionops.pipelines.anomaly_detection.scoring import fit_baselines
    from actionops.pipelines.clip_classification.data import draw_spec
    from actionops.platform.data import _from_items

    cfg, c, emb = ctx.cfg, ctx.cfg.anomaly, data["emb"]
    if cfg.train.num_workers > 1:
        raise ConfigError("anomaly.end_to_end trains on one worker (train.num_workers=1)",
                          "the backbone is frozen, then trained: DDP would need every parameter in every step")
    backbone, ident = backbone_of({"backbone": emb.identity, "embedding": {"seed": emb.meta.get("seed")}})
    clips = int(emb.meta.get("clips") or cfg.embed.clips)
    videos: dict[str, dict] = {}
    for i, vid in enumerate(emb.video_id):
        row = emb.frame.iloc[i]
        videos.setdefault(vid, {"video_id": vid, "path": str(row["path"]), "label": str(emb.label[i]),
                                "split": str(emb.split[i]), "frames": int(row.get("frames", 0) or 0)})
    if any(v["frames"] <= 0 for v in videos.values()):
        raise DataError(f"{emb.path} records no frame counts", "embed the dataset again with this version of `actionops embed`")
    train = [v for v in videos.values() if v["label"] == c.normal and v["split"] == "train"]
    recipe = SimpleNamespace(balance_tau=0.0, clips_per_video=c.clips_per_video, num_frames=ident["num_frames"],
                             size=ident["size"], augment=True, clip_input=ident["clip_input"])
    draws = draw_spec(train, [c.normal], recipe, cfg.train.seed)
    make = clip_maker(ident, clips, int(emb.meta.get("seed") or 0))
    val_items = [{"video_id": v["video_id"], "path": v["path"], "frames": v["frames"], "view": -1, "clip": k,
                  "start": -1, "end": -1, "anomalous": int(v["label"] != c.normal)}
                 for v in videos.values() if v["split"] == "val" and v["label"] for k in range(clips)]

    def decode(item: dict) -> dict:
        return {"clip": make(item)[0], "anomalous": item["anomalous"], "video_id": item["video_id"]}

    val = _from_items(val_items, ordered=True, rows_per_block=8).map(decode).materialize()
    headless = clip_embedder(build_from_checkpoint(backbone)).state_dict()
    model_args = {"backbone_name": backbone["model_name"], "backbone_args": dict(backbone["model_args"]),
                  "hidden": args["hidden"], "dropout": args["dropout"]}
    loop_config = {"anomaly": c, "model_args": model_args, "backbone_weights": headless, "draws": draws}

    def keep(best: dict, best_epoch: int) -> dict:
        ae = {k[len("autoencoder."):]: v for k, v in best.items() if k.startswith("autoencoder.")}
        if best_epoch <= c.unfreeze_after:
            # the best validation epoch came before the backbone was unfrozen: the kept backbone is the
            # original one, so the detector says so (its embeddings file and identity, no backbone copy)
            ctx.say(f"best validation epoch {best_epoch} came before the backbone was unfrozen "
                    f"(epoch {c.unfreeze_after}): the detector keeps the original backbone")
            train_rows = (emb.label == c.normal) & (emb.split == "train")
            out = detector_state(emb, ae, args, data["labels"], c, fit_baselines(emb.X[train_rows], c.knn_k))
            return {**out, "end_to_end": True}
        tuned = {k[len("backbone."):]: v for k, v in best.items() if k.startswith("backbone.")}
        merged = {**backbone["model"], **tuned}
        state = {"model_name": backbone["model_name"], "model_args": backbone["model_args"], "model": merged,
                 "clip_input": ident["clip_input"]}
        digest = weights_digest(merged)
        tuned_ident = {**ident, "kind": "fine-tuned", "source": f"{CHECKPOINT} (end to end)",
                       "resolved": f"fine-tuned end to end from {ident['resolved']}", "weights_digest": digest}
        ctx.say(f"embedding the videos again with the fine-tuned backbone ({digest})")
        own = reembed(emb, (state, tuned_ident), finetuned_embeddings_path(ctx, digest), clips=clips,
                      per_clip=bool(emb.meta.get("per_clip")), seed=int(emb.meta.get("seed") or 0),
                      batch_size=cfg.embed.batch_size)
        train_rows = (own.label == c.normal) & (own.split == "train")
        out = detector_state(own, ae, args, data["labels"], c, fit_baselines(own.X[train_rows], c.knn_k))
        return {**out, "backbone_state": state, "end_to_end": True}

    return clip_autoencoder_loop, loop_config, keep, {"val": val}


def register_anomaly(ctx: Context, checkpoint: Path, version_tags: dict) -> str | None:
    """Log the detector as an MLflow pyfunc model (input: embeddings, output: anomaly scores) and
    register it as anomaly.registered_model with alias candidate."""
    import torch

    from actionops.pipelines.spine import register_checkpoint

    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    name = ctx.cfg.anomaly.registered_name or _registered_for(state["normal"])
    example = {"embedding": np.zeros((2, int(state["model_args"]["dim"])), np.float32)}
    return register_checkpoint(checkpoint, example, name, version_tags)


def _registered_for(normal: str) -> str:
    from dataclasses import replace

    from actionops.pipelines.anomaly_detection.config import AnomalyConfig

    return replace(AnomalyConfig(), normal=normal).registered_model


def prepare_tune(ctx: Context) -> list[Path]:
    """Before a campaign: the embeddings exist (embedded once on the driver) and the action is valid."""
    if not embeddings_path(ctx).is_file():
        embed_stage(ctx)
    detector_data(ctx)
    return [embeddings_path(ctx)]


# ----------------------------------------------------------------------------- stage: evaluate
def load_detector(ctx_out: Path, model: str | None) -> tuple[dict, str]:
    from actionops.pipelines.spine import load_model_state

    state, source = load_model_state(model, Path(ctx_out) / CHECKPOINT, NO_MODEL_HINT, _method())
    if state.get("model_name") != "embedding_autoencoder":
        raise ActionopsError(f"{source} is a {state.get('model_name')}, not an anomaly detector", NO_MODEL_HINT)
    return state, source


def score_embeddings(state: dict, emb: Any, mask: np.ndarray) -> dict:
    """Per video (plain views of `mask`): ids, labels, autoencoder and baseline scores."""
    from actionops.pipelines.anomaly_detection.scoring import baseline_scores

    mask = mask & (emb.view < 0)
    ae = autoencoder_scores(state, emb.X[mask])
    b = state["baselines"]
    fit = {"mean": b["mean"].numpy(), "precision": b["precision"].numpy(), "train": b["train"].numpy(), "knn_k": b["knn_k"]}
    base = baseline_scores(fit, emb.X[mask])
    ids, ae_video = per_video(emb.video_id[mask], ae)
    label = dict(zip(emb.video_id[mask], emb.label[mask]))
    return {"ids": ids, "labels": [label[v] for v in ids], "autoencoder": ae_video,
            **{name: per_video(emb.video_id[mask], values)[1] for name, values in base.items()}}


def detector_embeddings(ctx: Context, state: dict) -> Path:
    """The embeddings to score: anomaly.embeddings, else <out>/embeddings.parquet, which is made
    first when missing by embedding the dataset with the detector's own backbone and clip recipe
    (a registered detector evaluated on a dataset in a fresh output folder)."""
    from actionops.pipelines.anomaly_detection.embeddings import embed_dataset

    from actionops.pipelines.anomaly_detection.embeddings import read_embeddings, reembed

    path = embeddings_path(ctx)
    if state.get("backbone_state") is not None:  # end to end: the videos as its own backbone sees them
        own = finetuned_embeddings_path(ctx, state["backbone"]["weights_digest"])
        if not own.is_file():
            if not path.is_file():
                raise DataError(f"no embeddings at {path} to embed again with the detector's fine-tuned backbone",
                                "pass the embeddings file the detector was trained from (anomaly.embeddings)")
            recipe = state.get("embedding") or {}
            reembed(read_embeddings(path), backbone_of(state), own, clips=int(recipe.get("clips") or ctx.cfg.embed.clips),
                    per_clip=bool(recipe.get("per_clip")), seed=int(recipe.get("seed") or 0),
                    batch_size=ctx.cfg.embed.batch_size)
        return own
    if path.is_file() or ctx.cfg.anomaly.embeddings:
        return path
    recipe = state.get("embedding") or {}
    overrides = {f"embed.{k}": recipe[k] for k in ("clips", "per_clip", "seed") if recipe.get(k) is not None}
    embed_ctx = ctx if not overrides else Context(cfg=ctx.cfg.with_overrides(overrides), dataset=ctx.dataset, out=ctx.out,
                                                  console=ctx.console, manifest=ctx.manifest)
    ctx.say(f"no {path.name} in {ctx.out}: embedding {ctx.dataset} with the detector's backbone first")
    embed_dataset(embed_ctx, path, backbone=backbone_of(state))
    return path


def evaluate_anomaly(ctx: Context, model: str | None = None, split: str = "test") -> dict:
    """ROC-AUC, PR-AUC, precision / recall / F1 at the validation threshold, two-class reports
    (normal vs all, vs each other action), the baselines' scores, error histograms; written to
    metrics_anomaly.json (metrics_anomaly_<split>.json for other splits) and logged to MLflow."""
    from actionops.evaluation.plots import confusion_matrix_figure
    from actionops.pipelines.anomaly_detection.embeddings import read_embeddings
    from actionops.pipelines.anomaly_detection.scoring import BASELINES, ranking_scores, two_class
    from actionops.pipelines.spine import evaluate_stage

    state, source = load_detector(ctx.out, model)
    emb = read_embeddings(detector_embeddings(ctx, state))
    check_identity(state, emb, source)
    normal = state["normal"]
    mask = (emb.split == split) & (emb.label != "")
    if not mask.any():
        raise DataError(f"no labelled embeddings in split {split!r} of {emb.path}",
                        f"splits there: {', '.join(sorted(set(emb.split)))}")
    scored = score_embeddings(state, emb, mask)
    labels = np.array(scored["labels"])
    anomalous = labels != normal
    threshold = float(state["threshold"])
    flagged = scored["autoencoder"] > threshold
    ranking = ranking_scores(anomalous, scored["autoencoder"])
    vs_all = two_class(anomalous, flagged, normal, "other")
    vs_each = {}
    for other in sorted(set(labels) - {normal}):
        keep = (labels == normal) | (labels == other)
        vs_each[other] = {**two_class(anomalous[keep], flagged[keep], normal, other),
                          **ranking_scores(anomalous[keep], scored["autoencoder"][keep])}
    baselines = {}
    for name in BASELINES:
        t = float(state["baselines"]["thresholds"][name])
        report = two_class(anomalous, scored[name] > t, normal, "other")
        baselines[name] = {**ranking_scores(anomalous, scored[name]), "threshold": t, "f1": report["other"]["f1"],
                           "accuracy": report["accuracy"]}
    metrics = {"split": split, "normal": normal, "source": source, "videos": len(labels),
               "normal_videos": int((~anomalous).sum()), "anomalous_videos": int(anomalous.sum()),
               **ranking, "chance": 0.5, "threshold": threshold, "threshold_rule": state.get("threshold_rule"),
               "precision": vs_all["other"]["precision"], "recall": vs_all["other"]["recall"],
               "f1": vs_all["other"]["f1"], "accuracy": vs_all["accuracy"], "vs_all": vs_all, "vs_each": vs_each,
               "baselines": baselines, "best_baseline_roc_auc": max(b["roc_auc"] for b in baselines.values()),
               "backbone": state.get("backbone", {}), "embeddings": str(emb.path)}
    headline = {f"{split}_roc_auc": ranking["roc_auc"], f"{split}_pr_auc": ranking["pr_auc"], f"{split}_f1": metrics["f1"],
                **{f"{split}_{name}_roc_auc": b["roc_auc"] for name, b in baselines.items()}}
    figures = {"figures/error_hist.png": error_histogram(scored["autoencoder"], labels, threshold, normal, log=False),
               "figures/error_hist_log.png": error_histogram(scored["autoencoder"], labels, threshold, normal, log=True),
               "figures/anomaly_confusion_matrix.png": confusion_matrix_figure(
                   vs_all["confusion_matrix"], [normal, "other"], [normal, "other"], f"{split}: true x flagged", "flagged")}
    rows = io.StringIO()
    writer = csv.writer(rows)
    writer.writerow(["video_id", "label", "score", "flagged", *BASELINES])
    for i, vid in enumerate(scored["ids"]):
        writer.writerow([vid, labels[i], f"{scored['autoencoder'][i]:.6f}", int(flagged[i]),
                         *[f"{scored[name][i]:.6f}" for name in BASELINES]])
    return evaluate_stage(ctx, _method(), split=split, metrics=metrics, headline=headline, source=source,
                          metrics_file=metrics_name(split), figures=figures, files={f"scores_{split}.csv": rows.getvalue()},
                          eval_tags={"roc_auc": ranking["roc_auc"], "pr_auc": ranking["pr_auc"], "f1": metrics["f1"]})


def error_histogram(scores: np.ndarray, labels: np.ndarray, threshold: float, normal: str, log: bool):
    """Reconstruction errors per action (normal first) with the threshold."""
    from actionops.evaluation.plots import _plt

    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    values = np.log10(np.maximum(scores, 1e-12)) if log else scores
    bins = np.histogram_bin_edges(values, bins=min(30, max(5, len(values))))
    for label in [normal, *sorted(set(labels) - {normal})]:
        ax.hist(values[labels == label], bins=bins, alpha=0.55, label=label)
    ax.axvline(np.log10(max(threshold, 1e-12)) if log else threshold, color="black", linestyle="--", label="threshold")
    ax.set_xlabel("log10 reconstruction error" if log else "reconstruction error")
    ax.set_ylabel("videos")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- stage: predict
def predict_test(ctx: Context, model: str | None = None) -> dict:
    """`predict_anomaly` on the test-split videos of the dataset (what the method contract compares
    across model sources)."""
    from actionops.pipelines.anomaly_detection.embeddings import labelled_rows

    paths = sorted({str(r["path"]) for r in labelled_rows(ctx, "test")})
    result = predict_anomaly(ctx.cfg, [Path(p) for p in paths], Path(ctx.out) / "predictions",
                             model or str(Path(ctx.out) / CHECKPOINT), ctx.console)
    return {**result, "outputs": str(Path(ctx.out) / "predictions" / "predictions.csv")}


def backbone_of(state: dict) -> tuple[dict, dict]:
    """The detector's backbone, rebuilt from the identity it recorded; its weights must match."""
    from types import SimpleNamespace

    from actionops.pipelines.anomaly_detection.embeddings import resolve_backbone

    ident = state.get("backbone") or {}
    if state.get("backbone_state") is not None:  # fine-tuned end to end: the detector carries its backbone
        return state["backbone_state"], ident
    if not ident:
        raise ActionopsError("the detector records no backbone", "retrain it from an embeddings file written by `actionops embed`")
    source = ident["source"] if ident.get("kind") == "random-init" else ident["resolved"]
    spec = SimpleNamespace(backbone=source, num_frames=ident["num_frames"], size=ident["size"],
                           clip_input=ident["clip_input"], seed=int((state.get("embedding") or {}).get("seed") or 0))
    backbone, now = resolve_backbone(spec)
    if now["weights_digest"] != ident["weights_digest"]:
        raise ActionopsError(f"backbone {source} now has weights {now['weights_digest']}, the detector was trained on "
                             f"embeddings from weights {ident['weights_digest']}",
                             "retrain the detector on embeddings of the current backbone")
    return backbone, ident


def predict_anomaly(cfg: Any, inputs: Sequence[Path], out: Path, model: str | None, console: Any = None) -> dict:
    """Score videos: per video as in evaluation (the error of the mean of its clips' embeddings, or
    the mean of its clips' errors for a detector trained per clip) and per window (anomaly.window_frames / window_stride, one clip each) -> score and
    flag; predictions.json and predictions.csv in `out`. Unreadable videos are listed."""
    from actionops.pipelines.anomaly_detection.embeddings import drop_failed, embed_items
    from actionops.platform.data import probe_videos
    from actionops.platform.layout import video_files
    from actionops.platform.windows import window_spans

    c = cfg.anomaly
    files = video_files(inputs)
    state, source = load_detector(out, model)
    backbone, ident = backbone_of(state)
    clips = int((state.get("embedding") or {}).get("clips") or cfg.embed.clips)
    probes = probe_videos(files)
    failed = [{"path": p["path"], "reason": p["error"]} for p in probes if p["error"]]
    rows, windows = [], []
    for p in probes:
        if p["error"]:
            continue
        rows.append({"video_id": p["path"], "path": p["path"], "frames": int(p["frames"]), "split": "predict"})
        for start, end in window_spans(int(p["frames"]), c.window_frames, c.window_stride, cover_end=True):
            windows.append({"video_id": f"{p['path']}#{start}", "path": p["path"], "frames": int(p["frames"]),
                            "split": "predict", "start": start, "end": end})
    # one job (one actor pool) for the videos' clips and the windows' clips; a window item has start >= 0
    items = rows + [{**w, "clip": 0} for w in windows]
    embedded_all = embed_items(items, backbone, ident, clips=clips, augment_copies=0, seed=0,
                               batch_size=cfg.embed.batch_size, window_clips=1)
    embedded, more_failed = drop_failed([r for r in embedded_all if int(r["start"]) < 0])
    failed += more_failed
    window_rows, _ = drop_failed([r for r in embedded_all if int(r["start"]) >= 0])
    by_video: dict[str, list[np.ndarray]] = {}
    for r in embedded:
        by_video.setdefault(r["path"], []).append(np.asarray(r["vector"], np.float32))
    videos = sorted(by_video)
    threshold = float(state["threshold"])
    if not videos:
        scores = np.zeros(0)
    elif (state.get("embedding") or {}).get("per_clip"):  # trained on clips: a video scores the mean of its clips' errors
        scores = np.array([autoencoder_scores(state, np.stack(by_video[v])).mean() for v in videos])
    else:  # trained on per-video means: a video scores its mean embedding
        scores = autoencoder_scores(state, np.stack([np.mean(by_video[v], axis=0) for v in videos]))
    window_rows.sort(key=lambda r: (r["path"], int(r["start"])))
    window_scores = autoencoder_scores(state, np.stack([np.asarray(r["vector"], np.float32) for r in window_rows])) \
        if window_rows else np.zeros(0)
    result = {v: {"score": float(s), "anomalous": bool(s > threshold), "windows": []} for v, s in zip(videos, scores)}
    for r, s in zip(window_rows, window_scores):
        if r["path"] in result:
            result[r["path"]]["windows"].append({"start": int(r["start"]), "end": int(r["end"]), "score": float(s),
                                                 "anomalous": bool(s > threshold)})
    out.mkdir(parents=True, exist_ok=True)
    (out / "predictions.json").write_text(json.dumps({"model": source, "normal": state["normal"], "threshold": threshold,
                                                      "backbone": ident, "videos": result, "failed": failed}, indent=2))
    with open(out / "predictions.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["video", "start", "end", "score", "anomalous"])
        for video, entry in result.items():
            writer.writerow([video, "", "", f"{entry['score']:.6f}", int(entry["anomalous"])])
            for w in entry["windows"]:
                writer.writerow([video, w["start"], w["end"], f"{w['score']:.6f}", int(w["anomalous"])])
    if failed and console is not None:
        console.print(f"[yellow]warning:[/] {len(failed)} videos could not be read, e.g. {failed[0]['reason']}")
    return {"videos": len(result), "windows": len(window_rows), "failed": len(failed), "model": source,
            "normal": state["normal"], "threshold": threshold, "flagged": sum(e["anomalous"] for e in result.values()),
            "predictions": str(out / "predictions.json")}
