"""CLI commands of trajectory clustering and pretraining: `trajectories compute|encode|cluster`,
`train pretrain`, `evaluate pretrain`."""

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
    show_result,
    stage_context,
)
from actionops.pipelines.method import command

METHOD = "trajectory-clustering"
DatasetArg = Annotated[Path, typer.Argument(help="Folder of videos (flat, class folders, or train/val/test CSVs), "
                                                 "or the manifest from `data index --out`.")]


def _run(stage: str, dataset: Path, out, params, set_, address, json_out: bool, title: str, **kwargs) -> None:
    from actionops.pipelines.trajectory_clustering import stages
    from actionops.platform.cluster import ray_session

    ctx = stage_context(METHOD, dataset, out, params, set_, address, json_out=json_out)
    with ray_session(ctx.cfg.ray):
        result = getattr(stages, stage)(ctx, **kwargs)
    show_result(title, result, json_out)


@command("trajectories", "compute")
def compute(dataset: DatasetArg, out: OutOpt = None, address: AddressOpt = None, params: ParamsOpt = None,
            set_: SetOpt = None, json_out: JsonOpt = False) -> None:
    """Dense trajectories of every video (grid every trajectories.step px, tracked through median-filtered
    flow for trajectories.length frames; static and erratic tracks dropped; shape, HOF, MBHx, MBHy and,
    with trajectories.hog, HOG descriptors), one parquet per video under OUT/trajectories. One Ray Data
    task per video, or per frame range of trajectories.chunk_frames for longer videos. The flow stage's
    files (`actionops flow compute`, same method and size) are read instead of computing flow again.
    Resumable: a second run computes only missing videos and ranges; a changed spec starts over. Person
    boxes (pose.json) keep trajectories on people. Videos too short for one trajectory are skipped and
    counted. trajectories.size=WxH resizes frames first (large videos: 4x fewer pixels at half size).

    \b
    Example:
      actionops trajectories compute ../shared/data/weizmann4
    """
    _run("compute_stage", dataset, out, params, set_, address, json_out, "trajectories")


@command("trajectories", "encode")
def encode(dataset: DatasetArg, out: OutOpt = None, address: AddressOpt = None, params: ParamsOpt = None,
           set_: SetOpt = None, json_out: JsonOpt = False) -> None:
    """Fit a PCA (trajectories.pca_keep of each part's dimensions) and a diagonal GMM
    (trajectories.gmm_components) per descriptor part on a sample of trajectories.sample trajectories,
    then encode every video as an improved Fisher vector (power + L2 normalised, parts concatenated).
    Writes OUT/fisher_model/ (the models, refused on descriptors of another spec) and fisher.npz.

    \b
    Example:
      actionops trajectories encode ../shared/data/weizmann4 --set trajectories.gmm_components=32
    """
    _run("encode_stage", dataset, out, params, set_, address, json_out, "Fisher vectors")


@command("trajectories", "cluster")
def cluster(dataset: DatasetArg,
            k: Annotated[Optional[int], typer.Option("--k", min=2, help="Clusters (default trajectories.k; else the "
                                                     "number of labels when known, else 8).")] = None,
            out: OutOpt = None, address: AddressOpt = None, params: ParamsOpt = None, set_: SetOpt = None,
            json_out: JsonOpt = False) -> None:
    """faiss k-means (trajectories.restarts restarts) of the Fisher vectors into K clusters. Writes
    OUT/clusters.csv (or .parquet, trajectories.table_format) with a video_id and a cluster column,
    keyed by video id; purity and NMI against the labels when the dataset has them (MLflow run with
    the label x cluster table).

    \b
    Example:
      actionops trajectories cluster ../shared/data/weizmann4 --k 4
    """
    _run("cluster_stage", dataset, out, params, set_, address, json_out, "trajectory clusters", k=k)


@command("train", "pretrain")
def train_pretrain(
    dataset: DatasetArg,
    epochs: Annotated[Optional[int], typer.Option("--epochs", help="Overrides pretrain.epochs (total of the three stages).")] = None,
    out: OutOpt = None,
    resume: ResumeOpt = False,
    address: AddressOpt = None,
    params: ParamsOpt = None,
    set_: SetOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Self-supervised 3D ResNet-18 on every video of DATASET (labels unused) through Ray Train:
    instance recognition with a memory bank (pretrain.ir_epochs), Local Aggregation with the
    trajectory clusters as prior (pretrain.la_epochs), then tuning with k-means on [memory bank +
    Fisher vectors] for the remaining epochs. SGD momentum 0.9, warm-up + cosine. Several workers
    (train.num_workers) run DDP and keep one memory bank. The trajectory stages run first when their
    outputs are missing. Registered as video-pretrained with alias candidate; start a classifier
    from it with `train classifier --model r3d_18 --weights models:/video-pretrained@candidate`.

    \b
    Example:
      actionops train pretrain data/unlabelled_videos --set train.num_workers=2
    """
    from actionops.pipelines.trajectory_clustering.stages import train_pretrain as train
    from actionops.platform.cluster import ray_session

    ctx = stage_context(METHOD, dataset, out, params, set_, address, resume, json_out, pretrain__epochs=epochs)
    with ray_session(ctx.cfg.ray):
        result = train(ctx)
    show_result("pretraining", result, json_out)


@command("evaluate", "pretrain")
def evaluate_pretrain(
    dataset: DatasetArg,
    model: Annotated[Optional[str], typer.Option("--model", help="models:/video-pretrained@champion or a .pt file "
                                                 "(default: pretrain.pt in the output folder).")] = None,
    split: Annotated[str, typer.Option("--split", help="train (leave-one-out k-NN) or test.")] = "test",
    out: OutOpt = None,
    address: AddressOpt = None,
    params: ParamsOpt = None,
    set_: SetOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Transfer of the frozen backbone to DATASET's labels: k-NN (cosine, pretrain.knn_k) on the train
    split's features and a linear probe (logistic regression), accuracy on --split, for the pretrained
    weights and for the same architecture from random initialisation. Class folders are split by
    pretrain.test_fraction; CSV layouts keep their splits. For fine-tuning, train a classifier with
    --weights (see `train pretrain --help`).

    \b
    Example:
      actionops evaluate pretrain ../shared/data/weizmann4 --model models:/video-pretrained@candidate
    """
    _run("evaluate_pretrain", dataset, out, params, set_, address, json_out, "pretrained backbone", model=model,
         split=split)
