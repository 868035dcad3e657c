"""`actionops data ...`: datasets (synthetic scenes now; index, add, versions arrive later)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from actionops.cli.common import JsonOpt, ParamsOpt, SetOpt, console, group, load_cfg, print_json

app = group(
    "data",
    "Datasets: generate synthetic scenes with ground truth.",
    "actionops data synth data/or --kind or-scene --videos 6 --seed 0",
)


@app.command("synth")
def synth(
    out: Annotated[Path, typer.Argument(help="Output folder (created).")],
    kind: Annotated[Optional[str], typer.Option(help="or-scene (operating-room layout) or clips (class folders + CSVs).")] = None,
    videos: Annotated[Optional[int], typer.Option(help="Number of videos.")] = None,
    frames: Annotated[Optional[int], typer.Option(help="Frames per video.")] = None,
    width: Annotated[Optional[int], typer.Option(help="Frame width (even).")] = None,
    height: Annotated[Optional[int], typer.Option(help="Frame height (even).")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Random seed: same seed, same bytes.")] = None,
    params: ParamsOpt = None,
    set_: SetOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Generate deterministic synthetic videos with boxes and activity labels.

    \b
    Example:
      actionops data synth data/or --kind or-scene --videos 6
      actionops data synth data/clips --kind clips --videos 24 --set synth.frames=48
    """
    from actionops.pipelines.demo import synthesize

    cfg = load_cfg(
        params, set_, synth__kind=kind, synth__videos=videos, synth__frames=frames,
        synth__width=width, synth__height=height, synth__seed=seed,
    )
    summary = synthesize(cfg.synth, out, console=None if json_out else console)
    if json_out:
        print_json(summary)
