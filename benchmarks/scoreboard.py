"""Scoreboard: every registered method with the shipped defaults on every real labelled dataset at hand.

    python -m benchmarks.scoreboard [--methods clip-classification,...] [--datasets weizmann4,ut_interaction,cmu_mocap]
                                    [--params params.yaml] [--set section.key=value ...] [--tag shipped]
                                    [--seeds 0,1,2]

One table, method x dataset x split -> score, the method's baseline in the same run, train time.
Each method runs through its real stages (Ray Data, Ray Train, MLflow in a temporary store) with
the configuration a user gets: `--params` (default: the repository's params.yaml) and nothing else,
except what the dataset fixes (the number of clusters / classes is the dataset's). `--set`s and
`--tag` let the same table score another setting (`--tag rgb --set classifier.clip_input=rgb`):
that is how defaults are chosen (a change of default must not lower any row). `--seeds` runs every
row once per `train.seed` and scores the mean: one UT-Interaction classifier row moves by up to 0.09
with the seed (36 test clips), so a comparison of two settings there is only meaningful over seeds.

Datasets (`ACTIONOPS_SHARED_DATA`, default ../shared/data; a missing one is skipped):
  weizmann4       36 clips, 4 actions, 9 performers; leave-performers-out folds A (val p5, test
                  p6-p8) and B (val p3, test p0-p2), as benchmarks/classify_real
  ut_interaction  120 clips, 6 two-person interactions, 20 sequences; split by sequence, never by
                  clip: fold A (val 4 14, test 1-3 11-13), fold B (val 7 17, test 8-10 18-20)
  cmu_mocap       case (i) of the sequence issue: 5 actions concatenated, seeds 0 and 1
Rows (score / baseline):
  clip-classification    test accuracy and macro-F1 / logistic regression on flow histograms
                         (4x4 grid x 8 bins, sqrt + L2, fit on train + val)
  individual-clustering  Hungarian accuracy per person-window and per video on the test performers
                         (one full-frame box per clip) / k-means on whole-clip flow histograms
  anomaly-detection      mean ROC-AUC over "each action as the normal one" / best of the
                         centroid, Mahalanobis and k-NN distances on the same embeddings
  sequence-clustering    ARI per frame / best of k-means on raw windows, window statistics, PCA
  trajectory-clustering  NMI and purity of the trajectory clusters (k = the classes) of the fold's test
                         videos / k-means on whole-clip flow histograms of the same videos
                         (pretraining is not on the board: benchmarks/pretrain_real.py, 13 min a run)
A dataset's flow (the flow stage's, and the baselines') is computed once per run and shared by its folds
and rows (`share_flow`: the same videos; a file is reused only when method, size, frames and md5 match).
Writes benchmarks/results/scoreboard.json (runs are kept per tag; rerunning a tag replaces its rows).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks import machine
from benchmarks.classify_real import FOLDS as WEIZMANN_FOLDS
from benchmarks.classify_real import SHARED, weizmann_as_csv_layout

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parents[1]
UT_FOLDS = {"A": {"val": {4, 14}, "test": {1, 2, 3, 11, 12, 13}},
            "B": {"val": {7, 17}, "test": {8, 9, 10, 18, 19, 20}}}
BASELINE_FLOW_WIDTH = 128  # the baseline's flow is computed at this width (aspect kept): UT clips are 400 px wide
FLOW_CACHE: Path | None = None  # set by main(): one flow folder per dataset that every fold's copy of it shares


def share_flow(data: Path, dataset: str, kind: str = "flow") -> Path:
    """The folds and rows copy the same videos (same relative paths, same bytes): their flow files
    (`kind`: the flow stage's, or the baseline's) live in one folder per dataset, so a dataset's flow
    is computed once per scoreboard run, as a user computes it once for their dataset. A file is
    reused only when it matches (method, size, frame count and the video's md5: the flow stage's own check).
    Returns the folder to use as `data`'s flow folder."""
    if FLOW_CACHE is None:
        return data / kind
    target = FLOW_CACHE / dataset / kind
    target.mkdir(parents=True, exist_ok=True)
    data.mkdir(parents=True, exist_ok=True)
    link = data / kind
    if not link.exists():
        link.symlink_to(target, target_is_directory=True)
    return link


