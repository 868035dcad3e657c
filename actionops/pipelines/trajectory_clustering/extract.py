"""Dense trajectories of a dataset's videos, one parquet file per video, sharded over videos and
frame ranges on Ray Data and resumable: a finished video (or frame range) is not recomputed for the
same spec, and a changed spec starts over (its files would not mix with the new ones).

Work items: a video of more than `chunk_frames` frames is split into frame ranges [s, e) (one Ray
task each, so one long video uses every core); a range decodes L more frames, so the trajectories
that start in it are tracked to their end, and writes a part file; the video's parquet is the parts
concatenated (written when the last part lands). Each range starts its grid afresh, as the video's
first frame does, so a chunked video has a few more trajectories near range starts than one run
whole; trajectories never cross into another range's output.

Per range: decode (PyAV, grayscale, optionally resized to `size`), flow from frame t to t+1 read from
the flow stage's file when one of the same method and size is complete for these video bytes
(`actionops flow compute`; flow of frame t+1 there is flow t -> t+1 here), else computed with the
platform's flow functions; trajectories and descriptors (`tracks.dense_trajectories`), optionally
kept on people (`pose.json` boxes). A video too short for one trajectory is skipped and counted; an
undecodable one is reported with its reason; neither stops the others.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from actionops.pipelines.trajectory_clustering.tracks import TrackSpec, dense_trajectories

SPEC_NAME = "trajectories_spec.json"


def _boxes(pose_path: str | None, start: int = 0, scale: tuple[float, float] = (1.0, 1.0)) -> dict[int, np.ndarray] | None:
    """Person boxes per frame, frames counted from `start`, coordinates scaled by (sx, sy)."""
    if not pose_path:
        return None
    from actionops.platform.layout import load_pose

    out: dict[int, list] = {}
    for rec in load_pose(pose_path):  # 0-based frames
        out.setdefault(int(rec["frame"]) - start, []).append(rec["bbox"])
    factor = np.array([scale[0], scale[1], scale[0], scale[1]], np.float32)
    return {f: np.asarray(b, np.float32) * factor for f, b in out.items()}


def video_trajectories(path: str, spec: TrackSpec, flow_method: str = "farneback", pose_path: str | None = None,
                       *, start: int = 0, end: int | None = None, size: tuple[int, int] | None = None,
                       flow_path: str | None = None, frames: int | None = None, source: str | None = None,
                       video_size: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    """(info (N, 5), descriptors (N, spec.dim), where the flow came from: "cache" | "computed") of the
    trajectories of one video file that start in frames [start, end) (end None: to the last frame).
    Info's start is the video's frame; x, y are in pixels of the tracked frames (`size` when set)."""
    from actionops.platform.flow import finished_flow, flow_sequence
    from actionops.platform.video import decode_range

    stop = None if end is None else end + spec.length
    gray = [f for _, f in decode_range(path, start, stop, size=size, gray=True)]
    empty = np.zeros((0, 5), np.float32), np.zeros((0, spec.dim), np.float32)
    if len(gray) < spec.length + 1:
        return (*empty, "none")
    gray = np.stack(gray)
    flow, origin = None, "computed"
    cached = finished_flow(flow_path, frames, flow_method, size, source)
    if cached is not None and cached.shape[1:3] == gray.shape[1:3] and start + len(gray) <= cached.shape[0]:
        flow, origin = np.asarray(cached[start + 1:start + len(gray)], np.float32), "cache"
    if flow is None:
        flow = np.stack(list(flow_sequence(gray, flow_method, first_is_zero=False)))
    scale = (1.0, 1.0)
    if size is not None and video_size:
        scale = (size[0] / video_size[0], size[1] / video_size[1])
    info, desc = dense_trajectories(gray, flow, spec, boxes=_boxes(pose_path, start, scale))
    info[:, 0] += start
    return info, desc, origin


def write_parquet(path: Path, video_id: str, info: np.ndarray, desc: np.ndarray) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = {"video_id": pa.array([video_id] * len(info), pa.string())}
    for i, name in enumerate(("start", "scale", "x", "y", "path_length")):
        columns[name] = pa.array(info[:, i].astype(np.float32))
    flat = pa.array(desc.astype(np.float32).ravel())
    columns["descriptor"] = pa.FixedSizeListArray.from_arrays(flat, desc.shape[1])
    tmp = path.with_suffix(".parquet.tmp")
    pq.write_table(pa.table(columns), tmp)
    tmp.replace(path)  # a crash mid-write leaves no half file under the final name


def read_descriptors(path: str | Path) -> tuple[str | None, np.ndarray]:
    """(video id, descriptors (N, D)) of one video's parquet."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    col = table.column("descriptor").combine_chunks()
    dim = col.type.list_size
    desc = col.values.to_numpy(zero_copy_only=False).reshape(-1, dim) if len(col) else np.zeros((0, dim), np.float32)
    ids = table.column("video_id").to_pylist()
    return (ids[0] if ids else None), desc


