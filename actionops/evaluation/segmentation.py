"""Temporal segmentation scores: boundary precision / recall / F1 against annotated windows, and
frame accuracy after Hungarian matching of predicted segment labels to true ones.

A true boundary is the start of every segment but the first; it is found when a predicted
boundary falls inside its acceptable window [earliest, latest] (CMU subject 86: the Barbic et al.
annotation; exact truth: [start - tolerance, start + tolerance]). Predicted and true boundaries
are matched one to one (maximum matching, nearest first), so two predictions inside one window
count one hit and one false alarm.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def truth_windows(segments: Sequence[Any], tolerance: int = 0) -> list[tuple[int, int, int]]:
    """(earliest, best, latest) of every true boundary (segment starts after the first)."""
    out = []
    for seg in segments[1:]:
        lo, hi = min(seg.earliest, seg.start), max(seg.latest, seg.start)
        out.append((lo - tolerance, seg.start, hi + tolerance))
    return out


def match_boundaries(predicted: Sequence[int], windows: Sequence[tuple[int, int, int]]) -> list[tuple[int, int]]:
    """Pairs (predicted index, window index) of a maximum one-to-one matching of predictions that
    fall inside windows, preferring the prediction nearest each window's best frame."""
    from scipy.optimize import linear_sum_assignment

    if not len(predicted) or not len(windows):
        return []
    big = 1e9
    cost = np.full((len(predicted), len(windows)), big)
    for i, b in enumerate(predicted):
        for j, (lo, best, hi) in enumerate(windows):
            if lo <= b <= hi:
                cost[i, j] = abs(b - best)
    rows, cols = linear_sum_assignment(cost)
    return [(int(r), int(c)) for r, c in zip(rows, cols) if cost[r, c] < big]


def boundary_scores(predicted: Sequence[int], segments: Sequence[Any], tolerance: int = 0) -> dict[str, float]:
    """Boundary precision, recall and F1 of `predicted` frame indices against `segments`."""
    windows = truth_windows(segments, tolerance)
    hits = len(match_boundaries(sorted(int(b) for b in predicted), windows))
    precision = hits / len(predicted) if len(predicted) else (1.0 if not windows else 0.0)
    recall = hits / len(windows) if windows else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"boundary_precision": precision, "boundary_recall": recall, "boundary_f1": f1,
            "boundaries_true": len(windows), "boundaries_predicted": len(predicted), "boundaries_hit": hits}


def boundaries_from_labels(labels: Sequence[Any]) -> list[int]:
    """Frames where a per-frame label sequence changes."""
    return [i for i in range(1, len(labels)) if labels[i] != labels[i - 1]]


def frame_accuracy(truth: Sequence[Any], predicted: Sequence[Any]) -> float:
    """Share of frames whose predicted label, mapped one to one onto true labels (Hungarian), is right."""
    from actionops.evaluation.metrics import hungarian_accuracy

    if len(truth) != len(predicted):
        raise ValueError(f"{len(truth)} true labels but {len(predicted)} predicted")
    return hungarian_accuracy([str(t) for t in truth], [str(p) for p in predicted])


def change_curve(x: np.ndarray, width: int) -> np.ndarray:
    """How much a sequence of feature rows changes at each position: the cosine distance between the
    mean of the `width` (L2-normalised) rows before it and the mean of the `width` rows from it on
    (0 at position 0). The change-point score of both the embedding cue and the raw-pose baseline."""
    x = np.asarray(x, np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    n, width = len(x), max(1, int(width))
    cumulative = np.vstack([np.zeros((1, x.shape[1])), np.cumsum(x, 0)])
    out = np.zeros(n)
    for t in range(1, n):
        a = cumulative[t] - cumulative[max(0, t - width)]
        b = cumulative[min(n, t + width)] - cumulative[t]
        denom = np.linalg.norm(a) * np.linalg.norm(b)
        out[t] = 1.0 - float(a @ b) / denom if denom > 0 else 0.0
    return out


def curve_peaks(curve: np.ndarray, share: float, min_gap: int) -> list[int]:
    """Positions of the peaks of `curve` at least `share` of its maximum high and `min_gap` apart."""
    from scipy.signal import find_peaks

    curve = np.asarray(curve, np.float64)
    if not len(curve) or curve.max() <= 0:
        return []
    peaks, _ = find_peaks(curve, height=float(share) * curve.max(), distance=max(1, int(min_gap)))
    return [int(p) for p in peaks]


def leave_one_out(table: dict[Any, dict[str, float]]) -> dict[str, Any]:
    """For every recording, the setting (a key of `table`: setting -> recording -> score) with the
    best mean score on the OTHER recordings; with one recording, the best on it. Ties go to the
    setting listed first."""
    settings = list(table)
    recordings = list(table[settings[0]]) if settings else []
    chosen = {}
    for rec in recordings:
        others = [r for r in recordings if r != rec] or [rec]
        chosen[rec] = max(settings, key=lambda s: (np.mean([table[s][r] for r in others]), -settings.index(s)))
    return chosen