def ut_as_csv_layout(src: Path, dst: Path, fold: dict) -> pd.DataFrame:
    """UT-Interaction as a CSV-layout dataset, split by sequence (the same actors recur across clips
    of a sequence: a clip split would leak them)."""
    labels = pd.read_csv(src / "labels.csv")
    tables: dict[str, list] = {"train": [], "val": [], "test": []}
    for row in labels.itertuples():
        seq = int(row.sequence)
        split = "test" if seq in fold["test"] else "val" if seq in fold["val"] else "train"
        (dst / row.path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src / row.path, dst / row.path)
        tables[split].append({"path": row.path, "label": row.label, "sequence": seq})
    for split, rows in tables.items():
        pd.DataFrame(rows).to_csv(dst / f"{split}.csv", index=False)
    return labels


def flow_hist_features(dataset: Path, work: Path, name: str | None = None) -> tuple[list[dict], dict[str, np.ndarray]]:
    """Index `dataset`, compute its flow (Farneback, BASELINE_FLOW_WIDTH wide), one 4x4x8 flow histogram per video.
    `name`: the shared dataset it copies (its baseline flow is shared across rows: `share_flow`)."""
    from actionops.platform.data import compute_flow, index_dataset, load_manifest
    from actionops.platform.flow import flow_histogram_features

    manifest = work / "baseline-manifest.parquet"
    index_dataset(dataset, out=manifest, flow_dir=share_flow(work, name, "baseline-flow") if name else work / "baseline-flow")
    _, rows = load_manifest(dataset, manifest)
    width = max(int(r["width"]) for r in rows)
    scale = min(1.0, BASELINE_FLOW_WIDTH / width)
    size = None if scale >= 1.0 else (BASELINE_FLOW_WIDTH, int(round(max(int(r["height"]) for r in rows) * scale / 2) * 2))
    report = compute_flow(rows, method="farneback", size=size)
    assert not report.failed, report.failed
    return rows, {r["video_id"]: flow_histogram_features(np.load(r["flow_path"]), grid=4, bins=8) for r in rows}


def logreg_baseline(rows: list[dict], feats: dict[str, np.ndarray]) -> dict:
    from sklearn.linear_model import LogisticRegression

    from actionops.evaluation.metrics import classification_report

    fit = [r for r in rows if r["split"] in ("train", "val")]
    test = [r for r in rows if r["split"] == "test"]
    clf = LogisticRegression(max_iter=2000, C=10.0).fit(np.stack([feats[r["video_id"]] for r in fit]),
                                                         [r["label"] for r in fit])
    report = classification_report([r["label"] for r in test], list(clf.predict(np.stack([feats[r["video_id"]] for r in test]))))
    return {"accuracy": report["accuracy"], "macro_f1": report["macro_f1"]}


# ----------------------------------------------------------------------------- rows
TRAINED: dict[tuple, Path] = {}  # (dataset, split, params) -> the classifier row's checkpoint (the anomaly row's backbone)

