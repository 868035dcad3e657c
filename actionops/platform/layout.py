"""Dataset layouts: find the videos of a dataset folder with their split, label and side files.

Layouts (`../shared/handbook/methods.md`):
    or             DATASET/{train,test}/<video>.mp4 + <video>/json/pose.json, coor.npy, flow.npy,
                   json/annotation_clustering.json (operating-room method)
    csv            DATASET/{train,val,test}.csv with columns path,label (paths relative to DATASET;
                   extra columns are kept)
    class-folders  DATASET/<label>/<video>.mp4
    flat           DATASET/<video>.mp4 (no labels)
`detect_layout` picks one; `list_entries` returns one `VideoEntry` per video plus the entries it
had to reject (path, reason) — nothing here opens a video.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from actionops.errors import DataError

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
LAYOUTS = ("or", "csv", "class-folders", "flat")
CSV_SPLITS = ("train", "val", "test")
OR_SPLITS = ("train", "test", "val")


@dataclass(frozen=True)
class VideoEntry:
    """One video of a dataset and the files that go with it (paths absolute, strings)."""

    video_id: str  # path relative to the dataset root, without suffix: unique per dataset
    path: str
    split: str
    label: str | None = None
    pose_path: str | None = None
    coor_path: str | None = None
    annotation_path: str | None = None
    flow_path: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Rejected:
    path: str
    reason: str


def _videos_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)


def detect_layout(root: str | Path) -> str:
    """Guess the layout of `root`; raise DataError naming what was looked for when none fits."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"dataset folder {root} does not exist", "pass the folder that holds the videos")
    if any((root / f"{split}.csv").is_file() for split in CSV_SPLITS):
        return "csv"
    if any((root / s).is_dir() and _videos_in(root / s) for s in OR_SPLITS):
        return "or"
    if any(d.is_dir() and _videos_in(d) for d in root.iterdir()):
        return "class-folders"
    if _videos_in(root):
        return "flat"
    raise DataError(
        f"no videos found in {root} in any known layout",
        "expected train/val/test.csv, train/ and test/ folders of videos, one folder per class, "
        f"or videos directly in the folder ({', '.join(VIDEO_SUFFIXES)}); or pass --layout",
    )


def list_entries(root: str | Path, layout: str = "auto") -> tuple[str, list[VideoEntry], list[Rejected]]:
    """The layout used, the videos found, and the rows rejected (unsafe or missing paths)."""
    root = Path(root).resolve()
    if layout == "auto":
        layout = detect_layout(root)
    if layout not in LAYOUTS:
        raise DataError(f"unknown layout {layout!r}", f"choose one of auto, {', '.join(LAYOUTS)}")
    if not root.is_dir():
        raise DataError(f"dataset folder {root} does not exist")
    lister = {"or": _list_or, "csv": _list_csv, "class-folders": _list_class_folders, "flat": _list_flat}
    entries, rejected = lister[layout](root)
    entries = _unique_ids(root, entries)
    if not entries and not rejected:
        raise DataError(f"layout {layout!r} found no videos in {root}", "check the folder or pass --layout")
    return layout, entries, rejected


def _unique_ids(root: Path, entries: list[VideoEntry]) -> list[VideoEntry]:
    """Videos that differ only by suffix (clip.mp4, clip.avi) keep the suffix in their id."""
    from collections import Counter
    from dataclasses import replace

    counts = Counter(e.video_id for e in entries)
    out = []
    for e in entries:
        if counts[e.video_id] > 1:
            vid = Path(e.path).relative_to(root).as_posix()
            flow = e.flow_path if layout_keeps_flow_beside(e) else str(root / "flow" / f"{vid}.npy")
            e = replace(e, video_id=vid, flow_path=flow)
        out.append(e)
    return out


def layout_keeps_flow_beside(entry: VideoEntry) -> bool:
    """Operating-room videos keep flow in their own folder (<video>/flow.npy)."""
    return entry.pose_path is not None


def _rel_id(root: Path, path: Path) -> str:
    return path.relative_to(root).with_suffix("").as_posix()


def _list_or(root: Path) -> tuple[list[VideoEntry], list[Rejected]]:
    entries = []
    for split in OR_SPLITS:
        folder = root / split
        if not folder.is_dir():
            continue
        for video in _videos_in(folder):
            meta = video.with_suffix("")
            entries.append(VideoEntry(
                video_id=_rel_id(root, video), path=str(video), split=split,
                pose_path=str(meta / "json" / "pose.json"),
                coor_path=_if_file(meta / "coor.npy"),
                annotation_path=_if_file(meta / "json" / "annotation_clustering.json"),
                flow_path=str(meta / "flow.npy"),
            ))
    return entries, []


def _list_class_folders(root: Path) -> tuple[list[VideoEntry], list[Rejected]]:
    entries = []
    for folder in sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")):
        for video in _videos_in(folder):
            entries.append(VideoEntry(video_id=_rel_id(root, video), path=str(video), split="all",
                                      label=folder.name, flow_path=_flow_shard(root, video)))
    return entries, []


def _list_flat(root: Path) -> tuple[list[VideoEntry], list[Rejected]]:
    entries = [VideoEntry(video_id=_rel_id(root, v), path=str(v), split="all", flow_path=_flow_shard(root, v))
               for v in _videos_in(root)]
    return entries, []


