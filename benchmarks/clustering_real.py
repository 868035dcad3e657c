"""Benchmark: individual clustering on real video nobody here made (Weizmann, 4 actions).

    python -m benchmarks.clustering_real [--epochs 8]

`../shared/data/weizmann4` (ACTIONOPS_SHARED_DATA) is laid out as an operating-room dataset in
a temporary folder: one person per video with a full-frame box, the action as the label;
performers p0-p5 in train/, p6-p8 in test/. The whole pipeline runs (flow, both autoencoders,
clustering, predict, evaluate) with K = 4, and in the same run a trivial baseline: k-means on
optical-flow orientation/magnitude histograms on a 4x4 grid. Scores: Hungarian accuracy, NMI,
ARI per person-window (deep) and per video (both: a video takes its windows' majority cluster).
`--backbone pretrain.pt` embeds the people with that pretrained video backbone instead of the
autoencoders (clustering.features=backbone; benchmarks/pretrain_real.py runs it after pretraining).
Writes benchmarks/results/clustering_real.json (clustering_real_motion.json with the motion feature).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

RESULTS = Path(__file__).resolve().parent / "results"
SHARED = Path(os.environ.get("ACTIONOPS_SHARED_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))


def weizmann_as_or_layout(src: Path, dst: Path, test_performers: set[str]) -> pd.DataFrame:
    """Copy the clips into train/test with a full-frame pose track and the action as annotation."""
    from actionops.platform.video import probe_video

    labels = pd.read_csv(src / "labels.csv")
    for row in labels.itertuples():
        split = "test" if row.performer in test_performers else "train"
        name = Path(row.path).stem
        video = dst / split / f"{name}.mp4"
        video.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src / row.path, video)
        info = probe_video(video)
        box = [0, 0, info["width"], info["height"]]
        meta = video.with_suffix("") / "json"
        meta.mkdir(parents=True)
        (meta / "pose.json").write_text(json.dumps([{"frame": f + 1, "id": 1, "bbox": box} for f in range(info["frames"])]))
        (meta / "annotation_clustering.json").write_text(json.dumps(
            [{"frame": f + 1, "id": 1, "label": row.label} for f in range(info["frames"])]))
    return labels


def video_level(emb: dict) -> tuple[list[str], list[int]]:
    votes: dict[str, list[int]] = collections.defaultdict(list)
    truth = {}
    for vid, cluster, label in zip(emb["video_id"], emb["cluster"], emb["truth"]):
        votes[str(vid)].append(int(cluster))
        truth[str(vid)] = str(label)
    vids = sorted(votes)
    return [truth[v] for v in vids], [collections.Counter(votes[v]).most_common(1)[0][0] for v in vids]


def motion_only(rows: list[dict], cfg) -> dict:
    """k-means (fit on train windows) on the model's own per-person motion descriptors, no deep features."""
    from sklearn.cluster import KMeans

    from actionops.evaluation.metrics import clustering_scores
    from actionops.pipelines.individual_clustering.stages import motion_spec
    from actionops.pipelines.individual_clustering.windows import window_dataset

    parts = {}
    for split in ("train", "test"):
        part = [r for r in rows if r["split"] == split]
        ds = window_dataset(part, cfg.autoencoder, frames=False, motion=motion_spec(cfg.clustering)).select_columns(
            ["video_id", "motion", "labels"])
        batch = ds.to_pandas()
        parts[split] = {"x": np.stack([m[0] for m in batch["motion"]]), "video_id": list(batch["video_id"]),
                        "truth": [str(list(v)[0]) for v in batch["labels"]]}
    km = KMeans(cfg.clustering.n_clusters, n_init=10, random_state=cfg.train.seed).fit(parts["train"]["x"])
    out = {}
    for split, part in parts.items():
        cluster = km.predict(part["x"])
        out[f"{split}_person_window"] = clustering_scores(part["truth"], cluster)
        truth, pred = video_level({"video_id": part["video_id"], "cluster": cluster, "truth": part["truth"]})
        out[f"{split}_video"] = clustering_scores(truth, pred)
    return out


