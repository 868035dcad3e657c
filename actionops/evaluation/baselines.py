"""Trivial baselines that every deep model must beat, computed in the same run. Their motion
descriptor (`flow_histogram_features`) lives with the flow code in `platform/flow.py`."""

from __future__ import annotations

import numpy as np


def kmeans_baseline(features: np.ndarray, n_clusters: int, seed: int = 0) -> np.ndarray:
    """k-means (10 restarts) on the descriptors; returns cluster ids."""
    from sklearn.cluster import KMeans

    return KMeans(n_clusters, n_init=10, random_state=seed).fit_predict(np.asarray(features))
