"""Video clusters from Fisher vectors: faiss k-means with restarts (GPU faiss when it sees a GPU, CPU
otherwise), and the video -> cluster table keyed by video id.

The table is keyed by `video_id`, never by list position, so a missing or rejected video cannot
shift anyone's label; cluster numbers are renamed in order of the first video (by id) in each, so
the same partition always gets the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from actionops.errors import DataError


def kmeans(x: np.ndarray, k: int, *, restarts: int = 5, iterations: int = 50, seed: int = 0) -> tuple[np.ndarray, float]:
    """faiss k-means of the rows of `x` into `k` clusters, the best of `restarts` runs:
    (assignment per row, objective)."""
    import faiss

    x = np.ascontiguousarray(x, np.float32)
    km = faiss.Kmeans(x.shape[1], k, niter=iterations, nredo=restarts, seed=seed, verbose=False,
                      gpu=faiss.get_num_gpus() > 0, min_points_per_centroid=1)
    km.train(x)
    _, assign = km.index.search(x, 1)
    return assign[:, 0].astype(int), float(km.obj[-1]) if len(km.obj) else float("nan")


def cluster_table(video_ids: Sequence[str], vectors: np.ndarray, k: int, *, restarts: int = 5, seed: int = 0):
    """DataFrame (video_id, cluster), sorted by video_id, cluster numbers canonical (see module)."""
    import pandas as pd

    ids = [str(v) for v in video_ids]
    if len(set(ids)) != len(ids):
        dup = sorted({v for v in ids if ids.count(v) > 1})
        raise DataError(f"video ids appear twice: {', '.join(dup[:5])}", "give every video one id")
    if len(ids) < k:
        raise DataError(f"{len(ids)} videos cannot make {k} clusters", "lower --k or add videos")
    order = np.argsort(ids, kind="stable")
    ids_sorted = [ids[i] for i in order]
    assign, _ = kmeans(np.asarray(vectors)[order], k, restarts=restarts, seed=seed)
    names: dict[int, int] = {}
    canonical = [names.setdefault(int(a), len(names)) for a in assign]
    return pd.DataFrame({"video_id": ids_sorted, "cluster": canonical})


def table_scores(table, labels: dict[str, str]) -> dict:
    """Purity and NMI of the table against `labels` (video_id -> label), joined by id; videos without
    a label are left out and counted."""
    from sklearn.metrics import normalized_mutual_info_score

    rows = [(c, labels[v]) for v, c in zip(table["video_id"], table["cluster"]) if v in labels]
    if not rows:
        return {"videos": 0, "unlabelled": len(table)}
    clusters, truth = zip(*rows)
    purity = sum(max(np.unique([t for c2, t in rows if c2 == c], return_counts=True)[1]) for c in set(clusters)) / len(rows)
    return {"videos": len(rows), "unlabelled": len(table) - len(rows), "purity": float(purity),
            "nmi": float(normalized_mutual_info_score(truth, clusters))}
