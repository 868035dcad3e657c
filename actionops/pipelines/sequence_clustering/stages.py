"""Stages of sequence clustering (methods.md §4): train the seq2seq, embed windows, cluster them,
cut recordings at their boundaries, score against the truth."""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from actionops.errors import ActionopsError, DataError
from actionops.pipelines.context import Context

CHECKPOINT = "seq2seq.pt"
NO_MODEL_HINT = "train one with `actionops train sequences DATASET` or pass --model models:/sequence-seq2seq@champion"


def _method():
    from actionops.pipelines.method import get_method

    return get_method("sequence-clustering")


# ----------------------------------------------------------------------------- stage: train
def train_sequences(ctx: Context, *, parent_run_id: str | None = None, register: bool = True,
                    callbacks: list | None = None, run_name: str | None = None) -> dict:
    """Fit the normaliser, cut windows on Ray Data, train the GRU seq2seq on Ray Train; write
    seq2seq.pt (weights, normaliser, window spec) and register it as sequence-seq2seq@candidate."""
    from actionops.models import create_model
    from actionops.pipelines.sequence_clustering.data import fit_normaliser, sequence_rows, spec_of, window_dataset
    from actionops.pipelines.sequence_clustering.loops import seq2seq_loop
    from actionops.pipelines.spine import train_stage

    c = ctx.cfg.sequences
    rows = sequence_rows(ctx, c.train_split)
    spec = spec_of(c)
    normaliser = fit_normaliser(rows, c)
    ds = window_dataset(rows, spec, normaliser, ctx.say).select_columns(["window"]).materialize()
    count = ds.count()
    args = {"dims": len(normaliser.keep), "hidden": int(c.hidden), "target": int(c.target_len), "decoder": c.decoder,
            "residual": bool(c.residual)}
    create_model("seq2seq_gru", **args)  # bad arguments fail here, on the driver
    ctx.say(f"seq2seq: {count} windows of {spec['source_len']}+{spec['target_len']} frames from {len(rows)} sequences, "
            f"{args['dims']} of {normaliser.dims} channels (constant ones dropped), decoder {c.decoder}")

    def keep(state: dict) -> dict:
        return {"model_name": "seq2seq_gru", "model_args": args, "model": state["model"], "epoch": state["epoch"],
                "normaliser": normaliser.to_dict(), "windows": spec}

    def register_best(path: Path, tags: dict) -> str | None:
        return register_sequences(ctx, path, {**tags, "decoder": c.decoder, "hidden": str(c.hidden)})

    return train_stage(
        ctx, _method(), loop=seq2seq_loop, loop_config={"sequences": c, "model_name": "seq2seq_gru", "model_args": args},
        name=run_name or f"seq2seq-{Path(ctx.out).name}", run_name=run_name or f"train-seq2seq-{c.decoder}",
        checkpoint_file=CHECKPOINT, checkpoint=keep, history_file="history_seq2seq.json",
        curves={"loss_curve.png": ("seq2seq prediction loss (MSE)", ("loss",))},
        tags={"actionops.stage": "train_sequences"}, params={"windows": count, "channels": args["dims"]},
        datasets={"train": ds}, finish=lambda result, state: {"windows": count, "channels": args["dims"]},
        register=register_best if register else None, version_tags={"model": "seq2seq_gru"},
        parent_run_id=parent_run_id, callbacks=callbacks)


def register_sequences(ctx: Context, checkpoint: Path, tags: dict) -> str | None:
    """Log a seq2seq checkpoint as an MLflow model (source windows in, predicted frames out) and
    register it as `sequences.registered_model` with alias candidate."""
    import torch

    from actionops.pipelines.spine import register_checkpoint

    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    example = {"source": np.zeros((2, int(state["windows"]["source_len"]), int(state["model_args"]["dims"])), np.float32)}
    return register_checkpoint(checkpoint, example, ctx.cfg.sequences.registered_model, tags)


