"""Anomaly scores, thresholds and the two-class reports of one-action anomaly detection.

Three scorers beside the autoencoder, fitted on the same normal training embeddings (the
baselines every run reports): `centroid` (Euclidean distance to the normal centroid),
`mahalanobis` (Ledoit-Wolf shrunk covariance, usable with fewer videos than dimensions) and
`knn` (mean distance to the k nearest normal training embeddings). Higher = more anomalous.

Thresholds come from the validation split only: `fpr` keeps at most `target_fpr` of the normal
validation videos above it (the highest normal score when there are too few to spare any);
`best_f1` maximises anomaly F1 over the validation videos (needs anomalies in val).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from actionops.errors import DataError

BASELINES = ("centroid", "mahalanobis", "knn")


def fit_baselines(X: np.ndarray, knn_k: int) -> dict[str, Any]:
    """What the baseline scorers keep from the normal training embeddings (plain arrays)."""
    from sklearn.covariance import LedoitWolf

    X = np.asarray(X, np.float64)
    mean = X.mean(axis=0)
    if len(X) > 1:
        precision = LedoitWolf().fit(X).precision_
    else:
        precision = np.eye(X.shape[1])
    return {"mean": mean.astype(np.float32), "precision": precision.astype(np.float32),
            "train": X.astype(np.float32), "knn_k": int(max(1, min(knn_k, len(X))))}


def baseline_scores(fit: dict[str, Any], X: np.ndarray) -> dict[str, np.ndarray]:
    """Scores of every baseline for rows X."""
    X = np.asarray(X, np.float64)
    mean, precision = np.asarray(fit["mean"], np.float64), np.asarray(fit["precision"], np.float64)
    diff = X - mean
    maha = np.sqrt(np.maximum(np.einsum("nd,de,ne->n", diff, precision, diff), 0.0))
    train = np.asarray(fit["train"], np.float64)
    d2 = (X ** 2).sum(1)[:, None] + (train ** 2).sum(1)[None, :] - 2 * X @ train.T
    dist = np.sqrt(np.maximum(d2, 0.0))
    k = int(fit["knn_k"])
    knn = np.sort(dist, axis=1)[:, :k].mean(axis=1)
    return {"centroid": np.linalg.norm(diff, axis=1), "mahalanobis": maha, "knn": knn}


def choose_threshold(normal: np.ndarray, anomalous: np.ndarray, rule: str, target_fpr: float) -> tuple[float, str]:
    """(threshold, rule used) from validation scores of normal and anomalous videos."""
    normal = np.sort(np.asarray(normal, np.float64))
    anomalous = np.asarray(anomalous, np.float64)
    if len(normal) == 0:
        raise DataError("the validation split holds no normal video", "a threshold is chosen on normal validation videos")
    if rule == "best_f1" and len(anomalous):
        candidates = np.unique(np.concatenate([normal, anomalous]))
        mids = np.concatenate([[candidates[0] - 1e-6], (candidates[:-1] + candidates[1:]) / 2, [candidates[-1] + 1e-6]])
        best, best_f1 = mids[0], -1.0
        for t in mids:
            tp = int((anomalous > t).sum())
            fp = int((normal > t).sum())
            fn = len(anomalous) - tp
            f1 = 2 * tp / max(2 * tp + fp + fn, 1)
            if f1 > best_f1:
                best, best_f1 = t, f1
        return float(best), "best_f1"
    # fpr: the smallest threshold with at most target_fpr of normal val scores above it
    allowed = int(np.floor(target_fpr * len(normal)))
    return float(normal[len(normal) - 1 - allowed]), "fpr"


def two_class(truth_anomalous: Sequence[bool], flagged: Sequence[bool], normal: str, other: str) -> dict:
    """Precision / recall / F1 per class and the 2 x 2 confusion matrix (rows true normal, other)."""
    truth = np.asarray(truth_anomalous, bool)
    pred = np.asarray(flagged, bool)
    matrix = [[int((~truth & ~pred).sum()), int((~truth & pred).sum())],
              [int((truth & ~pred).sum()), int((truth & pred).sum())]]
    out = {"labels": [normal, other], "confusion_matrix": matrix, "accuracy": float((truth == pred).mean()) if len(truth) else 0.0}
    for name, positive in ((normal, False), (other, True)):
        t, p = truth == positive, pred == positive
        tp = int((t & p).sum())
        precision = tp / max(int(p.sum()), 1)
        recall = tp / max(int(t.sum()), 1)
        out[name] = {"precision": precision, "recall": recall,
                     "f1": 2 * precision * recall / max(precision + recall, 1e-12), "support": int(t.sum())}
    return out


def ranking_scores(anomalous: Sequence[bool], scores: Sequence[float]) -> dict[str, float]:
    """ROC-AUC and PR-AUC (average precision) with the anomalies as the positive class."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    y = np.asarray(anomalous, bool)
    s = np.asarray(scores, np.float64)
    if y.all() or not y.any():
        raise DataError("ROC-AUC needs normal and anomalous videos in the scored split",
                        "score a split that holds the normal action and at least one other")
    return {"roc_auc": float(roc_auc_score(y, s)), "pr_auc": float(average_precision_score(y, s))}
