"""`actionops demo`: the one-command tour on generated data (what `make demo` runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from actionops.cli.common import AddressOpt, ParamsOpt, SetOpt, console, load_cfg

HELP = """Run the platform end to end on generated operating-room scenes.

Generates synthetic scenes (skipped when up to date), probes every video on Ray Data, and logs
a tracked run to MLflow (local store under mlruns/ unless MLFLOW_TRACKING_URI is set).

\b
Example:
  actionops demo
  actionops demo --data data/demo --set synth.videos=4
"""


def demo(
    data: Annotated[Path, typer.Option(help="Where the generated dataset goes.")] = Path("data/demo"),
    address: AddressOpt = None,
    params: ParamsOpt = None,
    set_: SetOpt = None,
) -> None:
    from rich.table import Table

    from actionops.pipelines.demo import DEMO_EXPERIMENT, run_demo
    from actionops.platform.tracking import tracking_uri

    cfg = load_cfg(params, set_, ray__address=address, synth__kind="or-scene")
    metrics = run_demo(cfg, data, console)
    table = Table(title="demo results")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in metrics.items():
        table.add_row(key, f"{value:.2f}" if isinstance(value, float) else str(value))
    console.print(table)
    uri = tracking_uri()
    console.print(f"MLflow experiment [bold]{DEMO_EXPERIMENT}[/], run {metrics['run_id']}")
    console.print(f"Open the UI:  mlflow ui --backend-store-uri {uri}", soft_wrap=True)
    console.print("[yellow]Not built yet:[/] flow, autoencoders, clustering, evaluation and "
                  "registration stages (see README 'Status').")
