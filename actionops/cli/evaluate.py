"""`actionops evaluate ...`: scores against ground truth, logged to MLflow and metrics files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from actionops.cli.common import JsonOpt, OutOpt, ParamsOpt, SetOpt, group, show_result, stage_context

app = group(
    "evaluate",
    "Scores against ground truth: Hungarian accuracy, NMI, ARI (and majority vote, labelled as such).",
    "actionops evaluate clustering data/or --stage test",
)


@app.command("clustering")
def clustering(
    dataset: Annotated[Path, typer.Argument(help="Dataset folder (operating-room layout).")],
    stage: Annotated[str, typer.Option("--stage", help="Split whose predictions to score.")] = "test",
    out: OutOpt = None,
    params: ParamsOpt = None,
    set_: SetOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Score the predictions of a split against json/annotation_clustering.json; writes
    metrics_<stage>.json and logs metrics and a confusion matrix to MLflow.

    \b
    Example:
      actionops evaluate clustering data/or --stage test --json
    """
    from actionops.pipelines.individual_clustering.stages import evaluate

    ctx = stage_context(dataset, out, params, set_, None, json_out=json_out)
    result = evaluate(ctx, stage)
    keys = ("hungarian_accuracy", "nmi", "ari", "majority_vote_accuracy", "person_windows", "n_clusters")
    show_result(f"clustering scores ({stage})", result if json_out else {k: result[k] for k in keys}, json_out)
