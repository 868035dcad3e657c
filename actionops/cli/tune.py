"""`actionops tune METHOD DATASET`: hyperparameter-search campaigns on Ray Tune, one command per
registered method (by id, and by its stage word: `tune classifier` = `tune clip-classification`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from actionops.cli.common import AddressOpt, JsonOpt, OutOpt, ParamsOpt, SetOpt, console, group, print_json, stage_context

app = group(
    "tune",
    "Hyperparameter-search campaigns on Ray Tune: trials run the method's training through Ray\n"
    "Train, ASHA stops weak trials early, MLflow gets a parent run with one child run per trial,\n"
    "and the best trial's model is registered with alias candidate. The search space is\n"
    "tune.space.<method id> in params.yaml (dotted keys -> loguniform(a, b), choice([...]), ...),\n"
    "else the method's default space.",
    "actionops tune classifier data/clips --samples 8 --scheduler asha --max-concurrent 2",
)
SamplesOpt = Annotated[Optional[int], typer.Option("--samples", help="Trials to run (tune.samples).")]
SchedulerOpt = Annotated[Optional[str], typer.Option("--scheduler", help="asha (early stopping) or fifo.")]
MetricOpt = Annotated[Optional[str], typer.Option("--metric", help="Metric to optimise (default per method).")]
ModeOpt = Annotated[Optional[str], typer.Option("--mode", help="max or min.")]
ConcurrentOpt = Annotated[Optional[int], typer.Option("--max-concurrent", help="Trials running at once.")]
SpaceOpt = Annotated[Optional[Path], typer.Option("--space", help="YAML file: dotted key -> distribution (replaces tune.space).")]
ResumeOpt = Annotated[bool, typer.Option("--resume", help="Continue the interrupted campaign (finished trials are kept).")]
FreshOpt = Annotated[bool, typer.Option("--fresh", help="Delete an earlier campaign of the same name and start over.")]


def _run(method: str, dataset: Path, out, samples, scheduler, metric, mode, max_concurrent, space,
         resume, fresh, address, params, set_, json_out) -> None:
    from actionops.pipelines.tune import tune_method
    from actionops.platform.cluster import ray_session

    ctx = stage_context(method, dataset, out, params, set_, address, json_out=json_out,
                        tune__samples=samples, tune__scheduler=scheduler, tune__metric=metric, tune__mode=mode,
                        tune__max_concurrent=max_concurrent)
    import contextlib
    import sys

    # Tune's own progress output goes to stderr: stdout carries only our table (or --json)
    with ray_session(ctx.cfg.ray), contextlib.redirect_stdout(sys.stderr):
        result = tune_method(ctx, method, space_file=space, resume=resume, fresh=fresh)
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


def _command(method_id: str, word: str, description: str, metric: str, mode: str):
    def tune_command(
        dataset: Annotated[Path, typer.Argument(help="Dataset folder, or the manifest .parquet written by `data index --out`.")],
        samples: SamplesOpt = None, scheduler: SchedulerOpt = None, metric: MetricOpt = None, mode: ModeOpt = None,
        max_concurrent: ConcurrentOpt = None, space: SpaceOpt = None, resume: ResumeOpt = False, fresh: FreshOpt = False,
        out: OutOpt = None, address: AddressOpt = None, params: ParamsOpt = None, set_: SetOpt = None, json_out: JsonOpt = False,
    ) -> None:
        _run(method_id, dataset, out, samples, scheduler, metric, mode, max_concurrent, space, resume, fresh, address,
             params, set_, json_out)

    tune_command.__doc__ = (f"Search the hyperparameters of {method_id} ({description}) Default metric {metric}, {mode}.\n\n"
                            f"\b\nExample:\n  actionops tune {word} DATASET --samples 8\n"
                            f"  actionops tune {word} DATASET --space space.yaml --resume")
    return tune_command


def _add_commands() -> None:
    from actionops.pipelines.method import list_methods

    for m in list_methods():
        for word in (*m.words, m.id):
            app.command(word)(_command(m.id, word, m.description, m.tune.metric, m.tune.mode))


_add_commands()
