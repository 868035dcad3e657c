"""Clip embeddings from a frozen video backbone, as a Ray Data batch-inference job, into parquet.

Backbone sources (`embed.backbone`): a registry name (random initialisation seeded by
`embed.seed`: the "untrained" reference), a local `.pt` actionops checkpoint, or
`models:/NAME@ALIAS` (resolved to its version, so the file names the exact weights). Nothing is
downloaded: hub words are refused. A trained checkpoint brings its own frame count, input size
and clip input (`rgb` / `rgb_diff`), which override `embed.*`.

The job: one item per (video, view, clip); `map_batches` over an actor pool, each actor building
the headless backbone once (on a GPU when the cluster has GPUs) and decoding its clips itself.
View -1 is the plain video (clips at fixed positions); views 0.. are augmented copies of
training-split videos (random positions, crop, flip, colour), never of val/test videos.

The parquet holds video_id, path, label, split, frames, view, clip (-1: the mean of the video's clips),
clip_start, clip_end, vector; its schema metadata `actionops.embeddings` holds the backbone's
identity (name, source, resolved version, weights digest, frames, size, input kind, dim) and how
the file was made.
"""

from __future__ import annotations

import json
import os
import time
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from actionops.errors import ActionopsError, DataError

META_KEY = b"actionops.embeddings"
COLUMNS = ("video_id", "path", "label", "split", "frames", "view", "clip", "clip_start", "clip_end", "vector")


# ----------------------------------------------------------------------------- backbone
def resolve_backbone(e: Any) -> tuple[dict, dict]:
    """(checkpoint dict of the backbone with its head, identity) for `embed.backbone`."""
    import torch

    from actionops.models.checkpoint import load_checkpoint
    from actionops.models.classifiers import check_local_weights
    from actionops.models.embedding import embedding_dim, weights_digest
    from actionops.models.registry import create_model, model_spec
    from actionops.platform.tracking import load_checkpoint_state, resolve_model_version

    source = str(e.backbone)
    check_local_weights(source)
    resolved = source
    if source.startswith(("models:/", "runs:/")):
        try:
            version = resolve_model_version(source)
            if version is not None:
                resolved = f"models:/{version[0]}/{version[1]}"
            state = load_checkpoint_state(resolved)
        except ActionopsError as exc:
            raise ActionopsError(f"backbone {source}: {exc.message}",
                                 "train one on your own videos (`actionops train classifier DATASET`, then `actionops "
                                 "registry promote clip-classifier`), pass a .pt checkpoint, or --backbone NAME for an "
                                 "untrained architecture (much weaker, see README)") from None
        kind = "registered"
    elif source.endswith((".pt", ".pth")) or Path(source).exists():
        state = load_checkpoint(source, "pass a .pt checkpoint written by an actionops training stage, a model name, "
                                        "or models:/NAME@ALIAS")
        kind = "file"
        resolved = str(Path(source).resolve())
    else:
        model_spec(source)  # an unknown name lists the known ones
        torch.manual_seed(int(e.seed))
        args = {"num_classes": 2, "num_frames": int(e.num_frames), "image_size": int(e.size)}
        try:
            model = create_model(source, **args)
        except (ValueError, RuntimeError) as exc:
            raise ActionopsError(f"backbone {source} cannot take {e.num_frames} frames of {e.size} px: {exc}",
                                 "change embed.num_frames / embed.size") from None
        state = {"model_name": source, "model_args": args, "model": model.state_dict(), "clip_input": e.clip_input}
        kind = "random-init"
        resolved = f"{source} (random init, seed {e.seed})"
    if not {"model_name", "model_args", "model"} <= set(state):
        raise ActionopsError(f"{source} is not an actionops checkpoint (no model_name / model_args / model)",
                             "pass a checkpoint written by `actionops train classifier`, or a registry model name")
    args = state["model_args"]
    if "num_frames" not in args or "image_size" not in args:
        raise ActionopsError(f"{source} holds a {state['model_name']}, not a clip model",
                             "pass a video backbone: a clip classifier checkpoint or a registry model name")
    model = create_model(state["model_name"], **args)
    identity = {"backbone": state["model_name"], "source": source, "resolved": resolved, "kind": kind,
                "weights_digest": weights_digest(state["model"]), "num_frames": int(args["num_frames"]),
                "size": int(args["image_size"]), "clip_input": str(state.get("clip_input", "rgb")),
                "dim": embedding_dim(model), **({"flow": state["flow"]} if state.get("flow") else {})}
    return state, identity


