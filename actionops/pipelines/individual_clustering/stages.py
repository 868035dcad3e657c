"""Stages of the individual-clustering method: one CLI command, one function each.

Outputs go under `out` (default `outputs/individual-clustering/<dataset name>/`):
    ae_frame.pt, ae_flow.pt        autoencoder checkpoints (dicts rebuilt through the registry)
    clustering.pt                  joint model checkpoint
    predictions/<split>/<video>.json   [{"frame" (1-based), "id", "label" (cluster)}]
    predictions/<split>/embeddings.npz video_id, start, id, embedding, cluster, truth
    predictions/<split>/boxes.mp4      one video with coloured boxes and cluster ids
    metrics_<split>.json           evaluation scores of a split (per-class report, contingency)
    metrics.json                   headline scores of every evaluated split
Every stage logs a run to the MLflow experiment `individual-clustering`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from actionops.errors import ActionopsError, DataError
from actionops.pipelines.context import Context
from actionops.pipelines.individual_clustering.config import uses_backbone
from actionops.platform.config import Config

CHECKPOINT = "clustering.pt"


def _method():
    from actionops.pipelines.method import get_method

    return get_method("individual-clustering")


# ----------------------------------------------------------------------------- inputs
def manifest_rows(ctx: Context, split: str | None = None) -> list[dict]:
    """Manifest rows of the operating-room layout (indexing the dataset when needed)."""
    layout, rows = ctx.rows()
    if layout != "or":
        raise DataError(f"{ctx.dataset} is in the {layout} layout", "individual clustering needs the operating-room "
                        "layout: train/ and test/ with <video>/json/pose.json")
    if split:
        rows = [r for r in rows if r["split"] == split]
        if not rows:
            raise DataError(f"no videos in the {split} split of {ctx.dataset}")
    return rows


def _require_flow(rows: list[dict]) -> None:
    missing = [r["flow_path"] for r in rows if not Path(r["flow_path"]).is_file()]
    if missing:
        raise DataError(f"missing optical flow for {len(missing)} videos, e.g. {missing[0]}",
                        "run `actionops flow compute DATASET` first")


def _ae_args(cfg: Config, channels: int) -> dict:
    a = cfg.autoencoder
    return {"in_channels": channels, "base_channels": a.base_channels, "latent_channels": a.latent_channels}


def _head_args(cfg: Config) -> dict:
    from actionops.models.autoencoder3d import SPATIAL_STRIDE

    c = cfg.clustering
    return {"latent_channels": cfg.autoencoder.latent_channels, "n_clusters": c.n_clusters, "ndf": c.ndf,
            "alpha": c.alpha, "roi_output": c.roialign.output_size, "spatial_scale": 1.0 / SPATIAL_STRIDE,
            "aligned": c.roialign.aligned, "add_spatial_feature": c.add_spatial_feature,
            "motion_dim": motion_dim(c), "motion_weight": c.motion_weight,
            "motion_spec": list(motion_spec(c)) if c.add_motion_feature else None}


def motion_dim(c) -> int:
    return c.motion_grid * c.motion_grid * c.motion_bins if c.add_motion_feature else 0


def motion_spec(c, head: dict | None = None) -> tuple:
    """(grid, bins, unsigned) of the motion descriptor: the one a model was trained on when its
    head args record it, else the `clustering` section's."""
    if head and head.get("motion_spec"):
        return tuple(head["motion_spec"])
    return (c.motion_grid, c.motion_bins, c.motion_unsigned)


def load_state(path: Path) -> dict:
    from actionops.models.checkpoint import load_checkpoint

    return load_checkpoint(path)


def prepare_tune(ctx: Context) -> list[Path]:
    """Before a campaign (driver side): index the dataset once and hand the trials the two
    pretrained autoencoders (the campaign searches the joint DEC stage); with
    clustering.features=backbone the trials read clustering.backbone themselves."""
    manifest_rows(ctx, "train")
    if uses_backbone(ctx.cfg):
        return []
    files = [ctx.out / name for name in ("ae_frame.pt", "ae_flow.pt")]
    for file in files:
        if not file.is_file():
            raise ActionopsError(f"missing {file}", "tune clustering searches the joint DEC stage: pretrain both "
                                 "autoencoders first (`actionops train autoencoder DATASET --datatype frame|flow`)")
    return [f.resolve() for f in files]


