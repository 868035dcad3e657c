"""Benchmark: one-action anomaly detection on real video nobody here made (Weizmann, 4 actions).

    python -m benchmarks.anomaly_real [--folds AB] [--model tsm_resnet18] [--epochs 15] [--clips 8]
                                      [--ae-epochs 60] [--out FILE]

`../shared/data/weizmann4` (ACTIONOPS_SHARED_DATA), leave-performers-out as `classify_real`: fold A
trains on p0-p4, validates on p5, tests on p6-p8; fold B trains on p4-p8, validates on p3, tests on
p0-p2. Per fold, through the real stages (Ray Data, Ray Train, MLflow):
  (a) a backbone trained by the classifier pipeline on the training performers (rgb_diff input),
  (b) the same architecture at random initialisation,
each embeds every video (`embed.clips` clips, kept per clip); then for every action as the normal
one, the autoencoder is trained on that action's training performers, its threshold chosen on the
validation performer, and ROC-AUC is measured against the other three actions on the held-out
performers, with the baselines (centroid, Mahalanobis, k-NN distance) on the same embeddings.
With --end-to-end FOLDS, in those folds each trained-backbone detector is also trained end to end
(backbone unfrozen after anomaly.unfreeze_after epochs, --e2e-epochs in all) and scored the same way. Also: embedding throughput (clips/s) of the Ray Data job vs a plain in-process loop over the same
clips. Writes benchmarks/results/anomaly_real.json.
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

from benchmarks.classify_real import FOLDS, SHARED, weizmann_as_csv_layout

RESULTS = Path(__file__).resolve().parent / "results"


def plain_loop_throughput(ctx, max_clips: int = 96) -> dict:
    """Clips/s of the same embedding work in one process, no Ray (decode + forward, batch 8)."""
    from actionops.pipelines.anomaly_detection.embeddings import Embedder, clip_maker, labelled_rows, resolve_backbone

    e = ctx.cfg.embed
    state, identity = resolve_backbone(e)
    rows = labelled_rows(ctx, None)
    items = [{"video_id": r["video_id"], "path": r["path"], "frames": int(r["frames"]), "view": -1, "clip": k,
              "start": -1, "end": -1} for r in rows for k in range(e.clips)][:max_clips]
    embedder = Embedder(state, clip_maker(identity, e.clips, e.seed))
    tick = time.perf_counter()
    for i in range(0, len(items), e.batch_size):
        chunk = items[i:i + e.batch_size]
        embedder({k: np.array([it[k] for it in chunk], dtype=object) for k in chunk[0]})
    seconds = time.perf_counter() - tick
    return {"clips": len(items), "seconds": round(seconds, 2), "clips_per_s": len(items) / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folds", default="AB")
    parser.add_argument("--model", default="tsm_resnet18")
    parser.add_argument("--epochs", type=int, default=15, help="classifier epochs (backbone a)")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--clips", type=int, default=8, help="embed.clips per video")
    parser.add_argument("--ae-epochs", type=int, default=60)
    parser.add_argument("--end-to-end", default="", metavar="FOLDS",
                        help="folds (e.g. A) where each trained-backbone detector is also trained end to end")
    parser.add_argument("--e2e-epochs", type=int, default=15, help="anomaly.epochs of the end-to-end runs")
    parser.add_argument("--set", dest="sets", action="append", default=[], help="extra section.key=value for the detector")
    parser.add_argument("--out", default=str(RESULTS / "anomaly_real.json"))
    args = parser.parse_args()
    src = SHARED / "weizmann4"
    if not (src / "labels.csv").is_file():
        print(f"skipped: {src} not found (set ACTIONOPS_SHARED_DATA)")
        return

    from actionops.pipelines import load_config
    from actionops.pipelines.anomaly_detection.analysis import analyze
    from actionops.pipelines.anomaly_detection.embeddings import embed_dataset, read_embeddings
    from actionops.pipelines.anomaly_detection.stages import evaluate_anomaly, train_anomaly
    from actionops.pipelines.clip_classification.stages import train_classifier
    from actionops.pipelines.context import Context
    from actionops.platform.cluster import ray_session

    out_path = Path(args.out)
    work = Path(tempfile.mkdtemp(prefix="anomaly-real-"))
    os.environ.setdefault("ACTIONOPS_MLRUNS", str(work / "mlruns"))
    storage = f"train.storage_path={work / 'ray_results'}"
    result: dict = {"dataset": "weizmann4 (36 clips, 4 classes, 9 performers)", "cores": os.cpu_count(),
                    "settings": {"model": args.model, "classifier_epochs": args.epochs, "frames": args.frames,
                                 "size": args.size, "clip_input": "rgb_diff", "clips": args.clips, "per_clip": True,
                                 "ae_epochs": args.ae_epochs, "detector_overrides": args.sets,
                                 "end_to_end_folds": args.end_to_end, "e2e_epochs": args.e2e_epochs},
                    "folds": {k: {"val": sorted(v["val"]), "test": sorted(v["test"])} for k, v in FOLDS.items()},
                    "runs": {}, "analysis": {}}
    try:
        with ray_session(load_config(None, []).ray):
            for fold in args.folds:
                dataset = work / f"weizmann4-{fold}"
                labels = weizmann_as_csv_layout(src, dataset, FOLDS[fold])
                actions = sorted(set(labels["label"]))
                cfg = load_config(None, [f"classifier.model={args.model}", f"classifier.epochs={args.epochs}",
                                         f"classifier.num_frames={args.frames}", f"classifier.size={args.size}",
                                         "classifier.clip_input=rgb_diff", "classifier.val_fraction=0.0", storage])
                cls_ctx = Context(cfg=cfg, dataset=dataset, out=work / "out" / fold / "classifier")
                tick = time.perf_counter()
                trained = train_classifier(cls_ctx, register=False)
                print(f"fold {fold}: classifier trained in {time.perf_counter() - tick:.0f} s "
                      f"(best val macro-F1 {trained['best_val_macro_f1']:.3f})", flush=True)
                backbones = {"trained": str(cls_ctx.out / "classifier.pt"), "random": args.model}
                for kind, backbone in backbones.items():
                    emb_cfg = load_config(None, [f"embed.backbone={backbone}", f"embed.num_frames={args.frames}",
                                                 f"embed.size={args.size}", "embed.clip_input=rgb_diff",
                                                 f"embed.clips={args.clips}", "embed.per_clip=true", storage])
                    emb_ctx = Context(cfg=emb_cfg, dataset=dataset, out=work / "out" / fold / kind)
                    embedded = embed_dataset(emb_ctx, emb_ctx.out / "embeddings.parquet")
                    emb = read_embeddings(embedded.path)
                    analysis, _ = analyze(emb, emb_ctx.out / "analysis")
                    result["analysis"].setdefault(kind, {})[fold] = {
                        k: analysis[k] for k in ("silhouette", "knn_agreement", "nearest_centroid_accuracy")}
                    if fold == args.folds[0] and kind == "trained":
                        plain = plain_loop_throughput(emb_ctx)
                        result["throughput"] = {"ray_data_clips_per_s": round(embedded.clips_per_s, 2),
                                                "ray_data_clips": embedded.rows, "ray_data_seconds": round(embedded.seconds, 2),
                                                "plain_loop_clips_per_s": round(plain["clips_per_s"], 2),
                                                "plain_loop_clips": plain["clips"],
                                                "ratio": round(embedded.clips_per_s / plain["clips_per_s"], 3)}
                        print(f"embed throughput: Ray Data {embedded.clips_per_s:.1f} clips/s vs plain loop "
                              f"{plain['clips_per_s']:.1f} clips/s ({result['throughput']['ratio']:.2f}x)", flush=True)
                    for action in actions:
                        det_cfg = load_config(None, [f"anomaly.embeddings={embedded.path}", f"anomaly.normal={action}",
                                                     f"anomaly.epochs={args.ae_epochs}", storage, *args.sets])
                        ctx = Context(cfg=det_cfg, dataset=dataset, out=work / "out" / fold / kind / action)
                        train_anomaly(ctx, register=False)
                        metrics = evaluate_anomaly(ctx, None, "test")
                        entry = {"roc_auc": metrics["roc_auc"], "pr_auc": metrics["pr_auc"], "f1": metrics["f1"],
                                 "accuracy": metrics["accuracy"], "threshold_rule": metrics["threshold_rule"],
                                 **{f"{name}_roc_auc": b["roc_auc"] for name, b in metrics["baselines"].items()}}
                        if fold in args.end_to_end and kind == "trained":
                            e2e_cfg = det_cfg.with_overrides({"anomaly.end_to_end": True, "anomaly.epochs": args.e2e_epochs})
                            e2e_ctx = Context(cfg=e2e_cfg, dataset=dataset, out=work / "out" / fold / "e2e" / action)
                            tick = time.perf_counter()
                            train_anomaly(e2e_ctx, register=False)
                            e2e = evaluate_anomaly(e2e_ctx, None, "test")
                            entry.update(e2e_roc_auc=e2e["roc_auc"], e2e_f1=e2e["f1"],
                                         e2e_seconds=round(time.perf_counter() - tick, 1))
                        result["runs"].setdefault(kind, {}).setdefault(fold, {})[action] = entry
                        print(f"fold {fold} {kind} normal={action}: {entry}", flush=True)
                        out_path.parent.mkdir(parents=True, exist_ok=True)
                        out_path.write_text(json.dumps(result, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = {}
    for kind, folds in result["runs"].items():
        entries = [e for per_fold in folds.values() for e in per_fold.values()]
        row = {key: float(np.mean([e[key] for e in entries])) for key in
               ("roc_auc", "pr_auc", "f1", "centroid_roc_auc", "mahalanobis_roc_auc", "knn_roc_auc")}
        actions = sorted({a for per_fold in folds.values() for a in per_fold})
        row["per_action_roc_auc"] = {a: float(np.mean([folds[f][a]["roc_auc"] for f in folds if a in folds[f]]))
                                     for a in actions}
        with_e2e = [e for e in entries if "e2e_roc_auc" in e]
        if with_e2e:  # the same detectors, frozen and end to end
            row["e2e"] = {"runs": len(with_e2e), "roc_auc": float(np.mean([e["e2e_roc_auc"] for e in with_e2e])),
                          "frozen_roc_auc": float(np.mean([e["roc_auc"] for e in with_e2e])),
                          "f1": float(np.mean([e["e2e_f1"] for e in with_e2e])),
                          "frozen_f1": float(np.mean([e["f1"] for e in with_e2e]))}
        row["best_baseline_roc_auc"] = max(row[f"{b}_roc_auc"] for b in ("centroid", "mahalanobis", "knn"))
        summary[kind] = row
        print(f"{kind:8s} mean ROC-AUC autoencoder {row['roc_auc']:.3f}, best baseline {row['best_baseline_roc_auc']:.3f} "
              f"({row['roc_auc'] / max(row['best_baseline_roc_auc'], 1e-9):.2f}x)")
    result["summary"] = summary
    trained = summary.get("trained", {})
    result["target"] = {"mean_roc_auc_trained": trained.get("roc_auc"), "needs": 0.95,
                        "autoencoder_vs_best_baseline": [trained.get("roc_auc"), trained.get("best_baseline_roc_auc")],
                        "met": bool(trained and trained["roc_auc"] >= 0.95
                                    and trained["roc_auc"] >= trained["best_baseline_roc_auc"] - 1e-9)}
    out_path.write_text(json.dumps(result, indent=2))
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()