def classifier_row(cfg, dataset: Path, work: Path, key: tuple = (), name: str | None = None) -> dict:
    from actionops.pipelines.clip_classification.stages import evaluate_classifier, train_classifier
    from actionops.pipelines.context import Context

    rows, feats = flow_hist_features(dataset, work, name)
    base = logreg_baseline(rows, feats)
    ctx = Context(cfg=cfg, dataset=dataset, out=work / "out")
    tick = time.perf_counter()
    trained = train_classifier(ctx, register=False)
    seconds = time.perf_counter() - tick
    metrics = evaluate_classifier(ctx, None, "test", latency=False)  # the row has no latency column
    TRAINED[key] = ctx.out / "classifier.pt"
    return {"score": {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"]},
            "baseline": {"name": "logreg on flow histograms", **base}, "train_seconds": round(seconds, 1),
            "extra": {"best_epoch": trained.get("best_epoch"), "epochs": trained.get("epochs")}}


def fit_and_score_clustering(ctx) -> tuple[list[dict], dict, float]:
    """Individual clustering on `ctx.dataset` through its stages: index, flow, both autoencoders
    and the clustering layer (timed), then predict and evaluate the test split.
    Returns (manifest rows, test window scores, training seconds)."""
    from actionops.pipelines.individual_clustering import stages
    from actionops.platform.data import compute_flow, index_dataset, load_manifest

    cfg = ctx.cfg
    tick = time.perf_counter()
    index_dataset(ctx.dataset)
    _, rows = load_manifest(ctx.dataset)
    compute_flow(rows, method=cfg.flow.method, size=None, comp=cfg.flow.comp, chunk_frames=cfg.flow.chunk_frames)
    for name in ("frame", "flow"):
        stages.train_autoencoder(ctx, name)
    stages.train_clustering(ctx)
    seconds = time.perf_counter() - tick
    stages.predict(ctx, "test")
    return rows, stages.evaluate(ctx, "test"), seconds


def clustering_row(cfg, src: Path, fold: dict, work: Path) -> dict:
    from actionops.evaluation.baselines import kmeans_baseline
    from actionops.evaluation.metrics import clustering_scores
    from actionops.pipelines.individual_clustering import stages
    from actionops.platform.flow import flow_histogram_features
    from benchmarks.clustering_real import video_level, weizmann_as_or_layout

    data = work / "or"
    labels = weizmann_as_or_layout(src, data, fold["test"])
    cfg = cfg.with_overrides({"clustering.n_clusters": int(labels["label"].nunique())}, origin="dataset")
    ctx = stages.Context(cfg=cfg, dataset=data, out=work / "out")
    rows, window, seconds = fit_and_score_clustering(ctx)
    test = [r for r in rows if r["split"] == "test"]
    feats = np.stack([flow_histogram_features(np.load(r["flow_path"]), grid=4, bins=8) for r in test])
    truth = [json.loads(Path(r["annotation_path"]).read_text())[0]["label"] for r in test]
    base = clustering_scores(truth, kmeans_baseline(feats, cfg.clustering.n_clusters, seed=0))
    emb = np.load(ctx.out / "predictions" / "test" / "embeddings.npz")
    video = clustering_scores(*video_level(emb))
    return {"score": {"hungarian_window": window["hungarian_accuracy"], "nmi_window": window["nmi"],
                      "hungarian_video": video["hungarian_accuracy"]},
            "baseline": {"name": "k-means on whole-clip flow histograms (test videos)",
                         "hungarian_video": base["hungarian_accuracy"], "nmi": base["nmi"]},
            "train_seconds": round(seconds, 1)}


def anomaly_row(cfg, dataset: Path, work: Path, key: tuple = ()) -> dict:
    """The shipped backbone is `models:/clip-classifier@champion`: a classifier trained on the user's
    videos. Here that is the classifier row's model of the same fold (trained on its train split with
    the same params), or one trained now when that row did not run."""
    from actionops.pipelines.anomaly_detection.embeddings import embed_dataset
    from actionops.pipelines.anomaly_detection.stages import evaluate_anomaly, train_anomaly
    from actionops.pipelines.clip_classification.stages import train_classifier
    from actionops.pipelines.context import Context

    labels = sorted(pd.read_csv(dataset / "train.csv")["label"].unique())
    tick = time.perf_counter()
    if str(cfg.embed.backbone).startswith("models:/clip-classifier"):
        checkpoint = TRAINED.get(key)
        if checkpoint is None:
            cls_ctx = Context(cfg=cfg, dataset=dataset, out=work / "classifier")
            train_classifier(cls_ctx, register=False)
            checkpoint = cls_ctx.out / "classifier.pt"
        cfg = cfg.with_overrides({"embed.backbone": str(checkpoint)}, origin="dataset")
    ctx = Context(cfg=cfg, dataset=dataset, out=work / "out")
    embedded = embed_dataset(ctx, ctx.out / "embeddings.parquet")
    aucs, baselines = [], {}
    for action in labels:
        det = cfg.with_overrides({"anomaly.embeddings": str(embedded.path), "anomaly.normal": action}, origin="dataset")
        actx = Context(cfg=det, dataset=dataset, out=work / "out" / action)
        train_anomaly(actx, register=False)
        metrics = evaluate_anomaly(actx, None, "test")
        aucs.append(metrics["roc_auc"])
        for name, b in metrics["baselines"].items():
            baselines.setdefault(name, []).append(b["roc_auc"])
    best = max(baselines, key=lambda n: np.mean(baselines[n]))
    return {"score": {"mean_roc_auc": float(np.mean(aucs))},
            "baseline": {"name": f"{best} distance (best of {', '.join(sorted(baselines))})",
                         "mean_roc_auc": float(np.mean(baselines[best]))},
            "train_seconds": round(time.perf_counter() - tick, 1)}


def sequence_row(cfg, seed: int, work: Path, actions: int = 5) -> dict:
    from actionops.pipelines.context import Context
    from actionops.pipelines.sequence_clustering.data import checkpoint_spec, sequence_rows
    from actionops.pipelines.sequence_clustering.stages import cluster_split, train_sequences
    from actionops.platform.sequences import concat_recording, list_sequences
    from benchmarks.sequences_real import baselines

    _, entries, _ = list_sequences(SHARED / "cmu_mocap")
    data = work / "recording"
    concat_recording(entries, actions=actions, per_action=1, seed=seed, out=data)
    cfg = cfg.with_overrides({"train.seed": seed, "seqcluster.split": None}, origin="dataset")
    ctx = Context(cfg=cfg, dataset=data, out=work / "out")
    tick = time.perf_counter()
    train_sequences(ctx, register=False)
    seconds = time.perf_counter() - tick
    got = cluster_split(ctx, None, None, actions)
    spec, normaliser = checkpoint_spec(got["state"])
    base = baselines(ctx, sequence_rows(ctx), spec, normaliser, actions, seed)
    best = max(base, key=lambda n: base[n]["ari"])
    return {"score": {"ari": float(got["report"]["scores"]["ari"]), "ami": float(got["report"]["scores"]["ami"])},
            "baseline": {"name": best, "ari": float(base[best]["ari"])}, "train_seconds": round(seconds, 1)}


def trajectory_row(cfg, dataset: str, split: str, work: Path) -> dict:
    """The method's own trajectories -> Fisher vectors -> k-means (k = the classes) on the fold's test
    videos, laid out flat (labels only score); baseline: k-means on whole-clip flow histograms of
    the same videos."""
    from actionops.evaluation.baselines import kmeans_baseline
    from actionops.evaluation.metrics import clustering_scores
    from actionops.pipelines.context import Context
    from actionops.pipelines.trajectory_clustering import stages

    src = SHARED / dataset
    labels = pd.read_csv(src / "labels.csv")
    if dataset == "weizmann4":
        test = labels[labels["performer"].isin(WEIZMANN_FOLDS[split]["test"])]
    else:
        test = labels[labels["sequence"].astype(int).isin(UT_FOLDS[split]["test"])]
    data = work / "test_videos"
    for row in test.itertuples():  # class folders: the layout's labels score the clusters, nothing else
        target = data / row.label / Path(row.path).name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src / row.path, target)
    share_flow(data, dataset)  # the classifier rows' flow of these videos, when they ran
    ctx = Context(cfg=cfg, dataset=data, out=work / "out")
    tick = time.perf_counter()
    report = stages.compute_stage(ctx)
    stages.encode_stage(ctx)
    got = stages.cluster_stage(ctx)
    seconds = time.perf_counter() - tick
    rows, feats = flow_hist_features(data, work, dataset)
    truth = [r["label"] for r in rows]
    base = clustering_scores(truth, kmeans_baseline(np.stack([feats[r["video_id"]] for r in rows]), got["k"], seed=0))
    return {"score": {"nmi": got["nmi"], "purity": got["purity"]},
            "baseline": {"name": "k-means on whole-clip flow histograms (test videos)", "nmi": base["nmi"]},
            "train_seconds": round(seconds, 1),
            "extra": {"videos": got["videos"], "k": got["k"], "trajectories": report.get("trajectories_new")}}