def prepare_tune(ctx: Context) -> list[Path]:
    """Before a campaign: index the dataset once (trials read the manifest in parallel)."""
    from actionops.pipelines.sequence_clustering.data import sequence_rows

    sequence_rows(ctx)
    return []


# ----------------------------------------------------------------------------- embeddings
class _Embedder:
    """Ray Data UDF: the model built once per actor; windows -> encoder / decoder states and the
    prediction error of each window."""

    def __init__(self, state: Any) -> None:
        import ray
        import torch

        from actionops.models.checkpoint import build_from_checkpoint

        if isinstance(state, ray.ObjectRef):  # passed through the object store (one copy for every actor)
            state = ray.get(state)
        torch.set_num_threads(1)
        self.model = build_from_checkpoint(state)
        self.source_len = int(state["windows"]["source_len"])

    def __call__(self, batch: dict) -> dict:
        import torch

        w = torch.from_numpy(np.asarray(batch["window"], np.float32))
        out = self.model.embed(w[:, :self.source_len])
        error = ((out["predicted"] - w[:, self.source_len:]) ** 2).mean(dim=(1, 2))
        return {"video_id": batch["video_id"], "start": batch["start"], "frames": batch["frames"],
                "encoder": out["encoder"].numpy(), "decoder": out["decoder"].numpy(), "error": error.numpy()}


def embed_rows(rows: list[dict], state: dict, say: Any = None) -> dict[str, np.ndarray]:
    """Embeddings of every window of `rows` (Ray Data batch inference), in row and window order."""
    import ray

    from actionops.pipelines.sequence_clustering.data import checkpoint_spec, window_dataset

    spec, normaliser = checkpoint_spec(state)
    ds = window_dataset(rows, spec, normaliser, say)
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)) - 1)
    with warnings.catch_warnings():  # max_restarts travels as a ray_remote_arg (deprecation notice)
        warnings.simplefilter("ignore")
        out = ds.map_batches(_Embedder, fn_constructor_kwargs={"state": ray.put(state)}, batch_size=64,
                             batch_format="numpy", concurrency=(1, min(2, cpus)), num_cpus=1, max_restarts=0)
    parts: dict[str, list] = {k: [] for k in ("video_id", "start", "frames", "encoder", "decoder", "error")}
    for batch in out.iter_batches(batch_size=None, batch_format="numpy"):
        for key in parts:
            parts[key].append(np.asarray(batch[key]))
    got = {k: np.concatenate(v) if v else np.zeros(0) for k, v in parts.items()}
    order = np.lexsort((got["start"], [_row_order(rows)[str(v)] for v in got["video_id"]]))
    got = {k: v[order] for k, v in got.items()}
    got["video_id"] = got["video_id"].astype(str)
    got["both"] = np.concatenate([got["encoder"], got["decoder"]], 1) if len(got["encoder"]) else np.zeros((0, 0))
    return got


def _row_order(rows: list[dict]) -> dict[str, int]:
    return {str(r["video_id"]): i for i, r in enumerate(rows)}


