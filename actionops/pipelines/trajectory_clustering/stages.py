"""Stages of trajectory clustering and video pretraining (methods.md §5).

Outputs go under `out` (default `outputs/trajectory-clustering/<dataset name>/`):
    trajectories/<video>.parquet   dense trajectories and descriptors (`trajectories compute`)
    trajectories_report.json       per video: done / up to date / skipped (too short) / failed, with the reason
    fisher_model/                  per-part PCA + GMM (`trajectories encode`) and fisher.npz (a vector per video)
    clusters.csv (or .parquet)     video_id, cluster (`trajectories cluster`); metrics_trajectories.json
    pretrain.pt                    the pretrained backbone (`train pretrain`), registered as video-pretrained
    metrics_pretrain.json          k-NN / linear-probe accuracy, pretrained vs random init (`evaluate pretrain`)
    predictions/embeddings.npz     per test video: embedding and backbone features (`predict`)
Every stage logs to the MLflow experiment `trajectory-clustering`.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from actionops.errors import ActionopsError, DataError
from actionops.pipelines.context import Context

CHECKPOINT = "pretrain.pt"
TRAJECTORIES = "trajectories"
FISHER_MODEL = "fisher_model"
FISHER = "fisher.npz"
NO_MODEL_HINT = "pretrain one with `actionops train pretrain DATASET` or pass --model models:/video-pretrained@champion"
DEFAULT_K = 8


def _method():
    from actionops.pipelines.method import get_method

    return get_method("trajectory-clustering")


def track_spec(c: Any):
    from actionops.pipelines.trajectory_clustering.tracks import TrackSpec

    return TrackSpec(step=c.step, scales=c.scales, length=c.length, tube=c.tube, hog=c.hog)


def video_rows(ctx: Context) -> list[dict]:
    """Every indexed video of the dataset (labels, when present, are only read to score)."""
    _, rows = ctx.rows()
    if not rows:
        raise DataError(f"no readable video in {ctx.dataset}", "see rejected.csv in the dataset folder")
    return sorted(rows, key=lambda r: str(r["video_id"]))


def fisher_path(ctx: Context) -> Path:
    return Path(ctx.out) / FISHER_MODEL / FISHER


def clusters_path(ctx: Context) -> Path:
    return Path(ctx.out) / f"clusters.{ctx.cfg.trajectories.table_format}"


# ----------------------------------------------------------------------------- trajectories compute
def compute_stage(ctx: Context) -> dict:
    """Dense trajectories of every video on Ray Data (resumable: done videos are kept)."""
    from actionops.pipelines.trajectory_clustering.extract import extract_trajectories
    from actionops.platform.progress import progress_bar

    c = ctx.cfg.trajectories
    rows = video_rows(ctx)
    from actionops.errors import ConfigError
    from actionops.platform.flow import parse_size

    try:
        size = parse_size(c.size)
    except ValueError as exc:
        raise ConfigError(f"trajectories.size: {exc}", "set it to WxH (e.g. 360x240) or null") from None
    keys = ("video_id", "path", "pose_path", "frames", "width", "height", "flow_path", "content_md5")
    items = [{k: (str(r[k]) if k in ("video_id", "path") else r.get(k)) for k in keys} for r in rows]
    with progress_bar(ctx.console, "trajectories", len(items), "videos ") as update:
        report = extract_trajectories(items, Path(ctx.out) / TRAJECTORIES, track_spec(c), flow_method=c.flow_method,
                                      use_ray=True, chunk_frames=c.chunk_frames, size=size,
                                      progress=lambda done, total: update(done, total))
    (Path(ctx.out) / "trajectories_report.json").write_text(json.dumps(report, indent=1, default=str))
    counts = report["counts"]
    for row in report["videos"]:
        if row["status"] in ("skipped", "failed"):
            ctx.say(f"[yellow]{row['status']}:[/] {row['video_id']}: {row['reason']}")
    if counts["skipped"] or counts["failed"]:
        ctx.say(f"{counts['skipped']} videos skipped (no trajectory), {counts['failed']} failed; the others are kept")
    if counts["done"] + counts["up to date"] == 0:
        raise DataError(f"no video of {ctx.dataset} gave a trajectory of {c.length} frames",
                        "lower trajectories.length or trajectories.step, or check the videos (trajectories_report.json)")
    if report["flow"]["cache"]:
        ctx.say(f"flow of {report['flow']['cache']} videos read from the flow stage's files")
    return {"videos": len(items), **{k.replace(" ", "_"): v for k, v in counts.items()},
            "trajectories_new": report["trajectories"], "flow_from_cache": report["flow"]["cache"],
            "frame_ranges": report["ranges"], "seconds": round(report["seconds"], 2)}


def _descriptors(ctx: Context) -> dict[str, np.ndarray]:
    from actionops.pipelines.trajectory_clustering.extract import parquet_name, read_descriptors

    folder = Path(ctx.out) / TRAJECTORIES
    out = {}
    for row in video_rows(ctx):
        path = folder / parquet_name(str(row["video_id"]))
        if path.is_file():
            out[str(row["video_id"])] = read_descriptors(path)[1]
    if not out:
        raise DataError(f"no trajectories under {folder}", f"run `actionops trajectories compute {ctx.dataset}` first")
    return out


# ----------------------------------------------------------------------------- trajectories encode
def encode_stage(ctx: Context) -> dict:
    """Fit a PCA + diagonal GMM per descriptor part on a sample, then one Fisher vector per video."""
    from actionops.pipelines.trajectory_clustering.fisher import fit_parts

    c = ctx.cfg.trajectories
    spec = track_spec(c).descriptor_spec()
    descs = _descriptors(ctx)
    rng = np.random.default_rng(c.seed)
    pool = np.concatenate(list(descs.values()))
    sample = pool[rng.choice(len(pool), size=min(c.sample, len(pool)), replace=False)]
    ctx.say(f"fitting PCA + GMM (K={c.gmm_components} per part) on {len(sample)} of {len(pool)} trajectories "
            f"from {len(descs)} videos")
    model = fit_parts(sample, spec, components=c.gmm_components, keep=c.pca_keep, variance=c.pca_variance,
                      dims=c.pca_dims, seed=c.seed)
    folder = Path(ctx.out) / FISHER_MODEL
    model.save(folder)
    ids = sorted(descs)
    vectors = np.stack([model.encode(descs[v], spec, source=v) for v in ids])
    np.savez(fisher_path(ctx), video_id=np.array(ids), fisher=vectors)
    return {"videos": len(ids), "dims": int(vectors.shape[1]), "sample": int(len(sample)),
            "components": c.gmm_components, "model": str(folder)}


def read_fisher(ctx: Context) -> tuple[list[str], np.ndarray]:
    path = fisher_path(ctx)
    if not path.is_file():
        raise DataError(f"no Fisher vectors at {path}", f"run `actionops trajectories encode {ctx.dataset}` first")
    with np.load(path, allow_pickle=False) as z:
        return [str(v) for v in z["video_id"]], z["fisher"]


# ----------------------------------------------------------------------------- trajectories cluster
def _labels(rows: list[dict]) -> dict[str, str]:
    return {str(r["video_id"]): str(r["label"]) for r in rows if r.get("label")}


def cluster_stage(ctx: Context, k: int | None = None) -> dict:
    """faiss k-means of the Fisher vectors into k clusters -> the video_id / cluster table; purity and
    NMI against the labels when the dataset has them (an MLflow run with the table and scores)."""
    from actionops.pipelines.trajectory_clustering.clusters import cluster_table, table_scores
    from actionops.platform import tracking

    c = ctx.cfg.trajectories
    ids, vectors = read_fisher(ctx)
    rows = video_rows(ctx)
    labels = _labels(rows)
    k = k or c.k or (len(set(labels.values())) if len(set(labels.values())) >= 2 else DEFAULT_K)
    table = cluster_table(ids, vectors, k, restarts=c.restarts, seed=c.seed)
    path = clusters_path(ctx)
    if path.suffix == ".parquet":
        table.to_parquet(path, index=False)
    else:
        table.to_csv(path, index=False)
    scores = table_scores(table, labels) if labels else {}
    skipped = len(rows) - len(ids)
    metrics = {"k": int(k), "videos": len(ids), "videos_without_trajectories": skipped, "table": str(path),
               **{key: v for key, v in scores.items()}}
    (Path(ctx.out) / "metrics_trajectories.json").write_text(json.dumps(metrics, indent=2))
    with tracking.start_run(_method().experiment, run_name="cluster-trajectories", params=ctx.cfg.flat(),
                            tags={"actionops.stage": "cluster_trajectories"}):
        tracking.log_metrics({key: float(v) for key, v in metrics.items() if isinstance(v, (int, float))})
        tracking.log_artifact(path)
        if labels:
            from actionops.evaluation.plots import confusion_matrix_figure

            names = sorted(set(labels.values()))
            matrix = [[int(((table["cluster"] == cl) & (table["video_id"].map(labels) == name)).sum())
                       for cl in range(k)] for name in names]
            tracking.log_figure(confusion_matrix_figure(matrix, names, [str(i) for i in range(k)],
                                                        "label x trajectory cluster", "cluster"),
                                "figures/clusters_contingency.png")
    return metrics


def read_clusters(ctx: Context) -> dict[str, int]:
    import pandas as pd

    path = clusters_path(ctx)
    if not path.is_file():
        raise DataError(f"no cluster table at {path}", f"run `actionops trajectories cluster {ctx.dataset}` first")
    table = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype={"video_id": str})
    return dict(zip(table["video_id"].astype(str), table["cluster"].astype(int)))


def prepare_tune(ctx: Context) -> list[Path]:
    """Before a campaign (driver): the trajectory stages' outputs exist (trials read them)."""
    ensure_trajectory_outputs(ctx)
    return [fisher_path(ctx), clusters_path(ctx)]


