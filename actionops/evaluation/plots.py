"""Figures people would rather look at than read. Each returns a matplotlib Figure (Agg)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def loss_curves_figure(curves: dict[str, Sequence[float]], title: str = "training loss"):
    """One line per named curve against epoch (1-based)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for name, values in curves.items():
        ax.plot(range(1, len(values) + 1), values, marker="o", ms=3, label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def embedding_figure(embeddings: np.ndarray, colourings: dict[str, Sequence], method: str = "tsne", seed: int = 0):
    """2-D PCA or t-SNE of embeddings, one panel per colouring (e.g. cluster, true label)."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    plt = _plt()
    x = np.asarray(embeddings, dtype=np.float64)
    if method == "tsne" and len(x) > 5:
        perplexity = float(min(30, max(2, (len(x) - 1) // 3)))
        xy = TSNE(n_components=2, perplexity=perplexity, random_state=seed, init="pca").fit_transform(x)
    else:
        xy = PCA(n_components=2, random_state=seed).fit_transform(x) if len(x) > 2 else np.zeros((len(x), 2))
        method = "pca"
    fig, axes = plt.subplots(1, len(colourings), figsize=(4.2 * len(colourings), 3.8), squeeze=False)
    cmap = plt.get_cmap("tab10")
    for ax, (name, labels) in zip(axes[0], colourings.items()):
        names = sorted({str(v) for v in labels})
        for i, label in enumerate(names):
            mask = np.array([str(v) == label for v in labels])
            ax.scatter(xy[mask, 0], xy[mask, 1], s=8, color=cmap(i % 10), label=label)
        ax.set_title(f"{method.upper()} coloured by {name}", fontsize=9)
        ax.legend(fontsize=6, markerscale=1.5)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def confusion_matrix_figure(matrix: Sequence[Sequence[int]], rows: Sequence[str], cols: Sequence[str],
                            title: str = "", xlabel: str = "predicted", ylabel: str = "true"):
    """Annotated confusion matrix (counts)."""
    plt = _plt()
    m = np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(1.2 + 0.7 * len(cols), 1.0 + 0.6 * len(rows)))
    ax.imshow(m, cmap="Blues")
    ax.set_xticks(range(len(cols)), [str(c) for c in cols], rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(len(rows)), [str(r) for r in rows], fontsize=7)
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if m[i, j] > m.max() / 2 else "black")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def parallel_coordinates_figure(rows: Sequence[dict], keys: Sequence[str], metric: str):
    """Tune trials as lines across their (min-max scaled, log for wide positive ranges) parameters
    and the metric, coloured by the metric. A categorical parameter (e.g. `choice(["rgb_diff", "flow"])`)
    is an axis of its sorted values, each named where its lines cross; a trial without the metric is grey."""
    plt = _plt()
    columns = list(keys) + [metric]
    categories: dict[int, list[str]] = {}
    for j, k in enumerate(keys):
        if not all(isinstance(r["params"][k], (int, float)) and not isinstance(r["params"][k], bool) for r in rows):
            categories[j] = sorted({str(r["params"][k]) for r in rows})

    def value(r: dict, j: int, k: str) -> float:
        return float(categories[j].index(str(r["params"][k]))) if j in categories else float(r["params"][k])

    values = np.array([[value(r, j, k) for j, k in enumerate(keys)]
                       + [float(r.get(metric, float("nan")))] for r in rows], dtype=float)
    scaled = np.full_like(values, 0.5)
    for j in range(values.shape[1]):
        col = values[:, j]
        if np.all(np.isnan(col)):
            continue
        if j not in categories and np.nanmin(col) > 0 and np.nanmax(col) / max(np.nanmin(col), 1e-30) > 20:
            col = np.log10(col)
        lo, hi = np.nanmin(col), np.nanmax(col)
        if hi - lo >= 1e-12:
            scaled[:, j] = (col - lo) / (hi - lo)
    fig, ax = plt.subplots(figsize=(1.8 * len(columns) + 2, 4))
    scores = values[:, -1]
    known = scores[~np.isnan(scores)]
    low, span = (known.min(), (known.max() - known.min()) or 1.0) if len(known) else (0.0, 1.0)
    cmap = plt.get_cmap("viridis")
    for i in range(len(rows)):
        colour = "grey" if np.isnan(scores[i]) else cmap((scores[i] - low) / span)
        ax.plot(range(len(columns)), scaled[i], color=colour, alpha=0.8, marker="o")
    ax.set_xticks(range(len(columns)))
    ax.set_xticklabels(columns, rotation=20, ha="right")
    ax.set_yticks([])
    for j in range(len(columns)):
        ax.axvline(j, color="grey", lw=0.5)
        if j in categories:
            names = categories[j]
            for c, name in enumerate(names):
                ax.annotate(name, (j, 0.5 if len(names) == 1 else c / (len(names) - 1)), ha="left", fontsize=7,
                            xytext=(3, 0), textcoords="offset points")
        elif not np.all(np.isnan(values[:, j])):
            ax.annotate(f"{np.nanmin(values[:, j]):.3g}", (j, -0.06), ha="center", fontsize=7)
            ax.annotate(f"{np.nanmax(values[:, j]):.3g}", (j, 1.03), ha="center", fontsize=7)
    ax.set_title(f"trials: parameters and {metric} (colour)")
    fig.tight_layout()
    return fig