# ----------------------------------------------------------------------------- stage: autoencoder
def train_autoencoder(ctx: Context, datatype: str) -> dict:
    """Pretrain the RGB (`frame`) or optical-flow (`flow`) autoencoder; writes ae_<datatype>.pt."""
    from actionops.pipelines.individual_clustering.loops import autoencoder_loop
    from actionops.pipelines.individual_clustering.windows import window_dataset
    from actionops.pipelines.spine import train_stage

    if datatype not in ("frame", "flow"):
        raise ActionopsError(f"unknown datatype {datatype!r}", "use --datatype frame or --datatype flow")
    cfg, a = ctx.cfg, ctx.cfg.autoencoder
    rows = manifest_rows(ctx, "train")
    if datatype == "flow":
        _require_flow(rows)
    key = "frames" if datatype == "frame" else "flow"
    ds = window_dataset(rows, a, frames=datatype == "frame", flow=datatype == "flow").select_columns([key]).materialize()
    ctx.say(f"autoencoder ({datatype}): {ds.count()} windows from {len(rows)} videos")
    loop_config = {"key": key, "model_name": "conv3d_autoencoder", "model_args": _ae_args(cfg, 3 if key == "frames" else 2),
                   "autoencoder": a}
    return train_stage(
        ctx, _method(), loop=autoencoder_loop, loop_config=loop_config, name=f"ae-{datatype}-{ctx.dataset.name}",
        run_name=f"autoencoder-{datatype}", checkpoint_file=f"ae_{datatype}.pt",
        checkpoint=lambda state: {k: state[k] for k in ("model_name", "model_args", "model", "epoch")},
        history_file=f"history_ae_{datatype}.json", curves={"loss_curve.png": (f"autoencoder ({datatype})", ("loss",))},
        tags={"actionops.stage": f"autoencoder_{datatype}"}, datasets={"train": ds})


# ----------------------------------------------------------------------------- stage: clustering
def _clustering_model(cfg: Config, frame_state: dict | None = None, flow_state: dict | None = None):
    from actionops.models import create_model

    model_args = {"frame_args": _ae_args(cfg, 3), "flow_args": _ae_args(cfg, 2), "head_args": _head_args(cfg)}
    model = create_model("individual_clustering", **model_args)
    if frame_state is not None:
        model.frame_ae.load_state_dict(frame_state["model"])
        model.flow_ae.load_state_dict(flow_state["model"])
    return model, model_args


def _backbone_model(cfg: Config):
    """The DEC head on a frozen `video_pretrained` backbone (clustering.backbone), its tensors
    loaded; (model, model_args)."""
    from actionops.models import create_model
    from actionops.models.dec import LAYER_CHANNELS
    from actionops.pipelines.spine import load_model_state

    c = cfg.clustering
    hint = ("pass the backbone `actionops train pretrain` made: --weights models:/video-pretrained@ALIAS or its "
            "pretrain.pt (or --set clustering.features=autoencoders)")
    if not c.backbone:
        raise ActionopsError("clustering.features=backbone but clustering.backbone is empty", hint)
    state, source = load_model_state(c.backbone, Path(c.backbone), hint)
    if state.get("model_name") != "video_pretrained":
        raise ActionopsError(f"{source} holds a {state.get('model_name', 'unknown')} model"
                             f"{' (' + state['method'] + ')' if state.get('method') else ''}, not a pretrained video backbone",
                             hint)
    # unit-norm embeddings: unnormalised, the Student-t assignments of 6,400 pooled features through a
    # random projection were near uniform and DEC put every person in one cluster (Weizmann: NMI 0.0)
    head = {**_head_args(cfg), "latent_channels": LAYER_CHANNELS[c.backbone_layer], "spatial_scale": 1.0,
            "normalize": True}
    model_args = {"backbone_args": dict(state["model_args"]), "layer": c.backbone_layer, "head_args": head,
                  "source": source}
    model = create_model("individual_clustering_backbone", **model_args)
    tensors = {f"backbone.{k[len('net.'):]}": v for k, v in state["model"].items()
               if k.startswith("net.") and k.split(".")[1] in model.backbone}
    missing = [k for k in model.load_state_dict(tensors, strict=False).missing_keys if k.startswith("backbone.")]
    if missing:
        raise ActionopsError(f"{source} lacks {len(missing)} backbone tensors, e.g. {missing[0]}", hint)
    return model, model_args


