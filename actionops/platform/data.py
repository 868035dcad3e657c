"""Ray Data jobs over videos: index (probe), optical flow, clip and person-window datasets.

Every job is split per file (or per frame range) and catches a bad file inside its UDF, so one
corrupt video never fails a block of good ones: its row carries an `error` instead.

The manifest records what each row was made from: `content_md5` of the video's bytes (with
`size_bytes` and `mtime_ns` for a cheap check) and `annotation_md5` of its pose / table / label
files. So the manifest's own bytes change whenever a video or an annotation does (DVC stages that
depend on it re-run), flow is only reused for the same video bytes, and reading a video that
changed since indexing stops with "re-run data index" instead of failing deep in a reader.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from actionops.errors import ActionopsError, DataError, DiskFullError, whole_or_nothing
from actionops.platform.layout import Rejected, VideoEntry, list_entries, load_pose

MANIFEST_NAME = "manifest.parquet"
REJECTED_NAME = "rejected.csv"
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


def _from_items(items: list[dict], max_blocks: int = 400, ordered: bool = False, rows_per_block: int = 1):
    """A Dataset over `items`; `ordered` keeps rows in input order through every later operator
    (datasets that feed models: the same data gives the same batches, hence the same model).
    `rows_per_block` > 1 for light items (a clip to decode): a task per row costs Ray Data more
    than the work (80 tiny clips: 5-7 s an epoch with one row per block, 0.9 s with 10)."""
    import ray

    blocks = -(-len(items) // max(1, rows_per_block))
    ds = ray.data.from_items(items, override_num_blocks=max(1, min(blocks, max_blocks)))
    if ordered:
        ds.context.execution_options.preserve_order = True  # copied into every derived dataset
    return ds


# ----------------------------------------------------------------------------- probing / index
def _probe_row(row: dict[str, Any]) -> dict[str, Any]:
    from actionops.platform.video import probe_video

    out = {"path": row["path"], "frames": 0, "fps": 0.0, "width": 0, "height": 0, "codec": "",
           "duration": 0.0, "people": 0, "content_md5": "", "size_bytes": 0, "mtime_ns": 0, "annotation_md5": "",
           "error": None}
    try:
        out.update(probe_video(row["path"]))
        stat = Path(row["path"]).stat()
        out.update(content_md5=file_md5(row["path"]), size_bytes=int(stat.st_size), mtime_ns=int(stat.st_mtime_ns),
                   annotation_md5=annotation_md5(row))
        if row.get("pose_path"):
            records = load_pose(row["pose_path"], width=out["width"], height=out["height"])
            late = [r for r in records if r["frame"] >= out["frames"]]
            if late:
                raise DataError(f"{row['pose_path']}: {len(late)} boxes refer to frames past the "
                                f"video's {out['frames']} frames (first: frame index {late[0]['frame']})")
            if not records:
                raise DataError(f"{row['pose_path']} lists no people", "the video has nobody to cluster")
            out["people"] = len({r["id"] for r in records})
        if row.get("annotation_path"):
            _check_annotation(row["annotation_path"])
    except DataError as exc:  # per file: the rest of the block goes on
        out["error"] = exc.message + (f" ({exc.hint})" if exc.hint else "")
    except Exception as exc:  # an unreadable file surfaces as OSError, PermissionError, ...
        out["error"] = f"{row['path']}: {type(exc).__name__}: {exc}"
    return out


def file_md5(path: str | Path) -> str:
    """md5 of a file's bytes (streamed)."""
    import hashlib

    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


ANNOTATION_KEYS = ("pose_path", "coor_path", "annotation_path", "truth_path")


def annotation_md5(row: dict[str, Any]) -> str:
    """One md5 over the annotation files of a manifest row (pose boxes, table position, labels);
    empty when it has none."""
    import hashlib

    present = [(key, row[key]) for key in ANNOTATION_KEYS if row.get(key) and Path(row[key]).is_file()]
    if not present:
        return ""
    digest = hashlib.md5()
    for key, path in present:
        digest.update(f"{key}:{file_md5(path)};".encode())
    return digest.hexdigest()


def data_digest(rows: Sequence[dict]) -> str | None:
    """A digest of a manifest's content (video bytes, annotations, labels, splits): two manifests
    with the same digest describe the same data. None for a manifest written before digests."""
    import hashlib

    if not rows or any(not r.get("content_md5") for r in rows):
        return None
    digest = hashlib.md5()
    for r in sorted(rows, key=lambda r: str(r["video_id"])):
        digest.update("|".join(str(r.get(k) or "") for k in ("video_id", "content_md5", "annotation_md5", "label",
                                                              "split")).encode() + b"\n")
    return digest.hexdigest()


