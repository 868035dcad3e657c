"""Window spans over a sequence: the one definition every method slices frames, flow or pose
arrays with (clip-classification prediction windows, person windows, sequence windows)."""

from __future__ import annotations


def window_spans(length: int, window: int, stride: int, *, cover_end: bool = True) -> list[tuple[int, int]]:
    """[start, end) spans of `window` items every `stride` over a sequence of `length` items.

    A sequence not longer than `window` (or `window` <= 0) is one span over all of it. With
    `cover_end` a last span ending at `length` is added when the stride would leave a tail
    unseen; without it the tail shorter than a window is dropped (fixed-size windows only).
    """
    if length <= 0:
        return []
    if window <= 0 or length <= window:
        return [(0, length)]
    starts = list(range(0, length - window + 1, max(1, stride)))
    if cover_end and starts[-1] + window < length:
        starts.append(length - window)
    return [(s, s + window) for s in starts]
