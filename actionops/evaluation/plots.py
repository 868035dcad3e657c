"""Figures people would rather look at than read. Each returns a matplotlib Figure (Agg)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def boxes_figure(frame: np.ndarray, boxes: Sequence[Sequence[float]], labels: Sequence[str], title: str = ""):
    """One RGB frame with boxes [x1, y1, x2, y2] outlined and captioned, colour per label."""
    plt = _plt()
    names = sorted(set(labels))
    cmap = plt.get_cmap("tab10")
    fig, ax = plt.subplots(figsize=(6, 6 * frame.shape[0] / frame.shape[1]))
    ax.imshow(frame)
    for box, label in zip(boxes, labels):
        x1, y1, x2, y2 = box[:4]
        colour = cmap(names.index(label) % 10)
        ax.add_patch(plt.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, color=colour, lw=1.5))
        ax.text(x1, y1 - 1, label, color=colour, fontsize=6, va="bottom")
    ax.set_title(title, fontsize=9)
    ax.axis("off")
    fig.tight_layout()
    return fig