def embed_windows(model, ds, batch_size: int) -> dict[str, Any]:
    """Embeddings and soft assignments of every person of `ds` (driver side, no grad)."""
    import torch

    from actionops.pipelines.individual_clustering.loops import MODEL_KEYS

    model.eval()
    out: dict[str, list] = {"z": [], "q": [], "video_id": [], "start": [], "id": [], "truth": [], "rois": []}
    with torch.no_grad():
        for batch in ds.iter_batches(batch_size=batch_size, batch_format="numpy"):
            t = {k: torch.from_numpy(np.array(batch[k])) for k in MODEL_KEYS}
            rois, spatial, motion, _ = model.person_inputs(t)
            z, q = model(t["frames"], t["flow"], rois, spatial, motion)
            out["z"].append(z.numpy())
            out["q"].append(q.numpy())
            mask = batch["mask"] > 0
            for i in range(len(mask)):
                n = int(mask[i].sum())
                out["video_id"] += [str(batch["video_id"][i])] * n
                out["start"] += [int(batch["start"][i])] * n
                out["id"] += [int(v) for v in batch["ids"][i][:n]]
                out["truth"] += [str(v) for v in list(batch["labels"][i])[:n]]
            out["rois"].append(batch["rois"][mask])
    dim = model.head.centroids.shape  # (K, embedding dim)
    return {"z": np.concatenate(out["z"]) if out["z"] else np.zeros((0, dim[1])),
            "q": np.concatenate(out["q"]) if out["q"] else np.zeros((0, dim[0])),
            "rois": np.concatenate(out["rois"]) if out["rois"] else np.zeros((0, 4)),
            **{k: np.asarray(out[k]) for k in ("video_id", "start", "id", "truth")}}


