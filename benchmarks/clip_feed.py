"""Benchmark: training epochs of the shipped classifier with clips streamed by Ray Data while the
model trains (`train.clip_feed=stream`, before) against clips drawn ahead in parts
(`ahead`, what `auto` does on CPU workers), same process, same clips.

    python -m benchmarks.clip_feed [--dataset ut_interaction] [--epochs 3]

Lays out fold A of a real dataset from ACTIONOPS_SHARED_DATA as the scoreboard does, computes the
flow stage's flow (params.yaml's `flow`), builds the training clip recipe of `train classifier`
with the shipped params.yaml (frame cache included), then runs whole epochs of the real training
step (TSM, AdamW, clipping, channels-last, torch threads = cores) on each feed, interleaved
(stream epoch e, ahead epoch e, ...) so the machine's drift hits both. Ray gets cores - 1 CPUs, as
a training worker that reserves one CPU leaves the rest to Ray Data. Reports the median epoch
seconds and step (compute) seconds per feed, the ratio, and whether both feeds gave the same batches.
Writes benchmarks/results/clip_feed_<dataset>.json.
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks import machine, write_result

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="ut_interaction", choices=("ut_interaction", "weizmann4"))
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()

    import ray
    import torch
    import torch.nn.functional as F

    from actionops.models import create_model
    from actionops.pipelines import load_config
    from actionops.pipelines.clip_classification import data as D
    from actionops.pipelines.clip_classification.loops import channels_last
    from actionops.pipelines.clip_classification.stages import dataset_splits
    from actionops.pipelines.context import Context
    from actionops.pipelines.runner import flow_stage
    from benchmarks import scoreboard as sb

    source = sb.SHARED / args.dataset
    if not source.is_dir():
        print(f"skipped: {source} not found (set ACTIONOPS_SHARED_DATA)")
        return
    cores = os.cpu_count() or 1
    work = Path(tempfile.mkdtemp(prefix="clip-feed-"))
    atexit.register(shutil.rmtree, work, True)  # the layout and its flow (UT: ~10 GB)
    os.environ["ACTIONOPS_MLRUNS"] = str(work / "mlruns")
    data = work / "data"
    if args.dataset == "weizmann4":
        sb.weizmann_as_csv_layout(source, data, sb.WEIZMANN_FOLDS["A"])
    else:
        sb.ut_as_csv_layout(source, data, sb.UT_FOLDS["A"])
    cfg = load_config(REPO / "params.yaml", [])
    c = cfg.classifier
    ray.init(num_cpus=max(1, cores - 1), include_dashboard=False, log_to_driver=False)
    ctx = Context(cfg=cfg, dataset=data, out=work / "out")
    splits = dataset_splits(ctx)
    flow = D.flow_options(c, cfg.flow)
    if flow is not None:
        tick = time.perf_counter()
        flow_stage(ctx)
        print(f"flow stage: {time.perf_counter() - tick:.0f} s")
    spec = D.cache_frames(D.draw_spec(splits.train, splits.labels, c, cfg.train.seed, flow))
    torch.set_num_threads(cores)
    torch.manual_seed(0)
    model = channels_last(create_model("tsm_resnet18", num_classes=len(splits.labels), num_frames=c.num_frames,
                                       image_size=c.size))
    optimizer = torch.optim.AdamW(model.parameters(), lr=c.lr, weight_decay=c.weight_decay)

    def epoch(batches) -> tuple[float, float, list[int]]:
        tick, busy, sums = time.perf_counter(), 0.0, []
        for batch in batches:
            start = time.perf_counter()
            x = torch.from_numpy(np.asarray(batch["clip"]))
            y = torch.from_numpy(np.asarray(batch["label"])).long()
            loss = F.cross_entropy(model(x), y, label_smoothing=c.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), c.clip_grad)
            optimizer.step()
            busy += time.perf_counter() - start
            sums.append(hash(np.asarray(batch["clip"]).tobytes()))
        return time.perf_counter() - tick, busy, sums

    runs = {"stream": [], "ahead": []}
    same = True
    for e in range(-1, args.epochs):  # epoch -1: warm-up of both (decode cache, workers), not counted
        seen = {}
        for feed in ("stream", "ahead"):
            wall, busy, sums = epoch(D.epoch_batches(spec, max(e, 0), 0, 1, c.batch_size, ahead=feed == "ahead"))
            seen[feed] = sums
            if e >= 0:
                runs[feed].append({"epoch_s": round(wall, 2), "step_s": round(busy, 2), "steps": len(sums)})
                print(f"epoch {e} {feed}: {wall:.1f} s, steps {busy:.1f} s ({len(sums)})", flush=True)
        same = same and seen["stream"] == seen["ahead"]
    ray.shutdown()
    median = {feed: float(np.median([r["epoch_s"] for r in rows])) for feed, rows in runs.items()}
    ratio = median["stream"] / median["ahead"]
    print(f"{args.dataset} fold A, {len(splits.train)} training videos, {spec['slots']} clips an epoch: "
          f"stream {median['stream']:.1f} s, ahead {median['ahead']:.1f} s an epoch: {ratio:.2f}x; same batches: {same}")
    write_result(f"clip_feed_{args.dataset}.json", {
        "benchmark": "clip_feed", "dataset": args.dataset, "fold": "A", "train_videos": len(splits.train),
        "clips_per_epoch": spec["slots"], "clip_input": c.clip_input, "flow_source": c.flow_source,
        "model": c.model, "num_frames": c.num_frames, "size": c.size, "batch_size": c.batch_size,
        "ray_cpus": max(1, cores - 1), "torch_threads": cores, "epochs": runs,
        "median_epoch_s": median, "ratio_stream_over_ahead": round(ratio, 3), "same_batches": same,
        "machine": machine()})


if __name__ == "__main__":
    main()