def ensure_trajectory_outputs(ctx: Context) -> None:
    """Run trajectories compute / encode / cluster when their outputs are missing (LA and tuning need them)."""
    if not fisher_path(ctx).is_file():
        ctx.say("no Fisher vectors yet: computing trajectories and encoding them first")
        compute_stage(ctx)
        encode_stage(ctx)
    if not clusters_path(ctx).is_file():
        cluster_stage(ctx)


# ----------------------------------------------------------------------------- train pretrain
def model_args(c: Any) -> dict:
    return {"backbone": c.model, "dim": c.dim, "num_frames": c.num_frames, "image_size": c.size, "clip_input": c.clip_input}


def train_pretrain(ctx: Context, *, parent_run_id: str | None = None, register: bool = True,
                   callbacks: list | None = None, run_name: str | None = None) -> dict:
    """Pretrain the backbone on every video of the dataset (labels unused) through Ray Train:
    instance recognition, Local Aggregation with the trajectory clusters, tuning with k-means on
    [memory bank + Fisher vectors] (see `loops`). Writes pretrain.pt and registers it as
    pretrain.registered_model (video-pretrained) with alias candidate."""
    import torch

    from actionops.models import create_model
    from actionops.pipelines.clip_classification.data import cache_frames, draw_spec
    from actionops.pipelines.spine import train_stage
    from actionops.pipelines.trajectory_clustering.loops import STAGE_NAMES, pretrain_loop

    cfg, c = ctx.cfg, ctx.cfg.pretrain
    if c.epochs < c.ir_epochs + c.la_epochs:
        from actionops.errors import ConfigError

        raise ConfigError(f"pretrain.epochs ({c.epochs}) is less than pretrain.ir_epochs + pretrain.la_epochs "
                          f"({c.ir_epochs} + {c.la_epochs})", "raise pretrain.epochs (the rest is the tuning stage)")
    rows = video_rows(ctx)
    ids = [str(r["video_id"]) for r in rows]
    args = model_args(c)
    torch.manual_seed(cfg.train.seed)
    create_model("video_pretrained", **args)  # an unknown backbone fails here, on the driver
    prior = np.full(len(ids), -1, np.int64)
    fisher = None
    tune_k = c.tune_k
    if c.epochs > c.ir_epochs:  # LA and tuning read the trajectory clusters and Fisher vectors
        ensure_trajectory_outputs(ctx)
        clusters = read_clusters(ctx)
        prior = np.array([clusters.get(v, -1) for v in ids], np.int64)
        fv_ids, vectors = read_fisher(ctx)
        where = {v: i for i, v in enumerate(fv_ids)}
        fisher = np.zeros((len(ids), vectors.shape[1]), np.float32)
        for i, v in enumerate(ids):
            if v in where:
                fisher[i] = vectors[where[v]]
        tune_k = tune_k or int(prior.max()) + 1 or DEFAULT_K
    names = sorted({str(r["label"]) for r in rows if r.get("label")})
    labels = [names.index(str(r["label"])) if r.get("label") else -1 for r in rows]
    recipe = SimpleNamespace(balance_tau=0.0, clips_per_video=c.clips_per_video, num_frames=c.num_frames, size=c.size,
                             augment=c.augment, clip_input=c.clip_input)
    instances = [{**r, "label": str(r["video_id"])} for r in rows]  # the video is the class
    draws = cache_frames(draw_spec(instances, ids, recipe, cfg.train.seed))
    stages = [(1, c.ir_epochs), (2, c.la_epochs), (3, c.epochs - c.ir_epochs - c.la_epochs)]
    ctx.say(f"pretraining {c.model} on {len(ids)} videos (labels unused): "
            + ", ".join(f"{STAGE_NAMES[s]} {n} epochs" for s, n in stages if n)
            + (f"; tuning k={tune_k}" if stages[2][1] else ""))
    loop_config = {"pretrain": c, "model_args": args, "instances": len(ids), "prior": prior.tolist(),
                   "fisher": fisher, "labels": labels, "tune_k": int(tune_k or DEFAULT_K), "draws": draws}

    def keep(state: dict) -> dict:
        return {"model_name": "video_pretrained", "model_args": args, "model": state["model"], "bank": state["bank"],
                "video_ids": ids, "clip_input": c.clip_input, "epoch": state["epoch"]}

    def finish(result: Any, state: dict) -> dict:
        nmi = [h["bank_nmi"] for h in result.history if "bank_nmi" in h]
        return {"videos": len(ids), "bank_nmi": nmi[-1] if nmi else None,
                "stages": {STAGE_NAMES[s]: n for s, n in stages}}

    def register_it(path: Path, tags: dict) -> str | None:
        return register_pretrained(ctx, path, tags)

    return train_stage(
        ctx, _method(), loop=pretrain_loop, loop_config=loop_config, name=run_name or f"pretrain-{c.model}-{ctx.dataset.name}",
        run_name=run_name or f"pretrain-{c.model}", checkpoint_file=CHECKPOINT, checkpoint=keep,
        history_file="history_pretrain.json",
        curves={"loss_curves.png": ("pretraining loss (stage objective, instance objective)", ("loss", "ir_loss")),
                "bank_nmi.png": ("k-means of the memory bank vs labels (NMI)", ("bank_nmi",))},
        tags={"actionops.stage": "train_pretrain", "actionops.model": c.model},
        params={"videos": len(ids), "tune_k": int(tune_k or DEFAULT_K)},
        datasets={}, datasets_to_split=[], streams_data=True, finish=finish,
        register=register_it if register else None,
        version_tags={"model": c.model, "clip_input": c.clip_input, "num_frames": str(c.num_frames), "size": str(c.size)},
        parent_run_id=parent_run_id, callbacks=callbacks)


