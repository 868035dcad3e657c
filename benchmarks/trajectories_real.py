"""Dense trajectories + Fisher vectors + faiss k-means on real video (issue #18, first part).

    python -m benchmarks.trajectories_real [--dataset weizmann4] [--k K] [--components 16] [--seeds 3]

1. Extraction throughput: the same videos through `extract_trajectories` on Ray Data (one task a
   video) and in a plain loop in this process; videos/s and trajectories/s of each, and the ratio.
2. Clustering without labels: per-part PCA + GMM fitted on a sample of all trajectories, one Fisher
   vector per video, faiss k-means (k = the number of classes unless --k), then purity and NMI
   against the class folders (labels are read only to score). Over `--seeds` GMM seeds x 3 k-means
   seeds, because the result moves with them. Target of the issue: NMI >= 0.8 on Weizmann.

The dataset comes from ACTIONOPS_SHARED_DATA (default ../shared/data); absent data skips cleanly.
Writes benchmarks/results/trajectories_real.json.
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

SHARED = Path(os.environ.get("ACTIONOPS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="weizmann4")
    parser.add_argument("--k", type=int, default=None)
    parser.add_argument("--components", type=int, default=16)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    root = SHARED / args.dataset
    if not root.is_dir():
        print(f"skipped: {root} not found (set ACTIONOPS_SHARED_DATA)")
        return

    from actionops.pipelines.trajectory_clustering.clusters import cluster_table, table_scores
    from actionops.pipelines.trajectory_clustering.extract import extract_trajectories, parquet_name, read_descriptors
    from actionops.pipelines.trajectory_clustering.fisher import fit_parts
    from actionops.pipelines.trajectory_clustering.tracks import TrackSpec
    from actionops.platform.cluster import ray_session
    from actionops.platform.config import RayConfig

    videos = sorted(p for p in root.rglob("*.mp4"))
    rows = [{"video_id": v.relative_to(root).with_suffix("").as_posix(), "path": str(v)} for v in videos]
    labels = {r["video_id"]: Path(r["video_id"]).parent.name for r in rows}
    spec = TrackSpec()
    work = Path(tempfile.mkdtemp(prefix="trajectories-"))
    try:
        tick = time.perf_counter()
        plain = extract_trajectories(rows, work / "plain", spec, use_ray=False)
        plain_s = time.perf_counter() - tick
        with ray_session(RayConfig()):
            tick = time.perf_counter()
            ray_report = extract_trajectories(rows, work / "ray", spec, use_ray=True)
            ray_s = time.perf_counter() - tick
        descs = {}
        for r in rows:
            f = work / "ray" / parquet_name(r["video_id"])
            if f.is_file():
                descs[r["video_id"]] = read_descriptors(f)[1]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    n_traj = ray_report["trajectories"]
    throughput = {"videos": len(rows), "trajectories": n_traj,
                  "plain_loop": {"seconds": round(plain_s, 2), "videos_per_s": round(len(rows) / plain_s, 3),
                                 "trajectories_per_s": round(plain["trajectories"] / plain_s, 1)},
                  "ray_data": {"seconds": round(ray_s, 2), "videos_per_s": round(len(rows) / ray_s, 3),
                               "trajectories_per_s": round(n_traj / ray_s, 1)},
                  "speedup_ray_vs_loop": round(plain_s / ray_s, 3), "counts": ray_report["counts"]}
    print(f"extraction: loop {plain_s:.1f} s, Ray Data {ray_s:.1f} s (x{plain_s / ray_s:.2f}); "
          f"{n_traj} trajectories, {n_traj / ray_s:.0f}/s on Ray")

    names = sorted(descs)
    k = args.k or len({labels[n] for n in names})
    everything = np.concatenate([descs[n] for n in names])
    sample = everything[np.random.default_rng(0).choice(len(everything), min(len(everything), 20000), replace=False)]
    runs = []
    for gmm_seed in range(args.seeds):
        model = fit_parts(sample, spec.descriptor_spec(), components=args.components, seed=gmm_seed)
        fv = np.stack([model.encode(descs[n], spec.descriptor_spec()) for n in names])
        for km_seed in range(3):
            scores = table_scores(cluster_table(names, fv, k, restarts=10, seed=km_seed), labels)
            runs.append({"gmm_seed": gmm_seed, "kmeans_seed": km_seed, **scores})
            print(f"gmm seed {gmm_seed} k-means seed {km_seed}: purity {scores['purity']:.3f} NMI {scores['nmi']:.3f}")
    nmis = [r["nmi"] for r in runs]
    result = {"machine": machine(("ray", "opencv-python-headless", "av", "numpy", "faiss-cpu", "scikit-learn")),
              "dataset": args.dataset, "spec": spec.descriptor_spec(), "components": args.components, "k": k,
              "throughput": throughput, "runs": runs,
              "nmi": {"median": float(np.median(nmis)), "min": float(min(nmis)), "max": float(max(nmis))},
              "purity_median": float(np.median([r["purity"] for r in runs])), "target_nmi": 0.8}
    print(f"NMI median {np.median(nmis):.3f} (min {min(nmis):.3f}, max {max(nmis):.3f}); target 0.8")
    write_result("trajectories_real.json", result)


if __name__ == "__main__":
    main()
