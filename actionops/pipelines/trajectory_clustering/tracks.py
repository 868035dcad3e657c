"""Dense trajectories (Wang et al. 2011; methods.md §5) from our own optical flow.

Points are sampled on a grid every `step` px (at each scale of a pyramid), in textured places only
(the smaller eigenvalue of the structure tensor above `quality` x its maximum in the frame), and
tracked through the median-filtered flow: P_{t+1} = P_t + (M * w_t)(P_t). A track ends after
`length` frames (or at the border); a new point is sampled where no track runs. A finished track is
kept unless it is static (its points' spread under `min_spread` px) or erratic (one step longer than
`max_step_share` of the whole path). Each kept trajectory gets:

- shape: its `length` displacement vectors divided by the sum of their magnitudes (2 L values);
- HOG (8 bins: orientations of the frame's intensity gradient, magnitude-weighted; with `hog`),
  HOF (9 bins: 8 orientations + no motion), MBHx, MBHy (8 bins each: orientations of the flow's x /
  y component gradients, magnitude-weighted) in the space-time tube around it: `tube` px square
  (scaled), split into `nxy` x `nxy` x `nt` cells, each cell's histogram L2-normalised. Parts are
  stored in that order (shape, hog, hof, mbhx, mbhy), as the reference writes them.

Tracking and the tube descriptors are written here (no library offers them); flow, median
filtering and gradients come from OpenCV.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class TrackSpec:
    step: int = 5  # grid spacing (px, at each scale)
    scales: int = 1  # pyramid levels, each 1/sqrt(2) of the one above
    length: int = 15  # frames a trajectory is tracked (L)
    median: int = 3  # median filter kernel on the flow
    quality: float = 0.001  # texture threshold: min eigenvalue > quality x the frame's max
    min_spread: float = 1.0  # px: a track whose points stay within this is static (dropped)
    max_step_share: float = 0.7  # one step longer than this share of the whole path: erratic (dropped)
    tube: int = 32  # px square around the track at scale 1
    nxy: int = 2
    nt: int = 3
    hog: bool = False  # appearance: HOG of the frames in the tube (off: motion parts only)

    def descriptor_spec(self) -> dict:
        """What a Fisher model fitted on these descriptors must match."""
        cells = self.nxy * self.nxy * self.nt
        parts = {"shape": 2 * self.length, **({"hog": cells * 8} if self.hog else {}),
                 "hof": cells * 9, "mbhx": cells * 8, "mbhy": cells * 8}
        return {"kind": "dense-trajectories", **asdict(self), "parts": parts}

    @property
    def tube_bins(self) -> list[tuple[str, int]]:
        """(part, bins per cell) of the tube descriptors, in storage order."""
        return [("hog", 8)] * self.hog + [("hof", 9), ("mbhx", 8), ("mbhy", 8)]

    @property
    def dim(self) -> int:
        return sum(self.descriptor_spec()["parts"].values())


def _textured(gray: np.ndarray, step: int, quality: float) -> np.ndarray:
    """Grid points (x, y) every `step` px whose structure tensor has a large enough small eigenvalue."""
    import cv2

    eig = cv2.cornerMinEigenVal(gray.astype(np.float32), 3)
    h, w = gray.shape
    ys, xs = np.mgrid[step // 2:h:step, step // 2:w:step]
    ok = eig[ys, xs] > quality * max(float(eig.max()), 1e-12)
    return np.stack([xs[ok], ys[ok]], axis=1).astype(np.float32)


def track(gray: np.ndarray, flow: np.ndarray, spec: TrackSpec = TrackSpec()) -> list[dict]:
    """(T, H, W) grayscale frames and (T-1, H, W, 2) flow from frame t to t+1, at one scale ->
    kept trajectories: {"start": first frame, "points": (L+1, 2) float32 (x, y)}. All points of a
    frame advance together (arrays, no loop per point)."""
    import cv2

    t_count, h, w = gray.shape
    length = spec.length
    paths = np.zeros((0, length + 1, 2), np.float32)  # active tracks, filled up to `ages`
    ages = np.zeros(0, int)  # points tracked so far (1 .. length)
    starts = np.zeros(0, int)
    done: list[dict] = []
    kernel = np.ones((spec.step, spec.step), np.uint8)
    for t in range(t_count - 1):
        # new points on the grid where no track runs near
        occupied = np.zeros((h, w), np.uint8)
        if len(paths):
            last = paths[np.arange(len(paths)), ages - 1]
            occupied[np.clip(last[:, 1].astype(int), 0, h - 1), np.clip(last[:, 0].astype(int), 0, w - 1)] = 1
        near = cv2.dilate(occupied, kernel) > 0 if spec.step > 1 else occupied > 0
        fresh = _textured(gray[t], spec.step, spec.quality)
        fresh = fresh[~near[fresh[:, 1].astype(int), fresh[:, 0].astype(int)]]
        if len(fresh):
            block = np.zeros((len(fresh), length + 1, 2), np.float32)
            block[:, 0] = fresh
            paths, ages, starts = (np.concatenate([paths, block]), np.concatenate([ages, np.ones(len(fresh), int)]),
                                   np.concatenate([starts, np.full(len(fresh), t)]))
        if not len(paths):
            continue
        fx, fy = (cv2.medianBlur(np.ascontiguousarray(flow[t][..., c]).astype(np.float32), spec.median) for c in (0, 1))
        last = paths[np.arange(len(paths)), ages - 1]
        xi, yi = np.rint(last[:, 0]).astype(int), np.rint(last[:, 1]).astype(int)
        inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
        xi, yi = np.clip(xi, 0, w - 1), np.clip(yi, 0, h - 1)
        nxt = last + np.stack([fx[yi, xi], fy[yi, xi]], axis=1)
        inside &= (nxt[:, 0] >= 0) & (nxt[:, 0] < w) & (nxt[:, 1] >= 0) & (nxt[:, 1] < h)  # left: dropped unfinished
        paths[np.arange(len(paths)), np.minimum(ages, length)] = nxt
        ages = ages + 1
        finished = inside & (ages == length + 1)
        for k in np.flatnonzero(finished):
            if _kept(paths[k], spec):
                done.append({"start": int(starts[k]), "points": paths[k].copy()})
        keep = inside & ~finished
        paths, ages, starts = paths[keep], ages[keep], starts[keep]
    return done


def _kept(points: np.ndarray, spec: TrackSpec) -> bool:
    steps = np.linalg.norm(np.diff(points, axis=0), axis=1)
    if max(float(np.std(points[:, 0])), float(np.std(points[:, 1]))) < spec.min_spread / 2:
        return False  # static
    total = float(steps.sum())
    return total > 0 and float(steps.max()) <= spec.max_step_share * total  # not erratic


def shape_descriptor(points: np.ndarray) -> np.ndarray:
    d = np.diff(points, axis=0)
    return (d / max(float(np.linalg.norm(d, axis=1).sum()), 1e-8)).ravel().astype(np.float32)


def _binned(dx: np.ndarray, dy: np.ndarray, bins: int, still: float | None, out: np.ndarray | None = None) -> np.ndarray:
    """(H, W, bins [+1]) magnitude in each orientation bin per pixel; with `still`, one more bin
    counting the pixels that move less than `still`. `out`: a zeroed float64 array (or view) of that
    shape to fill instead of a new one."""
    mag = np.hypot(dx, dy)
    idx = np.clip((np.mod(np.arctan2(dy, dx), 2 * np.pi) / (2 * np.pi) * bins).astype(int), 0, bins - 1)
    if out is None:
        out = np.zeros((*dx.shape, bins + (still is not None)), np.float64)
    if still is not None:
        moving = mag > still
        np.put_along_axis(out, idx[..., None], np.where(moving, mag, 0)[..., None], axis=2)
        out[..., bins] = ~moving
    else:
        np.put_along_axis(out, idx[..., None], mag[..., None], axis=2)
    return out


def _integral(flow_t: np.ndarray, scale: float, gray_t: np.ndarray | None = None) -> np.ndarray:
    """(H+1, W+1, 25 or 33) integral images of one frame's [HOG (8), when `gray_t` is given,] HOF (9),
    MBHx (8) and MBHy (8) bin maps."""
    import cv2

    fx, fy = (np.ascontiguousarray(flow_t[..., c]).astype(np.float32) for c in (0, 1))
    h, w = fx.shape
    # the bin maps are written straight into the integral's array and summed in place (the same
    # sums as a cumsum of a stacked copy, without its four temporaries of H x W x 25 float64)
    out = np.zeros((h + 1, w + 1, 8 * (gray_t is not None) + 9 + 8 + 8))
    maps, lo = out[1:, 1:], 0
    if gray_t is not None:
        g = np.asarray(gray_t, np.float32)
        _binned(cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=1), cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=1), 8, None, maps[..., :8])
        lo = 8
    _binned(fx, fy, 8, 0.1 * scale, maps[..., lo:lo + 9])
    lo += 9
    for comp in (fx, fy):
        _binned(cv2.Sobel(comp, cv2.CV_32F, 1, 0, ksize=1), cv2.Sobel(comp, cv2.CV_32F, 0, 1, ksize=1), 8, None,
                maps[..., lo:lo + 8])
        lo += 8
    np.cumsum(maps, axis=0, out=maps)
    np.cumsum(maps, axis=1, out=maps)
    return out


def tube_descriptors(flow: np.ndarray, trajs: list[dict], spec: TrackSpec, scale: float = 1.0,
                     gray: np.ndarray | None = None) -> np.ndarray:
    """[HOG,] HOF, MBHx, MBHy of the space-time tube around each trajectory: (N, bins nxy^2 nt),
    each cell's histogram L2-normalised. Cell sums come from per-frame integral histograms (one pass
    per frame, O(1) per cell), as in the reference implementation. HOG (with `spec.hog`) needs the
    grayscale frames `gray` (T, H, W) at the flow's size."""
    n = len(trajs)
    bins = spec.tube_bins
    width = sum(b for _, b in bins)
    if spec.hog and gray is None:
        raise ValueError("spec.hog needs the grayscale frames (gray=)")
    cells = np.zeros((n, spec.nt, spec.nxy, spec.nxy, width))
    if not n:
        return np.zeros((0, width * spec.nxy * spec.nxy * spec.nt), np.float32)
    _, h, w, _ = flow.shape
    half = spec.tube * scale / 2
    chunk_of = np.concatenate([np.full(len(c), k) for k, c in enumerate(np.array_split(np.arange(spec.length), spec.nt))])
    starts = np.array([t["start"] for t in trajs])
    points = np.stack([t["points"] for t in trajs])
    edges = np.linspace(0, 1, spec.nxy + 1)
    for frame in range(int(starts.min()), min(int(starts.max()) + spec.length, len(flow))):
        step = frame - starts
        on = np.flatnonzero((step >= 0) & (step < spec.length))
        if not len(on):
            continue
        integral = _integral(flow[frame], scale, gray[frame] if spec.hog else None)
        centre = points[on, step[on]]
        x0 = np.clip(np.rint(centre[:, 0] - half), 0, w).astype(int)
        y0 = np.clip(np.rint(centre[:, 1] - half), 0, h).astype(int)
        x1 = np.clip(np.rint(centre[:, 0] - half) + round(2 * half), 0, w).astype(int)
        y1 = np.clip(np.rint(centre[:, 1] - half) + round(2 * half), 0, h).astype(int)
        for a in range(spec.nxy):
            ya, yb = (y0 + (y1 - y0) * edges[a]).astype(int), (y0 + (y1 - y0) * edges[a + 1]).astype(int)
            for b in range(spec.nxy):
                xa, xb = (x0 + (x1 - x0) * edges[b]).astype(int), (x0 + (x1 - x0) * edges[b + 1]).astype(int)
                box = integral[yb, xb] - integral[ya, xb] - integral[yb, xa] + integral[ya, xa]
                cells[on, chunk_of[step[on]], a, b] += box
    parts, lo = [], 0
    for _, size in bins:
        part, lo = cells[..., lo:lo + size], lo + size
        part = part / np.maximum(np.linalg.norm(part, axis=-1, keepdims=True), 1e-8)
        parts.append(part.reshape(n, -1))
    return np.concatenate(parts, axis=1).astype(np.float32)


