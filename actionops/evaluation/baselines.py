"""Trivial baselines that every deep model must beat, computed in the same run.

`flow_histogram_features`: per video, optical-flow orientation histograms weighted by
magnitude on a spatial grid, plus the mean magnitude per cell, averaged over frames.
"""

from __future__ import annotations

import numpy as np


def flow_histogram_features(flow: np.ndarray, grid: int = 4, bins: int = 8) -> np.ndarray:
    """(T, H, W, 2) flow -> (grid*grid*(bins+1),) feature vector."""
    flow = np.asarray(flow, dtype=np.float32)
    t, h, w, _ = flow.shape
    mag = np.linalg.norm(flow, axis=-1)
    ang = (np.arctan2(flow[..., 1], flow[..., 0]) + np.pi) / (2 * np.pi) * bins
    idx = np.clip(ang.astype(int), 0, bins - 1)
    feats = []
    ys = np.linspace(0, h, grid + 1).astype(int)
    xs = np.linspace(0, w, grid + 1).astype(int)
    for i in range(grid):
        for j in range(grid):
            m = mag[:, ys[i]:ys[i + 1], xs[j]:xs[j + 1]].reshape(-1)
            b = idx[:, ys[i]:ys[i + 1], xs[j]:xs[j + 1]].reshape(-1)
            hist = np.bincount(b, weights=m, minlength=bins) / max(t, 1) / max(len(m) // max(t, 1), 1)
            feats.append(np.concatenate([hist, [m.mean()]]))
    return np.concatenate(feats)


def kmeans_baseline(features: np.ndarray, n_clusters: int, seed: int = 0) -> np.ndarray:
    """k-means on standardised features; returns cluster ids."""
    from sklearn.cluster import KMeans
    from sklearn.preprocessing import StandardScaler

    x = StandardScaler().fit_transform(features)
    return KMeans(n_clusters, n_init=10, random_state=seed).fit_predict(x)
