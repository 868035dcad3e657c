"""`actionops flow ...`: optical flow on Ray Data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from actionops.cli.common import AddressOpt, JsonOpt, ParamsOpt, SetOpt, console, group, load_cfg, print_json

app = group(
    "flow",
    "Optical flow (OpenCV Farneback with the reference parameters, or DIS) for every video, "
    "sharded by video and frame range on Ray Data, resumable.",
    "actionops flow compute data/or --method dis --comp",
)


@app.command("compute")
def compute(
    dataset: Annotated[Path, typer.Argument(help="Dataset folder (indexed first when it has no manifest), or a manifest .parquet written by `data index --out`.")],
    method: Annotated[Optional[str], typer.Option(help="farneback or dis.")] = None,
    comp: Annotated[Optional[bool], typer.Option("--comp/--no-comp", help="Store float16 (half the disk).")] = None,
    size: Annotated[Optional[str], typer.Option(help="Resize to WxH before computing flow, e.g. 320x240.")] = None,
    resume: Annotated[bool, typer.Option("--resume/--no-resume", help="Skip finished videos and chunks.")] = True,
    layout: Annotated[str, typer.Option("--layout", help="Layout when indexing is needed.")] = "auto",
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 when any video is rejected or fails.")] = False,
    address: AddressOpt = None,
    params: ParamsOpt = None,
    set_: SetOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Compute optical flow for every video of a dataset.

    Operating-room layout: <video>/flow.npy, (T, H, W, 2), frame 0 zeros. Other layouts:
    DATASET/flow/<video path>.npy. Writes are atomic (temp file, then rename); a killed run
    continues where it stopped (--resume is the default).

    \b
    Example:
      actionops flow compute data/or
      actionops flow compute data/clips --method dis --comp --size 160x120
    """
    from actionops.platform.cluster import ray_session
    from actionops.platform.data import compute_flow, index_dataset, load_manifest, resolve_dataset
    from actionops.platform.flow import parse_size
    from actionops.platform.progress import progress_bar

    cfg = load_cfg(params, set_, ray__address=address, flow__method=method, flow__comp=comp, flow__size=size)
    try:
        out_size = parse_size(cfg.flow.size)
    except ValueError as exc:
        from actionops.errors import ConfigError

        raise ConfigError(f"flow.size: {exc}") from None
    quiet = None if json_out else console
    rejected = []
    root, manifest = resolve_dataset(dataset)
    with ray_session(cfg.ray):
        if not manifest.is_file():
            with progress_bar(quiet, "indexing", 0) as update:
                rejected = index_dataset(root, layout=layout, out=manifest, progress=lambda d, t: update(d, total=t)).rejected
        _, rows = load_manifest(root, manifest, verify=False)  # compute_flow fails changed videos alone
        total_frames = sum(int(r["frames"]) for r in rows)
        with progress_bar(quiet, f"flow ({cfg.flow.method})", len(rows), unit="") as update:
            def report(videos_done: int, frames_done: int, videos: int) -> None:
                update(videos_done, total=videos, rate=f" videos, {frames_done}/{total_frames} frames")

            result = compute_flow(rows, method=cfg.flow.method, size=out_size, comp=cfg.flow.comp,
                                  chunk_frames=cfg.flow.chunk_frames, dis_preset=cfg.flow.dis_preset,
                                  resume=resume, progress=report)
    summary = {"videos": result.videos, "skipped_up_to_date": result.skipped, "frames": result.frames,
               "seconds": round(result.seconds, 2), "frames_per_second": round(result.fps, 1),
               "failed": [{"path": r.path, "reason": r.reason} for r in result.failed],
               "rejected_at_index": len(rejected)}
    if json_out:
        print_json(summary)
    else:
        console.print(f"flow: {result.videos} videos computed, {result.skipped} up to date, "
                      f"{result.frames} frames in {result.seconds:.1f}s ({result.fps:.0f} frames/s)")
        for row in result.failed:
            console.print(f"  [yellow]failed:[/] {row.path}: {row.reason}", highlight=False)
    if strict and (result.failed or rejected):
        raise typer.Exit(1)
