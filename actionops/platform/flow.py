"""Optical flow (OpenCV Farneback or DIS) per video, in frame-range chunks, written atomically.

Flow of frame i is the flow from frame i-1 to frame i, (H, W, 2) float32 in pixels (dx, dy);
frame 0 is all zeros, as the operating-room reference stores it. A chunk [start, end) decodes
from start-1 (one overlapping frame), so chunked and whole-video flow are the same numbers.

    plan_chunks(frames=1000, chunk=300) -> [(0, 300), (300, 600), (600, 900), (900, 1000)]
    compute_chunk(video, flow_path, 300, 600, spec) -> part file <flow>.part-<spec tag>-00000300-00000600.npy
    assemble(flow_path, chunks, spec) -> <flow>.npy + <flow>.json (the spec; written last = done)
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from actionops.errors import whole_or_nothing

# The reference tool's Farneback parameters.
FARNEBACK_PARAMS = dict(pyr_scale=0.5, levels=3, winsize=15, iterations=3, poly_n=5, poly_sigma=1.2, flags=0)
DIS_PRESETS = {"ultrafast": 0, "fast": 1, "medium": 2}
METHODS = ("farneback", "dis")


@dataclass(frozen=True)
class FlowSpec:
    """What a flow file holds; part files and finished files are only reused for the same spec."""

    method: str = "farneback"
    dis_preset: str = "fast"
    size: tuple[int, int] | None = None  # (W, H) or the video's own size
    dtype: str = "float32"
    source: str | None = None  # md5 of the video's bytes (the manifest's content_md5): flow of other bytes is not reused

    @classmethod
    def from_dict(cls, data: dict) -> FlowSpec:
        return cls(**{**data, "size": tuple(data["size"]) if data.get("size") else None})

    @property
    def tag(self) -> str:
        return hashlib.sha1(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:8]


def flow_function(method: str, dis_preset: str = "fast"):
    """A callable (prev_gray, next_gray) -> (H, W, 2) float32 flow for `method`."""
    import cv2

    if method == "farneback":
        def farneback(prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
            return cv2.calcOpticalFlowFarneback(prev, nxt, None, **FARNEBACK_PARAMS)

        return farneback
    if method == "dis":
        dis = cv2.DISOpticalFlow_create(DIS_PRESETS[dis_preset])

        def dis_flow(prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
            return dis.calc(prev, nxt, None)

        return dis_flow
    raise ValueError(f"unknown flow method {method!r}; choose one of {', '.join(METHODS)}")


def flow_sequence(gray_frames: Iterable[np.ndarray], method: str, dis_preset: str = "fast",
                  first_is_zero: bool = True) -> Iterator[np.ndarray]:
    """Flow for each frame of a sequence of grayscale frames.

    With `first_is_zero` the first frame yields zeros (it starts the video); without it the first
    frame only primes the pair (it is the overlap frame of a chunk) and yields nothing.
    """
    calc = flow_function(method, dis_preset)
    prev = None
    for frame in gray_frames:
        if prev is None:
            if first_is_zero:
                yield np.zeros((*frame.shape, 2), np.float32)
        else:
            yield calc(prev, frame)
        prev = frame


def plan_chunks(frames: int, chunk_frames: int) -> list[tuple[int, int]]:
    """Split [0, frames) into ranges of at most `chunk_frames` (the last may be shorter)."""
    chunk_frames = max(2, chunk_frames)
    return [(s, min(s + chunk_frames, frames)) for s in range(0, frames, chunk_frames)]


def part_path(flow_path: str | Path, start: int, end: int, spec: FlowSpec) -> Path:
    flow_path = Path(flow_path)
    return flow_path.with_name(f"{flow_path.stem}.part-{spec.tag}-{start:08d}-{end:08d}.npy")


def spec_path(flow_path: str | Path) -> Path:
    """The sidecar JSON that records the FlowSpec of a finished flow file."""
    return Path(flow_path).with_suffix(".json")


def compute_chunk(
    video: str | Path,
    flow_path: str | Path,
    start: int,
    end: int,
    spec: FlowSpec = FlowSpec(),
) -> dict:
    """Flow of frames [start, end) of `video` into its part file (atomic); skip an existing part.

    Returns {"frames": frames computed (0 when the part existed), "computed": bool}. Uses one OpenCV thread: parallelism comes from
    running chunks side by side, and Farneback is faster single-threaded.
    """
    import cv2

    from actionops.platform.video import decode_range

    cv2.setNumThreads(1)
    target = part_path(flow_path, start, end, spec)
    if target.exists():
        return {"frames": 0, "computed": False}
    decode_from = max(0, start - 1)
    gray = (frame for _, frame in decode_range(video, decode_from, end, size=spec.size, gray=True))
    # each flow frame is written to a temporary .npy as it comes (no list of the chunk, no
    # np.stack copy: chunks running side by side share the memory bandwidth), renamed when complete
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    target.parent.mkdir(parents=True, exist_ok=True)
    count, dtype = 0, np.dtype(spec.dtype)
    with whole_or_nothing(target, tmp):
        with open(tmp, "wb") as fh:
            for flow in flow_sequence(gray, spec.method, spec.dis_preset, first_is_zero=start == 0):
                if count == 0:
                    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False,
                              "shape": (end - start, *flow.shape)}
                    np.lib.format.write_array_header_1_0(fh, header)
                if count < end - start:
                    fh.write(np.ascontiguousarray(flow, dtype=dtype).tobytes())  # not tofile: its short write has no errno
                count += 1
        if count != end - start:
            raise RuntimeError(f"{video}: decoded {count} flow frames for range [{start}, {end})")
        os.replace(tmp, target)
    return {"frames": end - start, "computed": True}


def assemble(flow_path: str | Path, chunks: list[tuple[int, int]], spec: FlowSpec = FlowSpec()) -> Path:
    """Concatenate the part files of `chunks` into `flow_path` without holding it in memory,
    record `spec` beside it, and delete the parts."""
    flow_path = Path(flow_path)
    spec_path(flow_path).unlink(missing_ok=True)  # the sidecar is written last: it marks "done"
    if len(chunks) == 1:  # one part is the whole video: rename, no copy
        start, end = chunks[0]
        os.replace(part_path(flow_path, start, end, spec), flow_path)
        _write_sidecar(flow_path, {**asdict(spec), "frames": end - start})
        return flow_path
    parts = [np.load(part_path(flow_path, s, e, spec), mmap_mode="r") for s, e in chunks]
    total = sum(p.shape[0] for p in parts)
    tmp = flow_path.with_name(f".{flow_path.name}.tmp{os.getpid()}")
    with whole_or_nothing(flow_path, tmp):
        # written with plain writes, not a memory map: a full disk is an OSError here, not a SIGBUS
        with open(tmp, "wb") as fh:
            header = {"descr": np.lib.format.dtype_to_descr(parts[0].dtype), "fortran_order": False,
                      "shape": (total, *parts[0].shape[1:])}
            np.lib.format.write_array_header_1_0(fh, header)
            for part in parts:
                for start in range(0, part.shape[0], 64):
                    fh.write(np.ascontiguousarray(part[start:start + 64]).tobytes())
        del parts
        os.replace(tmp, flow_path)
        _write_sidecar(flow_path, {**asdict(spec), "frames": total})
    for s, e in chunks:
        part_path(flow_path, s, e, spec).unlink(missing_ok=True)
    return flow_path


def _write_sidecar(flow_path: Path, spec: dict) -> None:
    """The sidecar that marks `flow_path` finished, whole or not at all."""
    sidecar = spec_path(flow_path)
    tmp = sidecar.with_name(f".{sidecar.name}.tmp{os.getpid()}")
    with whole_or_nothing(sidecar, tmp):
        tmp.write_text(json.dumps(spec))
        os.replace(tmp, sidecar)


def remove_leftovers(flow_path: str | Path, keep: FlowSpec | None) -> None:
    """Delete temp files a killed writer left for `flow_path`, and its part files except those
    of `keep` (None: all of them)."""
    flow_path = Path(flow_path)
    if not flow_path.parent.is_dir():
        return
    for path in flow_path.parent.glob(f".{flow_path.stem}*.tmp*"):
        path.unlink(missing_ok=True)
    for path in flow_path.parent.glob(f"{flow_path.stem}.part-*.npy"):
        if keep is None or not path.name.startswith(f"{flow_path.stem}.part-{keep.tag}-"):
            path.unlink(missing_ok=True)


def is_complete(flow_path: str | Path, frames: int, spec: FlowSpec) -> bool:
    """True when `flow_path` holds finished flow of `frames` frames computed with `spec`."""
    flow_path, sidecar = Path(flow_path), spec_path(flow_path)
    if not (flow_path.is_file() and sidecar.is_file()):
        return False
    try:
        recorded = json.loads(sidecar.read_text())
        arr = np.load(flow_path, mmap_mode="r")
    except (ValueError, OSError):
        return False
    wanted = {**asdict(spec), "frames": frames}
    recorded["size"] = tuple(recorded["size"]) if recorded.get("size") else None
    return recorded == wanted and arr.shape[0] == frames and arr.dtype == np.dtype(spec.dtype)


def finished_flow(flow_path: str | Path | None, frames: int | None, method: str, size: tuple[int, int] | None,
                  source: str | None = None, dis_preset: str = "fast") -> np.ndarray | None:
    """A finished flow file (memory-mapped, (frames, H, W, 2)) when it was computed with `method` at
    `size` (None: the video's own) from these video bytes (`source`, the manifest's content_md5, when
    both sides know it); else None. Consumers other than the flow stage read flow through this."""
    if not flow_path or not frames:
        return None
    try:
        recorded = json.loads(spec_path(flow_path).read_text())
        arr = np.load(flow_path, mmap_mode="r")
    except (OSError, ValueError):
        return None
    same = (recorded.get("method") == method and (method != "dis" or recorded.get("dis_preset") == dis_preset)
            and (tuple(recorded["size"]) if recorded.get("size") else None) == (tuple(size) if size else None)
            and int(recorded.get("frames", -1)) == int(frames) and arr.shape[0] == int(frames) and arr.ndim == 4
            and (not source or not recorded.get("source") or recorded["source"] == source))
    return arr if same else None


def parse_size(text: str | None) -> tuple[int, int] | None:
    """'320x240' -> (320, 240); None/'' -> None (keep the video's size)."""
    if not text:
        return None
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match:
        raise ValueError(f"size {text!r} is not WxH, e.g. 320x240")
    return int(match.group(1)), int(match.group(2))


def flow_histogram_features(flow: np.ndarray, grid: int = 4, bins: int = 8, normalize: bool = True,
                            unsigned: bool = False) -> np.ndarray:
    """(T, H, W, 2) flow -> (grid*grid*bins,) descriptor (sqrt + L2 normalised unless told not to).

    Orientation bins cover 360 degrees, or 180 with `unsigned` (a vector and its opposite share a
    bin: the up and down halves of a wave, or the two steps of a jump, give the same histogram,
    so short windows of a periodic action look alike whatever their phase)."""
    flow = np.asarray(flow, dtype=np.float32)
    t, h, w, _ = flow.shape
    mag = np.linalg.norm(flow, axis=-1)
    angle = np.arctan2(flow[..., 1], flow[..., 0])
    ang = np.mod(angle, np.pi) / np.pi * bins if unsigned else (angle + np.pi) / (2 * np.pi) * bins
    idx = np.clip(ang.astype(int), 0, bins - 1)
    ys = np.linspace(0, h, grid + 1).astype(int)
    xs = np.linspace(0, w, grid + 1).astype(int)
    feats = []
    for i in range(grid):
        for j in range(grid):
            m = mag[:, ys[i]:ys[i + 1], xs[j]:xs[j + 1]].reshape(-1)
            b = idx[:, ys[i]:ys[i + 1], xs[j]:xs[j + 1]].reshape(-1)
            feats.append(np.bincount(b, weights=m, minlength=bins)[:bins] / max(len(m), 1))
    out = np.concatenate(feats)
    if normalize:
        out = np.sqrt(out)
        out = out / max(float(np.linalg.norm(out)), 1e-8)
    return out.astype(np.float32)
