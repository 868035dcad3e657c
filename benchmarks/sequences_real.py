"""Benchmark: sequence clustering on real motion capture nobody here made (CMU, exp-map format).

    python -m benchmarks.sequences_real [--actions 3 5 7] [--seeds 10] [--hidden 256] [--epochs 8]
                                        [--linkages single average] [--out FILE]

Case (i) of the reference: for each number of actions and seed, `data concat` builds a recording
from one instance of each of N randomly chosen actions of `../shared/data/cmu_mocap` (train and
test files), the seq2seq is trained on that recording (unsupervised, as in the reference) through
the real stages (Ray Data windows, Ray Train, MLflow) and its windows are clustered into N; scores
per frame (ARI, AMI, V-measure, Hungarian accuracy) for each embedding / linkage asked. Baselines
on the same windows and frames: k-means on the raw (normalised) windows, on window statistics
(mean, std, mean absolute change per channel), and PCA (20) + k-means. Mean and std over seeds.
The Ray Data overhead ratio of this job is not measured here (benchmarks/ingest_flow.py does it
for videos). Not yet here: subject 86 segmentation (see README). Writes
benchmarks/results/sequences_real.json.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
SHARED = Path(os.environ.get("ACTIONOPS_SHARED_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))


def baselines(ctx, rows, spec, normaliser, k: int, seed: int) -> dict:
    """Scores of the three baselines on the recording's windows, per frame as the method."""
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA

    from actionops.evaluation.metrics import clustering_scores
    from actionops.pipelines.sequence_clustering.data import frame_truth, frames_to_windows, read_row

    row = rows[0]
    x = normaliser(read_row(row, spec["subsample"]))
    length = spec["source_len"] + spec["target_len"]
    starts = np.arange(0, len(x) - length + 1, spec["stride"])
    windows = np.stack([x[s:s + length] for s in starts])
    features = {
        "kmeans_raw_windows": windows.reshape(len(windows), -1),
        "kmeans_window_stats": np.concatenate([windows.mean(1), windows.std(1), np.abs(np.diff(windows, axis=1)).mean(1)], 1),
    }
    features["pca_kmeans"] = PCA(n_components=min(20, features["kmeans_raw_windows"].shape[1]), random_state=seed).fit_transform(
        features["kmeans_raw_windows"])
    truth = frame_truth(row, spec["subsample"])
    which = frames_to_windows(len(x), starts, spec["source_len"])
    out = {}
    for name, f in features.items():
        labels = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(f)[which]
        n = min(len(truth), len(labels))
        out[name] = clustering_scores(truth[:n], [str(v) for v in labels[:n]])
    return out


def one_run(actions: int, seed: int, args, work: Path) -> dict:
    from actionops.pipelines import load_config
    from actionops.pipelines.context import Context
    from actionops.pipelines.sequence_clustering.data import checkpoint_spec, sequence_rows
    from actionops.pipelines.sequence_clustering.stages import cluster_split, train_sequences
    from actionops.platform.sequences import concat_recording, list_sequences

    _, entries, _ = list_sequences(SHARED / "cmu_mocap")
    data = work / f"a{actions}_s{seed}"
    summary = concat_recording(entries, actions=actions, per_action=1, seed=seed, out=data)
    sets = [f"sequences.hidden={args.hidden}", f"sequences.epochs={args.epochs}", f"sequences.lr={args.lr}",
            "seqcluster.split=null", f"train.seed={seed}"]
    cfg = load_config(None, sets)
    ctx = Context(cfg=cfg, dataset=data, out=work / f"out_a{actions}_s{seed}")
    tick = time.perf_counter()
    trained = train_sequences(ctx, register=False)
    seconds = time.perf_counter() - tick
    result = {"actions": summary["actions"], "frames": summary["frames"], "train_seconds": round(seconds, 1),
              "final_loss": trained["final_loss"], "method": {}}
    for embedding in args.embeddings:
        for linkage in args.linkages:
            c = cfg.with_overrides({"seqcluster.embedding": embedding, "seqcluster.linkage": linkage})
            got = cluster_split(Context(cfg=c, dataset=data, out=ctx.out), None, None, actions)
            result["method"][f"{embedding}/{linkage}"] = {k: float(v) for k, v in got["report"]["scores"].items()}
    state = got["state"]
    spec, normaliser = checkpoint_spec(state)
    result["baselines"] = baselines(ctx, sequence_rows(ctx), spec, normaliser, actions, seed)
    return result


def summarise(runs: list[dict]) -> dict:
    keys = ("ari", "ami", "v_measure", "homogeneity", "completeness", "hungarian_accuracy")
    names = {("method", n) for r in runs for n in r["method"]} | {("baselines", n) for r in runs for n in r["baselines"]}
    out = {}
    for group, name in sorted(names):
        values = {k: [r[group][name][k] for r in runs if name in r[group]] for k in keys}
        out[f"{group}:{name}"] = {k: {"mean": float(np.mean(v)), "std": float(np.std(v))} for k, v in values.items()}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--actions", type=int, nargs="+", default=[3, 5, 7])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--lr", type=float, default=0.001)
    parser.add_argument("--embeddings", nargs="+", default=["decoder", "encoder"])
    parser.add_argument("--linkages", nargs="+", default=["single", "average"])
    parser.add_argument("--out", type=Path, default=RESULTS / "sequences_real.json")
    args = parser.parse_args()
    if not (SHARED / "cmu_mocap").is_dir():
        raise SystemExit(f"no CMU data at {SHARED / 'cmu_mocap'} (set ACTIONOPS_SHARED_DATA)")
    from actionops.platform.cluster import ray_session
    from actionops.pipelines import load_config

    work = Path(tempfile.mkdtemp(prefix="seqbench-"))
    os.environ.setdefault("ACTIONOPS_MLRUNS", str(work / "mlruns"))
    os.environ.setdefault("ACTIONOPS_STORAGE", str(work / "ray_results"))
    report: dict = {"config": vars(args) | {"out": str(args.out)}, "cases": {}}
    with ray_session(load_config(None).ray):
        for actions in args.actions:
            runs = []
            for seed in range(args.seeds):
                run = one_run(actions, seed, args, work)
                runs.append(run)
                best = max(run["method"].items(), key=lambda kv: kv[1]["ari"])
                print(f"{actions} actions, seed {seed}: " + ", ".join(f"{n} ARI {s['ari']:.3f}" for n, s in run["method"].items())
                      + " | " + ", ".join(f"{n} {s['ari']:.3f}" for n, s in run["baselines"].items())
                      + f" (best {best[0]})", flush=True)
            report["cases"][str(actions)] = {"runs": runs, "summary": summarise(runs)}
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(report, indent=1))
    for actions, case in report["cases"].items():
        for name, s in case["summary"].items():
            print(f"{actions} actions  {name:34s} ARI {s['ari']['mean']:.3f} +- {s['ari']['std']:.3f}  "
                  f"AMI {s['ami']['mean']:.3f}  V {s['v_measure']['mean']:.3f}")


if __name__ == "__main__":
    main()