def _range_task(job: dict[str, Any]) -> dict[str, Any]:
    """One frame range (a Ray Data row {"job": JSON}: one column of one type, whatever is None)."""
    item = json.loads(job["job"])
    spec = TrackSpec(**item["spec"])
    out = Path(item["out"])
    tick = time.perf_counter()
    base = {"video_id": item["video_id"], "start": item["start"], "end": -1 if item["end"] is None else item["end"]}
    try:
        info, desc, origin = video_trajectories(
            item["path"], spec, item["flow_method"], item.get("pose_path"), start=item["start"], end=item["end"],
            size=tuple(item["size"]) if item.get("size") else None, flow_path=item.get("flow_path"),
            frames=item.get("frames"), source=item.get("source"), video_size=item.get("video_size"))
    except Exception as exc:  # one bad video is a reason, not a crash of the others
        return {**base, "status": "failed", "trajectories": 0, "flow": "", "reason": f"{type(exc).__name__}: {exc}",
                "seconds": time.perf_counter() - tick}
    write_parquet(out, item["video_id"], info, desc)  # also when empty: the range is done
    return {**base, "status": "done", "trajectories": int(len(info)), "flow": origin, "reason": "",
            "seconds": time.perf_counter() - tick}


def parquet_name(video_id: str) -> str:
    return video_id.replace("/", "__") + ".parquet"


def part_name(video_id: str, start: int, end: int) -> str:
    return f"{parquet_name(video_id)[:-len('.parquet')]}.part-{start:08d}-{end:08d}.parquet"


def plan_ranges(frames: int | None, chunk_frames: int | None) -> list[tuple[int, int | None]]:
    """Frame ranges of one video: [(0, None)] (whole) when its length is unknown or fits a chunk."""
    if not frames or not chunk_frames or frames <= chunk_frames:
        return [(0, None)]
    return [(s, min(s + chunk_frames, frames)) for s in range(0, frames, chunk_frames)]


def _read_table(path: Path) -> tuple[np.ndarray, np.ndarray]:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    info = np.stack([table.column(c).to_numpy() for c in ("start", "scale", "x", "y", "path_length")], axis=1) \
        if table.num_rows else np.zeros((0, 5), np.float32)
    return info.astype(np.float32), read_descriptors(path)[1]


def _assemble(out: Path, video_id: str, parts: list[Path]) -> int:
    """The video's parquet from its range parts (in frame order); the parts are removed. Returns the
    number of trajectories."""
    tables = [_read_table(p) for p in parts]
    info = np.concatenate([t[0] for t in tables])
    desc = np.concatenate([t[1] for t in tables]) if tables else np.zeros((0, 0), np.float32)
    if len(info):
        write_parquet(out / parquet_name(video_id), video_id, info, desc)
    for p in parts:
        p.unlink(missing_ok=True)
    return int(len(info))


