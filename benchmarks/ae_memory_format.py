"""Benchmark: one training step of the individual-clustering autoencoders, channels-last (shipped)
against NCDHW (before), same process, same weights and batch.

    python -m benchmarks.ae_memory_format [--seq-len 24] [--size 64] [--batch 8] [--repeats 12]

For the RGB (3 channels) and flow (2 channels) autoencoder at the shipped window (params.yaml
autoencoder: 24 frames at 64x64, batch 8): the median seconds of forward + backward + Adam step in
each layout (interleaved, so machine noise hits both), the ratio, and the largest difference of
the two layouts' reconstructions after the same steps (same values, summed in another order).
Writes benchmarks/results/ae_memory_format.json.
"""

from __future__ import annotations

import argparse
import time
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F

from benchmarks import machine, write_result


@contextmanager
def memory_format(layout):
    """`autoencoder3d.MEMORY_FORMAT` set to `layout` (what the model is built in and what encode()
    converts its input to), restored after."""
    from actionops.models import autoencoder3d

    saved, autoencoder3d.MEMORY_FORMAT = autoencoder3d.MEMORY_FORMAT, layout
    try:
        yield
    finally:
        autoencoder3d.MEMORY_FORMAT = saved


def make(layout, channels: int, seed: int = 0):
    from actionops.models.autoencoder3d import conv3d_autoencoder

    with memory_format(layout):
        torch.manual_seed(seed)
        model = conv3d_autoencoder(in_channels=channels, base_channels=16, latent_channels=64)
    return model, torch.optim.Adam(model.parameters(), 1e-3)


def step(model, optimizer, x, layout) -> float:
    with memory_format(layout):
        tick = time.perf_counter()
        recon, _ = model(x)
        loss = F.mse_loss(recon, x)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return time.perf_counter() - tick


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seq-len", type=int, default=24)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=12)
    args = parser.parse_args()
    layouts = {"ncdhw": torch.contiguous_format, "channels_last": torch.channels_last_3d}
    rows = []
    for channels, name in ((3, "frame"), (2, "flow")):
        x = torch.rand(args.batch, channels, args.seq_len, args.size, args.size) * 2 - 1
        models = {k: make(v, channels) for k, v in layouts.items()}
        times: dict[str, list[float]] = {k: [] for k in layouts}
        for i in range(args.repeats + 1):
            for key, layout in layouts.items():
                seconds = step(*models[key], x, layout)
                if i:  # the first step of each is a warm-up
                    times[key].append(seconds)
        outs = {}
        for key, layout in layouts.items():
            with torch.no_grad(), memory_format(layout):
                outs[key] = models[key][0](x)[0]
        row = {"autoencoder": name, "input": [args.batch, channels, args.seq_len, args.size, args.size],
               **{f"{k}_s_per_step": float(np.median(v)) for k, v in times.items()},
               "speedup": float(np.median(times["ncdhw"]) / np.median(times["channels_last"])),
               "max_abs_diff_after_steps": float((outs["ncdhw"] - outs["channels_last"]).abs().max())}
        rows.append(row)
        print(f"{name}: NCDHW {row['ncdhw_s_per_step']:.3f} s/step, channels-last {row['channels_last_s_per_step']:.3f} "
              f"s/step: {row['speedup']:.2f}x (max |diff| after {args.repeats + 1} steps {row['max_abs_diff_after_steps']:.1e})")
    write_result("ae_memory_format.json", {"rows": rows, "threads": torch.get_num_threads(), "machine": machine(("torch",))})


if __name__ == "__main__":
    main()