# ----------------------------------------------------------------------------- the table
PLAN = {  # method -> datasets it is scored on
    "clip-classification": ("weizmann4", "ut_interaction"),
    "individual-clustering": ("weizmann4",),
    "anomaly-detection": ("weizmann4",),
    "sequence-clustering": ("cmu_mocap",),
    "trajectory-clustering": ("weizmann4", "ut_interaction"),
}


def run_row(method: str, dataset: str, split: str, cfg, work: Path) -> dict:
    if dataset == "cmu_mocap":
        return sequence_row(cfg, int(split.removeprefix("seed")), work)
    if method == "trajectory-clustering":
        return trajectory_row(cfg, dataset, split, work)
    if method == "individual-clustering":
        return clustering_row(cfg, SHARED / "weizmann4", WEIZMANN_FOLDS[split], work)
    data = work / "data"
    if dataset == "weizmann4":
        weizmann_as_csv_layout(SHARED / "weizmann4", data, WEIZMANN_FOLDS[split])
    else:
        ut_as_csv_layout(SHARED / "ut_interaction", data, UT_FOLDS[split])
    share_flow(data, dataset)
    key = (dataset, split, id(cfg))
    return classifier_row(cfg, data, work, key, dataset) if method == "clip-classification" else anomaly_row(cfg, data, work, key)


