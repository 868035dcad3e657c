"""Trivial baselines that every deep model must beat, computed in the same run, and the
hand-made motion descriptor they use.

`flow_histogram_features`: optical-flow orientation histograms weighted by magnitude on a
spatial grid (averaged over frames), power (sqrt) + L2 normalised by default.
"""

from __future__ import annotations

import numpy as np


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


def kmeans_baseline(features: np.ndarray, n_clusters: int, seed: int = 0) -> np.ndarray:
    """k-means (10 restarts) on the descriptors; returns cluster ids."""
    from sklearn.cluster import KMeans

    return KMeans(n_clusters, n_init=10, random_state=seed).fit_predict(np.asarray(features))
