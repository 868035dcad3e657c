"""Benchmark: optical flow on one node vs a 3-node loopback Ray cluster, weak scaling 1 -> 2 -> 3
nodes, and what that says about 100 nodes and 10,000 hours of video.

    python -m benchmarks.scale [--videos-per-node 4] [--frames 100] [--size 320x240] [--method farneback]

In one process, on the same generated videos (`data synth`-style operating-room scenes):
  plain_loop        the videos one after another in this process, no Ray (the baseline)
  one_node          `compute_flow` on a local Ray with 3 CPUs (one raylet)
  cluster           the same on `ray.cluster_utils.Cluster`: a head and two worker nodes of 1 CPU
                    each, every one its own raylet and object store (same 3 CPUs in all); the
                    driver joins by address. cluster_overhead = cluster seconds / one_node seconds
  weak_scaling      1, 2, 3 nodes of 1 CPU each with videos-per-node x nodes videos: seconds per
                    step, and efficiency = t(1 node) / t(n nodes) (1.0 = perfect weak scaling)
  driver_chunks_per_second  the rate at which the driver takes finished chunks when chunks are
                    tiny (4 frames): the ceiling on chunk results one driver absorbs
On this VM the three "nodes" share 2 cores: 3 CPUs of work on 2 cores is the limit, not Ray; the
numbers measure Ray's overhead between raylets (scheduling, actor placement, result transfer),
not the speed-up of real separate machines. The projection for 100 nodes uses the measured
per-CPU flow rate and the measured overheads (see `projection` in the JSON).
Writes benchmarks/results/scale.json.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks import machine, write_result
from benchmarks.ingest_flow import single_thread as plain_loop  # the videos in turn, in this process, no Ray

RESULTS = Path(__file__).resolve().parent / "results"


def _rows(data: Path, flow_dir: Path) -> list[dict]:
    from actionops.platform.data import index_dataset, load_manifest

    index_dataset(data, out=flow_dir / "manifest.parquet", flow_dir=flow_dir)
    return load_manifest(data, flow_dir / "manifest.parquet")[1]


def _flow(rows: list[dict], method: str, chunk_frames: int = 300) -> tuple[float, int]:
    from actionops.platform.data import compute_flow

    start = time.perf_counter()
    report = compute_flow(rows, method=method, chunk_frames=chunk_frames, resume=False)
    assert not report.failed, report.failed
    return time.perf_counter() - start, report.frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos-per-node", type=int, default=4)
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--size", default="320x240")
    parser.add_argument("--method", default="farneback")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))

    import ray
    from ray.cluster_utils import Cluster

    from actionops.platform.synth import generate_or_scenes

    nodes = 3
    work = Path(tempfile.mkdtemp(prefix="bench_scale_"))
    result: dict = {"method": args.method, "size": args.size, "frames_per_video": args.frames,
                    "videos_per_node": args.videos_per_node, "cpus_per_node": 1, "nodes": nodes}
    try:
        data = work / "data"
        generate_or_scenes(data, videos=args.videos_per_node * nodes, frames=args.frames, width=width, height=height,
                           test_fraction=0.0, seed=5)
        ray.init(num_cpus=nodes, include_dashboard=False, log_to_driver=False)
        rows = _rows(data, work / "flow1")
        frames = sum(int(r["frames"]) for r in rows)
        (work / "plain").mkdir()
        plain = plain_loop(rows, args.method, work / "plain")
        one_node, _ = _flow(rows, args.method)
        ray.shutdown()
        per_cpu_fps = frames / plain
        result.update(videos=len(rows), frames=frames, plain_loop_seconds=round(plain, 2),
                      plain_loop_fps=round(per_cpu_fps, 1), one_node_seconds=round(one_node, 2),
                      one_node_fps=round(frames / one_node, 1))
        print(f"plain loop {plain:6.1f} s ({per_cpu_fps:.0f} fps) | one node, 3 CPUs {one_node:6.1f} s "
              f"({frames / one_node:.0f} fps, {plain / one_node:.2f}x the loop)")

        cluster = Cluster(initialize_head=True, connect=False, head_node_args={"num_cpus": 1})
        try:
            ray.init(address=cluster.address, log_to_driver=False)
            steps = []
            for n in range(1, nodes + 1):
                if n > 1:
                    cluster.add_node(num_cpus=1)
                    cluster.wait_for_nodes()
                    deadline = time.time() + 60
                    while ray.cluster_resources().get("CPU", 0) < n and time.time() < deadline:
                        time.sleep(0.2)
                sub_rows = _rows_for(rows[: args.videos_per_node * n], work / "flow1", work / f"weak{n}")
                seconds, done = _flow(sub_rows, args.method)
                steps.append({"nodes": n, "videos": len(sub_rows), "frames": done, "seconds": round(seconds, 2),
                              "fps": round(done / seconds, 1)})
                print(f"weak scaling: {n} node(s), {len(sub_rows)} videos: {seconds:6.1f} s ({done / seconds:.0f} fps)")
            for step in steps:
                step["efficiency"] = round(steps[0]["seconds"] / step["seconds"], 3)
            cluster_seconds = steps[-1]["seconds"]  # 3 nodes, all the videos: the same work as one_node
            result["weak_scaling"] = steps
            result["cluster_seconds"] = cluster_seconds
            result["cluster_overhead"] = round(cluster_seconds / one_node, 3)
            blocks, seconds = driver_rate(400, nodes)
            result["driver_chunks_per_second"] = round(blocks / seconds, 1)
            tiny = _rows_for(rows[:nodes], work / "flow1", work / "tiny")
            seconds, done = _flow(tiny, args.method, chunk_frames=4)
            chunks = sum(-(-int(r["frames"]) // 4) for r in tiny)
            # what a chunk costs beyond its frames: opening the video, seeking, the overlap frame, a file
            result["per_chunk_overhead_seconds"] = round(max(0.0, (seconds * nodes - done / per_cpu_fps) / chunks), 3)
            print(f"cluster (3 nodes) {cluster_seconds:6.1f} s vs one node {one_node:6.1f} s: overhead "
                  f"{result['cluster_overhead']:.2f}x | driver took {result['driver_chunks_per_second']:.0f} "
                  f"empty chunk results/s | a chunk costs {result['per_chunk_overhead_seconds']:.2f} s beyond its frames")
        finally:
            ray.shutdown()
            cluster.shutdown()
        result["projection"] = projection(per_cpu_fps * (width * height) / (320 * 240), result)
        for line in result["projection"]["summary"]:
            print(line)
        result["machine"] = machine()
        write_result("scale.json", result)
    finally:
        shutil.rmtree(work, ignore_errors=True)


class _Echo:
    def __call__(self, row: dict) -> dict:
        return {"video_id": row["video_id"], "error": None, "frames": 0}


def driver_rate(n: int, actors: int) -> tuple[int, float]:
    """Result rows per second the driver takes from the flow stage's pipeline shape (one item per
    block, an actor pool of `actors`, results iterated on the driver) when the work is nothing."""
    import warnings

    import ray

    from actionops.platform.data import _from_items

    items = [{"video_id": f"v{i}", "path": "x", "flow_path": "y", "start": 0, "end": 300} for i in range(n)]
    pool = ray.data.ActorPoolStrategy(min_size=1, max_size=actors, initial_size=actors, max_tasks_in_flight_per_actor=2)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        count = sum(1 for _ in _from_items(items, max_blocks=n).map(_Echo, num_cpus=1, compute=pool).iter_rows())
    return count, time.perf_counter() - start


def _rows_for(rows: list[dict], base: Path, flow_dir: Path) -> list[dict]:
    """The same videos with their flow written under another folder (a fresh run)."""
    return [{**r, "flow_path": str(flow_dir / Path(r["flow_path"]).relative_to(base))} for r in rows]


def projection(fps_320: float, measured: dict, nodes: int = 100, cpus: int = 32, hours: float = 10_000,
               fps_video: float = 25.0, chunk_frames: int = 300) -> dict:
    """10,000 hours of 25 fps video at 320x240 on 100 nodes of 32 CPUs: a calculation from the
    measured per-CPU flow rate, weak-scaling efficiency and driver rate (no simulation)."""
    frames = hours * 3600 * fps_video
    efficiency = measured["weak_scaling"][-1]["efficiency"]
    # this VM's 3 "nodes" share 2 cores: the efficiency measured here includes that oversubscription
    # (at most 2/3 attainable); real nodes have their own cores, so the cores' share is divided out
    core_limited = min(1.0, 2 / 3)
    ray_efficiency = min(1.0, efficiency / core_limited)
    cpus_total = nodes * cpus
    seconds = frames / (fps_320 * cpus_total * ray_efficiency)
    chunks = frames / chunk_frames
    chunk_rate = cpus_total * fps_320 / chunk_frames  # chunk results per second reaching the driver
    flow_bytes_f16 = frames * 320 * 240 * 2 * 2
    video_bytes = hours * 0.35e9  # ~0.8 Mbit/s H.264 at 320x240
    driver = measured["driver_chunks_per_second"]
    summary = [
        f"projection: {hours:,.0f} h at {fps_video:g} fps = {frames:.2e} frames; {nodes} nodes x {cpus} CPUs at "
        f"{fps_320:.0f} flow fps per CPU (measured here), Ray efficiency {ray_efficiency:.2f} -> "
        f"{seconds / 3600:.1f} h of flow",
        f"  work items: {chunks:.2e} chunks of {chunk_frames} frames; the driver must take {chunk_rate:.0f} results/s "
        f"(measured here, empty chunks, actor start-up included: {driver:.0f}/s: "
        f"{'fine' if chunk_rate < driver else 'the driver is the limit: longer chunks or several drivers'}); one "
        f"driver holding {chunks:.1e} items (~300 bytes each, one Ray block each) is the first limit: submit the "
        f"work as one job per ~1,000 hours (10 drivers, or `ray job submit` per manifest shard)",
        f"  network: each worker reads its videos from shared storage ({video_bytes / 1e12:.1f} TB in all) and writes "
        f"float16 flow ({flow_bytes_f16 / 1e12:.0f} TB): the storage's write bandwidth "
        f"({flow_bytes_f16 / seconds / 1e9:.1f} GB/s sustained) is the limit, not Ray's object store "
        f"(only ~200-byte result rows travel through it)",
    ]
    return {"nodes": nodes, "cpus_per_node": cpus, "hours": hours, "fps_video": fps_video, "frames": frames,
            "flow_fps_per_cpu_320x240": round(fps_320, 1), "ray_efficiency": round(ray_efficiency, 3),
            "hours_of_flow": round(seconds / 3600, 1), "chunks": chunks, "driver_results_per_second": round(chunk_rate, 1),
            "driver_ceiling_measured": driver, "video_tb": round(video_bytes / 1e12, 2),
            "flow_tb_float16": round(flow_bytes_f16 / 1e12, 1),
            "storage_write_gb_per_s": round(flow_bytes_f16 / seconds / 1e9, 2), "summary": summary}


if __name__ == "__main__":
    main()