def train_clustering(ctx: Context, *, parent_run_id: str | None = None, register: bool = True,
                     callbacks: list | None = None, run_name: str | None = None) -> dict:
    """Joint training with the DEC clustering layer (k-means initialised) on the autoencoders'
    latents, or with clustering.features=backbone on a frozen pretrained backbone's feature map
    (only the head trains); writes clustering.pt,
    logs plots and registers the model as `clustering.registered_model` with alias `candidate`.
    In a Tune trial: `parent_run_id`, `register=False`, `callbacks`, `run_name` (see tune.py)."""
    import torch
    from sklearn.cluster import KMeans

    from actionops.evaluation.clustering import clustering_report, report_figures
    from actionops.models.checkpoint import save_checkpoint
    from actionops.pipelines.individual_clustering.loops import clustering_loop
    from actionops.pipelines.individual_clustering.windows import window_dataset
    from actionops.pipelines.spine import train_stage
    from actionops.platform import tracking

    cfg, c = ctx.cfg, ctx.cfg.clustering
    rows = manifest_rows(ctx, "train")
    _require_flow(rows)
    torch.manual_seed(cfg.train.seed)
    if uses_backbone(cfg):  # a wrong --weights fails here, before any video is decoded
        model, model_args = _backbone_model(cfg)
        ctx.say(f"features: {c.backbone_layer} of the pretrained backbone {model_args['source']} (frozen)")
    else:
        model, model_args = _clustering_model(cfg, load_state(ctx.out / "ae_frame.pt"), load_state(ctx.out / "ae_flow.pt"))
    max_people = max(int(r["people"]) for r in rows)
    ds = window_dataset(rows, cfg.autoencoder, people=max_people, spatial=c.add_spatial_feature,
                        motion=motion_spec(c)).materialize()
    init = embed_windows(model, ds, c.batch_size)
    if len(init["z"]) < c.n_clusters:
        raise DataError(f"{len(init['z'])} people in the training windows but clustering.n_clusters={c.n_clusters}",
                        "lower clustering.n_clusters or add videos")
    kmeans = KMeans(c.n_clusters, n_init=c.kmeans_init, random_state=cfg.train.seed).fit(init["z"])
    model.head.init_centroids(torch.as_tensor(kmeans.cluster_centers_, dtype=torch.float32))
    init_path = save_checkpoint(ctx.out / "clustering_init.pt", {"model": model.state_dict()})
    ctx.say(f"clustering: {ds.count()} windows, {len(init['z'])} person-windows, k-means initialised")
    model_name = "individual_clustering_backbone" if uses_backbone(cfg) else "individual_clustering"
    loop_config = {"model_name": model_name, "model_args": model_args, "init_path": str(init_path.resolve()),
                   "clustering": c, "optim": cfg.optim}

    def finish(result: Any, state: dict) -> dict:
        """Embeddings of the trained model on the training windows: scores, contingency, PCA / t-SNE."""
        model.load_state_dict(state["model"])
        emb = embed_windows(model, ds, c.batch_size)
        clusters = emb["q"].argmax(1)
        colourings = {"cluster": clusters.tolist()}
        labelled = emb["truth"] != ""
        scores, report = {}, None
        if labelled.any():
            colourings["true label"] = emb["truth"].tolist()
            report = clustering_report(emb["truth"][labelled], clusters[labelled])
            scores = report["scores"]
            tracking.log_metrics({f"train_{k}": v for k, v in scores.items()})
            # the k-means initialisation alone, to see what joint DEC training adds or loses
            init_scores = clustering_report(init["truth"][labelled], kmeans.labels_[labelled])["scores"]
            tracking.log_metrics({f"train_init_{k}": v for k, v in init_scores.items()})
            scores = {**scores, "init_hungarian_accuracy": init_scores["hungarian_accuracy"]}
        for artifact, figure in report_figures(report, "train", embeddings=emb["z"], colourings=colourings,
                                               seed=cfg.train.seed, prefix="train_").items():
            tracking.log_figure(figure, artifact)
        return {"train_scores": scores}

    return train_stage(
        ctx, _method(), loop=clustering_loop, loop_config=loop_config, name=run_name or f"clustering-{ctx.dataset.name}",
        run_name=run_name or "clustering", checkpoint_file=CHECKPOINT,
        checkpoint=lambda state: {k: state[k] for k in ("model_name", "model_args", "model", "epoch")},
        history_file="history_clustering.json",
        curves={"loss_curves.png": ("joint training", ("loss", "mse_frame", "mse_flow", "kl"))},
        tags={"actionops.stage": "clustering"}, datasets={"train": ds}, finish=finish,
        register=(lambda path, tags: register_clustering(ctx, path, tags, example=_model_example(ds))) if register else None,
        parent_run_id=parent_run_id, callbacks=callbacks)


def register_clustering(ctx: Context, checkpoint: Path, tags: dict, example: dict | None = None) -> str | None:
    """Log a clustering checkpoint as a model in the active run and register it (alias candidate)."""
    from actionops.pipelines.individual_clustering.windows import window_dataset
    from actionops.pipelines.spine import register_checkpoint

    cfg = ctx.cfg
    if example is None:
        c = cfg.clustering
        rows = manifest_rows(ctx, "train")
        ds = window_dataset(rows[:1], cfg.autoencoder, people=max(int(r["people"]) for r in rows),
                            spatial=c.add_spatial_feature, motion=motion_spec(c))
        example = _model_example(ds)
    return register_checkpoint(checkpoint, example, cfg.clustering.registered_model, tags)


