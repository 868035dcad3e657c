"""Dense trajectories + Fisher vectors + faiss k-means on real video (issue #18, first part).

    python -m benchmarks.trajectories_real [--dataset weizmann4] [--k K] [--components 16] [--seeds 3]

1. Extraction throughput: the same videos through `extract_trajectories` on Ray Data (one task a
   video) and in a plain loop in this process; videos/s and trajectories/s of each, and the ratio.
2. Clustering without labels: per-part PCA + GMM fitted on a sample of all trajectories, one Fisher
   vector per video, faiss k-means (k = the number of classes unless --k), then purity and NMI
   against the class folders (labels are read only to score). Over `--seeds` GMM seeds x 3 k-means
   seeds, because the result moves with them. Target of the issue: NMI >= 0.8 on Weizmann.
3. Frame ranges: one long video (videos/demo.mp4, 280 frames) split into `--chunk-frames` ranges on
   Ray Data (one task each) vs the whole video in one task, and the trajectory counts of both.
4. The flow stage's files: the dataset indexed, its flow computed (`compute_flow`, the flow stage),
   then extraction again reading that flow; seconds with and without it, descriptors compared.

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
    parser.add_argument("--chunk-frames", type=int, default=70)
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
            ranges = frame_ranges(work, spec, args.chunk_frames)
            cache = flow_cache(root, work, spec, {str(Path(r['path']).resolve()): descs.get(r['video_id']) for r in rows})
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
              "throughput": throughput, "frame_ranges": ranges, "flow_stage_files": cache, "runs": runs,
              "nmi": {"median": float(np.median(nmis)), "min": float(min(nmis)), "max": float(max(nmis))},
              "purity_median": float(np.median([r["purity"] for r in runs])), "target_nmi": 0.8}
    print(f"NMI median {np.median(nmis):.3f} (min {min(nmis):.3f}, max {max(nmis):.3f}); target 0.8")
    write_result("trajectories_real.json", result)


def frame_ranges(work: Path, spec, chunk_frames: int) -> dict:
    """One long video: ranges on Ray Data vs the whole video in one task (both through Ray)."""
    from actionops.pipelines.trajectory_clustering.extract import extract_trajectories
    from actionops.platform.video import probe_video

    video = SHARED / "videos" / "demo.mp4"
    if not video.is_file():
        return {"skipped": f"{video} not found"}
    row = {"video_id": "demo", "path": str(video), "frames": probe_video(video)["frames"]}
    tick = time.perf_counter()
    whole = extract_trajectories([row], work / "whole", spec, chunk_frames=None)
    whole_s = time.perf_counter() - tick
    tick = time.perf_counter()
    ranged = extract_trajectories([row], work / "ranged", spec, chunk_frames=chunk_frames)
    ranged_s = time.perf_counter() - tick
    out = {"video": "videos/demo.mp4", "frames": row["frames"], "chunk_frames": chunk_frames, "ranges": ranged["ranges"],
           "whole": {"seconds": round(whole_s, 2), "trajectories": whole["trajectories"]},
           "ranged": {"seconds": round(ranged_s, 2), "trajectories": ranged["trajectories"]},
           "speedup_ranges_vs_whole": round(whole_s / ranged_s, 3),
           "trajectory_count_ratio": round(ranged["trajectories"] / max(whole["trajectories"], 1), 3)}
    print(f"one {row['frames']}-frame video: whole {whole_s:.1f} s, {ranged['ranges']} ranges {ranged_s:.1f} s "
          f"(x{whole_s / ranged_s:.2f}); trajectories {whole['trajectories']} vs {ranged['trajectories']}")
    return out


def flow_cache(root: Path, work: Path, spec, by_path: dict) -> dict:
    """Extraction reading the flow stage's files vs computing flow (same videos, both on Ray Data)."""
    from actionops.pipelines.trajectory_clustering.extract import extract_trajectories, parquet_name, read_descriptors
    from actionops.platform.data import compute_flow, index_dataset, load_manifest

    index_dataset(root, out=work / "manifest.parquet", flow_dir=work / "flow")
    _, rows = load_manifest(root, work / "manifest.parquet")
    tick = time.perf_counter()
    compute_flow(rows)
    flow_s = time.perf_counter() - tick
    tick = time.perf_counter()
    cached = extract_trajectories(rows, work / "cached", spec)
    cached_s = time.perf_counter() - tick
    same = [np.array_equal(read_descriptors(work / "cached" / parquet_name(str(r["video_id"])))[1],
                           by_path[str(Path(r["path"]).resolve())]) for r in rows
            if by_path.get(str(Path(r["path"]).resolve())) is not None]
    out = {"flow_stage_seconds": round(flow_s, 2), "extraction_with_flow_files_seconds": round(cached_s, 2),
           "videos_reading_flow_files": cached["flow"]["cache"], "videos": len(rows),
           "descriptors_identical": f"{sum(same)}/{len(same)}"}
    print(f"flow stage {flow_s:.1f} s, then extraction from its files {cached_s:.1f} s "
          f"({cached['flow']['cache']}/{len(rows)} videos; identical descriptors {sum(same)}/{len(same)})")
    return out


if __name__ == "__main__":
    main()
