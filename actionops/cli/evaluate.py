"""`actionops evaluate ...`: scores against ground truth, logged to MLflow and metrics files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from actionops.cli.common import AddressOpt, JsonOpt, OutOpt, ParamsOpt, SetOpt, group, show_result, stage_context

app = group(
    "evaluate",
    "Scores against ground truth: clustering (Hungarian accuracy, NMI, ARI, majority vote labelled as\n"
    "such) and classifiers (accuracy, macro-F1, per class, confusion matrix, latency).",
    "actionops evaluate clustering data/or --stage test",
)


@app.command("clustering")
def clustering(
    dataset: Annotated[Path, typer.Argument(help="Dataset folder (operating-room layout), or the manifest .parquet written by `data index --out`.")],
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


@app.command("classifier")
def classifier(
    dataset: Annotated[Path, typer.Argument(help="Dataset folder: class folders or train/val/test.csv, or the manifest .parquet written by `data index --out`.")],
    model: Annotated[Optional[str], typer.Option("--model", help="models:/clip-classifier@champion, a .pt file (default: this dataset's classifier.pt).")] = None,
    split: Annotated[str, typer.Option("--split", help="Split to score: test, val or train.")] = "test",
    latency: Annotated[bool, typer.Option("--latency/--no-latency", help="Measure ms/clip at batch 1 and the best batch size.")] = True,
    out: OutOpt = None,
    address: AddressOpt = None,
    params: ParamsOpt = None,
    set_: SetOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Accuracy, macro-F1, per-class precision/recall/F1, confusion matrix (PNG + JSON), parameters
    and latency of a classifier on a split (video level: classifier.eval_clips clips averaged);
    writes metrics.json, logs to MLflow, and tags a registry version with its scores.

    \b
    Example:
      actionops evaluate classifier data/clips --model models:/clip-classifier@champion
      actionops evaluate classifier data/clips --split val --no-latency --json
    """
    from actionops.pipelines.clip_classification.stages import evaluate_classifier
    from actionops.platform.cluster import ray_session

    ctx = stage_context(dataset, out, params, set_, address, json_out=json_out, pipeline="clip_classification")
    with ray_session(ctx.cfg.ray):
        result = evaluate_classifier(ctx, model, split, latency)
    if json_out:
        show_result("", result, True)
        return
    keys = ("model", "source", "videos", "accuracy", "macro_f1", "parameters_m")
    summary = {k: result[k] for k in keys}
    if "latency" in result:
        lat = result["latency"]
        summary["latency ms/clip"] = f"{lat['batch1_ms_per_clip']:.1f} (batch 1), {lat['best_ms_per_clip']:.1f} (batch {lat['best_batch']})"
    summary["per-class F1"] = {k: v["f1"] for k, v in result["per_class"].items()}
    show_result(f"classifier scores ({split})", summary)
