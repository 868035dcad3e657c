"""`actionops predict ...`: predictions from a trained or registered model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from actionops.cli.common import AddressOpt, JsonOpt, OutOpt, ParamsOpt, SetOpt, group, show_result, stage_context

app = group(
    "predict",
    "Predictions from a trained (local checkpoint) or registered (models:/NAME@ALIAS) model.",
    "actionops predict clustering data/or --stage test --model models:/individual-clustering@champion",
)


@app.command("clustering")
def clustering(
    dataset: Annotated[Path, typer.Argument(help="Dataset folder (operating-room layout).")],
    stage: Annotated[str, typer.Option("--stage", help="Split to predict: train or test.")] = "test",
    model: Annotated[Optional[str], typer.Option("--model", help="models:/NAME@ALIAS (default: the local clustering.pt).")] = None,
    out: OutOpt = None,
    address: AddressOpt = None,
    params: ParamsOpt = None,
    set_: SetOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Assign every person of every window to a cluster; write per-video JSON
    ([{"frame", "id", "label"}]), embeddings.npz and a video with coloured boxes.

    \b
    Example:
      actionops predict clustering data/or --stage test
      actionops predict clustering data/or --model models:/individual-clustering@champion
    """
    from actionops.pipelines.individual_clustering.stages import predict
    from actionops.platform.cluster import ray_session

    ctx = stage_context(dataset, out, params, set_, address, json_out=json_out)
    with ray_session(ctx.cfg.ray):
        result = predict(ctx, stage, model)
    show_result(f"predictions ({stage})", result, json_out)
