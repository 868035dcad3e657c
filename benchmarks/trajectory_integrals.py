"""Benchmark: the per-frame integral histograms of the trajectory descriptors, summed in place
(shipped since stop 32) against the stacked-copy version before it, same process, same frames.

    python -m benchmarks.trajectory_integrals [--video PATH] [--frames 40] [--hog]

Flow of a real video (default: the first UT-Interaction clip under ACTIONOPS_SHARED_DATA, else a
generated one) at its own size, then `tracks._integral` for every frame in both versions,
interleaved: median seconds per frame, the ratio, and whether the two results are bit-identical.
Writes benchmarks/results/trajectory_integrals.json.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks import machine, write_result
from benchmarks.classify_real import SHARED


def integral_before(flow_t: np.ndarray, scale: float, gray_t: np.ndarray | None = None) -> np.ndarray:
    """`tracks._integral` as it was until stop 31: each bin map its own array, stacked, then summed."""
    import cv2

    from actionops.pipelines.trajectory_clustering.tracks import _binned

    fx, fy = (np.ascontiguousarray(flow_t[..., c]).astype(np.float32) for c in (0, 1))
    maps = []
    if gray_t is not None:
        g = np.asarray(gray_t, np.float32)
        maps.append(_binned(cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=1), cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=1), 8, None))
    maps.append(_binned(fx, fy, 8, still=0.1 * scale))
    for comp in (fx, fy):
        maps.append(_binned(cv2.Sobel(comp, cv2.CV_32F, 1, 0, ksize=1), cv2.Sobel(comp, cv2.CV_32F, 0, 1, ksize=1), 8, None))
    stacked = np.concatenate(maps, axis=2)
    out = np.zeros((stacked.shape[0] + 1, stacked.shape[1] + 1, stacked.shape[2]))
    out[1:, 1:] = stacked.cumsum(0).cumsum(1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", type=Path, default=None)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--hog", action="store_true", help="with the HOG maps (trajectories.hog=true)")
    args = parser.parse_args()
    from actionops.pipelines.trajectory_clustering.tracks import _integral
    from actionops.platform.flow import flow_sequence
    from actionops.platform.video import decode_range

    video = args.video
    if video is None:
        found = sorted((SHARED / "ut_interaction").rglob("*.avi")) if (SHARED / "ut_interaction").is_dir() else []
        if found:
            video = found[0]
        else:
            from actionops.platform.synth import generate_clips

            folder = Path(tempfile.mkdtemp(prefix="integrals-"))
            generate_clips(folder, seed=0, videos=4, frames=args.frames + 1, width=320, height=240)
            video = sorted(folder.rglob("*.mp4"))[0]
    gray = np.stack([f for _, f in decode_range(str(video), 0, args.frames + 1, gray=True)])
    flow = np.stack(list(flow_sequence(gray, "farneback", first_is_zero=False)))
    times: dict[str, list[float]] = {"before": [], "shipped": []}
    identical = True
    for t in range(len(flow)):
        g = gray[t] if args.hog else None
        results = {}
        for name, fn in (("before", integral_before), ("shipped", _integral)):
            tick = time.perf_counter()
            results[name] = fn(flow[t], 1.0, g)
            times[name].append(time.perf_counter() - tick)
        identical &= bool(np.array_equal(results["before"], results["shipped"]))
    before, shipped = float(np.median(times["before"])), float(np.median(times["shipped"]))
    print(f"{video.name} {gray.shape[2]}x{gray.shape[1]}, {len(flow)} frames{' with HOG' if args.hog else ''}: "
          f"before {before * 1000:.1f} ms/frame, shipped {shipped * 1000:.1f} ms/frame: {before / shipped:.2f}x; "
          f"bit-identical: {identical}")
    write_result("trajectory_integrals.json", {
        "video": video.name, "size": [int(gray.shape[2]), int(gray.shape[1])], "frames": len(flow), "hog": args.hog,
        "before_s_per_frame": before, "shipped_s_per_frame": shipped, "speedup": before / shipped,
        "bit_identical": identical, "machine": machine()})


if __name__ == "__main__":
    main()
