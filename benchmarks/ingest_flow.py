"""Benchmark: decode + optical flow + write, Ray Data pipeline vs single thread vs a plain loop.

    python -m benchmarks.ingest_flow [--videos 16] [--frames 300] [--size 320x240]

For DIS and Farneback, in one process and on the same generated videos:
  single_thread_fps  our per-chunk function in this process, cv2.setNumThreads(1) (half the videos
                     before the pipeline run, half after: this VM's speed drifts by +-15%)
  plain_loop_fps     one process, OpenCV's default threads, as the reference tool does it
  bare_processes_fps `cores` plain processes (multiprocessing, no Ray) of the single-thread function
  pipeline_fps       `compute_flow` on Ray Data over all local cores (Ray already started)
  efficiency         pipeline_fps / (cores x single_thread_fps)   (target >= 0.85); the same ratio
                     for the bare processes is this machine's ceiling
Writes benchmarks/results/ingest_flow.json.
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

RESULTS = Path(__file__).resolve().parent / "results"


def plain_loop(rows: list[dict], method: str, out: Path) -> float:
    """The reference tool's way: decode each video, flow frame pairs, np.save; default threads."""
    import av
    import cv2

    from actionops.platform.flow import flow_function

    cv2.setNumThreads(-1)  # OpenCV's default thread pool
    start = time.perf_counter()
    for row in rows:
        calc = flow_function(method)
        with av.open(row["path"]) as container:
            gray = [f.to_ndarray(format="gray") for f in container.decode(video=0)]
        flows = [np.zeros((*gray[0].shape, 2), np.float32)]
        flows += [calc(a, b) for a, b in zip(gray, gray[1:])]
        np.save(out / f"{Path(row['path']).stem}.npy", np.stack(flows))
    return time.perf_counter() - start


def single_thread(rows: list[dict], method: str, out: Path) -> float:
    """Our chunk function in this process with one OpenCV thread: the per-core yardstick."""
    from actionops.platform.flow import FlowSpec, assemble, compute_chunk

    spec = FlowSpec(method=method)
    start = time.perf_counter()
    for row in rows:
        target = out / f"{Path(row['path']).stem}.npy"
        compute_chunk(row["path"], target, 0, int(row["frames"]), spec)
        assemble(target, [(0, int(row["frames"]))], spec)
    return time.perf_counter() - start


def bare_processes(rows: list[dict], method: str, out: Path, cores: int) -> float:
    """`cores` plain processes (no Ray) each running `single_thread` on its share of the videos:
    what this machine's cores give side by side (memory, caches, clocks), the pipeline's ceiling.
    Spawned (this process has Ray's threads: no fork); timed from a barrier after start-up."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(cores), ctx.Queue()
    procs = [ctx.Process(target=_bare_worker, args=(rows[i::cores], method, str(out), barrier, results))
             for i in range(cores)]
    for p in procs:
        p.start()
    times = [results.get() for _ in procs]
    for p in procs:
        p.join()
    return max(times)


def _bare_worker(rows: list[dict], method: str, out: str, barrier, results) -> None:
    import cv2  # noqa: F401  (imports before the barrier: start-up is not timed)

    from actionops.platform import flow  # noqa: F401

    barrier.wait()
    results.put(single_thread(rows, method, Path(out)))


def decode_single(rows: list[dict]) -> float:
    from actionops.platform.video import decode_range

    start = time.perf_counter()
    for row in rows:
        for _ in decode_range(row["path"], gray=True):
            pass
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=16)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--size", default="320x240")
    parser.add_argument("--chunk-frames", type=int, default=300)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))

    import ray

    from actionops.platform.cluster import ray_session
    from actionops.platform.data import compute_flow, index_dataset, load_manifest
    from actionops.platform.synth import generate_or_scenes

    work = Path(tempfile.mkdtemp(prefix="bench_flow_"))
    try:
        data = work / "data"
        generate_or_scenes(data, videos=args.videos, frames=args.frames, width=width, height=height,
                           test_fraction=0.0, seed=11)
        cores = os.cpu_count() or 1
        t0 = time.perf_counter()
        with ray_session(num_cpus=cores):
            ray_start = time.perf_counter() - t0
            index_dataset(data)
            _, rows = load_manifest(data)
            frames = sum(int(r["frames"]) for r in rows)
            result = {"cores": cores, "videos": len(rows), "frames_per_video": args.frames,
                      "chunk_frames": args.chunk_frames,
                      "size": args.size, "frames": frames, "ray_start_seconds": round(ray_start, 2), "flow": {}}
            decode_s = decode_single(rows)
            t = time.perf_counter()
            ray.data.from_items([{"path": r["path"]} for r in rows], override_num_blocks=len(rows)).map(
                _decode_row, num_cpus=1).materialize()
            decode_ray = time.perf_counter() - t
            result["decode"] = {"single_thread_fps": round(frames / decode_s, 1),
                                "pipeline_fps": round(frames / decode_ray, 1),
                                "efficiency": round(frames / decode_ray / (cores * frames / decode_s), 3)}
            half = len(rows) // 2
            for method in ("dis", "farneback"):
                scratch = work / f"out_{method}"
                scratch.mkdir()
                # single-thread halves before and after the pipeline: this VM's speed drifts
                single = single_thread(rows[:half], method, scratch)
                report = compute_flow(rows, method=method, chunk_frames=args.chunk_frames, resume=False)
                assert not report.failed and report.frames == frames, report
                single += single_thread(rows[half:], method, scratch)
                plain = plain_loop(rows, method, scratch)
                bare = bare_processes(rows, method, scratch, cores)
                shutil.rmtree(scratch)
                entry = {"single_thread_fps": frames / single, "plain_loop_fps": frames / plain,
                         "bare_processes_fps": frames / bare, "pipeline_fps": report.fps}
                entry["efficiency"] = entry["pipeline_fps"] / (cores * entry["single_thread_fps"])
                # the same yardstick for `cores` bare processes without Ray: the machine's own ceiling
                entry["bare_processes_efficiency"] = entry["bare_processes_fps"] / (cores * entry["single_thread_fps"])
                entry["pipeline_vs_plain_loop"] = entry["pipeline_fps"] / entry["plain_loop_fps"]
                result["flow"][method] = {k: round(v, 3) for k, v in entry.items()}
                print(f"{method:10s} single {entry['single_thread_fps']:8.1f} fps | plain loop "
                      f"{entry['plain_loop_fps']:8.1f} fps | pipeline {entry['pipeline_fps']:8.1f} fps | "
                      f"efficiency {entry['efficiency']:.3f} (bare processes {entry['bare_processes_efficiency']:.3f}) | "
                      f"pipeline/plain {entry['pipeline_vs_plain_loop']:.2f}x")
        print(f"decode     single {result['decode']['single_thread_fps']:8.1f} fps | pipeline "
              f"{result['decode']['pipeline_fps']:8.1f} fps | efficiency {result['decode']['efficiency']:.3f}")
        result["machine"] = machine()
        write_result("ingest_flow.json", result)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _decode_row(row: dict) -> dict:
    from actionops.platform.video import decode_range

    return {"path": row["path"], "frames": sum(1 for _ in decode_range(row["path"], gray=True))}


if __name__ == "__main__":
    main()
