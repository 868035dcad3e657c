"""Video files through PyAV: encode frames to H.264 mp4, probe, decode to RGB arrays.

Frames are numpy uint8 arrays (H, W, 3) in RGB order throughout the project.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

from actionops.errors import DataError


def write_video(path: str | Path, frames: Iterable[np.ndarray], fps: int, *, crf: int = 20) -> int:
    """Encode RGB frames (H, W, 3 uint8; H and W even) as H.264 mp4; return the frame count.

    One encoder thread and no timestamps in metadata, so the same frames give the same bytes.
    Written to a temporary file and renamed, so a killed run leaves no half-written video.
    """
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    count = 0
    with av.open(str(tmp), mode="w", format="mp4") as container:
        stream = None
        for frame in frames:
            if stream is None:
                height, width = frame.shape[:2]
                if height % 2 or width % 2:
                    raise ValueError(f"H.264 needs even frame sizes, got {width}x{height}")
                stream = container.add_stream("libx264", rate=Fraction(fps))
                stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
                stream.codec_context.thread_count = 1
                stream.options = {"crf": str(crf), "preset": "veryfast"}
            av_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            for packet in stream.encode(av_frame):
                container.mux(packet)
            count += 1
        if stream is None:
            raise ValueError(f"no frames to write to {path}")
        for packet in stream.encode():
            container.mux(packet)
    os.replace(tmp, path)
    return count


def iter_frames(path: str | Path) -> Iterator[np.ndarray]:
    """Decode every frame of the first video stream as RGB (H, W, 3) uint8."""
    import av

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise DataError(f"cannot open video {path}: {exc}", "check the file is a valid video") from None
    with container:
        if not container.streams.video:
            raise DataError(f"{path} has no video stream")
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format="rgb24")


def read_frames(path: str | Path) -> np.ndarray:
    """All frames of a video as one (T, H, W, 3) uint8 array (for short clips and tests)."""
    frames = list(iter_frames(path))
    if not frames:
        raise DataError(f"{path} decodes to no frames")
    return np.stack(frames)


def probe_video(path: str | Path) -> dict:
    """Stream facts of a video, decoding every frame so truncated files are caught.

    Returns path, frames, fps, width, height, codec, duration (s). Raises DataError with a
    readable reason for anything that is not a decodable video.
    """
    import av

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist")
    if path.stat().st_size == 0:
        raise DataError(f"{path} is empty (0 bytes)")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise DataError(f"{path} has no video stream")
            stream = container.streams.video[0]
            frames = sum(1 for _ in container.decode(stream))
            rate = stream.average_rate or stream.base_rate
            info = {
                "path": str(path),
                "frames": frames,
                "fps": float(rate) if rate else 0.0,
                "width": stream.codec_context.width,
                "height": stream.codec_context.height,
                "codec": stream.codec_context.name,
            }
    except av.error.FFmpegError as exc:
        raise DataError(f"{path} is not a readable video: {exc}") from None
    if frames == 0:
        raise DataError(f"{path} contains no decodable frames")
    info["duration"] = frames / info["fps"] if info["fps"] else 0.0
    return info
