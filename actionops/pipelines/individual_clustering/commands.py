"""CLI commands of individual clustering: `train autoencoder|clustering`, `predict clustering`,
`evaluate clustering`."""

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
    show_result,
    stage_context,
)
from actionops.pipelines.method import command

METHOD = "individual-clustering"
DatasetArg = Annotated[Path, typer.Argument(help="Dataset folder (operating-room layout), or the manifest .parquet "
                                                 "written by `data index --out`.")]


@command("train", "autoencoder")
def train_autoencoder(
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
    from actionops.pipelines.individual_clustering.stages import train_autoencoder as train
    from actionops.platform.cluster import ray_session

    ctx = stage_context(METHOD, dataset, out, params, set_, address, resume, json_out=json_out)
    with ray_session(ctx.cfg.ray):
        result = train(ctx, datatype)
    show_result(f"autoencoder ({datatype})", result, json_out)


@command("train", "clustering")
def train_clustering(
    dataset: DatasetArg,
    weights: Annotated[Optional[str], typer.Option(
        "--weights", help="Embed people with this pretrained video backbone instead of the autoencoders: "
        "models:/video-pretrained@ALIAS or a pretrain.pt from `actionops train pretrain` (sets "
        "clustering.features=backbone and clustering.backbone).")] = None,
    out: OutOpt = None,
    resume: ResumeOpt = False,
    address: AddressOpt = None,
    params: ParamsOpt = None,
    set_: SetOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Joint training with the DEC clustering layer; registers the model as
    clustering.registered_model (individual-clustering) with alias candidate.

    Needs both autoencoders (`train autoencoder --datatype frame|flow`), or, with --weights, a
    pretrained video backbone whose feature map (clustering.backbone_layer) the person boxes are
    pooled from; the backbone stays frozen and only the head trains. The spatial feature
    (distance to the operating table, from coor.npy) is `--set clustering.add_spatial_feature=true`;
    the flow descriptor fused with either is `--set clustering.add_motion_feature=true`.

    \b
    Example:
      actionops train clustering data/or --set clustering.n_clusters=4
      actionops train clustering data/or --weights models:/video-pretrained@champion
    """
    from actionops.pipelines.individual_clustering.stages import train_clustering as train
    from actionops.platform.cluster import ray_session

    if weights:
        set_ = [*(set_ or []), "clustering.features=backbone", f"clustering.backbone={weights}"]

    ctx = stage_context(METHOD, dataset, out, params, set_, address, resume, json_out=json_out)
    with ray_session(ctx.cfg.ray):
        result = train(ctx)
    show_result("clustering", result, json_out)


@command("predict", "clustering")
def predict_clustering(
    dataset: DatasetArg,
    split: SplitOpt = "test",
    model: Annotated[Optional[str], typer.Option("--model", help="models:/NAME@ALIAS or a .pt file (default: the local clustering.pt).")] = None,
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
      actionops predict clustering data/or --split test
      actionops predict clustering data/or --model models:/individual-clustering@champion
    """
    from actionops.pipelines.individual_clustering.stages import predict
    from actionops.platform.cluster import ray_session

    ctx = stage_context(METHOD, dataset, out, params, set_, address, json_out=json_out)
    with ray_session(ctx.cfg.ray):
        result = predict(ctx, split, model)
    show_result(f"predictions ({split})", result, json_out)


@command("evaluate", "clustering")
def evaluate_clustering(
    dataset: DatasetArg,
    split: SplitOpt = "test",
    model: Annotated[Optional[str], typer.Option("--model", help="Predict with this model first (models:/NAME@ALIAS or a .pt file) and tag its registry version with the scores; default: score the split's existing predictions.")] = None,
    out: OutOpt = None,
    address: AddressOpt = None,
    params: ParamsOpt = None,
    set_: SetOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Score the predictions of a split against json/annotation_clustering.json (Hungarian
    accuracy, NMI, ARI, AMI, V-measure, majority vote); writes metrics_<split>.json and logs
    metrics and a confusion matrix to MLflow.

    \b
    Example:
      actionops evaluate clustering data/or --split test --json
      actionops evaluate clustering data/or --model models:/individual-clustering@candidate
    """
    from actionops.pipelines.individual_clustering.stages import evaluate, evaluate_model

    ctx = stage_context(METHOD, dataset, out, params, set_, address, json_out=json_out)
    if model:
        from actionops.platform.cluster import ray_session

        with ray_session(ctx.cfg.ray):
            result = evaluate_model(ctx, model, split)
    else:
        result = evaluate(ctx, split)
    keys = ("hungarian_accuracy", "nmi", "ari", "ami", "v_measure", "majority_vote_accuracy", "person_windows", "n_clusters")
    show_result(f"clustering scores ({split})", result if json_out else {k: result[k] for k in keys}, json_out)
