"""Scores used everywhere (methods.md): clustering (Hungarian accuracy, NMI, ARI, majority vote)
and classification (accuracy, macro-F1, per-class report, confusion matrix)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _encode(values: Sequence) -> tuple[np.ndarray, list]:
    names = sorted({str(v) for v in values})
    index = {n: i for i, n in enumerate(names)}
    return np.array([index[str(v)] for v in values], dtype=np.int64), names


def contingency(truth: Sequence, pred: Sequence) -> tuple[np.ndarray, list, list]:
    """Counts table (true class x cluster) with the class and cluster names."""
    t, t_names = _encode(truth)
    p, p_names = _encode(pred)
    table = np.zeros((len(t_names), len(p_names)), dtype=np.int64)
    np.add.at(table, (t, p), 1)
    return table, t_names, p_names


def hungarian_mapping(truth: Sequence, pred: Sequence) -> dict[str, str]:
    """One-to-one map cluster -> class maximising agreement (clusters left over map to None)."""
    from scipy.optimize import linear_sum_assignment

    table, t_names, p_names = contingency(truth, pred)
    rows, cols = linear_sum_assignment(-table)
    return {p_names[c]: t_names[r] for r, c in zip(rows, cols)}


def hungarian_accuracy(truth: Sequence, pred: Sequence) -> float:
    """Accuracy after the best one-to-one matching of clusters to classes."""
    if len(truth) == 0:
        return 0.0
    mapping = hungarian_mapping(truth, pred)
    return float(np.mean([mapping.get(str(p)) == str(t) for t, p in zip(truth, pred)]))


def majority_vote_accuracy(truth: Sequence, pred: Sequence) -> float:
    """Each cluster takes its most frequent class (many-to-one, fitted on the scored data:
    optimistic; reported for comparison with the reference only)."""
    if len(truth) == 0:
        return 0.0
    table, _, _ = contingency(truth, pred)
    return float(table.max(axis=0).sum() / table.sum())


def clustering_scores(truth: Sequence, pred: Sequence) -> dict[str, float]:
    """Hungarian accuracy, NMI, ARI, AMI, V-measure (homogeneity, completeness) and
    majority-vote accuracy."""
    from sklearn.metrics import (
        adjusted_mutual_info_score,
        adjusted_rand_score,
        homogeneity_completeness_v_measure,
        normalized_mutual_info_score,
    )

    t, _ = _encode(truth)
    p, _ = _encode(pred)
    homogeneity, completeness, v_measure = homogeneity_completeness_v_measure(t, p)
    return {
        "hungarian_accuracy": hungarian_accuracy(truth, pred),
        "nmi": float(normalized_mutual_info_score(t, p)),
        "ari": float(adjusted_rand_score(t, p)),
        "ami": float(adjusted_mutual_info_score(t, p)),
        "v_measure": float(v_measure),
        "homogeneity": float(homogeneity),
        "completeness": float(completeness),
        "majority_vote_accuracy": majority_vote_accuracy(truth, pred),
    }


def chance_hungarian(truth: Sequence) -> float:
    """Hungarian accuracy of putting everything in one cluster: the most frequent class's share."""
    if len(truth) == 0:
        return 0.0
    _, counts = np.unique(np.asarray([str(v) for v in truth]), return_counts=True)
    return float(counts.max() / counts.sum())


def macro_f1(truth: Sequence, pred: Sequence, labels: Sequence) -> float:
    """Mean F1 over `labels` (a class never true nor predicted scores 0, as in the report below)."""
    from sklearn.metrics import f1_score

    if len(truth) == 0:
        return 0.0
    return float(f1_score(list(truth), list(pred), labels=list(labels), average="macro", zero_division=0))


def classification_report(truth: Sequence[str], pred: Sequence[str], labels: Sequence[str] | None = None) -> dict:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    labels = list(labels) if labels is not None else sorted({str(v) for v in truth} | {str(v) for v in pred})
    truth, pred = [str(v) for v in truth], [str(v) for v in pred]
    precision, recall, f1, support = precision_recall_fscore_support(truth, pred, labels=labels, zero_division=0)
    return {
        "accuracy": float(np.mean([a == b for a, b in zip(truth, pred)])) if truth else 0.0,
        "macro_f1": float(np.mean(f1)) if len(f1) else 0.0,
        "per_class": {lab: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                      for lab, p, r, f, s in zip(labels, precision, recall, f1, support)},
        "labels": labels,
        "confusion_matrix": confusion_matrix(truth, pred, labels=labels).tolist(),
    }
