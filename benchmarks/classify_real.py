"""Benchmark: supervised clip classification on real video nobody here made (Weizmann, 4 actions).

    python -m benchmarks.classify_real [--models tsm_resnet18,...] [--folds AB] [--epochs 15]
                                       [--clip-input rgb|rgb_diff|flow|rgb+flow|rgb_diff+flow] [--out FILE]

`../shared/data/weizmann4` (ACTIONOPS_SHARED_DATA) is copied into temporary CSV-layout datasets,
leave-performers-out: fold A trains on p0-p4, validates on p5, tests on p6-p8; fold B trains on
p4-p8, validates on p3, tests on p0-p2. Every model goes through the real stages (Ray Data clips,
Ray Train, MLflow registry, evaluate with latency). In the same run, the baseline: logistic
regression on optical-flow orientation histograms (4x4 grid x 8 bins, sqrt + L2), same splits
(train + val to fit). Writes benchmarks/results/classify_real.json.
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

RESULTS = Path(__file__).resolve().parent / "results"
SHARED = Path(os.environ.get("ACTIONOPS_SHARED_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))
FOLDS = {
    "A": {"val": {"p5"}, "test": {"p6", "p7", "p8"}},
    "B": {"val": {"p3"}, "test": {"p0", "p1", "p2"}},
}
MODELS = ("tsm_resnet18", "r2plus1d_18", "cnn_lstm_resnet18", "x3d_xs", "slow_r50", "vivit_tiny")


def weizmann_as_csv_layout(src: Path, dst: Path, fold: dict) -> pd.DataFrame:
    labels = pd.read_csv(src / "labels.csv")
    tables: dict[str, list] = {"train": [], "val": [], "test": []}
    for row in labels.itertuples():
        split = "test" if row.performer in fold["test"] else "val" if row.performer in fold["val"] else "train"
        (dst / row.path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src / row.path, dst / row.path)
        tables[split].append({"path": row.path, "label": row.label, "performer": row.performer})
    for split, rows in tables.items():
        pd.DataFrame(rows).to_csv(dst / f"{split}.csv", index=False)
    return labels


def baseline(dataset: Path) -> dict:
    """Logistic regression on flow histograms (train + val fit, test scored)."""
    from sklearn.linear_model import LogisticRegression

    from actionops.platform.flow import flow_histogram_features
    from actionops.evaluation.metrics import classification_report
    from actionops.platform.data import compute_flow, index_dataset, load_manifest

    index_dataset(dataset)
    _, rows = load_manifest(dataset)
    compute_flow(rows, method="farneback")
    feats = {r["video_id"]: flow_histogram_features(np.load(r["flow_path"]), grid=4, bins=8) for r in rows}
    fit = [r for r in rows if r["split"] in ("train", "val")]
    test = [r for r in rows if r["split"] == "test"]
    clf = LogisticRegression(max_iter=2000, C=10.0).fit(np.stack([feats[r["video_id"]] for r in fit]),
                                                         [r["label"] for r in fit])
    pred = clf.predict(np.stack([feats[r["video_id"]] for r in test]))
    report = classification_report([r["label"] for r in test], list(pred))
    return {"accuracy": report["accuracy"], "macro_f1": report["macro_f1"], "test_videos": len(test)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--folds", default="AB")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=64, help="input side (the clips are 64x64)")
    parser.add_argument("--clips-per-video", type=int, default=4)
    parser.add_argument("--clip-input", default="rgb", choices=["rgb", "rgb_diff", "flow", "rgb+flow", "rgb_diff+flow"],
                        help="classifier.clip_input for every model (rgb_diff: frame differences)")
    parser.add_argument("--out", default=str(RESULTS / "classify_real.json"))
    parser.add_argument("--set", dest="sets", action="append", default=[],
                        help="extra MODEL:section.key=value override for one model, e.g. vivit_tiny:classifier.lr=3e-4")
    args = parser.parse_args()
    extra: dict[str, list[str]] = {}
    for item in args.sets:
        name, _, override = item.partition(":")
        extra.setdefault(name, []).append(override)
    src = SHARED / "weizmann4"
    if not (src / "labels.csv").is_file():
        print(f"skipped: {src} not found (set ACTIONOPS_SHARED_DATA)")
        return

    from actionops.pipelines import load_config
    from actionops.pipelines.clip_classification.stages import evaluate_classifier, train_classifier
    from actionops.pipelines.context import Context
    from actionops.platform.cluster import ray_session

    out_path = Path(args.out)
    result = json.loads(out_path.read_text()) if out_path.is_file() else {}
    result.update({"dataset": "weizmann4 (36 clips, 4 classes, 9 performers)", "cores": os.cpu_count(),
                   "settings": {"epochs": args.epochs, "frames": args.frames, "size": args.size,
                                "clips_per_video": args.clips_per_video, "eval_clips": 3,
                                "clip_input": args.clip_input, "weights": "none (from scratch)"},
                   "folds": {k: {"val": sorted(v["val"]), "test": sorted(v["test"])} for k, v in FOLDS.items()}})
    result.setdefault("models", {})
    result.setdefault("baseline_flow_hist_logreg", {})
    work = Path(tempfile.mkdtemp(prefix="classify-real-"))
    os.environ.setdefault("ACTIONOPS_MLRUNS", str(work / "mlruns"))
    try:
        cfg0 = load_config(None, [])
        with ray_session(cfg0.ray):
            for fold in args.folds:
                dataset = work / f"weizmann4-{fold}"
                weizmann_as_csv_layout(src, dataset, FOLDS[fold])
                result["baseline_flow_hist_logreg"][fold] = baseline(dataset)
                print(f"fold {fold} baseline: {result['baseline_flow_hist_logreg'][fold]}", flush=True)
                for model in args.models.split(","):
                    cfg = load_config(None, [
                        f"classifier.model={model}", f"classifier.epochs={args.epochs}",
                        f"classifier.num_frames={args.frames}", f"classifier.size={args.size}",
                        f"classifier.clips_per_video={args.clips_per_video}", "classifier.val_fraction=0.0",
                        f"classifier.clip_input={args.clip_input}",
                        f"train.storage_path={work / 'ray_results'}", *extra.get(model, [])])
                    ctx = Context(cfg=cfg, dataset=dataset, out=work / "out" / fold / model)
                    tick = time.perf_counter()
                    trained = train_classifier(ctx)
                    train_s = time.perf_counter() - tick
                    metrics = evaluate_classifier(ctx, None, "test", latency=True)
                    entry = {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"],
                             "best_epoch": trained["best_epoch"], "best_val_macro_f1": trained["best_val_macro_f1"],
                             "train_seconds": round(train_s, 1), "train_clips_per_s": trained["train_clips_per_s"],
                             "parameters_m": metrics["parameters_m"],
                             "latency_batch1_ms": metrics["latency"]["batch1_ms_per_clip"],
                             "overrides": extra.get(model, [])}
                    result["models"].setdefault(model, {})[fold] = entry
                    print(f"fold {fold} {model}: {entry}", flush=True)
                    out_path.parent.mkdir(parents=True, exist_ok=True)
                    out_path.write_text(json.dumps(result, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = {}
    for model, folds in result["models"].items():
        accs = [v["accuracy"] for v in folds.values()]
        summary[model] = {"mean_accuracy": float(np.mean(accs)), "mean_macro_f1": float(np.mean([v["macro_f1"] for v in folds.values()])),
                          "folds": sorted(folds)}
    base = result["baseline_flow_hist_logreg"]
    summary["baseline_flow_hist_logreg"] = {"mean_accuracy": float(np.mean([v["accuracy"] for v in base.values()])),
                                            "folds": sorted(base)}
    result["summary"] = summary
    best = max((v["mean_accuracy"] for k, v in summary.items() if k in result["models"]), default=0.0)
    worst = min((v["mean_accuracy"] for k, v in summary.items() if k in result["models"]), default=0.0)
    result["target"] = {"best_model_accuracy": best, "worst_model_accuracy": worst,
                        "met": bool(best >= 0.95 and worst >= 0.9)}
    for model, v in summary.items():
        ratio = v["mean_accuracy"] / max(summary["baseline_flow_hist_logreg"]["mean_accuracy"], 1e-9)
        print(f"{model:22s} accuracy {v['mean_accuracy']:.3f}  ({ratio:.2f}x baseline)")
    out_path.write_text(json.dumps(result, indent=2))
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()