def register_pretrained(ctx: Context, checkpoint: Path, version_tags: dict) -> str | None:
    """Log the backbone as an MLflow pyfunc model (input: clips, output: embeddings) and register it
    as pretrain.registered_model with alias candidate."""
    import torch

    from actionops.pipelines.spine import register_checkpoint

    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    args = state["model_args"]
    example = {"clip": np.zeros((2, args["num_frames"], 3, args["image_size"], args["image_size"]), np.float32)}
    return register_checkpoint(checkpoint, example, ctx.cfg.pretrain.registered_model, version_tags)


# ----------------------------------------------------------------------------- features
class Embedder:
    """Ray Data batch-inference UDF: clips decoded in the actor, then backbone features and embeddings."""

    def __init__(self, state: Any, make_clip: Any, threads: int | None = None) -> None:
        import ray
        import torch

        from actionops.models.checkpoint import build_from_checkpoint

        if isinstance(state, ray.ObjectRef):
            state = ray.get(state)
        if threads:
            torch.set_num_threads(threads)
        self.model = build_from_checkpoint(state)
        self.make_clip = make_clip

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        keys = list(batch)
        clips = np.stack([self.make_clip({k: batch[k][i] for k in keys}) for i in range(len(batch[keys[0]]))])
        with torch.no_grad():
            x = torch.from_numpy(clips)
            features = self.model.features(x)
            embedding = torch.nn.functional.normalize(self.model.head(features), dim=1)
        return {**batch, "features": features.numpy().astype(np.float32), "embedding": embedding.numpy().astype(np.float32)}