class Embedder:
    """Ray Data batch-inference UDF: the headless backbone, built once per actor (GPU when it was
    given one), decodes each batch's clips with `make_clip(item)` and returns a `vector` column."""

    def __init__(self, state: Any, make_clip: Any, threads: int | None = None) -> None:
        import ray
        import torch

        from actionops.models.checkpoint import build_from_checkpoint
        from actionops.models.embedding import clip_embedder, embedding_dim

        if isinstance(state, ray.ObjectRef):
            state = ray.get(state)
        if threads:
            torch.set_num_threads(threads)
        self.device = torch.device("cuda" if torch.cuda.is_available() and ray.get_gpu_ids() else "cpu")
        model = build_from_checkpoint(state)
        self.dim = embedding_dim(model)
        self.model = clip_embedder(model).to(self.device)
        self.make_clip = make_clip

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        keys = list(batch)
        items = [{k: batch[k][i] for k in keys} for i in range(len(batch[keys[0]]))]
        made, errors = [], []
        for item in items:  # a clip that fails to decode (a truncated file) fails alone
            try:
                made.append(self.make_clip(item))
                errors.append("")
            except Exception as exc:  # noqa: BLE001 - reported per video by the driver
                made.append(None)
                errors.append(f"{item['path']}: {type(exc).__name__}: {exc}")
        good = [m for m in made if m is not None]
        vectors = np.full((len(items), self.dim), np.nan, np.float32)
        if good:
            with torch.inference_mode():
                out = self.model(torch.from_numpy(np.stack([clip for clip, _ in good])).to(self.device)).float().cpu().numpy()
            vectors[[i for i, m in enumerate(made) if m is not None]] = out
        spans = np.array([m[1] if m is not None else (0, 0) for m in made], dtype=np.int64).reshape(len(items), 2)
        return {**batch, "vector": vectors, "clip_start": spans[:, 0], "clip_end": spans[:, 1],
                "error": np.array(errors, dtype=object)}


def clip_maker(identity: dict, clips: int, seed: int):
    """item (path, frames, view, clip[, start, end]) -> ((T, 3, S, S) clip, (first frame, last frame + 1)).
    View -1: the clip-th of `clips` fixed positions; view >= 0: an augmented random clip; start >= 0:
    one clip spread over the window [start, end)."""
    from actionops.pipelines.clip_classification.data import (
        clip_stage_flow,
        augment,
        eval_indices,
        input_indices,
        to_input,
    )
    from actionops.platform.data import decode_clip, sample_indices

    num_frames, size, clip_input = identity["num_frames"], identity["size"], identity["clip_input"]
    flow = identity.get("flow")  # a backbone trained on the flow stage's flow gets it (computed for the clip's pairs)

    def make(item: dict) -> tuple[np.ndarray, tuple[int, int]]:
        n, view, start = int(item["frames"]), int(item["view"]), int(item.get("start", -1))
        if start >= 0:  # a window [start, end): one clip spread over it, rgb_diff pairs inside it
            end = int(item["end"])
            indices = start + eval_indices(end - start, num_frames, 0, 1)
            wanted = start + input_indices(indices - start, end - start, clip_input)
            frames = decode_clip(str(item["path"]), wanted, (size, size))
            pairs = clip_stage_flow({"path": str(item["path"])}, wanted, clip_input, flow, size)
        elif view < 0:
            indices = eval_indices(n, num_frames, int(item["clip"]), clips)
            wanted = input_indices(indices, n, clip_input)
            frames = decode_clip(str(item["path"]), wanted, (size, size))
            pairs = clip_stage_flow({"path": str(item["path"])}, wanted, clip_input, flow, size)
        else:
            rng = np.random.default_rng([seed, zlib.crc32(str(item["video_id"]).encode()), view, int(item["clip"])])
            indices = sample_indices(n, num_frames, "random", rng)
            big = int(round(size * 1.15))
            wanted = input_indices(indices, n, clip_input)
            frames = decode_clip(str(item["path"]), wanted, (big, big))
            pairs = clip_stage_flow({"path": str(item["path"])}, wanted, clip_input, flow, big)
            if pairs is None:
                frames = augment(frames, size, rng)
            else:
                frames, pairs = augment(frames, size, rng, pairs)
        return to_input(frames, clip_input, pairs), (int(indices.min()), int(indices.max()) + 1)

    return make


