"""Dense trajectories of a dataset's videos, one parquet file per video, sharded over videos on Ray
Data (one task per video) and resumable: a video whose parquet exists for the same spec is not
recomputed, and a changed spec starts over (its files would not mix with the new ones).

Per video: decode (PyAV, grayscale), flow from frame t to t+1 (the platform's flow functions, so
the same method as the flow stage), trajectories and descriptors (`tracks.dense_trajectories`),
optionally kept on people (`pose.json` boxes). A video too short for one trajectory is skipped and
counted; an undecodable one is reported with its reason; neither stops the others.
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


def _boxes(pose_path: str | None) -> dict[int, np.ndarray] | None:
    if not pose_path:
        return None
    from actionops.platform.layout import load_pose

    out: dict[int, list] = {}
    for rec in load_pose(pose_path):
        out.setdefault(int(rec["frame"]) - 1, []).append(rec["bbox"])  # pose.json frames are 1-based
    return {f: np.asarray(b, np.float32) for f, b in out.items()}


def video_trajectories(path: str, spec: TrackSpec, flow_method: str = "farneback",
                       pose_path: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(info (N, 5), descriptors (N, spec.dim)) of one video file."""
    import cv2

    from actionops.platform.flow import flow_sequence
    from actionops.platform.video import read_frames

    gray = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in read_frames(path)])
    if len(gray) < spec.length + 1:
        return np.zeros((0, 5), np.float32), np.zeros((0, spec.dim), np.float32)
    flow = np.stack(list(flow_sequence(gray, flow_method, first_is_zero=False)))
    return dense_trajectories(gray, flow, spec, boxes=_boxes(pose_path))


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


def _row_task(item: dict[str, Any]) -> dict[str, Any]:
    spec = TrackSpec(**item["spec"])
    out = Path(item["out"])
    tick = time.perf_counter()
    try:
        info, desc = video_trajectories(item["path"], spec, item["flow_method"], item.get("pose_path"))
    except Exception as exc:  # one bad video is a reason, not a crash of the others
        return {"video_id": item["video_id"], "status": "failed", "trajectories": 0,
                "reason": f"{type(exc).__name__}: {exc}", "seconds": time.perf_counter() - tick}
    if not len(info):
        return {"video_id": item["video_id"], "status": "skipped", "trajectories": 0,
                "reason": f"no trajectory of {spec.length} frames (too short or nothing moves)",
                "seconds": time.perf_counter() - tick}
    write_parquet(out, item["video_id"], info, desc)
    return {"video_id": item["video_id"], "status": "done", "trajectories": int(len(info)), "reason": "",
            "seconds": time.perf_counter() - tick}


def parquet_name(video_id: str) -> str:
    return video_id.replace("/", "__") + ".parquet"


def extract_trajectories(rows: Sequence[dict], out: str | Path, spec: TrackSpec = TrackSpec(), *,
                         flow_method: str = "farneback", use_ray: bool = True,
                         progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Trajectories of every row (`video_id`, `path`, optional `pose_path`) under `out`: one parquet
    per video. Returns a report: per-video status (done / up to date / skipped / failed, with the
    reason), counts, seconds."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    wanted = {"spec": asdict(spec), "flow_method": flow_method}
    spec_file = out / SPEC_NAME
    if spec_file.is_file() and json.loads(spec_file.read_text()) != wanted:
        for old in out.glob("*.parquet"):
            old.unlink()  # computed with another spec: would not mix with the new descriptors
    spec_file.write_text(json.dumps(wanted, indent=1))
    results, items = [], []
    for row in rows:
        target = out / parquet_name(str(row["video_id"]))
        if target.is_file():
            results.append({"video_id": row["video_id"], "status": "up to date", "trajectories": None, "reason": "",
                            "seconds": 0.0})
            continue
        items.append({"video_id": str(row["video_id"]), "path": str(row["path"]), "pose_path": row.get("pose_path"),
                      "out": str(target), "spec": asdict(spec), "flow_method": flow_method})
    start = time.perf_counter()
    if items:
        if use_ray:
            from actionops.platform.data import _from_items

            ds = _from_items(items, max_blocks=len(items)).map(_row_task, num_cpus=1)
            done = []
            for r in ds.iter_rows():
                done.append(r)
                if progress:
                    progress(len(done), len(items))
        else:
            done = []
            for item in items:
                done.append(_row_task(item))
                if progress:
                    progress(len(done), len(items))
        results.extend(done)
    seconds = time.perf_counter() - start
    counts = {s: sum(r["status"] == s for r in results) for s in ("done", "up to date", "skipped", "failed")}
    made = sum(r["trajectories"] or 0 for r in results)
    return {"videos": results, "counts": counts, "trajectories": made, "seconds": seconds, "out": str(out)}
