"""Benchmark: inference latency (ms/clip) of every classifier, eager vs our faster paths, same run.

    python -m benchmarks.latency [--models ...] [--frames 16] [--size 112] [--paths jit,channels_last]

Random weights (latency does not depend on them), 7 classes, input (B, T, 3, S, S) at batch 1
and 8. For each model and batch: eager, then every path of `actionops.models.inference`; the
fastest path's speed-up over eager and the max abs difference of its logits from eager.
Target: >= 1.3x faster than eager for each model on CPU, same predictions.
Writes benchmarks/results/latency.json; the reference's GPU table (methods.md §2) sits beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

RESULTS = Path(__file__).resolve().parent / "results"
MODELS = ("tsm_resnet18", "r2plus1d_18", "cnn_lstm_resnet18", "x3d_xs", "slow_r50", "vivit_tiny")
REFERENCE_GPU_MS = {"r2plus1d_18": 45.67, "tsm_resnet18": 5.97, "vivit_tiny": 3.10, "cnn_lstm_resnet18": 6.18}


def timed(fn, x: torch.Tensor, min_seconds: float, min_repeats: int) -> float:
    """Median seconds per call after one warm-up call."""
    fn(x)
    times, start = [], time.perf_counter()
    while len(times) < min_repeats or (time.perf_counter() - start < min_seconds and len(times) < 30):
        tick = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - tick)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--paths", default="channels_last,jit,compile")
    parser.add_argument("--min-seconds", type=float, default=2.0)
    parser.add_argument("--out", default=str(RESULTS / "latency.json"))
    args = parser.parse_args()

    from actionops.models import create_model
    from actionops.models.inference import optimized

    torch.manual_seed(0)
    out_path = Path(args.out)
    result = json.loads(out_path.read_text()) if out_path.is_file() else {}
    result.update({"device": f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                             f"{torch.get_num_threads()} torch threads)",
                   "input": f"B x {args.frames} x 3 x {args.size} x {args.size}", "torch": torch.__version__,
                   "reference_gpu_ms_per_clip": REFERENCE_GPU_MS,
                   "reference_note": "reference table: GPU, 224 px, its own batch; ours: CPU, see input"})
    result.setdefault("models", {})
    for name in args.models.split(","):
        entry: dict = {}
        for bs in (int(b) for b in args.batches.split(",")):
            model = create_model(name, num_classes=7, num_frames=args.frames, image_size=args.size).eval()
            x = torch.randn(bs, args.frames, 3, args.size, args.size)
            eager = optimized(model, x, "eager")
            ref = eager(x)
            eager_s = timed(eager, x, args.min_seconds, 3)
            row = {"eager_ms_per_clip": 1000 * eager_s / bs, "paths": {}}
            for path in args.paths.split(","):
                fresh = create_model(name, num_classes=7, num_frames=args.frames, image_size=args.size)
                fresh.load_state_dict(model.state_dict())
                try:
                    tick = time.perf_counter()
                    fn = optimized(fresh, x, path)
                    out = fn(x)  # compiles / traces here
                    prepare_s = time.perf_counter() - tick
                    seconds = timed(fn, x, args.min_seconds, 3)
                except Exception as exc:  # a path that does not support a model is recorded, not fatal
                    row["paths"][path] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"}
                    continue
                row["paths"][path] = {
                    "ms_per_clip": 1000 * seconds / bs, "speedup": eager_s / seconds, "prepare_s": round(prepare_s, 1),
                    "max_abs_diff": float((out.float() - ref.float()).abs().max()),
                    "same_argmax": bool(torch.equal(out.argmax(-1), ref.argmax(-1)))}
            ok = {p: v for p, v in row["paths"].items() if "error" not in v and v["same_argmax"]}
            best = max(ok, key=lambda p: ok[p]["speedup"]) if ok else None
            row["fastest"] = best
            row["fastest_speedup"] = ok[best]["speedup"] if best else 1.0
            entry[f"batch{bs}"] = row
            print(f"{name:18s} batch {bs}: eager {row['eager_ms_per_clip']:.1f} ms/clip; " + "; ".join(
                f"{p} {v['ms_per_clip']:.1f} ({v['speedup']:.2f}x, diff {v['max_abs_diff']:.1e})" if "error" not in v
                else f"{p} failed" for p, v in row["paths"].items()), flush=True)
        result["models"][name] = entry
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(result, indent=2))
    speedups = {m: min(v[b]["fastest_speedup"] for b in v) for m, v in result["models"].items()}
    result["target"] = {"min_speedup_by_model": speedups, "met": bool(speedups) and all(s >= 1.3 for s in speedups.values())}
    out_path.write_text(json.dumps(result, indent=2))
    print(f"wrote {out_path}; speed-up of the fastest path (worst batch) per model: "
          + ", ".join(f"{m} {s:.2f}x" for m, s in speedups.items()))


if __name__ == "__main__":
    main()