def extract_trajectories(rows: Sequence[dict], out: str | Path, spec: TrackSpec = TrackSpec(), *,
                         flow_method: str = "farneback", use_ray: bool = True, chunk_frames: int | None = 300,
                         size: tuple[int, int] | None = None,
                         progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Trajectories of every row (`video_id`, `path`; optional `pose_path`, and from a manifest
    `frames`, `width`, `height`, `flow_path`, `content_md5`) under `out`: one parquet per video.
    `chunk_frames`: longer videos are split into frame ranges (None: never); `size` (W, H): frames
    resized before tracking. Returns a report: per-video status (done / up to date / skipped /
    failed, with the reason), where the flow came from, counts, seconds."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    wanted = {"spec": asdict(spec), "flow_method": flow_method, "size": list(size) if size else None}
    spec_file = out / SPEC_NAME
    if spec_file.is_file() and json.loads(spec_file.read_text()) != wanted:
        for old in out.glob("*.parquet"):
            old.unlink()  # computed with another spec: would not mix with the new descriptors
    spec_file.write_text(json.dumps(wanted, indent=1))
    results, items, plans = [], [], {}
    for row in rows:
        vid = str(row["video_id"])
        target = out / parquet_name(vid)
        if target.is_file():
            results.append({"video_id": vid, "status": "up to date", "trajectories": None, "flow": "", "reason": "",
                            "seconds": 0.0})
            continue
        ranges = plan_ranges(row.get("frames"), chunk_frames)
        plans[vid] = ranges
        for start, end in ranges:
            name = parquet_name(vid) if end is None and start == 0 else part_name(vid, start, end)
            if end is not None and (out / name).is_file():
                continue  # this range is done (a resumed run)
            items.append({"video_id": vid, "path": str(row["path"]), "pose_path": row.get("pose_path"),
                          "out": str(out / name), "spec": asdict(spec), "flow_method": flow_method,
                          "start": start, "end": end, "size": list(size) if size else None,
                          "flow_path": row.get("flow_path"), "frames": row.get("frames"),
                          "source": row.get("content_md5") or None,
                          "video_size": [row["width"], row["height"]] if row.get("width") and row.get("height") else None})
    start_time = time.perf_counter()
    per_video: dict[str, list[dict]] = {vid: [] for vid in plans}
    if items:
        if use_ray:
            from actionops.platform.data import _from_items

            jobs = [{"job": json.dumps(item)} for item in items]
            done_rows = _from_items(jobs, max_blocks=len(jobs)).map(_range_task, num_cpus=1).iter_rows()
        else:
            done_rows = (_range_task({"job": json.dumps(item)}) for item in items)
        finished = 0
        waiting = {vid: sum(1 for i in items if i["video_id"] == vid) for vid in plans}
        for r in done_rows:
            per_video[r["video_id"]].append(r)
            waiting[r["video_id"]] -= 1
            if not waiting[r["video_id"]]:
                finished += 1
                if progress:
                    progress(finished, len(plans))
    for vid, ranges in plans.items():
        got = per_video[vid]
        failed = [r for r in got if r["status"] == "failed"]
        seconds = sum(r["seconds"] for r in got)
        flows = sorted({r["flow"] for r in got if r["flow"] in ("cache", "computed")})
        if failed:
            results.append({"video_id": vid, "status": "failed", "trajectories": 0, "flow": "/".join(flows),
                            "reason": failed[0]["reason"], "seconds": seconds})
            continue
        if ranges == [(0, None)]:
            count = got[0]["trajectories"] if got else 0
            if not count:
                (out / parquet_name(vid)).unlink(missing_ok=True)  # an empty table is no trajectory
        else:
            count = _assemble(out, vid, [out / part_name(vid, s, e) for s, e in ranges])
        if count:
            results.append({"video_id": vid, "status": "done", "trajectories": count, "flow": "/".join(flows),
                            "reason": "", "seconds": seconds})
        else:
            results.append({"video_id": vid, "status": "skipped", "trajectories": 0, "flow": "/".join(flows),
                            "reason": f"no trajectory of {spec.length} frames (too short or nothing moves)",
                            "seconds": seconds})
    seconds = time.perf_counter() - start_time
    counts = {s: sum(r["status"] == s for r in results) for s in ("done", "up to date", "skipped", "failed")}
    made = sum(r["trajectories"] or 0 for r in results)
    flow_counts = {k: sum(k in r["flow"].split("/") for r in results) for k in ("cache", "computed")}
    return {"videos": results, "counts": counts, "trajectories": made, "flow": flow_counts, "seconds": seconds,
            "out": str(out), "ranges": len(items)}