def _list_csv(root: Path) -> tuple[list[VideoEntry], list[Rejected]]:
    entries, rejected, seen = [], [], set()
    for split in CSV_SPLITS:
        table = root / f"{split}.csv"
        if not table.is_file():
            continue
        with open(table, newline="") as fh:
            reader = csv.DictReader(fh)
            missing = {"path", "label"} - set(reader.fieldnames or [])
            if missing:
                raise DataError(f"{table} lacks column(s) {', '.join(sorted(missing))}",
                                "the CSV layout needs a header with path,label")
            for line, row in enumerate(reader, start=2):
                where = f"{table.name} line {line}"
                raw = (row.get("path") or "").strip()
                video, reason = _safe_path(root, raw)
                if reason:
                    rejected.append(Rejected(raw or where, f"{where}: {reason}"))
                    continue
                if video in seen:
                    rejected.append(Rejected(raw, f"{where}: listed twice (first listing kept)"))
                    continue
                seen.add(video)
                extra = {k: v for k, v in row.items() if k not in ("path", "label") and k}
                entries.append(VideoEntry(video_id=_rel_id(root, video), path=str(video), split=split,
                                          label=(row.get("label") or "").strip() or None,
                                          flow_path=_flow_shard(root, video), extra=extra))
    return entries, rejected


def _safe_path(root: Path, raw: str) -> tuple[Path | None, str | None]:
    """Resolve a CSV path inside `root`; reasons a person understands when it is not usable."""
    if not raw:
        return None, "empty path"
    if Path(raw).is_absolute():
        return None, f"absolute path {raw} is not allowed; paths must be relative to the dataset root"
    resolved = (root / raw).resolve()
    if not resolved.is_relative_to(root):
        return None, f"path {raw} points outside the dataset root {root}"
    if not resolved.is_file():
        return None, f"file {raw} not found under {root}"
    return resolved, None


def _flow_shard(root: Path, video: Path) -> str:
    """Where flow of a video goes outside the operating-room layout: DATASET/flow/<id>.npy."""
    return str(root / "flow" / video.relative_to(root).with_suffix(".npy"))


def _if_file(path: Path) -> str | None:
    return str(path) if path.is_file() else None


# ----------------------------------------------------------------------------- pose tracks
def load_pose(path: str | Path, *, width: int | None = None, height: int | None = None) -> list[dict]:
    """Read a `pose.json` into records `{"frame": 0-based int, "id": int, "bbox": [x1,y1,x2,y2]}`.

    Accepts 1-based `frame` or 0-based `n_frame`, and 4- or 5-value boxes (5th = confidence,
    dropped). With `width`/`height`, boxes are clipped to the frame and a box wholly outside it
    raises. Raises DataError with the file and the first bad record otherwise.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"missing pose file {path}", "each video needs <video>/json/pose.json with person boxes")
    try:
        records = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} is not valid JSON ({exc})", "regenerate it with your detector/tracker") from None
    if not isinstance(records, list):
        raise DataError(f"{path} must hold a list of person records, got {type(records).__name__}")
    out = []
    for i, rec in enumerate(records):
        try:
            out.append(_pose_record(rec, width, height))
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{path}: record {i} is malformed: {exc}",
                            'expected {"frame": 1-based int (or "n_frame": 0-based), "id": int, "bbox": [x1,y1,x2,y2(,score)]}') from None
    return out


def _pose_record(rec: dict, width: int | None, height: int | None) -> dict:
    if "frame" in rec:
        frame = int(rec["frame"]) - 1
    elif "n_frame" in rec:
        frame = int(rec["n_frame"])
    else:
        raise KeyError("no 'frame' or 'n_frame'")
    if frame < 0:
        raise ValueError(f"frame index {frame} is negative")
    box = [float(v) for v in rec["bbox"]]
    if len(box) not in (4, 5):
        raise ValueError(f"bbox has {len(box)} values, expected 4 or 5")
    x1, y1, x2, y2 = box[:4]
    if not (x2 > x1 and y2 > y1):
        raise ValueError(f"bbox {box[:4]} has no area (need x2 > x1 and y2 > y1)")
    if width is not None and height is not None:
        if x2 <= 0 or y2 <= 0 or x1 >= width or y1 >= height:
            raise ValueError(f"bbox {box[:4]} at frame {frame} lies outside the {width}x{height} frame")
        x1, y1, x2, y2 = max(x1, 0.0), max(y1, 0.0), min(x2, float(width)), min(y2, float(height))
    return {"frame": frame, "id": int(rec["id"]), "bbox": [x1, y1, x2, y2]}


def video_files(inputs) -> list[Path]:
    """The videos named by `inputs` (files, or folders searched recursively), in order; a missing
    path or no video at all is a clear error (what `predict` commands take)."""
    files: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            files += sorted(p for p in item.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
        elif item.exists():
            files.append(item)
        else:
            raise DataError(f"{item} does not exist", "pass video files or folders that hold videos")
    if not files:
        raise DataError(f"no videos found in {', '.join(map(str, inputs))}", f"video suffixes: {', '.join(VIDEO_SUFFIXES)}")
    return files
