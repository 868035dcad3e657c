"""Self-supervised pretraining on unlabeled video, judged on held-out Weizmann performers (issue #18).

    python -m benchmarks.pretrain_real [--folds A,B] [--epochs 12] [--ir-epochs 6] [--la-epochs 3]
                                       [--clips-per-video 2] [--finetune-epochs 8] [--synth 12]
                                       [--clustering layer3,layer4,layer3+motion,random] [--keep-backbone PT]
    python -m benchmarks.pretrain_real --backbone PT [--clustering ""] [--finetune-set classifier.freeze_until=layer3]

1. Trajectories on the Weizmann videos alone (class folders; labels only score): extraction on Ray
   Data vs a plain loop in this process (videos/s, trajectories/s), then the method's encode and
   cluster stages (k = the 4 classes): purity and NMI (target >= 0.8).
2. Pretraining pool: the 36 Weizmann clips copied flat (no labels) + `--synth` generated clips.
   The method's own stages run on it: trajectories, Fisher vectors, k-means (k = 8: no labels),
   then `train pretrain` with params.yaml's pretrain section (the backbone the classifier's shipped
   input fits: 8 x 64 x 64, rgb_diff) and the epoch counts given here (CPU budget).
3. Per leave-performers-out fold (benchmarks/classify_real.FOLDS): `evaluate pretrain` on the
   frozen features (k-NN and linear probe, pretrained vs the same architecture from random init
   with BatchNorm statistics measured on the same clips); then the classifier pipeline with
   classifier.model=r3d_18 fine-tuned from the pretrained weights vs from random init, same epochs
   and config (params.yaml's classifier section otherwise).
4. Individual clustering on held-out performers (benchmarks/clustering_real: train p0-p5, test
   p6-p8, K = 4, 24-frame windows at 64 x 64) with people embedded by the pretrained backbone
   (clustering.features=backbone, RoIAlign on its layer3 / layer4 map), alone and fused with the
   flow descriptor (the shipped motion feature, weight 4), and the same with a randomly initialised
   backbone; the autoencoders' scores on that split come from clustering_real_24frames.json
   (alone) and clustering_real_motion.json (fused), measured by clustering_real.py.

Writes benchmarks/results/pretrain_real.json (pretrained_knn, random_knn, pretrained_linear,
random_linear: means over the folds; per fold below them).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks import machine, write_result
from benchmarks.classify_real import FOLDS, weizmann_as_csv_layout

SHARED = Path(os.environ.get("ACTIONOPS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folds", default="A,B")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--ir-epochs", type=int, default=6)
    parser.add_argument("--la-epochs", type=int, default=3)
    parser.add_argument("--clips-per-video", type=int, default=2)
    parser.add_argument("--finetune-epochs", type=int, default=8, help="0: no fine-tuning (frozen-feature scores only)")
    parser.add_argument("--out", default="pretrain_real.json", help="results file name under benchmarks/results")
    parser.add_argument("--synth", type=int, default=12)
    parser.add_argument("--trajectories-only", action="store_true",
                        help="rerun part 1 only and update it in the existing results file")
    parser.add_argument("--set", dest="sets", action="append", default=[], help="extra overrides (section.key=value)")
    parser.add_argument("--clustering", default="layer3,layer4,layer3+motion,random",
                        help="part 4 variants (comma list; empty: skip): LAYER, LAYER+motion (weight 4), LAYER+motionW; "
                        "random (layer3) or random-LAYER...: a randomly initialised backbone")
    parser.add_argument("--clustering-folds", default="A", help="part 4 on these folds' test performers "
                        "(A: p6-p8, the split of clustering_real.py; B: p0-p2)")
    parser.add_argument("--keep-backbone", default=None, help="copy the pretrained checkpoint here")
    parser.add_argument("--backbone", default=None, help="skip parts 1-2: use this pretrained checkpoint "
                        "(e.g. one kept by --keep-backbone)")
    parser.add_argument("--finetune-set", dest="finetune_sets", action="append", default=[],
                        help="classifier overrides for the pretrained start only (e.g. classifier.freeze_until=layer3)")
    parser.add_argument("--finetune-inits", default="pretrained,random", help="which starts to fine-tune")
    args = parser.parse_args()
    src = SHARED / "weizmann4"
    if not src.is_dir():
        print(f"skipped: {src} not found (set ACTIONOPS_SHARED_DATA)")
        return

    from actionops.pipelines import load_config
    from actionops.pipelines.context import Context
    from actionops.pipelines.trajectory_clustering import stages
    from actionops.pipelines.trajectory_clustering.extract import extract_trajectories
    from actionops.platform import tracking
    from actionops.platform.cluster import ray_session
    from actionops.platform.synth import generate_clips

    work = Path(tempfile.mkdtemp(prefix="pretrain-real-"))
    os.environ["ACTIONOPS_MLRUNS"] = str(work / "mlruns")
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    tracking.configure()
    base = [f"train.storage_path={work / 'ray_results'}", *args.sets]
    cfg = load_config(REPO / "params.yaml", base)
    result: dict = {"machine": machine(("ray", "torch", "faiss-cpu", "scikit-learn", "mlflow")),
                    "settings": vars(args), "pretrain_config": {k: v for k, v in cfg.flat().items() if k.startswith("pretrain.")},
                    }
    out_file = args.out
    try:
        with ray_session(cfg.ray):
            if args.backbone:
                pcfg = load_config(REPO / "params.yaml", base)
                result["pretraining"] = {"from": str(args.backbone)}
                if args.clustering:
                    result["individual_clustering"] = clustering_with_backbone(
                        src, work, str(Path(args.backbone).resolve()), base, args.clustering, args.clustering_folds)
                    write_result(out_file, result)
                transfer(args, src, work, str(Path(args.backbone).resolve()), base, pcfg, result, out_file)
                return
            # 1. trajectories on Weizmann alone: throughput and clusters
            weiz = work / "weizmann4"
            shutil.copytree(src, weiz, ignore=shutil.ignore_patterns("labels.csv"))
            ctx_w = Context(cfg=cfg, dataset=weiz, out=work / "out_weizmann")
            rows = stages.video_rows(ctx_w)
            items = [{"video_id": str(r["video_id"]), "path": str(r["path"])} for r in rows]
            tick = time.perf_counter()
            plain = extract_trajectories(items, work / "plain", stages.track_spec(cfg.trajectories), use_ray=False)
            plain_s = time.perf_counter() - tick
            tick = time.perf_counter()
            ray_report = stages.compute_stage(ctx_w)
            ray_s = time.perf_counter() - tick
            n_traj = plain["trajectories"]
            result["throughput"] = {
                "videos": len(items), "trajectories": n_traj,
                "plain_loop": {"seconds": round(plain_s, 2), "videos_per_s": round(len(items) / plain_s, 3),
                               "trajectories_per_s": round(n_traj / plain_s, 1)},
                "ray_data": {"seconds": round(ray_s, 2), "videos_per_s": round(len(items) / ray_s, 3),
                             "trajectories_per_s": round(ray_report["trajectories_new"] / ray_s, 1)},
                "speedup_ray_vs_loop": round(plain_s / ray_s, 3)}
            print(f"extraction: loop {plain_s:.1f} s, Ray Data {ray_s:.1f} s (x{plain_s / ray_s:.2f})", flush=True)
            stages.encode_stage(ctx_w)
            clusters = stages.cluster_stage(ctx_w)
            result["trajectory_clusters"] = {k: clusters[k] for k in ("k", "videos", "purity", "nmi")}
            result["trajectory_clusters"]["target_nmi"] = 0.8
            print(f"trajectory clusters on Weizmann: {result['trajectory_clusters']}", flush=True)
            if args.trajectories_only:
                import json

                kept = json.loads((Path(__file__).resolve().parent / "results" / out_file).read_text())
                kept.update({k: result[k] for k in ("throughput", "trajectory_clusters", "machine")})
                write_result(out_file, kept)
                return
            write_result(out_file, result)

            # 2. pretraining on the unlabeled pool
            pool = work / "pool"
            pool.mkdir()
            for r in rows:
                shutil.copy(r["path"], pool / f"weizmann_{Path(r['path']).parent.name}_{Path(r['path']).name}")
            if args.synth:
                synth = work / "synth"
                generate_clips(synth, videos=args.synth, frames=48, width=128, height=96, seed=5)
                for i, path in enumerate(sorted(synth.rglob("*.mp4"))):
                    shutil.copy(path, pool / f"synth_{i:03d}.mp4")
            pcfg = load_config(REPO / "params.yaml", [*base, f"pretrain.epochs={args.epochs}",
                                                      f"pretrain.ir_epochs={args.ir_epochs}",
                                                      f"pretrain.la_epochs={args.la_epochs}",
                                                      f"pretrain.clips_per_video={args.clips_per_video}"])
            ctx_p = Context(cfg=pcfg, dataset=pool, out=work / "out_pool")
            tick = time.perf_counter()
            stages.compute_stage(ctx_p)
            stages.encode_stage(ctx_p)
            stages.cluster_stage(ctx_p)
            summary = stages.train_pretrain(ctx_p, register=False)
            pretrain_s = time.perf_counter() - tick
            history = summary.get("last_epoch_metrics", {})
            result["pretraining"] = {"videos": summary["videos"], "seconds": round(pretrain_s, 1),
                                     "epochs": summary["epochs"], "stages": summary["stages"],
                                     "final": history}
            import json as _json

            result["pretraining"]["history"] = _json.loads((ctx_p.out / "history_pretrain.json").read_text())
            print(f"pretraining: {pretrain_s:.0f} s, {summary['epochs']} epochs", flush=True)
            write_result(out_file, result)
            weights = str(ctx_p.out / "pretrain.pt")

            if args.keep_backbone:
                shutil.copy(weights, args.keep_backbone)
            if args.clustering:
                result["individual_clustering"] = clustering_with_backbone(src, work, weights, base, args.clustering, args.clustering_folds)
                write_result(out_file, result)

            transfer(args, src, work, weights, base, pcfg, result, out_file)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def transfer(args, src: Path, work: Path, weights: str, base: list[str], pcfg, result: dict, out_file: str) -> None:
    """Part 3: per fold, frozen-feature scores and fine-tuning (see the module doc)."""
    from actionops.pipelines import load_config
    from actionops.pipelines.clip_classification.stages import evaluate_classifier, train_classifier
    from actionops.pipelines.context import Context
    from actionops.pipelines.trajectory_clustering import stages

    if args.finetune_sets:
        result["finetune_sets_pretrained"] = list(args.finetune_sets)
    # 3. transfer per fold
    folds = {}
    for fold in [f for f in args.folds.split(",") if f]:
        data = work / f"fold_{fold}"
        weizmann_as_csv_layout(src, data, FOLDS[fold])
        ctx_f = Context(cfg=pcfg, dataset=data, out=work / f"out_{fold}")
        scores = stages.evaluate_pretrain(ctx_f, weights, "test")
        entry = {k: scores[k] for k in ("knn_accuracy", "linear_accuracy", "random_knn_accuracy",
                                         "random_linear_accuracy", "chance", "videos", "gallery")}
        starts = [(i, weights if i == "pretrained" else None) for i in args.finetune_inits.split(",") if i]
        for init, w in (starts if args.finetune_epochs else ()):
            ccfg = load_config(REPO / "params.yaml", [*base, "classifier.model=r3d_18", f"classifier.clip_input={pcfg.pretrain.clip_input}",
                                                      f"classifier.epochs={args.finetune_epochs}",
                                                      *([f"classifier.weights={w}", *args.finetune_sets] if w else [])])
            cctx = Context(cfg=ccfg, dataset=data, out=work / f"cls_{fold}_{init}")
            tick = time.perf_counter()
            trained = train_classifier(cctx, register=False)
            seconds = time.perf_counter() - tick
            metrics = evaluate_classifier(cctx, None, "test", latency=False)
            entry[f"finetune_{init}"] = {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"],
                                         "best_epoch": trained["best_epoch"], "epochs": trained["epochs"],
                                         "train_seconds": round(seconds, 1)}
        folds[fold] = entry
        print(f"fold {fold}: {entry}", flush=True)
        result["folds"] = folds
        write_result(out_file, result)
    if not folds:
        return
    for key, name in (("knn_accuracy", "pretrained_knn"), ("random_knn_accuracy", "random_knn"),
                      ("linear_accuracy", "pretrained_linear"), ("random_linear_accuracy", "random_linear")):
        result[name] = float(np.mean([f[key] for f in folds.values()]))
    for init in ([i for i, _ in starts] if args.finetune_epochs else ()):
        result[f"finetune_{init}_accuracy"] = float(np.mean([f[f"finetune_{init}"]["accuracy"]
                                                             for f in folds.values()]))
    print({k: v for k, v in result.items() if k.endswith(("_knn", "_linear", "_accuracy"))})
    write_result(out_file, result)


def clustering_with_backbone(src: Path, work: Path, weights: str, base: list[str], variants: str,
                             folds: str = "A") -> dict:
    """Part 4: individual clustering on Weizmann with the pretrained backbone as the feature
    extractor (alone / fused with the flow descriptor) and with a random-init backbone."""
    import json

    import torch

    from actionops.models import create_model
    from actionops.models.checkpoint import save_checkpoint
    from benchmarks.clustering_real import run

    state = torch.load(weights, map_location="cpu", weights_only=True)
    torch.manual_seed(0)
    random_model = create_model("video_pretrained", **state["model_args"])  # BatchNorm at its initial statistics
    random_path = save_checkpoint(work / "random_backbone.pt", {"model_name": "video_pretrained",
                                                                  "model_args": state["model_args"],
                                                                  "model": random_model.state_dict()})
    common = [*base, "autoencoder.width=64", "autoencoder.height=64", "autoencoder.seq_len=24", "clustering.epochs=8",
              "clustering.n_clusters=4", "clustering.registered_model=weizmann4-clustering", "clustering.features=backbone"]
    out: dict = {"split": "weizmann4 as the operating-room layout: fold A test p6-p8 (keys without a fold), "
                          "fold B test p0-p2 (fold_B_*); the other performers train; K = 4; 24-frame windows",
                 "score": "Hungarian accuracy on test person windows (test videos: majority cluster per video)"}
    results = Path(__file__).resolve().parent / "results"
    for name, file in (("autoencoders", "clustering_real_24frames.json"), ("autoencoders+motion", "clustering_real_motion.json")):
        if (results / file).is_file():
            kept = json.loads((results / file).read_text())
            out[name] = {"from": file, "test_person_window": kept["deep"]["test_person_window"]["hungarian_accuracy"],
                         "test_video": kept["deep"]["test_video"]["hungarian_accuracy"], "config": kept["config"]}
    for fold, variant in [(f, v) for f in folds.split(",") if f for v in variants.split(",") if v]:
        random_init = variant.startswith("random")  # "random" (layer3) or "random-LAYER[+motion...]"
        layer = "layer3" if variant == "random" else variant.removeprefix("random-").split("+")[0]
        motion = "+motion" in variant  # LAYER+motion: the shipped weight 4; LAYER+motionW: weight W
        weight = variant.split("+motion")[1] or "4.0" if motion else None
        sets = [*common, f"clustering.backbone={random_path if random_init else weights}",
                f"clustering.backbone_layer={layer}", f"clustering.add_motion_feature={str(motion).lower()}",
                *([f"clustering.motion_weight={float(weight)}"] if motion else [])]
        tick = time.perf_counter()
        got = run(src, work / "clustering", sets, name=f"out_{fold}_{variant.replace('+', '_')}",
                  test=frozenset(FOLDS[fold]["test"]))
        deep = got["deep"]
        out[("" if fold == "A" else f"fold_{fold}_") + (f"backbone_{variant}" if not random_init else f"random_backbone_{variant.removeprefix('random-').replace('random', 'layer3')}")] = {
            "test_person_window": deep["test_person_window"]["hungarian_accuracy"],
            "test_video": deep["test_video"]["hungarian_accuracy"],
            "train_person_window": deep["train_person_window"]["hungarian_accuracy"],
            "train_kmeans_init": deep["train_fit"].get("init_hungarian_accuracy"),
            "test_nmi": deep["test_person_window"]["nmi"], "seconds": round(time.perf_counter() - tick, 1),
            **({"descriptor_alone_test_person_window": got["motion_descriptor_kmeans"]["test_person_window"]["hungarian_accuracy"]}
               if motion else {}),
            "baseline_flow_hist_test_videos": got["baseline_flow_hist_kmeans"]["test"]["hungarian_accuracy"]}
        print(f"individual clustering, {variant}: {out[list(out)[-1]]}", flush=True)
    return out


if __name__ == "__main__":
    main()