def video_features(state: dict, rows: list[dict], clips: int, batch_size: int = 8) -> dict[str, dict[str, np.ndarray]]:
    """video_id -> {"features": backbone vector, "embedding": projection}, each averaged over `clips`
    deterministic clips of the video (a Ray Data actor pool)."""
    import os

    import ray

    from actionops.pipelines.clip_classification.data import eval_clip_maker
    from actionops.platform.data import _from_items

    args = state["model_args"]
    make = eval_clip_maker(args["num_frames"], args["image_size"], clips, state.get("clip_input", "rgb"))
    items = [{"video_id": str(r["video_id"]), "path": str(r["path"]), "frames": int(r["frames"]), "k": k}
             for r in rows for k in range(clips)]
    if not items:
        return {}
    cpus = int(ray.available_resources().get("CPU", os.cpu_count() or 1)) or 1
    actors = max(1, min(2, cpus))
    out: dict[str, dict[str, list]] = {}
    ds = _from_items(items, rows_per_block=max(1, batch_size // 2)).map_batches(
        Embedder, fn_constructor_kwargs={"state": ray.put(state), "make_clip": make,
                                         "threads": max(1, (os.cpu_count() or 1) // actors)},
        batch_size=batch_size, concurrency=actors, batch_format="numpy")
    for row in ds.iter_rows():
        slot = out.setdefault(str(row["video_id"]), {"features": [], "embedding": []})
        slot["features"].append(np.asarray(row["features"]))
        slot["embedding"].append(np.asarray(row["embedding"]))
    return {v: {k: np.mean(np.stack(x), axis=0) for k, x in d.items()} for v, d in out.items()}


CALIBRATION_VIDEOS = 256


def random_init_state(state: dict, seed: int, rows: list[dict], batch_size: int = 8) -> dict:
    """The same architecture from random initialisation (the baseline of `evaluate pretrain`), its
    BatchNorm statistics measured on the middle clip of (up to CALIBRATION_VIDEOS of) `rows`: with
    the initial statistics (mean 0, variance 1) a deep random network's features degenerate, and
    the comparison would favour the pretrained weights for their statistics alone."""
    import torch

    from actionops.models import create_model
    from actionops.pipelines.clip_classification.data import eval_clip_maker

    torch.manual_seed(seed)
    model = create_model(state["model_name"], **state["model_args"])
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # a cumulative average over every batch
    args = state["model_args"]
    make = eval_clip_maker(args["num_frames"], args["image_size"], 1, state.get("clip_input", "rgb"))
    sample = rows[:CALIBRATION_VIDEOS]
    model.train()
    with torch.no_grad():
        for start in range(0, len(sample), batch_size):
            chunk = sample[start:start + batch_size]
            if len(chunk) < 2:
                continue
            model(torch.from_numpy(np.stack([make({"path": r["path"], "frames": r["frames"], "k": 0}) for r in chunk])))
    return {**state, "model": model.state_dict()}


# ----------------------------------------------------------------------------- evaluate pretrain
def eval_splits(ctx: Context):
    """(train rows, test rows, class names) for the transfer scores; val joins train."""
    from actionops.pipelines.clip_classification.data import make_splits

    _, rows = ctx.rows()
    splits = make_splits(rows, val_fraction=0.0, test_fraction=ctx.cfg.pretrain.test_fraction, dataset=ctx.dataset)
    return splits.train + splits.val, splits.test, splits.labels


def knn_predict(gallery: np.ndarray, gallery_labels: list[str], query: np.ndarray, k: int,
                leave_one_out: bool = False) -> list[str]:
    """Majority label of the k nearest gallery rows by cosine similarity (ties: the nearest's label)."""
    def unit(x):
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)

    sims = unit(query) @ unit(gallery).T
    if leave_one_out:
        np.fill_diagonal(sims, -np.inf)
    out = []
    for row in sims:
        near = np.argsort(-row, kind="stable")[:min(k, len(gallery) - int(leave_one_out))]
        votes: dict[str, float] = {}
        for rank, j in enumerate(near):
            votes[gallery_labels[j]] = votes.get(gallery_labels[j], 0.0) + 1.0 + 1e-3 / (rank + 1)
        out.append(max(votes, key=votes.get))
    return out


def linear_probe(train_x: np.ndarray, train_y: list[str], test_x: np.ndarray) -> list[str]:
    """Logistic regression on standardised features (a linear probe of a frozen backbone)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000, C=1.0))
    return list(probe.fit(train_x, train_y).predict(test_x))


def transfer_scores(feats: dict[str, dict[str, np.ndarray]], gallery: list[dict], query: list[dict], k: int,
                    same: bool) -> dict:
    g = np.stack([feats[str(r["video_id"])]["features"] for r in gallery])
    gl = [str(r["label"]) for r in gallery]
    q = np.stack([feats[str(r["video_id"])]["features"] for r in query])
    ql = [str(r["label"]) for r in query]
    knn = knn_predict(g, gl, q, k, leave_one_out=same)
    linear = linear_probe(g, gl, q)
    return {"knn_accuracy": float(np.mean([a == b for a, b in zip(knn, ql)])),
            "linear_accuracy": float(np.mean([a == b for a, b in zip(linear, ql)]))}


def load_pretrained_state(ctx_out: Path, model: str | None) -> tuple[dict, str]:
    from actionops.pipelines.spine import load_model_state

    return load_model_state(model, Path(ctx_out) / CHECKPOINT, NO_MODEL_HINT, _method())


def evaluate_pretrain(ctx: Context, model: str | None = None, split: str = "test") -> dict:
    """Transfer of the frozen backbone to the dataset's labels: k-NN (cosine, pretrain.knn_k, on the
    train split's features; leave-one-out when scoring the train split itself) and linear-probe
    accuracy on `split`, for the pretrained weights and for the same architecture from random
    initialisation; t-SNE of the features; metrics_pretrain.json + MLflow."""
    from actionops.evaluation.plots import embedding_figure
    from actionops.pipelines.clip_classification.stages import chance_accuracy
    from actionops.pipelines.spine import evaluate_stage

    c = ctx.cfg.pretrain
    state, source = load_pretrained_state(ctx.out, model)
    train, test, names = eval_splits(ctx)
    query = {"train": train, "test": test}.get(split)
    if query is None:
        raise ActionopsError(f"unknown split {split!r}", "use --split train or test (val is part of train here)")
    if not query:
        raise DataError(f"the {split} split of {ctx.dataset} is empty")
    same = split == "train"
    needed = {str(r["video_id"]): r for r in train + query}
    rows = list(needed.values())
    pre = video_features(state, rows, c.eval_clips, c.batch_size)
    rand = video_features(random_init_state(state, ctx.cfg.train.seed, rows, c.batch_size), rows, c.eval_clips,
                          c.batch_size)
    scores = transfer_scores(pre, train, query, c.knn_k, same)
    baseline = transfer_scores(rand, train, query, c.knn_k, same)
    truth = [str(r["label"]) for r in query]
    metrics = {"split": split, "source": source, "videos": len(query), "gallery": len(train), "labels": names,
               "knn_k": c.knn_k, **scores, "random_knn_accuracy": baseline["knn_accuracy"],
               "random_linear_accuracy": baseline["linear_accuracy"], "chance": chance_accuracy(truth),
               "leave_one_out": same}
    headline = {f"{split}_knn_accuracy": scores["knn_accuracy"], f"{split}_linear_accuracy": scores["linear_accuracy"],
                f"{split}_random_knn_accuracy": baseline["knn_accuracy"],
                f"{split}_random_linear_accuracy": baseline["linear_accuracy"]}
    ids = [str(r["video_id"]) for r in rows]
    figure = embedding_figure(np.stack([pre[v]["features"] for v in ids]), {"label": [str(needed[v]["label"]) for v in ids]},
                              seed=ctx.cfg.train.seed)
    return evaluate_stage(ctx, _method(), split=split, metrics=metrics, headline=headline, source=source,
                          metrics_file="metrics_pretrain.json", figures={"figures/features_tsne.png": figure},
                          eval_tags={"knn_accuracy": scores["knn_accuracy"], "linear_accuracy": scores["linear_accuracy"]},
                          primary="knn_accuracy")


# ----------------------------------------------------------------------------- predict
def predict_test(ctx: Context, model: str | None = None) -> dict:
    """Embeddings and backbone features of the test split's videos (every video when the dataset has
    no labels): predictions/embeddings.npz."""
    c = ctx.cfg.pretrain
    state, source = load_pretrained_state(ctx.out, model)
    try:
        rows = eval_splits(ctx)[1]
    except DataError:  # no labels: every video
        rows = video_rows(ctx)
    feats = video_features(state, rows, c.eval_clips, c.batch_size)
    ids = sorted(feats)
    out = Path(ctx.out) / "predictions" / "embeddings.npz"
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, video_id=np.array(ids), embedding=np.stack([feats[v]["embedding"] for v in ids]),
             features=np.stack([feats[v]["features"] for v in ids]))
    return {"videos": len(ids), "source": source, "outputs": str(out)}
