"""`actionops demo`: the one-command tour on generated data (what `make demo` runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from actionops.cli.common import AddressOpt, ParamsOpt, SetOpt, console

HELP = """Run the individual-clustering pipeline end to end on generated operating-room scenes.

synth -> index -> flow -> autoencoder (frame) -> autoencoder (flow) -> clustering (+ register
as candidate) -> predict (test) -> evaluate (test). Stages whose outputs are up to date are
skipped. Runs and models go to MLflow (local store under mlruns/ unless MLFLOW_TRACKING_URI).

The demo sets its own small sizes over the params file (actionops/pipelines/demo.py DEMO_SETS:
8-frame windows, few epochs); --set overrides them. Every other command uses params.yaml as
shipped, which is chosen on real video and slower.

\b
Example:
  actionops demo
  actionops demo --data data/demo --set synth.videos=4 --set clustering.epochs=3
"""


def demo(
    data: Annotated[Path, typer.Option(help="Where the generated dataset goes.")] = Path("data/demo"),
    out: Annotated[Path, typer.Option(help="Where models, predictions and metrics go.")] = Path("outputs/demo"),
    address: AddressOpt = None,
    params: ParamsOpt = None,
    set_: SetOpt = None,
) -> None:
    from rich.table import Table

    from actionops.pipelines.demo import demo_config, run_demo
    from actionops.platform.tracking import tracking_uri

    cfg = demo_config(params, set_, ray__address=address, synth__kind="or-scene")
    result = run_demo(cfg, data, out, console)
    metrics = result["metrics"]
    table = Table(title="individual clustering, test split (person windows)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in ("hungarian_accuracy", "nmi", "ari", "majority_vote_accuracy", "person_windows", "n_clusters"):
        value = metrics[key]
        table.add_row(key, f"{value:.3f}" if isinstance(value, float) else str(value))
    console.print(table)
    console.print("(majority_vote_accuracy maps clusters many-to-one on the scored data: optimistic)")
    console.print(f"Registered model: [bold]{result['model']}[/] (alias candidate); outputs in {result['out']}")
    console.print(f"Finished in {result['seconds']:.0f}s. Open the MLflow UI:  mlflow ui --backend-store-uri {tracking_uri()}",
                  soft_wrap=True)