def changed_since_indexing(rows: Sequence[dict]) -> list[tuple[str, str]]:
    """(path, what changed) of rows whose video or annotation files differ from what the manifest
    recorded (size and mtime first; bytes hashed only when those differ, e.g. after a copy)."""
    changed = []
    for r in rows:
        if not r.get("content_md5"):
            continue  # a manifest from before digests: nothing to compare with
        path = Path(r["path"])
        if not path.is_file():
            changed.append((str(path), "missing"))
            continue
        stat = path.stat()
        size = int(r.get("size_bytes") or -1)
        if stat.st_size != size or (int(stat.st_mtime_ns) != int(r.get("mtime_ns") or -1) and file_md5(path) != r["content_md5"]):
            changed.append((str(path), "its bytes differ"))
        elif annotation_md5(r) != (r.get("annotation_md5") or ""):
            gone = [r[k] for k in ANNOTATION_KEYS if r.get(k) and not Path(r[k]).is_file()]
            changed.append((str(path), f"its annotation file {gone[0]} is missing" if gone else "its annotation files differ"))
    return changed


def _check_annotation(path: str) -> None:
    try:
        records = json.loads(Path(path).read_text())
        for rec in records:
            rec["frame"], rec["id"], rec["label"]  # noqa: B018 - presence check
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} is malformed ({type(exc).__name__}: {exc})",
                        'expected [{"frame", "id", "label"}, ...]') from None


def probe_videos(paths: Sequence[str | Path]) -> list[dict[str, Any]]:
    """Probe every video in parallel on the current Ray session; rows keep input order."""
    return _run_probe([{"path": str(p)} for p in paths])


def _run_probe(items: list[dict], progress: Callable[[int, int], None] | None = None) -> list[dict]:
    if not items:
        return []
    rows = []
    for row in _from_items(items).map(_probe_row).iter_rows():
        rows.append(row)
        if progress:
            progress(len(rows), len(items))
    order = {item["path"]: i for i, item in enumerate(items)}
    return sorted(rows, key=lambda row: order[row["path"]])


@dataclass(frozen=True)
class IndexResult:
    layout: str
    manifest: Any  # pandas.DataFrame, one row per accepted video
    rejected: list[Rejected]
    manifest_path: Path
    rejected_path: Path


def index_dataset(root: str | Path, *, layout: str = "auto", out: str | Path | None = None,
                  flow_dir: str | Path | None = None,
                  progress: Callable[[int, int], None] | None = None) -> IndexResult:
    """Find and probe every video of `root`; write the manifest (parquet) and rejected.csv.

    Needs a Ray session. Rejected rows (path, reason) cover unsafe CSV paths, missing files,
    undecodable videos and bad pose/annotation files; they never stop the others. `out` puts the
    manifest elsewhere than `root/manifest.parquet` and `flow_dir` sends every video's flow to
    `flow_dir/<video_id>.npy` (both keep a dataset folder read-only, e.g. under DVC).
    """
    import pandas as pd

    root = Path(root).resolve()
    layout, entries, rejected = list_entries(root, layout)
    if flow_dir is not None:
        flow_root = Path(flow_dir).resolve()
        entries = [replace(e, flow_path=str(flow_root / f"{e.video_id}.npy")) for e in entries]
    items = [_entry_item(e) for e in entries]
    probed = _run_probe(items, progress)
    rows = []
    for entry, item, info in zip(entries, items, probed):
        if info["error"]:
            rejected.append(Rejected(entry.path, info["error"]))
            continue
        rows.append({**item, **{k: v for k, v in info.items() if k != "error"}, **entry.extra})
    manifest = pd.DataFrame(rows, columns=_manifest_columns(rows))
    manifest_path = Path(out) if out else root / MANIFEST_NAME
    manifest_path.parent.mkdir(parents=True, exist_ok=True)
    manifest.attrs = {}
    rejected_path = manifest_path.with_name(REJECTED_NAME)
    # each file appears whole (temp file + rename): a reader never sees a half-written manifest
    _atomic(manifest_path, lambda tmp: manifest.to_parquet(tmp, index=False))
    _atomic(rejected_path, lambda tmp: pd.DataFrame([asdict(r) for r in rejected], columns=["path", "reason"]).to_csv(tmp, index=False))
    meta = {"layout": layout, "root": str(root), "flow_root": str(Path(flow_dir).resolve() if flow_dir is not None else root)}
    _atomic(manifest_path.with_suffix(".json"), lambda tmp: tmp.write_text(json.dumps(meta)))
    return IndexResult(layout, manifest, rejected, manifest_path, rejected_path)