def seeded_row(method: str, dataset: str, split: str, cfgs: dict, work: Path) -> dict:
    """`run_row` once per configuration of `cfgs` ({train.seed: cfg}, or {None: cfg} for one run).
    Several seeds: the row's scores are their means, `extra.per_seed` keeps each run's score and
    train seconds, `train_seconds` is their sum; the baseline is the first run's (it is seed-free).
    Sequence rows run once: their split is already the seed."""
    if dataset == "cmu_mocap" or len(cfgs) == 1:
        return run_row(method, dataset, split, next(iter(cfgs.values())), work)
    runs = {}
    for seed, cfg in cfgs.items():
        (work / f"seed{seed}").mkdir(parents=True)
        runs[seed] = run_row(method, dataset, split, cfg, work / f"seed{seed}")
    first = next(iter(runs.values()))
    return {**first, "score": {k: float(np.mean([r["score"][k] for r in runs.values()])) for k in first["score"]},
            "train_seconds": round(sum(r["train_seconds"] for r in runs.values()), 1),
            "extra": {**(first.get("extra") or {}), "per_seed": [
                {"seed": seed, "score": r["score"], "train_seconds": r["train_seconds"], "extra": r.get("extra")}
                for seed, r in runs.items()]}}


def speed_probe(steps: int = 6) -> float:
    """Median seconds of one training step of the shipped classifier's network (TSM-ResNet18, 8 clips
    of 8 x 64 x 64, random input, torch threads = cores): how fast the machine ran. This VM's speed
    drifts by up to 1.5x within a day, so board times are compared together with this probe."""
    import torch
    import torch.nn.functional as F

    from actionops.models import create_model
    from actionops.pipelines.clip_classification.loops import channels_last

    threads = torch.get_num_threads()
    torch.set_num_threads(os.cpu_count() or 1)
    try:
        torch.manual_seed(0)
        model = channels_last(create_model("tsm_resnet18", num_classes=6, num_frames=8, image_size=64))
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        x, y = torch.randn(8, 8, 3, 64, 64), torch.randint(0, 6, (8,))
        times = []
        for i in range(steps + 2):  # two warm-up steps
            tick = time.perf_counter()
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if i >= 2:
                times.append(time.perf_counter() - tick)
        return round(float(np.median(times)), 3)
    finally:
        torch.set_num_threads(threads)