# ----------------------------------------------------------------------------- the job
@dataclass
class EmbedResult:
    path: Path
    rows: int
    videos: int
    failed: list[dict]
    identity: dict
    seconds: float
    clips_per_s: float


def labelled_rows(ctx: Any, split: str | None) -> list[dict]:
    """Manifest rows with `split` set from the dataset's own splits (class folders: stratified by
    embed.val_fraction / test_fraction); unlabelled datasets keep every video under split "all"."""
    from actionops.pipelines.clip_classification.data import make_splits

    layout, rows = ctx.rows()
    e = ctx.cfg.embed
    labelled = [r for r in rows if r.get("label")]
    if labelled:
        splits = make_splits(rows, val_fraction=e.val_fraction, test_fraction=e.test_fraction, dataset=ctx.dataset)
        for text in splits.warnings:
            ctx.say(f"[yellow]warning:[/] {text}")
        out = [{**r, "split": name} for name in ("train", "val", "test") for r in getattr(splits, name)]
    else:
        out = [{**r, "split": "all", "label": ""} for r in rows]
    if split:
        known = sorted({r["split"] for r in out})
        out = [r for r in out if r["split"] == split]
        if not out:
            raise DataError(f"no videos in split {split!r} of {ctx.dataset}", f"splits there: {', '.join(known)}")
    if not out:
        raise DataError(f"no videos to embed in {ctx.dataset}", "see `actionops data index` for the layouts it reads")
    return out


