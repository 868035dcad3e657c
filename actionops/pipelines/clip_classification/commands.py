"""CLI commands of clip classification: `train classifier`, `evaluate classifier`, `predict classifier`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from actionops.pipelines.commands import (
    AddressOpt,
    JsonOpt,
    OutOpt,
    ParamsOpt,
    ResumeOpt,
    SetOpt,
    SplitOpt,
    console,
    err_console,
    load_cfg,
    show_result,
    stage_context,
)
from actionops.pipelines.method import command

METHOD = "clip-classification"
DatasetArg = Annotated[Path, typer.Argument(help="Dataset folder: class folders or train/val/test.csv (path,label), or the "
                                                 "manifest .parquet written by `data index --out`.")]


@command("train", "classifier")
def train_classifier(
    dataset: DatasetArg,
    model: Annotated[Optional[str], typer.Option("--model", help="tsm_resnet18, r2plus1d_18, cnn_lstm_resnet18, x3d_xs, slow_r50, vivit_tiny.")] = None,
    weights: Annotated[Optional[str], typer.Option("--weights", help="Initial weights: a local .pt file or models:/NAME@ALIAS (nothing is downloaded).")] = None,
    epochs: Annotated[Optional[int], typer.Option("--epochs", help="Overrides classifier.epochs.")] = None,
    out: OutOpt = None,
    resume: ResumeOpt = False,
    address: AddressOpt = None,
    params: ParamsOpt = None,
    set_: SetOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Supervised clip classifier on Ray Train: AdamW, warm-up + cosine LR, label smoothing,
    gradient clipping, AMP on GPU, class-balanced clip sampling across whole videos, flip /
    crop / colour-jitter augmentation, validation macro-F1 each epoch (best checkpoint, optional
    early stopping). The best model is registered as classifier.registered_model (clip-classifier)
    with alias candidate.

    \b
    Example:
      actionops train classifier data/clips --model tsm_resnet18 --epochs 20
      actionops train classifier data/clips --model r2plus1d_18 --set classifier.freeze_until=layer2 --weights r2p1d.pt
      actionops train classifier data/clips --set train.num_workers=2 --resume
    """
    from actionops.models import model_spec
    from actionops.pipelines.clip_classification.stages import train_classifier as train
    from actionops.platform.cluster import ray_session

    ctx = stage_context(METHOD, dataset, out, params, set_, address, resume, json_out=json_out,
                        classifier__model=model, classifier__weights=weights, classifier__epochs=epochs)
    model_spec(ctx.cfg.classifier.model)  # an unknown name fails before Ray starts
    with ray_session(ctx.cfg.ray):
        result = train(ctx)
    show_result(f"classifier ({ctx.cfg.classifier.model})", result, json_out)


@command("evaluate", "classifier")
def evaluate_classifier(
    dataset: DatasetArg,
    model: Annotated[Optional[str], typer.Option("--model", help="models:/clip-classifier@champion, a .pt file (default: this dataset's classifier.pt).")] = None,
    split: SplitOpt = "test",
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
    from actionops.pipelines.clip_classification.stages import evaluate_classifier as evaluate
    from actionops.platform.cluster import ray_session

    ctx = stage_context(METHOD, dataset, out, params, set_, address, json_out=json_out)
    with ray_session(ctx.cfg.ray):
        result = evaluate(ctx, model, split, latency)
    if json_out:
        show_result("", result, True)
        return
    summary = {k: result[k] for k in ("model", "source", "videos", "accuracy", "macro_f1", "chance", "parameters_m")}
    if "latency" in result:
        lat = result["latency"]
        summary["latency ms/clip"] = f"{lat['batch1_ms_per_clip']:.1f} (batch 1), {lat['best_ms_per_clip']:.1f} (batch {lat['best_batch']})"
    summary["per-class F1"] = {k: v["f1"] for k, v in result["per_class"].items()}
    show_result(f"classifier scores ({split})", summary)


@command("predict", "classifier")
def predict_classifier(
    videos: Annotated[list[Path], typer.Argument(help="Video files and/or folders of videos.")],
    model: Annotated[str, typer.Option("--model", help="models:/clip-classifier@champion, or a classifier.pt file.")],
    out: Annotated[Path, typer.Option("--out", help="Where predictions.json and predictions.csv go.")] = Path("outputs/predictions"),
    address: AddressOpt = None,
    params: ParamsOpt = None,
    set_: SetOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Label videos with a classifier: sliding windows (classifier.window_frames frames every
    classifier.window_stride) scored as a Ray Data batch-inference job, the model loaded once
    per actor. Writes per-window scores (CSV) and a label per video (JSON).

    \b
    Example:
      actionops predict classifier new_videos/ --model models:/clip-classifier@champion
      actionops predict classifier a.mp4 b.mp4 --model outputs/clip-classification/clips/classifier.pt
    """
    from actionops.pipelines.clip_classification.stages import predict_classifier as predict
    from actionops.platform.cluster import ray_session

    cfg = load_cfg(params, set_, ray__address=address)
    with ray_session(cfg.ray):
        result = predict(cfg, videos, out, model, err_console if json_out else console)
    show_result("classifier predictions", result, json_out)