def splits_of(dataset: str) -> list[str]:
    return ["seed0", "seed1"] if dataset == "cmu_mocap" else ["A", "B"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", default=",".join(PLAN))
    parser.add_argument("--datasets", default="weizmann4,ut_interaction,cmu_mocap")
    parser.add_argument("--splits", default=None, help="e.g. A or seed0 (default: every split)")
    parser.add_argument("--params", type=Path, default=REPO / "params.yaml")
    parser.add_argument("--set", dest="sets", action="append", default=[], help="section.key=value for every row")
    parser.add_argument("--tag", default="shipped", help="name of this setting in the results (default: shipped)")
    parser.add_argument("--seeds", default=None,
                        help="e.g. 0,1,2: run each row once per train.seed and score the mean (a UT classifier row "
                             "moves by up to 0.09 with the seed); default: one run with params.yaml's train.seed")
    parser.add_argument("--out", type=Path, default=RESULTS / "scoreboard.json")
    parser.add_argument("--compare", metavar="TAG", default=None,
                        help="only compare this run's tag with TAG's rows (no training): a default must not lower any row")
    args = parser.parse_args()
    if args.compare:
        runs = json.loads(args.out.read_text())["runs"]
        text, lowered = compare(runs[args.tag]["rows"], runs[args.compare]["rows"])
        print(text)
        print(f"{args.tag} lowers {len(lowered)} row(s) of {args.compare}" + (f": {lowered}" if lowered else ""))
        raise SystemExit(1 if lowered else 0)

    from actionops.pipelines import load_config
    from actionops.platform.cluster import ray_session

    result = json.loads(args.out.read_text()) if args.out.is_file() else {}
    entry = result.setdefault("runs", {}).setdefault(args.tag, {"params": str(args.params), "sets": args.sets, "rows": []})
    entry.update(params=str(args.params.resolve().relative_to(REPO)) if args.params.resolve().is_relative_to(REPO)
                 else str(args.params), sets=args.sets)
    work = Path(tempfile.mkdtemp(prefix="scoreboard-"))
    global FLOW_CACHE
    FLOW_CACHE = work / "flow-cache"
    os.environ["ACTIONOPS_MLRUNS"] = str(work / "mlruns")
    os.environ["ACTIONOPS_STORAGE"] = str(work / "ray_results")
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    wanted = set(args.datasets.split(","))
    probe_start = speed_probe()
    print(f"speed probe: one TSM training step {probe_start:.3f} s", flush=True)
    start = time.perf_counter()
    try:
        cfg = load_config(args.params, args.sets)
        seeds = [int(x) for x in args.seeds.split(",")] if args.seeds else []
        entry["seeds"] = seeds or None
        cfgs = {seed: cfg.with_overrides({"train.seed": seed}, origin="--seeds") for seed in seeds} or {None: cfg}
        with ray_session(cfg.ray):
            for method in args.methods.split(","):
                for dataset in PLAN[method]:
                    if dataset not in wanted:
                        continue
                    if not (SHARED / dataset).is_dir():
                        print(f"skipped {method} on {dataset}: {SHARED / dataset} not found (ACTIONOPS_SHARED_DATA)")
                        continue
                    for split in splits_of(dataset):
                        if args.splits and split not in args.splits.split(","):
                            continue
                        row_work = work / method / dataset / split
                        row_work.mkdir(parents=True)
                        tick = time.perf_counter()
                        row = {"method": method, "dataset": dataset, "split": split,
                               **seeded_row(method, dataset, split, cfgs, row_work),
                               "seconds": round(time.perf_counter() - tick, 1)}
                        entry["rows"] = [r for r in entry["rows"] if (r["method"], r["dataset"], r["split"])
                                         != (method, dataset, split)] + [row]
                        print(json.dumps(row, default=float), flush=True)
                        args.out.parent.mkdir(parents=True, exist_ok=True)
                        args.out.write_text(json.dumps(result, indent=2, default=float))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    entry["seconds"] = round(sum(r["seconds"] for r in entry["rows"]), 1)  # all rows (a run may redo some only)
    entry["last_run_seconds"] = round(time.perf_counter() - start, 1)
    entry["machine"] = {**machine(), "tsm_step_s": {"start": probe_start, "end": speed_probe()}}  # see speed_probe
    args.out.write_text(json.dumps(result, indent=2, default=float))
    print(table(entry["rows"]))
    print(f"wrote {args.out} ({entry['seconds']:.0f} s)")


PRIMARY = {"clip-classification": "macro_f1", "individual-clustering": "hungarian_window",
           "anomaly-detection": "mean_roc_auc", "sequence-clustering": "ari", "trajectory-clustering": "nmi"}  # what "lowers a row" means


def compare(new: list[dict], old: list[dict], tolerance: float = 0.0) -> tuple[str, list[tuple]]:
    """Rows present under both tags: the primary score before and after. Returns the Markdown table
    and the rows the new setting lowers by more than `tolerance`."""
    before = {(r["method"], r["dataset"], r["split"]): r for r in old}
    lines = ["| method | dataset | split | metric | before | after | change |", "|---|---|---|---|---|---|---|"]
    lowered = []
    for r in new:
        key = (r["method"], r["dataset"], r["split"])
        if key not in before:
            continue
        metric = PRIMARY[r["method"]]
        a, b = before[key]["score"][metric], r["score"][metric]
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | {metric} | {a:.3f} | {b:.3f} | {b - a:+.3f} |")
        if b < a - tolerance:
            lowered.append((*key, metric, a, b))
    return "\n".join(lines), lowered


def table(rows: list[dict]) -> str:
    """The rows as a Markdown table (what README's scoreboard section shows)."""
    lines = ["| method | dataset | split | score | baseline | train s |", "|---|---|---|---|---|---|"]
    for r in rows:
        score = ", ".join(f"{k} {v:.3f}" for k, v in r["score"].items())
        base = ", ".join(f"{k} {v:.3f}" for k, v in r["baseline"].items() if k != "name")
        lines.append(f"| {r['method']} | {r['dataset']} | {r['split']} | {score} | {base} ({r['baseline']['name']}) "
                     f"| {r['train_seconds']:.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
