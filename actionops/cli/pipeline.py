"""`actionops pipeline list|run`: the registered methods and their stages, run in order."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from actionops.cli.common import AddressOpt, JsonOpt, OutOpt, ParamsOpt, SetOpt, console, group, print_json, stage_context

app = group(
    "pipeline",
    "Run every stage of a method's pipeline on a dataset, skipping stages whose outputs are up to date.",
    "actionops pipeline run individual-clustering data/or",
)


@app.command("list")
def list_(json_out: JsonOpt = False) -> None:
    """Show the registered methods: stages, registered model, Tune defaults, CLI words.

    \b
    Example:
      actionops pipeline list
    """
    from actionops.pipelines import load_config
    from actionops.pipelines.method import list_methods

    methods = list_methods()
    cfg = load_config()
    rows = [{"id": m.id, "description": m.description, "stages": [s.name for s in m.stages], "sections": list(m.sections),
             "registered_model": m.registered_model(cfg), "words": list(m.words),
             "tune": {"metric": m.tune.metric, "mode": m.tune.mode, "space": dict(m.tune.space)}} for m in methods]
    if json_out:
        print_json(rows)
        return
    for m, row in zip(methods, rows):
        console.print(f"[bold]{m.id}[/]: {m.description}")
        console.print(f"  registered model {row['registered_model']}; tune {m.tune.metric} ({m.tune.mode}); "
                      f"params sections {', '.join(m.sections)}; CLI word {', '.join(m.words) or m.id}")
        for i, s in enumerate(m.stages, start=1):
            console.print(f"  {i}. {s.name:18s} {s.description}")


@app.command("run")
def run(
    name: Annotated[str, typer.Argument(help="Method id (see `pipeline list`), e.g. individual-clustering.")],
    dataset: Annotated[Path, typer.Argument(help="Dataset folder, or the manifest .parquet written by `data index --out`.")],
    out: OutOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Re-run stages even when up to date.")] = False,
    only: Annotated[Optional[list[str]], typer.Option("--only", help="Run only this stage (repeatable).")] = None,
    address: AddressOpt = None,
    params: ParamsOpt = None,
    set_: SetOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Run a method's stages in order on a dataset, skipping those that are up to date.

    A stage runs again when the bytes of an input changed (a video, an annotation file, a label
    CSV, the manifest, an upstream checkpoint), when a params section it reads changed, or when
    the actionops code changed; each row says why it ran. The same rules as `dvc repro`.

    \b
    Example:
      actionops pipeline run individual-clustering data/or
      actionops pipeline run individual-clustering data/or --only predict --only evaluate
      actionops pipeline run clip-classification data/clips --set classifier.epochs=5
    """
    from actionops.pipelines.method import get_method
    from actionops.pipelines.runner import run_pipeline
    from actionops.platform.cluster import ray_session

    method = get_method(name)
    ctx = stage_context(method.id, dataset, out, params, set_, address, json_out=json_out)
    total = len(method.stages)

    def on_stage(i: int, stage, status: str) -> None:
        if not json_out:
            console.rule(f"[bold]{i}/{total} {stage.name}[/] ({status})")

    with ray_session(ctx.cfg.ray):
        rows = run_pipeline(method, ctx, force=force, only=only or (), on_stage=on_stage)
    if json_out:
        print_json(rows)
    else:
        for row in rows:
            console.print(f"{row['stage']:18s} {row['status']}" + (f" ({row['reason']})" if row.get("reason") else ""),
                          highlight=False)