def _atomic(path: Path, write: Callable[[Path], Any]) -> None:
    """`write(tmp)` then rename onto `path`: the file appears whole or not at all (a full disk
    leaves the old file, no temporary, and a one-line DiskFullError naming `path`)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with whole_or_nothing(path, tmp):
        write(tmp)
        tmp.replace(path)


def _entry_item(entry: VideoEntry) -> dict[str, Any]:
    item = asdict(entry)
    item.pop("extra")
    return item


def _manifest_columns(rows: list[dict]) -> list[str]:
    base = ["video_id", "path", "split", "label", "frames", "fps", "width", "height", "codec",
            "duration", "people", "pose_path", "coor_path", "annotation_path", "flow_path",
            "content_md5", "size_bytes", "mtime_ns", "annotation_md5"]
    extra = sorted({k for row in rows for k in row} - set(base))
    return base + extra


def resolve_dataset(dataset: str | Path) -> tuple[Path, Path]:
    """(dataset root, manifest path) of a CLI DATASET argument: a dataset folder (manifest
    `DATASET/manifest.parquet`) or a manifest written by `data index --out` (root read from its
    `.json` sidecar)."""
    dataset = Path(dataset)
    if dataset.suffix != ".parquet":
        return dataset, dataset / MANIFEST_NAME
    sidecar = dataset.with_suffix(".json")
    if not dataset.is_file() or not sidecar.is_file():
        raise DataError(f"no manifest at {dataset} (or its {sidecar.name} is missing)",
                        "write it with `actionops data index DATASET --out " + str(dataset) + "`, or pass the dataset folder")
    return Path(json.loads(sidecar.read_text())["root"]), dataset


def ensure_manifest(root: Path, manifest: Path, say: Callable[[str], None] | None = None) -> None:
    """Index `root` (videos, or pose / mocap sequences) into `manifest` when it does not exist yet
    (needs a Ray session)."""
    from actionops.platform.sequences import index_sequences, is_sequence_dataset

    if manifest.is_file():
        return
    result = index_sequences(root, out=manifest) if is_sequence_dataset(root) else index_dataset(root, out=manifest)
    if result.rejected and say:
        say(f"[yellow]warning:[/] {len(result.rejected)} videos rejected (see {result.rejected_path})")


def load_manifest(root: str | Path, manifest: str | Path | None = None, *, verify: bool = True) -> tuple[str, list[dict]]:
    """Layout and rows of a manifest written by `index_dataset`. With `verify`, a video or an
    annotation file that changed since indexing is an error naming it (re-run `data index`)."""
    import pandas as pd

    path = Path(manifest) if manifest else Path(root).resolve() / MANIFEST_NAME
    if not path.is_file():
        raise DataError(f"no manifest at {path}", f"run `actionops data index {root}` first")
    meta = json.loads(path.with_suffix(".json").read_text()) if path.with_suffix(".json").is_file() else {}
    frame = pd.read_parquet(path)
    rows = [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
            for r in frame.to_dict("records")]
    _check_confined(rows, meta, path)
    if verify:
        changed = changed_since_indexing(rows)
        if changed:
            p, why = changed[0]
            more = f" (and {len(changed) - 1} more)" if len(changed) > 1 else ""
            raise DataError(f"video {p} changed since indexing: {why}{more} (manifest {path})",
                            f"re-run `actionops data index {meta.get('root', root)}"
                            + (f" --out {path}`" if path.name != MANIFEST_NAME or path.parent != Path(root).resolve() else "`")
                            + ", then the stages that read it")
    return meta.get("layout", "unknown"), rows


def _check_confined(rows: list[dict], meta: dict, manifest: Path) -> None:
    """Every file a manifest names lies under its dataset root (`meta["root"]`; flow files under
    `meta["flow_root"]`: the root or `data index --flow-dir`): an edited or foreign manifest cannot
    point a stage at files elsewhere on the machine. Paths are compared by name (`..` resolved,
    symlinks inside the dataset are the user's own and followed). Manifests written before these
    keys existed are checked for what they record."""
    def lexical(p: str) -> Path:
        return Path(os.path.normpath(os.path.abspath(p)))

    if not meta.get("root"):
        return
    allowed = {key: lexical(meta["root"]) for key in ("path", *ANNOTATION_KEYS)}
    if meta.get("flow_root"):
        allowed["flow_path"] = lexical(meta["flow_root"])
    for row in rows:
        for key, folder in allowed.items():
            value = row.get(key)
            if value and not lexical(str(value)).is_relative_to(folder):
                raise DataError(f"manifest {manifest}: {key} {value} of {row.get('video_id')} is outside {folder}",
                                f"the manifest was edited or written for another folder: re-run `actionops data index {meta['root']}`")


# ----------------------------------------------------------------------------- optical flow
@dataclass(frozen=True)
class FlowReport:
    videos: int
    skipped: int
    frames: int
    seconds: float
    failed: list[Rejected]

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def _flow_chunk_row(row: dict[str, Any]) -> dict[str, Any]:
    from actionops.platform.flow import FlowSpec, compute_chunk

    start = time.perf_counter()
    try:
        spec = FlowSpec.from_dict(row["spec"])
        result = compute_chunk(row["path"], row["flow_path"], row["start"], row["end"], spec)
        error = None
    except DiskFullError as exc:  # the output device is full: the run stops (the next videos would fail too)
        result, error = {"frames": 0, "computed": False}, f"{exc.message}\t{exc.hint}"
    except Exception as exc:  # per chunk: report it, the other videos go on
        result, error = {"frames": 0, "computed": False}, f"{type(exc).__name__}: {exc}"
    return {"video_id": row["video_id"], "start": row["start"], "end": row["end"], "error": error,
            "seconds": time.perf_counter() - start, **result}


def _flow_results(results) -> Iterator[dict[str, Any]]:
    import ray.exceptions

    try:
        yield from results.iter_rows()
    except ray.exceptions.RayError as exc:
        raise ActionopsError(f"a flow worker died: {str(exc).splitlines()[0]}",
                             "rerun the same command: finished videos and chunks are kept and skipped") from None


class _FlowChunks:
    """Ray Data actor computing flow chunks (`_flow_chunk_row`), one OpenCV thread each."""

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        return _flow_chunk_row(row)


def compute_flow(
    rows: Sequence[dict],
    *,
    method: str = "farneback",
    size: tuple[int, int] | None = None,
    comp: bool = False,
    chunk_frames: int = 300,
    dis_preset: str = "fast",
    resume: bool = True,
    progress: Callable[[int, int, int], None] | None = None,
) -> FlowReport:
    """Optical flow for every manifest row, written to its `flow_path`, on Ray Data.

    Work items are frame ranges of at most `chunk_frames` (one overlapping frame), so a single
    long video still uses every core. With `resume`, finished videos and finished chunks are
    skipped; without it everything is recomputed. `progress(videos_done, frames_done, videos)`.
    """
    from actionops.platform import flow as flowlib

    spec = flowlib.FlowSpec(method=method, dis_preset=dis_preset, size=tuple(size) if size else None,
                            dtype="float16" if comp else "float32")
    items, plans, skipped = [], {}, 0
    # a video changed since indexing fails alone, with the reason; the others go on
    changed = dict(changed_since_indexing(rows))
    stale = [Rejected(path, f"changed since indexing ({why}): re-run `actionops data index`") for path, why in changed.items()]
    rows = [row for row in rows if str(row["path"]) not in changed]
    for row in rows:
        # flow is of these video bytes: a replaced video (same name, size, length) gets new flow
        row_spec = replace(spec, source=row.get("content_md5") or None)
        done = resume and flowlib.is_complete(row["flow_path"], row["frames"], row_spec)
        # a finished video keeps no parts; a fresh run (no resume) reuses none
        flowlib.remove_leftovers(row["flow_path"], keep=row_spec if resume and not done else None)
        if done:
            skipped += 1
            continue
        chunks = flowlib.plan_chunks(int(row["frames"]), chunk_frames)
        plans[row["video_id"]] = (row, chunks, row_spec)
        items += [{"video_id": row["video_id"], "path": row["path"], "flow_path": row["flow_path"],
                   "start": s, "end": e, "spec": asdict(row_spec)} for s, e in chunks]
    start = time.perf_counter()
    remaining = {vid: len(chunks) for vid, (_, chunks, _) in plans.items()}
    failed: dict[str, str] = {}
    frames_done = videos_done = 0
    if items:
        import ray

        # a pool of long-lived actors, one per CPU, each with its next chunk already queued: no
        # task start-up between chunks (~0.15 s each with plain tasks on a small machine)
        workers = max(1, min(len(items), int(ray.cluster_resources().get("CPU", 1))))
        pool = ray.data.ActorPoolStrategy(min_size=1, max_size=workers, initial_size=workers,
                                          max_tasks_in_flight_per_actor=2)
        with warnings.catch_warnings():  # max_restarts travels as a "ray_remote_args" (deprecation notice)
            warnings.simplefilter("ignore")
            # errors are caught per chunk inside the actor; only a crashed process ends the run
            results = _from_items(items, max_blocks=len(items)).map(_FlowChunks, num_cpus=1, compute=pool, max_restarts=0)
        for result in _flow_results(results):
            vid = result["video_id"]
            if result["error"] and result["error"].startswith("no space left writing "):
                raise DiskFullError(*result["error"].split("\t", 1))
            if result["error"]:
                failed.setdefault(vid, result["error"])
            frames_done += result["frames"]  # computed now (reused parts count 0)
            remaining[vid] -= 1
            if remaining[vid] == 0:
                row, chunks, row_spec = plans[vid]
                if vid not in failed:
                    flowlib.assemble(row["flow_path"], chunks, row_spec)
                videos_done += 1
            if progress:
                progress(videos_done, frames_done, len(plans))
    seconds = time.perf_counter() - start
    bad = stale + [Rejected(plans[vid][0]["path"], reason) for vid, reason in failed.items()]
    return FlowReport(videos=len(plans) - len(bad) + len(stale), skipped=skipped, frames=frames_done, seconds=seconds, failed=bad)


# ----------------------------------------------------------------------------- clip datasets
def sample_indices(num_video_frames: int, num_frames: int, sampling: str, rng: np.random.Generator | None = None) -> np.ndarray:
    """`num_frames` frame indices spread over the whole video.

    uniform: centres of `num_frames` equal segments; random: one random frame per segment.
    Videos shorter than `num_frames` repeat their last frame (the caller counts the padding).
    """
    if num_video_frames <= 0:
        raise ValueError("video has no frames")
    if num_video_frames < num_frames:
        return np.minimum(np.arange(num_frames), num_video_frames - 1)
    edges = np.linspace(0, num_video_frames, num_frames + 1)
    if sampling == "random":
        rng = rng or np.random.default_rng()
        picks = [rng.integers(int(a), max(int(a) + 1, int(b))) for a, b in zip(edges[:-1], edges[1:])]
        return np.asarray(picks)
    return ((edges[:-1] + edges[1:]) / 2).astype(int).clip(0, num_video_frames - 1)


def normalize_frames(frames: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) uint8 RGB -> (T, 3, H, W) float32, ImageNet mean/std."""
    x = frames.astype(np.float32) / 255.0
    x = (x - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def decode_clip(path: str, indices: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Frames at `indices` (sorted or not, repeats allowed) of a video, resized: (T, H, W, 3) uint8."""
    from actionops.platform.video import decode_range

    wanted = sorted(set(int(i) for i in indices))
    got = dict(decode_range(path, wanted[0], wanted[-1] + 1, size=size, keep=set(wanted)))
    if not got:
        raise DataError(f"{path} decodes to no frames in [{wanted[0]}, {wanted[-1]}]")
    last = got[max(got)]
    return np.stack([got.get(int(i), last) for i in indices])


def symmetric_frames(frames: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) uint8 -> (T, 3, H, W) float32 in [-1, 1] (for Tanh decoders)."""
    return np.ascontiguousarray((frames.astype(np.float32) / 127.5 - 1.0).transpose(0, 3, 1, 2))


def resize_flow(flow: np.ndarray, size: tuple[int, int], clip: float) -> np.ndarray:
    """(T, H, W, 2) pixels -> (T, 2, h, w) resized to `size` (W, H), vectors rescaled, / clip in [-1, 1]."""
    import cv2

    t, h, w, _ = flow.shape
    out_w, out_h = size
    if (w, h) != (out_w, out_h):
        flow = np.stack([cv2.resize(f, (out_w, out_h), interpolation=cv2.INTER_AREA) for f in flow])
        flow = flow * np.array([out_w / w, out_h / h], np.float32)
    return np.ascontiguousarray(np.clip(flow / clip, -1.0, 1.0).transpose(0, 3, 1, 2).astype(np.float32))
