"""`actionops train ...`: training on Ray Train."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from actionops.cli.common import AddressOpt, JsonOpt, OutOpt, ParamsOpt, ResumeOpt, SetOpt, group, show_result, stage_context

app = group(
    "train",
    "Training on Ray Train workers (GPU when present, DDP across train.num_workers), tracked in MLflow.",
    "actionops train autoencoder data/or --datatype flow --set autoencoder.epochs=10",
)
DatasetArg = Annotated[Path, typer.Argument(help="Dataset folder (operating-room layout), or the manifest .parquet written by `data index --out`.")]


@app.command("autoencoder")
def autoencoder(
    dataset: DatasetArg,
    datatype: Annotated[str, typer.Option("--datatype", help="frame (RGB) or flow.")] = "frame",
    out: OutOpt = None,
    resume: ResumeOpt = False,
    address: AddressOpt = None,
    params: ParamsOpt = None,
    set_: SetOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Pretrain the RGB or optical-flow 3D-conv autoencoder (MSE) on person windows.

    \b
    Example:
      actionops train autoencoder data/or --datatype frame
      actionops train autoencoder data/or --datatype flow --resume
    """
    from actionops.pipelines.individual_clustering.stages import train_autoencoder
    from actionops.platform.cluster import ray_session

    ctx = stage_context(dataset, out, params, set_, address, resume, json_out=json_out)
    with ray_session(ctx.cfg.ray):
        result = train_autoencoder(ctx, datatype)
    show_result(f"autoencoder ({datatype})", result, json_out)


@app.command("clustering")
def clustering(
    dataset: DatasetArg,
    out: OutOpt = None,
    resume: ResumeOpt = False,
    address: AddressOpt = None,
    params: ParamsOpt = None,
    set_: SetOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Joint training with the DEC clustering layer; registers the model (alias candidate).

    Needs both autoencoders (`train autoencoder --datatype frame|flow`). The spatial feature
    (distance to the operating table, from coor.npy) is `--set clustering.add_spatial_feature=true`.

    \b
    Example:
      actionops train clustering data/or --set clustering.n_clusters=4
    """
    from actionops.pipelines.individual_clustering.stages import train_clustering
    from actionops.platform.cluster import ray_session

    ctx = stage_context(dataset, out, params, set_, address, resume, json_out=json_out)
    with ray_session(ctx.cfg.ray):
        result = train_clustering(ctx)
    show_result("clustering", result, json_out)


@app.command("classifier")
def classifier(
    dataset: Annotated[Path, typer.Argument(help="Dataset folder: class folders or train/val/test.csv (path,label), or the manifest .parquet written by `data index --out`.")],
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
    early stopping). The best model is registered as clip-classifier with alias candidate.

    \b
    Example:
      actionops train classifier data/clips --model tsm_resnet18 --epochs 20
      actionops train classifier data/clips --model r2plus1d_18 --set classifier.freeze_until=layer2 --weights r2p1d.pt
      actionops train classifier data/clips --set train.num_workers=2 --resume
    """
    from actionops.models import model_spec
    from actionops.pipelines.clip_classification.stages import train_classifier
    from actionops.platform.cluster import ray_session

    ctx = stage_context(dataset, out, params, set_, address, resume, json_out=json_out, pipeline="clip_classification",
                        classifier__model=model, classifier__weights=weights, classifier__epochs=epochs)
    model_spec(ctx.cfg.classifier.model)  # an unknown name fails before Ray starts
    with ray_session(ctx.cfg.ray):
        result = train_classifier(ctx)
    show_result(f"classifier ({ctx.cfg.classifier.model})", result, json_out)
