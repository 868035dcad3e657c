"""`actionops analyze embeddings EMB.parquet`: how well a backbone's embeddings separate the actions.

Written beside the parquet (`<stem>-analysis/`) and logged to MLflow (experiment anomaly-detection):
    analysis.json             silhouette, k-NN class agreement, per-class centroid report
    centroid_distances.csv    every embedding's distance to every class centroid
    embeddings-tsne.png, embeddings-pca.png, centroid_distances.png
The centroid report follows the reference: per class, the in-class farthest distance (the
hypersphere around the centroid holding every member) and the out-of-class nearest distance
(the largest one holding no other action), and what falls inside each.
Augmented views are left out: the analysis sees each video as recorded.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np


def centroid_report(X: np.ndarray, labels: np.ndarray) -> tuple[dict, np.ndarray, list[str]]:
    """(per-class report, distances (N, C) to the class centroids, class order)."""
    classes = sorted(set(labels))
    centroids = np.stack([X[labels == c].mean(axis=0) for c in classes])
    dist = np.linalg.norm(X[:, None, :] - centroids[None, :, :], axis=2)
    report = {}
    for j, cls in enumerate(classes):
        own, other = labels == cls, labels != cls
        r_in = float(dist[own, j].max())
        r_out = float(dist[other, j].min()) if other.any() else float("inf")
        report[cls] = {"members": int(own.sum()), "in_class_farthest": r_in, "out_of_class_nearest": r_out,
                       "others_inside_in_class_sphere": int((dist[other, j] <= r_in).sum()),
                       "members_inside_out_of_class_sphere": int((dist[own, j] < r_out).sum()),
                       "separated": bool(r_out > r_in),
                       "nearest_other_class": classes[int(np.argsort(np.linalg.norm(centroids - centroids[j], axis=1))[1])]
                       if len(classes) > 1 else None}
    nearest = np.array(classes)[dist.argmin(axis=1)]
    return {"classes": report, "nearest_centroid_accuracy": float(np.mean(nearest == labels))}, dist, classes


def knn_agreement(X: np.ndarray, labels: np.ndarray, videos: np.ndarray, k: int = 5) -> float:
    """Share of embeddings whose k nearest neighbours from *other videos* vote for their own class
    (clips of the same video would make this trivially high)."""
    d = np.linalg.norm(X[:, None, :] - X[None, :, :], axis=2)
    d[videos[:, None] == videos[None, :]] = np.inf
    hits = []
    for i in range(len(X)):
        order = [j for j in np.argsort(d[i]) if np.isfinite(d[i, j])][:k]
        if not order:
            continue
        votes: dict[str, int] = {}
        for j in order:
            votes[labels[j]] = votes.get(labels[j], 0) + 1
        hits.append(max(votes, key=lambda lab: (votes[lab], lab == labels[i])) == labels[i])
    return float(np.mean(hits)) if hits else 0.0


def analyze(emb: Any, out_dir: Path, seed: int = 0) -> tuple[dict, dict]:
    """(analysis dict, figures) of the plain (not augmented), labelled rows of `emb`."""
    from sklearn.metrics import silhouette_score

    from actionops.errors import DataError
    from actionops.evaluation.plots import _plt, embedding_figure

    mask = (emb.view < 0) & (emb.label != "")
    X, labels, videos, splits = emb.X[mask], emb.label[mask], emb.video_id[mask], emb.split[mask]
    classes = sorted(set(labels))
    if len(classes) < 2:
        raise DataError(f"{emb.path} holds {len(classes)} labelled class(es)", "the analysis compares at least two actions")
    report, dist, order = centroid_report(X, labels)
    silhouette = float(silhouette_score(X, labels)) if len(X) > len(classes) else None
    result = {"embeddings": str(emb.path), "rows": int(len(X)), "videos": len(set(videos)), "classes": classes,
              "dim": int(X.shape[1]), "backbone": emb.identity, "silhouette": silhouette,
              "knn_agreement": knn_agreement(X, labels, videos, k=5), "chance": 1.0 / len(classes), **report}
    out_dir.mkdir(parents=True, exist_ok=True)
    table = io.StringIO()
    writer = csv.writer(table)
    writer.writerow(["video_id", "label", "split", *[f"d_{c}" for c in order]])
    for i in range(len(X)):
        writer.writerow([videos[i], labels[i], splits[i], *[f"{v:.6f}" for v in dist[i]]])
    (out_dir / "centroid_distances.csv").write_text(table.getvalue())
    (out_dir / "analysis.json").write_text(json.dumps(result, indent=2, default=str))
    plt = _plt()
    fig, ax = plt.subplots(figsize=(1.5 + 0.9 * len(order), 3.4))
    for j, cls in enumerate(order):
        for k, other in enumerate(order):
            values = dist[labels == other, j]
            ax.scatter(np.full(len(values), j + (k - (len(order) - 1) / 2) * 0.12), values, s=8,
                       color=plt.get_cmap("tab10")(k % 10), label=other if j == 0 else None)
        ax.hlines(report["classes"][cls]["in_class_farthest"], j - 0.4, j + 0.4, color="black", linewidth=1)
    ax.set_xticks(range(len(order)), order, rotation=30, ha="right", fontsize=7)
    ax.set_ylabel("distance to the class centroid")
    ax.set_title("distances to each centroid (bar: in-class farthest)", fontsize=9)
    ax.legend(fontsize=6)
    fig.tight_layout()
    figures = {"embeddings-tsne.png": embedding_figure(X, {"class": labels, "split": splits}, "tsne", seed),
               "embeddings-pca.png": embedding_figure(X, {"class": labels, "split": splits}, "pca", seed),
               "centroid_distances.png": fig}
    for name, figure in figures.items():
        figure.savefig(out_dir / name, dpi=100, bbox_inches="tight")
    return result, figures


def analyze_file(path: Path, ctx: Any, log: bool = True) -> dict:
    """Analyze an embeddings parquet; outputs in `<stem>-analysis/` beside it, one MLflow run."""
    from actionops.pipelines.anomaly_detection.embeddings import read_embeddings
    from actionops.pipelines.method import get_method
    from actionops.platform import tracking

    emb = read_embeddings(path)
    out_dir = Path(path).with_name(f"{Path(path).stem}-analysis")
    result, figures = analyze(emb, out_dir, seed=ctx.cfg.embed.seed)
    if log:
        with tracking.start_run(get_method("anomaly-detection").experiment, run_name=f"analyze-{Path(path).stem}",
                                params=ctx.cfg.flat(), tags={"actionops.stage": "analyze_embeddings",
                                                             "actionops.backbone": emb.identity.get("resolved", "?")}):
            tracking.log_metrics({k: result[k] for k in ("knn_agreement", "nearest_centroid_accuracy", "silhouette")
                                  if result.get(k) is not None})
            for name, figure in figures.items():
                tracking.log_figure(figure, f"figures/{name}")
            tracking.log_dict(result, "analysis.json")
            tracking.log_artifact(out_dir / "centroid_distances.csv")
    return {**result, "outputs": str(out_dir)}
