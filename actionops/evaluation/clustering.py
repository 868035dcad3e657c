"""The clustering report every clustering method shares: scores against labels (Hungarian
accuracy, NMI, ARI, AMI, V-measure, majority vote), the Hungarian cluster -> class mapping with a
per-class report, the contingency table, and the figures (contingency heat map, PCA and t-SNE of
the embeddings coloured by cluster and by true label)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def clustering_report(truth: Sequence, clusters: Sequence) -> dict[str, Any]:
    """Scores and tables of `clusters` against `truth` (same length, labelled items only)."""
    from actionops.evaluation.metrics import (
        chance_hungarian,
        classification_report,
        clustering_scores,
        contingency,
        hungarian_mapping,
    )

    truth = [str(t) for t in truth]
    clusters = [str(c) for c in clusters]
    scores = clustering_scores(truth, clusters)
    mapping = hungarian_mapping(truth, clusters)
    matched = [mapping.get(c, f"unmatched cluster {c}") for c in clusters]
    per_class = classification_report(truth, matched, labels=sorted(set(truth)))["per_class"]
    table, classes, cols = contingency(truth, clusters)
    return {"scores": scores, "chance": chance_hungarian(truth), "items": len(truth),
            "n_clusters": len(set(clusters)), "hungarian_mapping": mapping, "matched": matched,
            "per_class": per_class,
            "contingency": {"rows": classes, "cols": [str(v) for v in cols], "counts": table.tolist()}}


def report_figures(report: dict | None, title: str, *, embeddings: np.ndarray | None = None,
                   colourings: dict[str, list] | None = None, seed: int = 0, prefix: str = "") -> dict[str, Any]:
    """Figures of a clustering: `{artifact path: matplotlib figure}` with the contingency table
    (when `report`) and PCA / t-SNE scatters of `embeddings` under each colouring."""
    from actionops.evaluation.plots import confusion_matrix_figure, embedding_figure

    figures = {}
    if report is not None:
        c = report["contingency"]
        figures[f"figures/{prefix}contingency.png"] = confusion_matrix_figure(
            np.asarray(c["counts"]), c["rows"], [f"cluster {v}" for v in c["cols"]], f"{title}: true label x cluster", "cluster")
    if embeddings is not None and len(embeddings) and colourings:
        for method in ("pca", "tsne"):
            figures[f"figures/{prefix}embeddings_{method}.png"] = embedding_figure(embeddings, colourings, method, seed)
    return figures