# ----------------------------------------------------------------------------- clustering
def cluster_embeddings(x: np.ndarray, k: int, c: Any, seed: int = 0) -> np.ndarray:
    """Cluster labels of the rows of `x`: agglomerative (cosine; ward on L2-normalised rows) or
    k-means on faiss (L2-normalised rows, 5 restarts)."""
    x = np.asarray(x, np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    if c.algorithm == "kmeans":
        import faiss

        km = faiss.Kmeans(x.shape[1], int(k), niter=20, nredo=5, seed=int(seed) + 1, verbose=False)
        km.train(x.astype(np.float32))
        return km.index.search(x.astype(np.float32), 1)[1][:, 0].astype(int)
    from sklearn.cluster import AgglomerativeClustering

    metric = "euclidean" if c.linkage == "ward" else "cosine"
    return AgglomerativeClustering(n_clusters=int(k), metric=metric, linkage=c.linkage).fit_predict(x).astype(int)


def choose_k(x: np.ndarray, c: Any, seed: int = 0) -> tuple[int, dict[int, float]]:
    """The number of clusters with the best silhouette (cosine) in [2, max_clusters]."""
    from sklearn.metrics import silhouette_score

    scores = {}
    for k in range(2, min(int(c.max_clusters), len(x) - 1) + 1):
        labels = cluster_embeddings(x, k, c, seed)
        if len(set(labels)) > 1:
            scores[k] = float(silhouette_score(x, labels, metric="cosine"))
    if not scores:
        raise DataError(f"{len(x)} windows are too few to choose a number of clusters", "pass --n-clusters")
    return max(scores, key=scores.get), scores


def mode_filter(labels: np.ndarray, radius: int) -> np.ndarray:
    """Each label replaced by the most frequent one within `radius` positions (ties: the current)."""
    if radius <= 0 or len(labels) < 3:
        return np.asarray(labels)
    out = np.asarray(labels).copy()
    for i in range(len(labels)):
        window = labels[max(0, i - radius): i + radius + 1]
        values, counts = np.unique(window, return_counts=True)
        best = values[counts == counts.max()]
        out[i] = labels[i] if labels[i] in best else best[0]
    return out


def per_frame(emb: dict, clusters: np.ndarray, rows: list[dict], spec: dict, radius: int) -> dict[str, np.ndarray]:
    """Cluster of every (subsampled) frame of every sequence: the cluster of the window whose
    source part is centred nearest, after a mode filter over neighbouring windows."""
    from actionops.pipelines.sequence_clustering.data import frames_to_windows

    out = {}
    for r in rows:
        vid = str(r["video_id"])
        mask = emb["video_id"] == vid
        if not mask.any():
            continue
        labels = mode_filter(clusters[mask], radius)
        n = int(emb["frames"][mask][0])
        out[vid] = labels[frames_to_windows(n, emb["start"][mask], int(spec["source_len"]))]
    return out


def remove_short(labels: np.ndarray, min_len: int) -> np.ndarray:
    """Runs shorter than `min_len` frames take the label of the run before them (the first: after)."""
    labels = np.asarray(labels).copy()
    if min_len <= 1 or len(labels) == 0:
        return labels
    changed = True
    while changed:
        changed = False
        starts = [0] + [i for i in range(1, len(labels)) if labels[i] != labels[i - 1]] + [len(labels)]
        for a, b in zip(starts[:-1], starts[1:]):
            if b - a < min_len and len(starts) > 2:
                labels[a:b] = labels[a - 1] if a > 0 else labels[b]
                changed = True
                break
    return labels


def load_model(ctx: Context, model: str | None) -> tuple[dict, str]:
    from actionops.pipelines.spine import load_model_state

    state, source = load_model_state(model, Path(ctx.out) / CHECKPOINT, NO_MODEL_HINT, _method())
    if state.get("model_name") != "seq2seq_gru":
        raise ActionopsError(f"{source} is a {state.get('model_name')}, not a sequence model", NO_MODEL_HINT)
    return state, source


def cluster_split(ctx: Context, model: str | None, split: str | None, n_clusters: int | None = None,
                  emb: dict | None = None) -> dict:
    """Embed and cluster the windows of `split`; per-frame labels; scores when the truth is known.
    Returns the arrays and the report (no files written). `emb`: the embeddings of an earlier call
    on the same model and split (clustering them again with other settings, without re-embedding)."""
    from actionops.evaluation.clustering import clustering_report
    from actionops.pipelines.sequence_clustering.data import frame_truth, sequence_rows

    c = ctx.cfg.seqcluster
    state, source = load_model(ctx, model)
    spec = dict(state["windows"])
    rows = sequence_rows(ctx, split)
    emb = emb if emb is not None else embed_rows(rows, state, ctx.say)
    x = emb[c.embedding]
    truths = {str(r["video_id"]): frame_truth(r, spec["subsample"]) for r in rows}
    known = sorted({t for labels in truths.values() if labels for t in labels})
    k, silhouettes = n_clusters or c.n_clusters, {}
    criterion = "given"
    if k is None and known:
        k, criterion = len(known), "number of true labels"
    elif k is None:
        k, silhouettes = choose_k(x, c, ctx.cfg.train.seed)
        criterion = "best silhouette"
    if len(x) <= k:
        raise DataError(f"{len(x)} windows cannot make {k} clusters", "lower --n-clusters or sequences.stride")
    clusters = cluster_embeddings(x, k, c, ctx.cfg.train.seed)
    frames = per_frame(emb, clusters, rows, spec, c.smooth)
    truth_flat, pred_flat = [], []
    for vid, labels in frames.items():
        t = truths.get(vid)
        if t:
            n = min(len(t), len(labels))
            truth_flat += list(t[:n])
            pred_flat += [str(v) for v in labels[:n]]
    report = clustering_report(truth_flat, pred_flat) if truth_flat else None
    return {"emb": emb, "clusters": clusters, "frames": frames, "truths": truths, "rows": rows, "k": int(k),
            "criterion": criterion, "silhouettes": silhouettes, "report": report, "source": source, "spec": spec,
            "state": state}


def _save_predictions(ctx: Context, result: dict, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    emb = result["emb"]
    np.savez(folder / "windows.npz", video_id=emb["video_id"], start=emb["start"], cluster=result["clusters"],
             encoder=emb["encoder"], decoder=emb["decoder"], error=emb["error"])
    every = int(result["spec"]["subsample"])
    for vid, labels in result["frames"].items():
        truth = result["truths"].get(vid) or []
        lines = ["frame,cluster,truth"] + [f"{i * every},{int(v)},{truth[i] if i < len(truth) else ''}"
                                           for i, v in enumerate(labels)]
        target = folder / "labels" / f"{vid.replace('/', '__').replace('#', '_p')}.csv"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("\n".join(lines) + "\n")
    return folder / "windows.npz"


def predict(ctx: Context, model: str | None = None, split: str | None = "test", n_clusters: int | None = None) -> dict:
    """Cluster the windows of `split` (per-window clusters, embeddings, per-frame label CSVs)."""
    result = cluster_split(ctx, model, split, n_clusters)
    path = _save_predictions(ctx, result, Path(ctx.out) / "predictions" / (split or "all"))
    return {"outputs": str(path), "model": result["source"], "clusters": result["k"], "criterion": result["criterion"],
            "windows": int(len(result["clusters"]))}


def predict_test(ctx: Context, model: str | None = None) -> dict:
    return predict(ctx, model, "test")


def timeline_figure(frames: dict[str, np.ndarray], truths: dict[str, list | None], every: int, limit: int = 6):
    """Cluster labels over time against the truth, one pair of strips per sequence."""
    from actionops.evaluation.plots import _plt

    plt = _plt()
    items = [(vid, labels) for vid, labels in frames.items()][:limit]
    fig, axes = plt.subplots(len(items), 1, figsize=(10, 1.1 * len(items) + 0.6), squeeze=False)
    for ax, (vid, labels) in zip(axes[:, 0], items):
        truth = truths.get(vid) or []
        names = {name: i for i, name in enumerate(sorted(set(truth)))}
        strip = [np.asarray(labels, float)]
        if truth:
            strip.append(np.asarray([names[t] for t in truth[:len(labels)]] + [np.nan] * max(0, len(labels) - len(truth)), float))
        ax.imshow(np.vstack(strip), aspect="auto", cmap="tab10", interpolation="nearest",
                  extent=(0, len(labels) * every, len(strip), 0))
        ax.set_yticks([0.5, 1.5][:len(strip)], ["cluster", "truth"][:len(strip)], fontsize=7)
        ax.set_title(vid, fontsize=8)
    axes[-1, 0].set_xlabel("frame")
    fig.tight_layout()
    return fig


def evaluate(ctx: Context, model: str | None = None, split: str | None = "test", n_clusters: int | None = None) -> dict:
    """Cluster `split` and score it against its labels / truth files: ARI, AMI, V-measure
    (homogeneity, completeness), Hungarian accuracy per frame; metrics_sequences.json, label CSVs,
    embedding scatters, contingency table and a timeline in MLflow."""
    from actionops.evaluation.clustering import report_figures
    from actionops.pipelines.spine import evaluate_stage

    result = cluster_split(ctx, model, split, n_clusters)
    report = result["report"]
    if report is None:
        raise DataError(f"the {split or 'whole'} split of {ctx.dataset} has no labels or truth files to score against",
                        "cluster it with `actionops cluster sequences` (predictions only)")
    _save_predictions(ctx, result, Path(ctx.out) / "predictions" / (split or "all"))
    scores = report["scores"]
    metrics = {**{k: float(v) for k, v in scores.items()}, "chance": report["chance"], "n_clusters": result["k"],
               "criterion": result["criterion"], "silhouettes": result["silhouettes"], "split": split,
               "windows": int(len(result["clusters"])), "frames": report["items"], "model": result["source"],
               "embedding": ctx.cfg.seqcluster.embedding, "algorithm": ctx.cfg.seqcluster.algorithm,
               "per_class": report["per_class"], "hungarian_mapping": report["hungarian_mapping"]}
    emb = result["emb"]
    window_truth = [(result["truths"].get(str(v)) or ["?"])[min(int(s) + result["spec"]["source_len"] // 2,
                                                                len(result["truths"].get(str(v)) or ["?"]) - 1)]
                    for v, s in zip(emb["video_id"], emb["start"])]
    figures = report_figures(report, f"sequences ({split or 'all'})", embeddings=emb[ctx.cfg.seqcluster.embedding],
                             colourings={"cluster": [str(v) for v in result["clusters"]], "truth": window_truth},
                             seed=ctx.cfg.train.seed)
    figures["figures/timeline.png"] = timeline_figure(result["frames"], result["truths"], int(result["spec"]["subsample"]))
    headline = {k: metrics[k] for k in ("ari", "ami", "v_measure", "homogeneity", "completeness", "hungarian_accuracy")}
    return evaluate_stage(ctx, _method(), split=split or "all", metrics=metrics, headline=headline,
                          source=result["source"], metrics_file="metrics_sequences.json", figures=figures,
                          eval_tags=headline, primary="ari")


# ----------------------------------------------------------------------------- segmentation
def _boundaries(labels: np.ndarray, every: int) -> list[int]:
    from actionops.evaluation.segmentation import boundaries_from_labels

    return [b * every for b in boundaries_from_labels(list(labels))]


# A small grid: with ten CMU subject-86 trials, leave-one-out over 216 settings chose worse (mean
# boundary F1 0.55) than over these 36 (0.59); the shortest segment stays as configured.
WIDTHS = (12, 24, 36)  # windows each side of the change curve
SHARES = (0.4, 0.5, 0.6, 0.7)  # of a recording's highest peak
EDGES = (0, 200, 400)  # frames at each end of a recording without boundaries
SETTING = ("change_width", "peak_share", "min_segment", "edge")


def segment_grid(c: Any, scored: int, cue: str) -> list[tuple[int, float, int, int]]:
    """(change_width, peak_share, min_segment, edge) settings `segment` tries: the grid when it may
    select (`seqcluster.select` and at least two recordings with truth), else the configured one."""
    configured = (int(c.change_width), float(c.peak_share), int(c.min_segment), int(c.edge))
    if not (c.select and scored >= 2):
        return [configured]
    if cue == "labels":
        return [(*configured[:2], m, e) for m in (0, 50, 100, 200, 400) for e in EDGES]
    return [(w, s, configured[2], e) for w in WIDTHS for s in SHARES for e in EDGES]


def cue_boundaries(cue: str, rec: dict, spec: dict, setting: tuple[int, float, int, int], labels: np.ndarray | None = None) -> list[int]:
    """Boundary frames (of the original recording) of one recording's windows under one setting.

    embedding: peaks of the cosine change between the mean states of the `width` windows before
    and after each window (`evaluation.segmentation.change_curve`), placed between the two windows'
    source centres. error: peaks of the prediction error averaged over `width` windows, placed at the
    peak window's first frame (the reference's cue: windows whose prediction error jumps; on the
    subject-86 trials the start scored best of start / source centre / source end / target centre). labels: changes of the per-frame cluster labels after runs shorter than
    `min_segment` frames are merged. Peaks lower than `share` of the recording's highest and closer
    than `min_segment` frames are dropped, and so are boundaries within `edge` frames of either end
    (recordings that start or end in a calibration pose). The shortest segment is not on the grid."""
    bounds = _cue_boundaries(cue, rec, spec, setting, labels)
    last = int(rec["frames"]) * int(spec["subsample"]) - setting[3]
    return [b for b in bounds if setting[3] <= b <= last]


def _cue_boundaries(cue: str, rec: dict, spec: dict, setting: tuple, labels: np.ndarray | None) -> list[int]:
    from actionops.evaluation.segmentation import change_curve, curve_peaks

    every, stride = int(spec["subsample"]), int(spec["stride"])
    source = int(spec["source_len"])
    width, share, min_segment, _ = setting
    if cue == "labels":
        return _boundaries(remove_short(labels, max(1, min_segment // every)), every)
    starts = np.asarray(rec["start"], np.float64)
    if len(starts) < 2:
        return []
    gap = max(1, int(round(min_segment / (every * stride))))
    if cue == "embedding":
        peaks = curve_peaks(change_curve(rec["x"], width), share, gap)
        return [int(round(((starts[p - 1] + starts[p]) / 2 + source / 2) * every)) for p in peaks if p > 0]
    error = np.asarray(rec["error"], np.float64)
    smooth = np.convolve(error, np.ones(width) / width, mode="same")
    peaks = curve_peaks(smooth - smooth.min(), share, gap)
    return [int(round(starts[p] * every)) for p in peaks]


def choose_boundaries(recs: dict[str, dict], spec: dict, c: Any, cue: str) -> tuple[dict, dict, str, int]:
    """The boundaries of every recording (`recs`: id -> {x, start, error, frames, segments, labels})
    under `cue`: with the grid (`segment_grid`), each recording scored with truth gets the setting
    with the best mean boundary F1 on the other scored recordings, one without truth the setting
    best on all of them. Returns (setting per recording, boundaries per recording, how settings
    were selected, grid size)."""
    from actionops.evaluation.segmentation import boundary_scores, leave_one_out

    scored = [v for v, rec in recs.items() if rec.get("segments")]
    grid = segment_grid(c, len(scored), cue)
    found = {s: {v: cue_boundaries(cue, rec, spec, s, rec.get("labels")) for v, rec in recs.items()} for s in grid}
    if len(grid) == 1:
        return {v: grid[0] for v in recs}, found[grid[0]], "configured", 1
    table = {s: {v: boundary_scores(found[s][v], recs[v]["segments"])["boundary_f1"] for v in scored} for s in grid}
    held_out = leave_one_out(table)
    overall = max(grid, key=lambda s: (np.mean(list(table[s].values())), -grid.index(s)))
    chosen = {v: held_out.get(v, overall) for v in recs}
    return chosen, {v: found[chosen[v]][v] for v in recs}, "leave-one-recording-out", len(grid)


def _segment_labels(rec: dict, boundaries: list[int], k: int, every: int, source: int) -> np.ndarray:
    """Per (subsampled) frame: the cluster of its segment, segments clustered by their windows' mean state."""
    n = int(rec["frames"])
    edges = [0, *sorted({min(n, max(0, b // every)) for b in boundaries}), n]
    centres = np.asarray(rec["start"]) + source / 2.0
    means, spans = [], []
    for a, b in zip(edges[:-1], edges[1:]):
        if b <= a:
            continue
        inside = (centres >= a) & (centres < b)
        if not inside.any():  # a segment shorter than the window stride: its nearest window
            inside = np.abs(centres - (a + b) / 2) == np.abs(centres - (a + b) / 2).min()
        means.append(rec["x"][inside].mean(0))
        spans.append((a, b))
    labels = np.zeros(n, int)
    if len(means) > 1 and k > 1:
        from sklearn.cluster import AgglomerativeClustering

        m = np.asarray(means)
        groups = AgglomerativeClustering(n_clusters=min(k, len(m)), metric="cosine", linkage="average").fit_predict(m)
        for (a, b), g in zip(spans, groups):
            labels[a:b] = g
    return labels


def segment(ctx: Context, model: str | None = None, split: str | None = None, n_clusters: int | None = None) -> dict:
    """Cut every recording (of `split`, default all) at its action boundaries (`seqcluster.boundary_cue`,
    see `cue_boundaries`), label its segments by clustering them, and score recordings with truth
    files: boundary P/R/F1 (a boundary counts inside the annotated [earliest, latest] window) and
    frame accuracy after Hungarian matching. With truth on at least two recordings and
    `seqcluster.select`, the cue's width / peak share / edge are chosen for each recording as the
    grid setting with the best mean boundary F1 on the OTHER recordings (never tuned on the scored
    one). segments.json, per-frame label CSVs, metrics_segment.json, and an
    MLflow run with a timeline and the change curves."""
    from actionops.evaluation.segmentation import boundary_scores, frame_accuracy
    from actionops.pipelines.sequence_clustering.data import frame_truth, sequence_rows, truth_segments
    from actionops.pipelines.spine import evaluate_stage

    c = ctx.cfg.seqcluster
    state, source = load_model(ctx, model)
    spec = dict(state["windows"])
    every, source_len = int(spec["subsample"]), int(spec["source_len"])
    rows = sequence_rows(ctx, split)
    emb = embed_rows(rows, state, ctx.say)
    recs: dict[str, dict] = {}
    for r in rows:
        vid = str(r["video_id"])
        mask = emb["video_id"] == vid
        if not mask.any():
            continue
        recs[vid] = {"x": emb[c.segment_embedding][mask], "start": emb["start"][mask], "error": emb["error"][mask],
                     "frames": int(emb["frames"][mask][0]), "segments": truth_segments(r), "truth": frame_truth(r, every)}
    if not recs:
        raise DataError(f"no recording of {ctx.dataset} is long enough for one window", "lower sequences.source_len / target_len")
    for vid, rec in recs.items():  # the number of clusters of each recording
        known = sorted(set(rec["truth"] or []))
        if n_clusters or c.n_clusters:
            rec["k"], rec["criterion"] = int(n_clusters or c.n_clusters), "given"
        elif known:
            rec["k"], rec["criterion"] = len(known), "number of true labels"
        elif len(rec["x"]) > 3:
            limited = dataclasses.replace(c, max_clusters=min(int(c.max_clusters), len(rec["x"]) - 1))
            rec["k"], rec["criterion"] = choose_k(rec["x"], limited, ctx.cfg.train.seed)[0], "best silhouette"
        else:
            rec["k"], rec["criterion"] = 1, "too short to cluster"
        if c.boundary_cue == "labels":
            clusters = cluster_embeddings(rec["x"], min(rec["k"], len(rec["x"]) - 1), c, ctx.cfg.train.seed) if rec["k"] > 1 and len(rec["x"]) > 2 \
                else np.zeros(len(rec["x"]), int)
            rec["labels"] = per_frame({"video_id": np.full(len(rec["x"]), vid), "start": rec["start"],
                                       "frames": np.full(len(rec["x"]), rec["frames"])}, clusters, [{"video_id": vid}], spec, c.smooth)[vid]
    chosen, found, selection, grid_size = choose_boundaries(recs, spec, c, c.boundary_cue)
    out: dict[str, dict] = {}
    frames_out, truths_out = {}, {}
    for vid, rec in recs.items():
        setting = chosen[vid]
        bounds = found[vid]
        labels = rec["labels"] if c.boundary_cue == "labels" else \
            _segment_labels(rec, bounds, rec["k"], every, source_len)
        labels = remove_short(labels, max(1, setting[2] // every)) if c.boundary_cue == "labels" else labels
        entry = {"boundaries": bounds, **dict(zip(SETTING, setting)), "n_clusters": rec["k"], "criterion": rec["criterion"]}
        if rec["segments"]:
            entry.update(boundary_scores(bounds, rec["segments"]))
        if rec["truth"]:
            n = min(len(rec["truth"]), len(labels))
            entry["frame_accuracy"] = frame_accuracy(rec["truth"][:n], [str(v) for v in labels[:n]])
        out[vid] = entry
        frames_out[vid], truths_out[vid] = labels, rec["truth"]
    with_truth = [e for e in out.values() if "boundary_f1" in e]
    keys = ("boundary_precision", "boundary_recall", "boundary_f1", "frame_accuracy")
    mean = {k: float(np.mean([e[k] for e in with_truth if k in e])) for k in keys} if with_truth else {}
    metrics = {**mean, "recordings": out, "cue": c.boundary_cue, "embedding": c.segment_embedding, "model": source,
               "selection": selection, "grid": grid_size}
    folder = Path(ctx.out)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "segments.json").write_text(json.dumps({v: {k: e[k] for k in ("boundaries", *SETTING)}
                                                      for v, e in out.items()}, indent=1))
    for vid, labels in frames_out.items():
        truth = truths_out.get(vid) or []
        target = folder / "segments" / f"{vid.replace('/', '__').replace('#', '_p')}.csv"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("frame,cluster,truth\n" + "".join(
            f"{i * every},{int(v)},{truth[i] if i < len(truth) else ''}\n" for i, v in enumerate(labels)))
    figures = {"figures/segment_timeline.png": timeline_figure(frames_out, truths_out, every),
               "figures/change_curves.png": change_curve_figure(recs, out, spec, c)}
    headline = {k: v for k, v in mean.items()}
    if not headline:  # nothing to score: still logged (and the files written), no eval tags
        headline = {"recordings": float(len(out))}
    return evaluate_stage(ctx, _method(), split=f"segment-{split or 'all'}", metrics=metrics, headline=headline,
                          source=source, metrics_file="metrics_segment.json", figures=figures,
                          eval_tags=mean or None, primary="boundary_f1" if mean else None)


def change_curve_figure(recs: dict, out: dict, spec: dict, c: Any, limit: int = 6):
    """Per recording: the cue's curve, the boundaries found (red) and the annotated windows (green)."""
    from actionops.evaluation.plots import _plt
    from actionops.evaluation.segmentation import change_curve, truth_windows

    plt = _plt()
    items = list(recs.items())[:limit]
    fig, axes = plt.subplots(len(items), 1, figsize=(10, 1.4 * len(items) + 0.6), squeeze=False)
    every, source = int(spec["subsample"]), int(spec["source_len"])
    for ax, (vid, rec) in zip(axes[:, 0], items):
        width = int(out[vid]["change_width"])
        x = (np.asarray(rec["start"]) + source / 2) * every
        curve = change_curve(rec["x"], width) if c.boundary_cue != "error" else \
            np.convolve(rec["error"], np.ones(width) / width, mode="same")
        ax.plot(x, curve, lw=0.8, color="k")
        for lo, _, hi in truth_windows(rec["segments"] or []):
            ax.axvspan(lo, hi, color="tab:green", alpha=0.3)
        for b in out[vid]["boundaries"]:
            ax.axvline(b, color="tab:red", lw=0.8)
        ax.set_title(f"{vid} ({c.boundary_cue} cue)", fontsize=8)
    axes[-1, 0].set_xlabel("frame")
    fig.tight_layout()
    return fig