def run(src: Path, work: Path, overrides: list[str], name: str = "out", test: frozenset = frozenset({"p6", "p7", "p8"})) -> dict:
    """The whole pipeline on weizmann4 laid out under `work` (flow, the autoencoders unless
    clustering.features=backbone, clustering, predict, evaluate) plus the flow-histogram k-means
    baseline; returns the result dict (scores per split, person windows and videos)."""
    from actionops.evaluation.baselines import kmeans_baseline
    from actionops.platform.flow import flow_histogram_features
    from actionops.evaluation.metrics import clustering_scores
    from actionops.pipelines import load_config
    from actionops.pipelines.individual_clustering import stages
    from actionops.platform.cluster import ray_session
    from actionops.platform.data import compute_flow, index_dataset, load_manifest

    data = work / f"weizmann4_or_test_{'_'.join(sorted(test))}"
    if not data.is_dir():
        weizmann_as_or_layout(src, data, set(test))
    cfg = load_config(None, overrides)
    ctx = stages.Context(cfg=cfg, dataset=data, out=work / name)
    result: dict = {"dataset": "weizmann4 (36 clips, 4 actions, 9 performers)", "split": f"test {', '.join(sorted(test))}, train the others",
                    "config": overrides}
    start = time.perf_counter()
    with ray_session(cfg.ray):
        index_dataset(data)
        _, rows = load_manifest(data)
        compute_flow(rows, method=cfg.flow.method)
        # baseline first, on the same flow files
        for split in ("train", "test", "all"):
            part = [r for r in rows if split == "all" or r["split"] == split]
            feats = np.stack([flow_histogram_features(np.load(r["flow_path"]), grid=4, bins=8) for r in part])
            truth = [json.loads(Path(r["annotation_path"]).read_text())[0]["label"] for r in part]
            clusters = kmeans_baseline(feats, 4, seed=0)
            result.setdefault("baseline_flow_hist_kmeans", {})[split] = clustering_scores(truth, clusters)
        if not stages.uses_backbone(cfg):
            for datatype in ("frame", "flow"):
                stages.train_autoencoder(ctx, datatype)
        if cfg.clustering.add_motion_feature:  # the descriptor alone, on the same windows: what the deep part adds
            result["motion_descriptor_kmeans"] = motion_only(rows, cfg)
        tick = time.perf_counter()
        trained = stages.train_clustering(ctx)
        result["clustering_seconds"] = round(time.perf_counter() - tick, 1)
        result["deep"] = {"train_fit": trained["train_scores"]}  # at the end of training, with the k-means init's score
        for split in ("train", "test"):
            stages.predict(ctx, split)
            result["deep"][f"{split}_person_window"] = {k: v for k, v in stages.evaluate(ctx, split).items()
                                                       if k in ("hungarian_accuracy", "nmi", "ari", "majority_vote_accuracy")}
            emb = np.load(ctx.out / "predictions" / split / "embeddings.npz")
            truth, pred = video_level(emb)
            result["deep"][f"{split}_video"] = clustering_scores(truth, pred)
    result["seconds"] = round(time.perf_counter() - start, 1)
    return result


def show(result: dict) -> None:
    base, deep = result["baseline_flow_hist_kmeans"], result["deep"]
    print(f"{'':28s} {'hungarian':>10s} {'nmi':>7s} {'ari':>7s}")
    for label, scores in [("baseline (all 36 videos)", base["all"]), ("baseline (test videos)", base["test"]),
                          ("deep, train windows", deep["train_person_window"]),
                          ("deep, test windows", deep["test_person_window"]), ("deep, test videos", deep["test_video"]),
                          *[(f"descriptor alone, {k.replace('_person_window', ' windows').replace('_video', ' videos')}", v)
                            for k, v in result.get("motion_descriptor_kmeans", {}).items()]]:
        print(f"{label:28s} {scores['hungarian_accuracy']:10.3f} {scores['nmi']:7.3f} {scores['ari']:7.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--set", action="append", default=[], help="extra config overrides")
    parser.add_argument("--backbone", default=None, help="a `train pretrain` checkpoint: people embedded by it "
                        "(clustering.features=backbone) instead of the autoencoders")
    parser.add_argument("--fold", default="A", choices=["A", "B"], help="test performers: A p6-p8, B p0-p2 "
                        "(benchmarks/classify_real.FOLDS)")
    parser.add_argument("--name", default=None, help="results file name (default: clustering_real[_backbone][_motion].json)")
    args = parser.parse_args()
    src = SHARED / "weizmann4"
    if not src.is_dir():
        print(f"skipped: {src} not found (set ACTIONOPS_SHARED_DATA)")
        return
    work = Path(tempfile.mkdtemp(prefix="bench_w4_"))
    os.environ.setdefault("ACTIONOPS_MLRUNS", str(work / "mlruns"))
    os.environ.setdefault("ACTIONOPS_STORAGE", str(work / "ray_results"))
    try:
        overrides = ["autoencoder.width=64", "autoencoder.height=64", f"autoencoder.epochs={args.epochs}",
                     f"clustering.epochs={args.epochs}", "clustering.n_clusters=4", "clustering.registered_model=weizmann4-clustering",
                     *(["clustering.features=backbone", f"clustering.backbone={Path(args.backbone).resolve()}"]
                       if args.backbone else []), *args.set]
        from benchmarks.classify_real import FOLDS

        result = run(src, work, overrides, test=frozenset(FOLDS[args.fold]["test"]))
        show(result)
        from actionops.pipelines import load_config

        cfg = load_config(None, overrides)
        RESULTS.mkdir(exist_ok=True)
        name = args.name or ("clustering_real" + ("_backbone" if args.backbone else "")
                             + ("_motion" if cfg.clustering.add_motion_feature else "")
                             + ("" if args.fold == "A" else f"_fold{args.fold}") + ".json")
        (RESULTS / name).write_text(json.dumps(result, indent=2, default=float))
        print(f"wrote {RESULTS / name} ({result['seconds']} s)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
