"""Pose and motion-capture sequences: read them, find them in a dataset, check them, concatenate them.

A sequence is a T x D float array (frames x channels). Files:
    .txt / .csv   numbers separated by commas (or whitespace), one frame per row; a first row that
                  is not numeric is taken as a header (CMU exp-map text files have none)
    .npy          a 2-D array
    .mat          MATLAB v4/v5 (scipy): the key `expmapchannels` (CMU subject 86), else the one 2-D
                  numeric array in the file
    pose.json     keypoint tracks of our video layouts: one sequence per person id, x/y of every
                  keypoint (normalised by the frame's box), frames where the person is absent dropped

Layouts (`detect_sequence_layout`):
    class-folders   DATASET/[train|val|test/]<label>/<file>   (CMU exp-map: train/<action>/<action>_N.txt)
    csv             DATASET/{train,val,test}.csv with columns path,label (as for videos)
    recordings      DATASET/<name>.mat|npy|csv + optional per-frame truth: <name>.labels.csv (one label a
                    frame, what `data concat` writes) or a Barbic ground-truth file
                    (`ground_truth/<name>_ground_truth.txt`, CMU subject 86; also `expmap/<name>.mat`)
    pose            a video layout whose videos carry pose.json (operating-room tracks)

Bad input never stops the other files: ragged rows, non-numeric cells, no frames left, a truth file
whose length does not match its recording are rejected with the file and the line named; NaN / inf
frames are dropped and counted (`nonfinite_dropped`).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from actionops.errors import DataError

SEQUENCE_SUFFIXES = (".txt", ".csv", ".npy", ".mat")
SPLITS = ("train", "val", "test")
LABELS_SUFFIX = ".labels.csv"


@dataclass(frozen=True)
class SequenceEntry:
    """One sequence file of a dataset (paths absolute)."""

    sequence_id: str  # path relative to the root without suffix (plus #person for pose tracks)
    path: str
    split: str
    label: str | None = None  # one label for the whole file (class folders, csv)
    truth_path: str | None = None  # per-frame truth (labels csv or Barbic ground truth)
    person: int | None = None  # pose tracks: the person id inside pose.json
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Segment:
    """A ground-truth segment: frames [start, end) with a label; the boundary at `start` is
    acceptable anywhere in [earliest, latest] (equal to start for exact truth)."""

    label: str
    start: int
    end: int
    earliest: int
    latest: int


# ----------------------------------------------------------------------------- reading
def read_sequence(path: str | Path, *, person: int | None = None) -> tuple[np.ndarray, int]:
    """(T x D float32 array with non-finite frames dropped, number of frames dropped)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist")
    suffix = path.suffix.lower()
    if path.name == "pose.json" or (suffix == ".json" and person is not None):
        array = _pose_track(path, person)
    elif suffix in (".txt", ".csv"):
        array = _read_text(path)
    elif suffix == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except ValueError as exc:
            raise DataError(f"{path} is not a plain numeric .npy array ({exc})") from None
    elif suffix == ".mat":
        array = _read_mat(path)
    else:
        raise DataError(f"{path}: unknown sequence format {suffix!r}", f"use one of {', '.join(SEQUENCE_SUFFIXES)}")
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.number):
        raise DataError(f"{path} holds a {array.ndim}-D {array.dtype} array, not frames x channels")
    array = array.astype(np.float32)
    finite = np.isfinite(array).all(axis=1)
    dropped = int((~finite).sum())
    array = array[finite]
    if len(array) == 0:
        raise DataError(f"{path} has no frame without NaN/inf" if dropped else f"{path} has no frames")
    return array, dropped


def _read_text(path: Path) -> np.ndarray:
    rows: list[list[float]] = []
    width = None
    with path.open(newline="") as fh:
        for number, line in enumerate(fh, start=1):
            text = line.strip()
            if not text:
                continue
            cells = [c for c in re.split(r"[,\s;]+", text) if c != ""]
            try:
                values = [float(c) for c in cells]
            except ValueError:
                if number == 1 and not rows:  # a header
                    continue
                bad = next(c for c in cells if not _is_float(c))
                raise DataError(f"{path}, line {number}: {bad!r} is not a number",
                                "sequence files hold numbers only (one frame per line)") from None
            if width is None:
                width = len(values)
            elif len(values) != width:
                raise DataError(f"{path}, line {number}: {len(values)} values where earlier lines have {width} (ragged rows)",
                                "every frame needs the same number of channels")
            rows.append(values)
    if not rows:
        raise DataError(f"{path} has no frames")
    return np.asarray(rows, dtype=np.float64)


