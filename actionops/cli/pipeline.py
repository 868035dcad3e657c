"""`actionops pipeline ...`: a method's stages in order, skipping up-to-date ones."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from actionops.cli.common import AddressOpt, JsonOpt, OutOpt, ParamsOpt, SetOpt, console, group, print_json, stage_context

app = group(
    "pipeline",
    "Run every stage of a pipeline on a dataset, skipping stages whose outputs are up to date.",
    "actionops pipeline run individual-clustering data/or",
)


@app.command("list")
def list_(json_out: JsonOpt = False) -> None:
    """Show the pipelines and their stages.

    \b
    Example:
      actionops pipeline list
    """
    from actionops.pipelines.registry import list_pipelines

    pipelines = list_pipelines()
    if json_out:
        print_json([{"name": p.name, "description": p.description, "stages": [s.name for s in p.stages]} for p in pipelines])
        return
    for p in pipelines:
        console.print(f"[bold]{p.name}[/]: {p.description}")
        for i, s in enumerate(p.stages, start=1):
            console.print(f"  {i}. {s.name:18s} {s.description}")


@app.command("run")
def run(
    name: Annotated[str, typer.Argument(help="Pipeline name (see `pipeline list`).")],
    dataset: Annotated[Path, typer.Argument(help="Dataset folder, or the manifest .parquet written by `data index --out`.")],
    out: OutOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Re-run stages even when up to date.")] = False,
    only: Annotated[Optional[list[str]], typer.Option("--only", help="Run only this stage (repeatable).")] = None,
    address: AddressOpt = None,
    params: ParamsOpt = None,
    set_: SetOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Run a pipeline's stages in order on a dataset.

    \b
    Example:
      actionops pipeline run individual-clustering data/or
      actionops pipeline run individual-clustering data/or --only predict --only evaluate
      actionops pipeline run clip-classification data/clips --set classifier.epochs=5
    """
    from actionops.pipelines.registry import get_pipeline, run_pipeline
    from actionops.platform.cluster import ray_session

    pipeline = get_pipeline(name)
    ctx = stage_context(dataset, out, params, set_, address, json_out=json_out, pipeline=pipeline.package)
    total = len(pipeline.stages)

    def on_stage(i: int, stage, status: str) -> None:
        if not json_out:
            console.rule(f"[bold]{i}/{total} {stage.name}[/] ({status})")

    with ray_session(ctx.cfg.ray):
        rows = run_pipeline(pipeline, ctx, force=force, only=only or (), on_stage=on_stage)
    if json_out:
        print_json(rows)
    else:
        for row in rows:
            console.print(f"{row['stage']:18s} {row['status']}")