def embed_items(rows: list[dict], state: dict, identity: dict, *, clips: int, augment_copies: int, seed: int,
                batch_size: int, actors: int | None = None, window_clips: int = 1) -> list[dict]:
    """Embed every (video, view, clip) of `rows` on a Ray Data actor pool: rows with a `vector`.
    Rows with `start` >= 0 are windows [start, end) of a video: `window_clips` clip(s) each."""
    import ray

    from actionops.platform.data import _from_items

    items = []
    for r in rows:
        window = int(r.get("start", -1)) >= 0
        views = [-1] + (list(range(augment_copies)) if r["split"] == "train" and not window else [])
        for view in views:
            for k in range(window_clips if window else clips):
                items.append({"video_id": str(r["video_id"]), "path": str(r["path"]), "frames": int(r["frames"]),
                              "label": str(r.get("label") or ""), "split": str(r["split"]), "view": view, "clip": k,
                              "start": int(r.get("start", -1)), "end": int(r.get("end", -1))})
    gpus = float(ray.cluster_resources().get("GPU", 0))
    cpus = int(ray.available_resources().get("CPU", os.cpu_count() or 1)) or 1
    # one actor per GPU; on CPU up to 2, one per 64 clips (each actor's start-up costs seconds)
    actors = actors or (max(1, int(gpus)) if gpus else max(1, min(2, cpus, -(-len(items) // 64))))
    threads = max(1, (os.cpu_count() or 1) // actors)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = _from_items(items, rows_per_block=max(1, batch_size)).map_batches(
            Embedder, fn_constructor_kwargs={"state": ray.put(state), "make_clip": clip_maker(identity, clips, seed),
                                             "threads": threads},
            batch_size=batch_size, concurrency=actors, batch_format="numpy", num_gpus=1 if gpus else 0,
            max_restarts=0)
        return list(data.iter_rows())


def drop_failed(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """(rows of videos whose every clip embedded, [{path, reason}] of the others)."""
    bad: dict[str, dict] = {}
    for r in rows:
        if r.get("error"):
            bad.setdefault(str(r["video_id"]), {"path": str(r["path"]), "reason": str(r["error"])})
    kept = [{k: v for k, v in r.items() if k != "error"} for r in rows if str(r["video_id"]) not in bad]
    return kept, list(bad.values())


def average_views(rows: list[dict]) -> list[dict]:
    """One row per (video, view): the mean vector of its clips (clip -1, span of all its clips)."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["video_id"], int(r["view"])), []).append(r)
    out = []
    for (_, view), members in groups.items():
        first = members[0]
        out.append({**{k: first[k] for k in ("video_id", "path", "label", "split", "frames")}, "view": view, "clip": -1,
                    "clip_start": min(int(m["clip_start"]) for m in members),
                    "clip_end": max(int(m["clip_end"]) for m in members),
                    "vector": np.mean([np.asarray(m["vector"], np.float32) for m in members], axis=0)})
    return out


def write_embeddings(path: Path, rows: list[dict], meta: dict) -> Path:
    """Rows (sorted by split, video, view, clip) -> parquet with `meta` in the schema metadata (atomic)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    order = {"train": 0, "val": 1, "test": 2}
    rows = sorted(rows, key=lambda r: (order.get(r["split"], 3), r["video_id"], int(r["view"]), int(r["clip"])))
    table = pa.table({
        "video_id": pa.array([str(r["video_id"]) for r in rows], pa.string()),
        "path": pa.array([str(r["path"]) for r in rows], pa.string()),
        "label": pa.array([str(r["label"]) for r in rows], pa.string()),
        "split": pa.array([str(r["split"]) for r in rows], pa.string()),
        "frames": pa.array([int(r.get("frames", 0)) for r in rows], pa.int64()),
        "view": pa.array([int(r["view"]) for r in rows], pa.int32()),
        "clip": pa.array([int(r["clip"]) for r in rows], pa.int32()),
        "clip_start": pa.array([int(r["clip_start"]) for r in rows], pa.int64()),
        "clip_end": pa.array([int(r["clip_end"]) for r in rows], pa.int64()),
        "vector": pa.array([np.asarray(r["vector"], np.float32).tolist() for r in rows], pa.list_(pa.float32())),
    })
    table = table.replace_schema_metadata({META_KEY: json.dumps(meta).encode()})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)
    return path


@dataclass
class Embeddings:
    """An embeddings file in memory: the table's columns as lists / arrays, X (N, D), metadata."""

    path: Path
    X: np.ndarray
    video_id: np.ndarray
    label: np.ndarray
    split: np.ndarray
    view: np.ndarray
    clip: np.ndarray
    frame: Any
    meta: dict

    @property
    def identity(self) -> dict:
        return self.meta.get("backbone", {})

    def select(self, mask: np.ndarray) -> Embeddings:
        return Embeddings(self.path, self.X[mask], self.video_id[mask], self.label[mask], self.split[mask],
                          self.view[mask], self.clip[mask], self.frame[mask].reset_index(drop=True), self.meta)


def read_embeddings(path: str | Path, *, need_labels: bool = True) -> Embeddings:
    """Load a parquet written by `write_embeddings`; a missing, empty or label-less file is a clear error."""
    import pyarrow.parquet as pq

    path = Path(path)
    hint = "write one with `actionops embed DATASET --out " + str(path) + "`"
    if not path.is_file():
        raise DataError(f"no embeddings file at {path}", hint)
    try:
        table = pq.read_table(path)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
        raise DataError(f"{path} is not a readable parquet file ({exc})", hint) from None
    missing = [c for c in ("video_id", "label", "split", "vector") if c not in table.column_names]
    if missing:
        raise DataError(f"{path} has no {', '.join(missing)} column(s): not an embeddings file", hint)
    raw = (table.schema.metadata or {}).get(META_KEY)
    meta = json.loads(raw) if raw else {}
    frame = table.drop(["vector"]).to_pandas()
    if len(frame) == 0:
        raise DataError(f"{path} holds no embeddings (0 rows)", hint)
    vectors = table.column("vector").to_pylist()
    X = np.asarray(vectors, dtype=np.float32)
    if X.ndim != 2:
        raise DataError(f"{path}: the vectors do not all have the same length", hint)
    labels = frame["label"].fillna("").astype(str).to_numpy()
    if need_labels and not (labels != "").any():
        raise DataError(f"{path} has no labels", "embed a labelled dataset (class folders or CSVs with a label column)")
    col = (lambda name, default: frame[name].to_numpy() if name in frame else np.full(len(frame), default))
    return Embeddings(path, X, frame["video_id"].astype(str).to_numpy(), labels, frame["split"].astype(str).to_numpy(),
                      col("view", -1).astype(int), col("clip", -1).astype(int), frame, meta)


def embed_dataset(ctx: Any, out_path: Path, *, split: str | None = None, per_clip: bool | None = None,
                  backbone: tuple[dict, dict] | None = None) -> EmbedResult:
    """Embed the dataset of `ctx` with `embed.backbone` (or an already resolved `backbone`:
    (state, identity) from `resolve_backbone`) into `out_path` (see the module doc)."""
    from actionops.platform.versioning import dataset_version

    e = ctx.cfg.embed
    per_clip = e.per_clip if per_clip is None else per_clip
    if e.clips < 1:
        raise ActionopsError(f"embed.clips must be at least 1 (got {e.clips})")
    state, identity = backbone or resolve_backbone(e)  # bad names, frame counts and sources fail before any decoding
    rows = labelled_rows(ctx, split)
    ctx.say(f"embedding {len(rows)} videos x {e.clips} clips with {identity['backbone']} ({identity['resolved']}, "
            f"{identity['dim']}-d, {identity['num_frames']} x {identity['size']} px {identity['clip_input']})")
    tick = time.perf_counter()
    embedded = embed_items(rows, state, identity, clips=e.clips, augment_copies=e.augment_copies, seed=e.seed,
                           batch_size=e.batch_size)
    seconds = time.perf_counter() - tick
    embedded, failed = drop_failed(embedded)
    if not embedded:
        raise DataError(f"no readable video among {len(rows)} in {ctx.dataset}", failed[0]["reason"] if failed else None)
    good = {r["video_id"] for r in embedded}
    out_rows = embedded if per_clip else average_views(embedded)
    meta = {"backbone": identity, "dataset": str(Path(ctx.dataset).resolve()), "dataset_version": dataset_version(ctx.dataset),
            "clips": e.clips, "per_clip": bool(per_clip), "augment_copies": e.augment_copies, "seed": e.seed,
            "split": split, "failed": failed}
    path = write_embeddings(out_path, out_rows, meta)
    for item in failed:
        ctx.say(f"[yellow]warning:[/] skipped {item['path']}: {item['reason']}")
    return EmbedResult(path, len(out_rows), len(good), failed, identity, seconds, len(embedded) / max(seconds, 1e-9))


def reembed(emb: Embeddings, backbone: tuple[dict, dict], out_path: Path, *, clips: int, per_clip: bool, seed: int,
            batch_size: int, augment_copies: int = 0) -> Embeddings:
    """The videos of an embeddings file (same ids, labels and splits) embedded again with another
    backbone (e.g. one fine-tuned by the end-to-end detector) into `out_path`."""
    state, identity = backbone
    videos: dict[str, dict] = {}
    for i, vid in enumerate(emb.video_id):
        if vid not in videos:
            row = emb.frame.iloc[i]
            frames = int(row["frames"]) if "frames" in emb.frame and int(row["frames"]) > 0 else 0
            videos[vid] = {"video_id": vid, "path": str(row["path"]), "label": str(emb.label[i]),
                           "split": str(emb.split[i]), "frames": frames}
    missing = [v for v in videos.values() if not v["frames"]]
    if missing:
        from actionops.platform.data import probe_videos

        counts = {p["path"]: int(p["frames"]) for p in probe_videos([v["path"] for v in missing])}
        for v in missing:
            v["frames"] = counts.get(v["path"], 0)
    rows = [v for v in videos.values() if v["frames"] > 0]
    embedded, failed = drop_failed(embed_items(rows, state, identity, clips=clips, augment_copies=augment_copies,
                                               seed=seed, batch_size=batch_size))
    meta = {**emb.meta, "backbone": identity, "clips": clips, "per_clip": per_clip, "augment_copies": augment_copies,
            "reembedded_from": str(emb.path), "failed": failed}
    write_embeddings(out_path, embedded if per_clip else average_views(embedded), meta)
    return read_embeddings(out_path)
