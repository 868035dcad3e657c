"""`actionops tune ...`: hyperparameter-search campaigns on Ray Tune (one per pipeline)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from actionops.cli.common import AddressOpt, JsonOpt, OutOpt, ParamsOpt, SetOpt, console, group, print_json, stage_context

app = group(
    "tune",
    "Hyperparameter-search campaigns on Ray Tune: trials run the pipeline's training through Ray\n"
    "Train, ASHA stops weak trials early, MLflow gets a parent run with one child run per trial,\n"
    "and the best trial's model is registered with alias candidate. The search space is\n"
    "tune.space.<pipeline> in params.yaml (dotted keys -> loguniform(a, b), choice([...]), ...).",
    "actionops tune classifier data/clips --samples 8 --scheduler asha --max-concurrent 2",
)
SamplesOpt = Annotated[Optional[int], typer.Option("--samples", help="Trials to run (tune.samples).")]
SchedulerOpt = Annotated[Optional[str], typer.Option("--scheduler", help="asha (early stopping) or fifo.")]
MetricOpt = Annotated[Optional[str], typer.Option("--metric", help="Metric to optimise (default per pipeline).")]
ModeOpt = Annotated[Optional[str], typer.Option("--mode", help="max or min.")]
ConcurrentOpt = Annotated[Optional[int], typer.Option("--max-concurrent", help="Trials running at once.")]
SpaceOpt = Annotated[Optional[Path], typer.Option("--space", help="YAML file: dotted key -> distribution (replaces tune.space).")]
ResumeOpt = Annotated[bool, typer.Option("--resume", help="Continue the interrupted campaign (finished trials are kept).")]
FreshOpt = Annotated[bool, typer.Option("--fresh", help="Delete an earlier campaign of the same name and start over.")]


def _run(pipeline: str, stage_pkg: str, dataset: Path, out, samples, scheduler, metric, mode, max_concurrent, space,
         resume, fresh, address, params, set_, json_out) -> None:
    from actionops.pipelines.tune import tune_pipeline
    from actionops.platform.cluster import ray_session

    ctx = stage_context(dataset, out, params, set_, address, json_out=json_out, pipeline=stage_pkg,
                        tune__samples=samples, tune__scheduler=scheduler, tune__metric=metric, tune__mode=mode,
                        tune__max_concurrent=max_concurrent)
    import contextlib
    import sys

    # Tune's own progress output goes to stderr: stdout carries only our table (or --json)
    with ray_session(ctx.cfg.ray), contextlib.redirect_stdout(sys.stderr):
        result = tune_pipeline(ctx, pipeline, space_file=space, resume=resume, fresh=fresh)
    if json_out:
        print_json(result)
        return
    from rich.table import Table

    metric_name = result["metric"]
    keys = sorted(result["best"]["params"])
    table = Table(title=f"{result['campaign']}: trials by {metric_name} ({result['mode']})")
    for column in ("trial", "status", "epochs", *[k.split(".")[-1] for k in keys], metric_name):
        table.add_column(column)
    for row in result["trials"]:
        value = row[metric_name]
        status = row["status"] if not row["completed"] and row["status"] == "error" else \
            ("done" if row["completed"] else "stopped early")
        table.add_row(row["path"] and Path(row["path"]).name or "?", status, str(row["epochs"]),
                      *[f"{row['params'][k]:.4g}" if isinstance(row["params"][k], float) else str(row["params"][k]) for k in keys],
                      f"{value:.4f}" if value is not None else "-")
    console.print(table)
    console.print(f"best: {result['best']['trial']} {metric_name}={result['best'][metric_name]:.4f}; "
                  f"registered {result['registered']} (alias candidate); MLflow parent run {result['mlflow_parent_run_id']}")


@app.command("classifier")
def classifier(
    dataset: Annotated[Path, typer.Argument(help="Dataset folder: class folders or train/val/test.csv, or the manifest .parquet written by `data index --out`.")],
    samples: SamplesOpt = None, scheduler: SchedulerOpt = None, metric: MetricOpt = None, mode: ModeOpt = None,
    max_concurrent: ConcurrentOpt = None, space: SpaceOpt = None, resume: ResumeOpt = False, fresh: FreshOpt = False,
    out: OutOpt = None, address: AddressOpt = None, params: ParamsOpt = None, set_: SetOpt = None, json_out: JsonOpt = False,
) -> None:
    """Search classifier hyperparameters (default metric val_macro_f1, max).

    \b
    Example:
      actionops tune classifier data/clips --samples 8
      actionops tune classifier data/clips --space space.yaml --metric val_accuracy --mode max
      actionops tune classifier data/clips --resume
    """
    _run("classifier", "clip_classification", dataset, out, samples, scheduler, metric, mode, max_concurrent, space,
         resume, fresh, address, params, set_, json_out)


@app.command("clustering")
def clustering(
    dataset: Annotated[Path, typer.Argument(help="Dataset folder (operating-room layout, autoencoders trained), or the manifest .parquet written by `data index --out`.")],
    samples: SamplesOpt = None, scheduler: SchedulerOpt = None, metric: MetricOpt = None, mode: ModeOpt = None,
    max_concurrent: ConcurrentOpt = None, space: SpaceOpt = None, resume: ResumeOpt = False, fresh: FreshOpt = False,
    out: OutOpt = None, address: AddressOpt = None, params: ParamsOpt = None, set_: SetOpt = None, json_out: JsonOpt = False,
) -> None:
    """Search the joint DEC clustering stage (default metric loss, min); needs the two pretrained
    autoencoders in the output folder (`train autoencoder --datatype frame|flow`).

    \b
    Example:
      actionops tune clustering data/or --samples 6 --set tune.max_concurrent=2
    """
    _run("clustering", "individual_clustering", dataset, out, samples, scheduler, metric, mode, max_concurrent, space,
         resume, fresh, address, params, set_, json_out)