def _model_example(ds) -> dict[str, np.ndarray]:
    """Two windows as a numpy input example for the MLflow signature."""
    batch = next(iter(ds.iter_batches(batch_size=2, batch_format="numpy")))
    from actionops.pipelines.individual_clustering.loops import MODEL_KEYS

    return {k: np.ascontiguousarray(batch[k]).astype(np.float32) for k in MODEL_KEYS}


# ----------------------------------------------------------------------------- stage: predict
def predict(ctx: Context, split: str, model_uri: str | None = None) -> dict:
    """Cluster every person of every window of `split`; write per-video JSON, embeddings, a video."""
    from actionops.models.checkpoint import build_from_checkpoint
    from actionops.pipelines.individual_clustering.windows import window_dataset
    from actionops.pipelines.spine import load_model_state
    from actionops.platform import tracking

    cfg = ctx.cfg
    rows = manifest_rows(ctx, split)
    _require_flow(rows)
    checkpoint, source = load_model_state(model_uri, ctx.out / CHECKPOINT, "train one with `actionops train clustering "
                                          "DATASET` or pass --model models:/individual-clustering@champion", _method())
    model = build_from_checkpoint(checkpoint)
    head = checkpoint["model_args"]["head_args"]
    ds = window_dataset(rows, cfg.autoencoder, people=max(int(r["people"]) for r in rows),
                        spatial=bool(head["add_spatial_feature"]), motion=motion_spec(cfg.clustering, head))
    emb = embed_windows(model, ds, cfg.clustering.batch_size)
    clusters = emb["q"].argmax(1)
    folder = ctx.out / "predictions" / split
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "embeddings.npz", video_id=emb["video_id"], start=emb["start"], id=emb["id"],
             embedding=emb["z"], cluster=clusters, truth=emb["truth"], q=emb["q"])
    per_video = _frame_labels(rows, emb, clusters, cfg.autoencoder.seq_len)
    for video_id, records in per_video.items():
        target = folder / f"{video_id.split('/')[-1]}.json"
        target.write_text(json.dumps(records, separators=(",", ":")))
    video = _boxes_video(rows[0], per_video.get(rows[0]["video_id"], []), folder / "boxes.mp4")
    with tracking.start_run(_method().experiment, run_name=f"predict-{split}", params=cfg.flat(),
                            tags={"actionops.stage": f"predict_{split}", "actionops.model": source}):
        tracking.log_artifact(video, "predictions")
        tracking.log_metrics({"person_windows": len(clusters), "videos": len(per_video)})
    return {"videos": len(per_video), "person_windows": int(len(clusters)), "folder": str(folder),
            "outputs": str(folder / "embeddings.npz"), "model": source}


def _frame_labels(rows, emb, clusters, seq_len: int) -> dict[str, list[dict]]:
    """Spread each window's cluster over the frames of the window where the person has a box
    (a frame in two overlapping windows takes the later window)."""
    from actionops.platform.layout import load_pose

    by_window: dict[tuple[str, int], int] = {}
    starts: dict[str, list[int]] = {}
    for vid, start, pid, cluster in zip(emb["video_id"], emb["start"], emb["id"], clusters):
        by_window[(str(vid), int(start), int(pid))] = int(cluster)
        starts.setdefault(str(vid), []).append(int(start))
    out = {}
    for r in rows:
        vid = r["video_id"]
        windows = sorted(set(starts.get(vid, [])))
        records = []
        for rec in load_pose(r["pose_path"], width=int(r["width"]), height=int(r["height"])):
            covering = [s for s in windows if s <= rec["frame"] < s + seq_len and (vid, s, rec["id"]) in by_window]
            if covering:
                records.append({"frame": rec["frame"] + 1, "id": rec["id"],
                                "label": by_window[(vid, covering[-1], rec["id"])]})
        out[vid] = records
    return out


