"""Video files through PyAV: encode frames to H.264 mp4, probe, decode to RGB arrays.

Frames are numpy uint8 arrays (H, W, 3) in RGB order throughout the project.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Iterator
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


def read_frames(path: str | Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """All frames of a video as one (T, H, W, 3) uint8 array (short clips, tests, the classifier's
    frame cache); `size` (W, H) resizes each frame as `decode_range` does."""
    frames = list(iter_frames(path)) if size is None else [f for _, f in decode_range(path, 0, None, size=size)]
    if not frames:
        raise DataError(f"{path} decodes to no frames")
    return np.stack(frames)


def truncation_slack(declared: int) -> int:
    """Frames a container may declare beyond what decodes without the file being truncated: AVI
    (XviD/DivX) headers routinely count a frame or two more than decode (packed B-frames, dropped
    frames; UT-Interaction's clips decode 98 of 99, 139 of 141). More than max(3, 5%) missing is
    a cut file. The decoded count is what the manifest records either way."""
    return max(3, int(0.05 * declared))


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
            declared = stream.frames
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
        raise DataError(f"{path} is not a readable video ({exc.strerror or exc})",
                        "the file is truncated, corrupt or not a video: re-export or re-download it") from None
    if frames == 0:
        raise DataError(f"{path} contains no decodable frames", "the file is truncated or corrupt")
    if declared and declared - frames > truncation_slack(declared):
        raise DataError(f"{path} is truncated: decoded {frames} of {declared} frames",
                        "re-export or re-download the video")
    info["duration"] = frames / info["fps"] if info["fps"] else 0.0
    return info


def decode_range(
    path: str | Path,
    start: int = 0,
    end: int | None = None,
    *,
    size: tuple[int, int] | None = None,
    gray: bool = False,
    keep: Collection[int] | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield `(index, frame)` for frames `start <= index < end` (0-based, decode order).

    Seeks to the keyframe before `start` so a chunk of a long video costs about its own length;
    falls back to decoding from frame 0 when the container's timestamps cannot be trusted.
    `size` (W, H) resizes with area interpolation; `gray` gives (H, W) uint8 instead of RGB.
    `keep`: only these indices are converted and yielded (the others are decoded, which the codec
    needs, but not converted to pixels: the conversion costs several times the decode).
    """
    import av

    fmt = "gray" if gray else "rgb24"
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        index_of = _pts_indexer(stream) if start > 0 else None
        if index_of is None:
            frames = enumerate(container.decode(stream))
        else:
            target = int(start / float(stream.average_rate) / stream.time_base) + (stream.start_time or 0)
            container.seek(target, stream=stream, backward=True, any_frame=False)
            frames = _indexed(container.decode(stream), index_of)
            first = next(frames, (None, None))
            if first[0] is None or first[0] > start:  # overshot, or no timestamps: start over
                rest = decode_range(path, 0, end, size=size, gray=gray, keep=keep)
                yield from ((i, f) for i, f in rest if i >= start)
                return
            frames = _chain_first(first, frames)
        for index, frame in frames:
            if end is not None and index >= end:
                break
            if index >= start and (keep is None or index in keep):
                yield index, _to_image(frame, fmt, size)


def _indexed(frames, index_of):
    """(index, frame) from timestamps; a frame without pts takes the previous index + 1."""
    last = None
    for frame in frames:
        index = index_of(frame)
        if index is None:
            if last is None:
                yield None, frame
                return
            index = last + 1
        last = index
        yield index, frame


def _chain_first(first, rest):
    yield first
    yield from rest


def _to_image(frame, fmt: str, size: tuple[int, int] | None) -> np.ndarray:
    import cv2

    image = frame.to_ndarray(format=fmt)
    if size is not None and (image.shape[1], image.shape[0]) != tuple(size):
        image = cv2.resize(image, tuple(size), interpolation=cv2.INTER_AREA)
    return image


def _pts_indexer(stream):
    """frame -> 0-based index from its pts, for constant-rate streams; None when unusable."""
    rate, base = stream.average_rate, stream.time_base
    if not rate or not base:
        return None
    origin = stream.start_time or 0

    def index_of(frame) -> int | None:
        if frame.pts is None:
            return None
        return int(round(float((frame.pts - origin) * base * rate)))

    return index_of