def _is_float(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _read_mat(path: Path) -> np.ndarray:
    import scipy.io

    try:
        data = scipy.io.loadmat(path)
    except (ValueError, NotImplementedError, OSError) as exc:
        raise DataError(f"{path} is not a readable MATLAB file ({exc})", "save it with -v7 or older, or as .npy") from None
    if "expmapchannels" in data:
        return np.asarray(data["expmapchannels"])
    arrays = {k: v for k, v in data.items() if not k.startswith("__") and isinstance(v, np.ndarray)
              and v.ndim == 2 and np.issubdtype(v.dtype, np.number)}
    if len(arrays) != 1:
        raise DataError(f"{path}: expected one 2-D numeric array (or `expmapchannels`), found {sorted(arrays) or 'none'}",
                        "keep one frames x channels array per file")
    return next(iter(arrays.values()))


def _pose_track(path: Path, person: int | None) -> np.ndarray:
    records = json.loads(path.read_text())
    mine = sorted((r for r in records if person is None or r.get("id") == person), key=lambda r: r["frame"])
    frames = []
    for r in mine:
        kps = np.asarray(r.get("keypoints") or [], np.float64)
        if kps.size == 0:
            continue
        x0, y0, x1, y1 = r["bbox"]
        scale = max(x1 - x0, y1 - y0, 1e-6)
        xy = (kps[:, :2] - np.array([(x0 + x1) / 2, (y0 + y1) / 2])) / scale  # pose relative to the box
        frames.append(xy.reshape(-1))
    if not frames:
        raise DataError(f"{path}: person {person} has no keypoints", "pose tracks need `keypoints` per box")
    return np.asarray(frames)


def pose_persons(path: str | Path) -> list[int]:
    """Person ids with keypoints in a pose.json."""
    records = json.loads(Path(path).read_text())
    return sorted({int(r["id"]) for r in records if r.get("keypoints")})


# ----------------------------------------------------------------------------- ground truth
def read_ground_truth(path: str | Path, frames: int | None = None) -> list[Segment]:
    """Segments of a truth file: a per-frame labels CSV (`label` column, or one label per line) or
    a Barbic et al. ground-truth file (number of segments, then `<index> <description>` and
    `<earliest> <best> <latest>` per segment; the last gives only its end). Out-of-order
    earliest/latest are taken as [min, max]. With `frames`, a truth of another length is an error,
    except one frame off (an inclusive or 1-based last frame), which is stretched to the recording."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"ground truth {path} does not exist")
    if path.name.endswith(LABELS_SUFFIX) or path.suffix.lower() == ".csv":
        labels = _read_frame_labels(path)
        segments = segments_from_labels(labels)
    else:
        segments = _read_barbic(path)
    end = segments[-1].end
    if frames is not None and end != frames:
        if abs(end - frames) <= 1:  # an inclusive / 1-based last frame (8 of the 10 CMU subject-86 files): stretch it
            last = segments[-1]
            return [*segments[:-1], Segment(last.label, last.start, frames, last.earliest, last.latest)]
        raise DataError(f"ground truth {path} covers {end} frames but its recording has {frames}",
                        "the truth must label every frame of the recording it belongs to")
    return segments


def _read_frame_labels(path: Path) -> list[str]:
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        raise DataError(f"{path} is empty")
    col = rows[0].index("label") if "label" in rows[0] else None
    body = rows[1:] if col is not None else rows
    col = col or 0
    labels = []
    for number, row in enumerate(body, start=2 if rows[0] is not body[0] else 1):
        if len(row) <= col or not row[col].strip():
            raise DataError(f"{path}, line {number}: no label")
        labels.append(row[col].strip())
    return labels


def _read_barbic(path: Path) -> list[Segment]:
    lines = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
    try:
        count = int(lines[0])
        segments = []
        start, i = 0, 1
        for k in range(count):
            _, _, label = lines[i].partition(" ")
            numbers = [int(float(v)) for v in lines[i + 1].split()]
            i += 2
            if k == count - 1:
                end, window = numbers[-1], (numbers[-1], numbers[-1])
            else:
                end, window = (sorted(numbers)[1], (min(numbers), max(numbers))) if len(numbers) == 3 else (numbers[0], (numbers[0], numbers[0]))
            segments.append((label.strip() or f"segment{k + 1}", start, end, window))
            start = end
    except (ValueError, IndexError):
        raise DataError(f"{path} is not a ground-truth file (number of segments, then label and "
                        "earliest/best/latest frame lines)") from None
    # the acceptable window belongs to the boundary at the START of the next segment
    out = []
    for k, (label, s, e, _) in enumerate(segments):
        earliest, latest = (segments[k - 1][3] if k > 0 else (s, s))
        out.append(Segment(label, s, e, earliest, latest))
    return out


def segments_from_labels(labels: Sequence[Any]) -> list[Segment]:
    """Runs of equal labels as segments with exact boundaries."""
    out: list[Segment] = []
    start = 0
    for i in range(1, len(labels) + 1):
        if i == len(labels) or labels[i] != labels[start]:
            out.append(Segment(str(labels[start]), start, i, start, start))
            start = i
    return out


def frame_labels(segments: Sequence[Segment]) -> list[str]:
    return [seg.label for seg in segments for _ in range(seg.end - seg.start)]


def normalise_label(text: str) -> str:
    """Free-text truth labels compared loosely: lower case, `walking`/`walk` alike, spaces -> _."""
    word = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return re.sub(r"(ing|s)$", "", word) if len(word) > 5 else word


# ----------------------------------------------------------------------------- layouts
def detect_sequence_layout(root: str | Path) -> str | None:
    """The sequence layout of `root`, or None when it holds no sequence files."""
    root = Path(root)
    if not root.is_dir():
        return None
    if any((root / f"{s}.csv").is_file() for s in SPLITS):
        rows = _csv_rows(next(root / f"{s}.csv" for s in SPLITS if (root / f"{s}.csv").is_file()))
        if rows and Path(rows[0].get("path", "")).suffix.lower() in SEQUENCE_SUFFIXES:
            return "csv"
    if _sequence_files(root) or (root / "expmap").is_dir():
        return "recordings"
    for folder in [root, *[root / s for s in SPLITS if (root / s).is_dir()]]:
        if any(d.is_dir() and _sequence_files(d) for d in folder.iterdir()):
            return "class-folders"
    return None


def is_sequence_dataset(root: str | Path) -> bool:
    """True when `root` holds sequence files and no videos in any video layout."""
    from actionops.platform.layout import detect_layout

    found = detect_sequence_layout(root)
    if found == "csv":  # CSVs naming sequence files (a video CSV layout names videos)
        return True
    try:
        detect_layout(root)
        return False
    except DataError:
        return found is not None


def _sequence_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SEQUENCE_SUFFIXES
                  and not p.name.endswith(LABELS_SUFFIX) and p.stem not in (*SPLITS, "rejected", "labels"))


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def list_sequences(root: str | Path, layout: str = "auto") -> tuple[str, list[SequenceEntry], list[tuple[str, str]]]:
    """(layout, entries, rejected (path, reason)) of a sequence dataset; nothing is read but names."""
    root = Path(root).resolve()
    if layout == "auto":
        layout = detect_sequence_layout(root) or ""
    entries: list[SequenceEntry] = []
    rejected: list[tuple[str, str]] = []
    if layout == "class-folders":
        tops = [(s, root / s) for s in SPLITS if (root / s).is_dir()] or [("train", root)]
        for split, top in tops:
            for label_dir in sorted(d for d in top.iterdir() if d.is_dir()):
                for f in _sequence_files(label_dir):
                    entries.append(SequenceEntry(_sid(root, f), str(f), split, label_dir.name))
    elif layout == "csv":
        for split in SPLITS:
            table = root / f"{split}.csv"
            if not table.is_file():
                continue
            for number, row in enumerate(_csv_rows(table), start=2):
                rel = (row.get("path") or "").strip()
                f = (root / rel).resolve()
                if not rel or root not in f.parents:
                    rejected.append((f"{table}:{number}", f"{table}, line {number}: path {rel!r} is empty or outside the dataset"))
                elif not f.is_file():
                    rejected.append((str(f), f"{table}, line {number}: {rel} does not exist"))
                else:
                    entries.append(SequenceEntry(_sid(root, f), str(f), split, (row.get("label") or "").strip() or None))
    elif layout == "recordings":
        folder = root / "expmap" if (root / "expmap").is_dir() else root
        for f in _sequence_files(folder):
            truth = _truth_for(root, f)
            entries.append(SequenceEntry(_sid(root, f), str(f), "test", None, str(truth) if truth else None))
    elif layout == "pose":
        from actionops.platform.layout import list_entries

        _, videos, _ = list_entries(root)
        for v in videos:
            if v.pose_path and Path(v.pose_path).is_file():
                for person in pose_persons(v.pose_path):
                    entries.append(SequenceEntry(f"{v.video_id}#{person}", v.pose_path, v.split, v.label, person=person))
    else:
        raise DataError(f"no sequence files found in {root}",
                        "expected class folders of .txt/.csv/.npy/.mat files (optionally under train/ and test/), "
                        "train/val/test.csv naming them, or recordings (with <name>.labels.csv or ground_truth/)")
    if not entries and not rejected:
        raise DataError(f"layout {layout!r} found no sequences in {root}")
    return layout, entries, rejected


def _sid(root: Path, path: Path) -> str:
    return str(path.relative_to(root).with_suffix(""))


def _truth_for(root: Path, recording: Path) -> Path | None:
    for candidate in (recording.with_name(recording.stem + LABELS_SUFFIX),
                      root / "ground_truth" / f"{recording.stem}_ground_truth.txt",
                      recording.parent / "ground_truth" / f"{recording.stem}_ground_truth.txt"):
        if candidate.is_file():
            return candidate
    return None


# ----------------------------------------------------------------------------- preprocessing
@dataclass(frozen=True)
class Normaliser:
    """Per-channel standardisation fitted on training sequences, with constant channels dropped;
    stored with a model so new data is transformed the same way."""

    keep: tuple[int, ...]  # channel indices kept (std >= min_std on the training data)
    mean: tuple[float, ...]
    std: tuple[float, ...]
    dims: int  # channels of the raw data

    @classmethod
    def fit(cls, sequences: Sequence[np.ndarray], min_std: float = 1e-4) -> Normaliser:
        dims = {s.shape[1] for s in sequences}
        if len(dims) != 1:
            raise DataError(f"training sequences have different channel counts: {sorted(dims)}",
                            "every sequence of a dataset needs the same channels")
        stacked = np.concatenate(sequences).astype(np.float64)
        std = stacked.std(0)
        keep = np.flatnonzero(std >= min_std)
        if keep.size == 0:
            raise DataError("every channel is constant on the training sequences", "nothing to learn from")
        return cls(tuple(int(k) for k in keep), tuple(float(v) for v in stacked.mean(0)[keep]),
                   tuple(float(v) for v in std[keep]), int(stacked.shape[1]))

    def __call__(self, x: np.ndarray, source: str = "data") -> np.ndarray:
        if x.shape[1] != self.dims:
            raise DataError(f"{source} has {x.shape[1]} channels, the model was trained on {self.dims}",
                            "use data recorded with the same channels (same skeleton / format)")
        return ((x[:, list(self.keep)] - np.asarray(self.mean)) / np.asarray(self.std)).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"keep": list(self.keep), "mean": list(self.mean), "std": list(self.std), "dims": self.dims}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Normaliser:
        return cls(tuple(d["keep"]), tuple(d["mean"]), tuple(d["std"]), int(d["dims"]))


def subsample(x: np.ndarray, every: int) -> np.ndarray:
    """Keep every `every`-th frame (the reference keeps every second)."""
    return x[:: max(1, int(every))]


# ----------------------------------------------------------------------------- concatenation
def concat_recording(entries: Sequence[SequenceEntry], *, actions: int, per_action: int, seed: int,
                     out: str | Path, name: str = "recording") -> dict[str, Any]:
    """Write a test recording: `per_action` instances of each of `actions` randomly chosen labels,
    in random order, as `<out>/<name>.npy` with `<out>/<name>.labels.csv` (one label a frame).
    Instances of a label are drawn without replacement while there are enough files (then with).
    `out` is a dataset the sequence commands accept (recordings layout)."""
    rng = np.random.default_rng(seed)
    by_label: dict[str, list[SequenceEntry]] = {}
    for e in entries:
        if e.label:
            by_label.setdefault(e.label, []).append(e)
    labels = sorted(by_label)
    if actions > len(labels):
        raise DataError(f"--actions {actions} but the dataset has {len(labels)} labels ({', '.join(labels)})",
                        f"ask for at most {len(labels)}")
    chosen = [labels[i] for i in rng.choice(len(labels), size=actions, replace=False)]
    pieces = []
    for label in chosen:
        files = by_label[label]
        picks = rng.choice(len(files), size=per_action, replace=per_action > len(files))
        pieces += [(label, files[int(i)]) for i in picks]
    order = rng.permutation(len(pieces))
    arrays, truth, sources = [], [], []
    dims = None
    for i in order:
        label, entry = pieces[int(i)]
        x, _ = read_sequence(entry.path, person=entry.person)
        if dims is not None and x.shape[1] != dims:
            raise DataError(f"{entry.path} has {x.shape[1]} channels, earlier pieces {dims}")
        dims = x.shape[1]
        arrays.append(x)
        truth += [label] * len(x)
        sources.append({"label": label, "path": entry.path, "frames": int(len(x))})
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / f"{name}.npy", np.concatenate(arrays))
    with (out / f"{name}{LABELS_SUFFIX}").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["frame", "label"])
        writer.writerows(enumerate(truth))
    summary = {"recording": str(out / f"{name}.npy"), "frames": len(truth), "actions": chosen,
               "per_action": per_action, "seed": seed, "pieces": sources}
    (out / f"{name}.json").write_text(json.dumps(summary, indent=1))
    return summary


# ----------------------------------------------------------------------------- index (Ray Data)
def _probe_sequence(row: dict[str, Any]) -> dict[str, Any]:
    from actionops.platform.data import annotation_md5, file_md5

    out = {**row, "frames": 0, "dims": 0, "nonfinite_dropped": 0, "content_md5": "", "size_bytes": 0, "mtime_ns": 0,
           "annotation_md5": "", "error": None}
    try:
        x, dropped = read_sequence(row["path"], person=row.get("person"))
        out.update(frames=int(len(x)), dims=int(x.shape[1]), nonfinite_dropped=dropped)
        if row.get("truth_path"):
            read_ground_truth(row["truth_path"], frames=len(x) + dropped)
        stat = Path(row["path"]).stat()
        out.update(content_md5=file_md5(row["path"]), size_bytes=int(stat.st_size), mtime_ns=int(stat.st_mtime_ns),
                   annotation_md5=annotation_md5(row))
    except DataError as exc:
        out["error"] = exc.message + (f" ({exc.hint})" if exc.hint else "")
    except Exception as exc:  # an unreadable file: OSError, PermissionError, ...
        out["error"] = f"{row['path']}: {type(exc).__name__}: {exc}"
    return out


def index_sequences(root: str | Path, *, layout: str = "auto", out: str | Path | None = None,
                    progress: Any = None) -> Any:
    """Find and read every sequence of `root` on Ray Data (one task per file); write the manifest
    (video_id = sequence id, frames, dims, label, split, truth_path, content digests) and
    rejected.csv. Needs a Ray session. Returns the same `IndexResult` as video indexing."""
    import pandas as pd

    from actionops.platform.data import MANIFEST_NAME, REJECTED_NAME, IndexResult, _atomic, _from_items
    from actionops.platform.layout import Rejected

    root = Path(root).resolve()
    layout, entries, bad = list_sequences(root, layout)
    rejected = [Rejected(path, reason) for path, reason in bad]
    items = [{"video_id": e.sequence_id, "path": e.path, "split": e.split, "label": e.label, "truth_path": e.truth_path,
              "person": e.person} for e in entries]
    rows = []
    if items:
        done = 0
        for row in _from_items(items).map(_probe_sequence).iter_rows():
            done += 1
            if progress:
                progress(done, len(items))
            if row["error"]:
                rejected.append(Rejected(row["path"], row["error"]))
            else:
                rows.append({k: v for k, v in row.items() if k != "error"})
    order = {item["video_id"]: i for i, item in enumerate(items)}
    rows.sort(key=lambda r: order[r["video_id"]])
    columns = ["video_id", "path", "split", "label", "frames", "dims", "nonfinite_dropped", "truth_path", "person",
               "content_md5", "size_bytes", "mtime_ns", "annotation_md5"]
    manifest = pd.DataFrame(rows, columns=columns)
    manifest_path = Path(out) if out else root / MANIFEST_NAME
    manifest_path.parent.mkdir(parents=True, exist_ok=True)
    rejected_path = manifest_path.with_name(REJECTED_NAME)
    _atomic(manifest_path, lambda tmp: manifest.to_parquet(tmp, index=False))
    _atomic(rejected_path, lambda tmp: pd.DataFrame([{"path": r.path, "reason": r.reason} for r in rejected],
                                                    columns=["path", "reason"]).to_csv(tmp, index=False))
    _atomic(manifest_path.with_suffix(".json"),
            lambda tmp: tmp.write_text(json.dumps({"layout": f"sequences/{layout}", "root": str(root), "kind": "sequences"})))
    return IndexResult(f"sequences/{layout}", manifest, rejected, manifest_path, rejected_path)