def _boxes_video(row: dict, records: list[dict], target: Path) -> Path:
    """The video with each person's box coloured by cluster and captioned with the cluster id."""
    import cv2

    from actionops.platform.layout import load_pose
    from actionops.platform.video import iter_frames, write_video

    colours = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
               (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212)]
    boxes = {(r["frame"], r["id"]): r["bbox"] for r in load_pose(row["pose_path"], width=int(row["width"]), height=int(row["height"]))}
    labels: dict[int, list[tuple[int, int]]] = {}
    for rec in records:
        labels.setdefault(rec["frame"] - 1, []).append((rec["id"], rec["label"]))

    def draw():
        for index, frame in enumerate(iter_frames(row["path"])):
            frame = frame.copy()
            for pid, cluster in labels.get(index, []):
                x1, y1, x2, y2 = (int(v) for v in boxes[(index, pid)])
                colour = colours[cluster % len(colours)]
                cv2.rectangle(frame, (x1, y1), (x2, y2), colour, 1)
                cv2.putText(frame, f"{pid}:c{cluster}", (x1, max(8, y1 - 2)), cv2.FONT_HERSHEY_SIMPLEX, 0.3, colour, 1)
            yield frame[: frame.shape[0] // 2 * 2, : frame.shape[1] // 2 * 2]

    write_video(target, draw(), fps=max(1, int(round(float(row["fps"]) or 10))))
    return target


# ----------------------------------------------------------------------------- stage: evaluate
def evaluate(ctx: Context, split: str, source: str = "predictions") -> dict:
    """Scores of the predictions of `split` against the annotations (person-window level);
    `source` names the model that made them (a models:/ URI gets `eval.*` registry tags)."""
    from actionops.evaluation.clustering import clustering_report
    from actionops.evaluation.plots import confusion_matrix_figure
    from actionops.pipelines.spine import evaluate_stage

    path = ctx.out / "predictions" / split / "embeddings.npz"
    if not path.is_file():
        raise ActionopsError(f"no predictions at {path}", f"run `actionops predict clustering DATASET --split {split}` first")
    data = np.load(path, allow_pickle=False)
    truth, clusters = data["truth"].astype(str), data["cluster"]
    labelled = truth != ""
    if not labelled.any():
        raise DataError(f"the {split} split has no annotations", "evaluation needs json/annotation_clustering.json")
    report = clustering_report(truth[labelled], clusters[labelled])
    scores = report["scores"]
    metrics = {**scores, "chance": report["chance"], "person_windows": report["items"], "n_clusters": report["n_clusters"],
               "note": "majority_vote_accuracy maps clusters many-to-one on the scored data (optimistic)",
               **{k: report[k] for k in ("hungarian_mapping", "per_class", "contingency")}}
    summary_path = ctx.out / "metrics.json"  # headline scores of every evaluated split (for DVC)
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    summary[split] = scores
    c = report["contingency"]
    figure = confusion_matrix_figure(np.asarray(c["counts"]), c["rows"], [f"cluster {v}" for v in c["cols"]],
                                     f"{split}: true label x cluster", "cluster")
    # one row per person window (what `dvc plots` draws as a confusion matrix)
    assignments = "truth,cluster,matched\n" + "".join(
        f"{t},{k},{m}\n" for t, k, m in zip(truth[labelled], clusters[labelled], report["matched"]))
    return evaluate_stage(ctx, _method(), split=split, metrics=metrics, source=source,
                          eval_tags={k: scores[k] for k in ("hungarian_accuracy", "nmi", "ari")},
                          headline={f"{split}_{k}": v for k, v in scores.items()}, metrics_file=f"metrics_{split}.json",
                          figures={f"figures/confusion_{split}.png": figure},
                          files={f"assignments_{split}.csv": assignments, "metrics.json": json.dumps(summary, indent=2)})


# ----------------------------------------------------------------------------- contract: the test split
def predict_test(ctx: Context, model: str | None = None) -> dict:
    """Predictions on the test split (what the method contract compares across model sources)."""
    return predict(ctx, "test", model)


def evaluate_model(ctx: Context, model: str | None = None, split: str = "test") -> dict:
    """Predict `split` with `model` (local checkpoint when None), then score it; a registry version
    evaluated this way gets `eval.*` tags."""
    source = predict(ctx, split, model)["model"]
    return evaluate(ctx, split, source)