def dense_trajectories(frames_gray: np.ndarray, flow: np.ndarray, spec: TrackSpec = TrackSpec(),
                       boxes: dict[int, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Trajectories and descriptors of one video (or frame range) at every scale of `spec`.

    frames_gray (T, H, W) uint8, flow (T-1, H, W, 2) from t to t+1. `boxes` (optional): frame ->
    (P, 4) person boxes x1, y1, x2, y2; a trajectory is kept only if its middle point lies in a box
    of its middle frame. Returns (info (N, 5): start, scale, x, y of the middle point, length of the
    path; descriptors (N, spec.dim))."""
    import cv2

    infos, descs = [], []
    t_count, h, w = frames_gray.shape
    for level in range(spec.scales):
        s = (1 / np.sqrt(2)) ** level
        if s == 1:
            g, f = frames_gray, flow
        else:
            size = (max(8, int(round(w * s))), max(8, int(round(h * s))))
            g = np.stack([cv2.resize(x, size, interpolation=cv2.INTER_AREA) for x in frames_gray])
            f = np.stack([cv2.resize(x, size, interpolation=cv2.INTER_AREA) * s for x in flow])
        kept = []
        for traj in track(g, f, spec):
            mid = traj["points"][spec.length // 2] / s
            frame = traj["start"] + spec.length // 2
            if boxes is not None:
                inside = boxes.get(frame)
                if inside is None or not np.any((inside[:, 0] <= mid[0]) & (mid[0] <= inside[:, 2])
                                                & (inside[:, 1] <= mid[1]) & (mid[1] <= inside[:, 3])):
                    continue
            path = float(np.linalg.norm(np.diff(traj["points"], axis=0), axis=1).sum() / s)
            infos.append([traj["start"], s, mid[0], mid[1], path])
            kept.append(traj)
        if kept:
            shapes = np.stack([shape_descriptor(t["points"]) for t in kept])
            descs.append(np.concatenate([shapes, tube_descriptors(f, kept, spec, s, g)], axis=1))
    if not descs:
        return np.zeros((0, 5), np.float32), np.zeros((0, spec.dim), np.float32)
    return np.asarray(infos, np.float32), np.concatenate(descs)
