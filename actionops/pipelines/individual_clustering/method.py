"""Individual clustering (methods.md §1) as a registered method: `actionops pipeline run individual-clustering`."""

from __future__ import annotations

from pathlib import Path

from actionops.pipelines.individual_clustering import config as _config  # noqa: F401  (registers its sections)
from actionops.pipelines.individual_clustering.config import uses_backbone
from actionops.pipelines.method import Method, Stage, TuneDefaults, lazy, register_method
from actionops.pipelines.runner import dataset_inputs, flow_stage, index_stage, output_file

STAGES = "actionops.pipelines.individual_clustering.stages"


def _sample(root: Path, seed: int = 0) -> Path:
    """3 small operating-room scenes (train/test, pose.json, annotations). Their activities differ
    in limb motion, which 96 x 72 frames and 8-frame windows still show (at 48 x 36, or in 4 frames,
    the windows no longer tell them apart: no setting learned)."""
    from actionops.platform.synth import generate_or_scenes

    generate_or_scenes(root, videos=3, frames=24, width=192, height=144, min_people=3, max_people=4, seed=seed)
    return root


def _autoencoder(ctx, datatype: str) -> dict:
    """The autoencoder stage: skipped when a pretrained backbone embeds the people."""
    if uses_backbone(ctx.cfg):
        return {"skipped": f"clustering.features=backbone ({ctx.cfg.clustering.backbone})"}
    return lazy(f"{STAGES}:train_autoencoder")(ctx, datatype)


def _ae_output(datatype: str):
    return lambda ctx: [] if uses_backbone(ctx.cfg) else [Path(ctx.out) / f"ae_{datatype}.pt"]


def _clustering_inputs(ctx) -> list[Path]:
    """The two autoencoders, or the backbone file when it is one (a models:/ URI is config)."""
    c = ctx.cfg.clustering
    if uses_backbone(ctx.cfg):
        return [Path(c.backbone)] if c.backbone and Path(c.backbone).is_file() else []
    return [Path(ctx.out) / "ae_frame.pt", Path(ctx.out) / "ae_flow.pt"]


METHOD = register_method(Method(
    id="individual-clustering",
    description="Unsupervised activity clusters per person per window (operating-room videos, methods.md §1).",
    package="individual_clustering",
    sections=("autoencoder", "clustering", "optim"),
    stages=(
        Stage("index", "probe every video, check pose files -> manifest.parquet", index_stage, dataset_inputs,
              lambda c: [c.manifest_path]),
        Stage("flow", "optical flow per video (resumable)", flow_stage, lambda c: [c.manifest_path],
              lambda c: [], ("flow",), always=True),
        Stage("autoencoder_frame", "pretrain the RGB 3D-conv autoencoder (skipped with clustering.features=backbone)",
              lambda c: _autoencoder(c, "frame"), lambda c: [c.manifest_path], _ae_output("frame"), ("autoencoder", "train")),
        Stage("autoencoder_flow", "pretrain the optical-flow 3D-conv autoencoder (skipped with clustering.features=backbone)",
              lambda c: _autoencoder(c, "flow"), lambda c: [c.manifest_path], _ae_output("flow"), ("autoencoder", "flow", "train")),
        Stage("clustering", "joint DEC training (k-means init); register model as candidate", lazy(f"{STAGES}:train_clustering"),
              _clustering_inputs, output_file("clustering.pt"), ("autoencoder", "clustering", "optim", "train")),
        Stage("predict", "cluster every person of the test split", lambda c: lazy(f"{STAGES}:predict")(c, "test"),
              lambda c: [Path(c.out) / "clustering.pt", c.manifest_path], output_file("predictions/test/embeddings.npz"),
              ("autoencoder",)),
        Stage("evaluate", "Hungarian accuracy, NMI, ARI, AMI, V-measure, majority vote on the test split",
              lambda c: lazy(f"{STAGES}:evaluate")(c, "test"),
              lambda c: [Path(c.out) / "predictions/test/embeddings.npz", c.manifest_path], output_file("metrics_test.json")),
    ),
    train=lazy(f"{STAGES}:train_clustering"),
    evaluate=lazy(f"{STAGES}:evaluate_model"),
    predict=lazy(f"{STAGES}:predict_test"),
    register=lazy(f"{STAGES}:register_clustering"),
    prepare_tune=lazy(f"{STAGES}:prepare_tune"),
    sample=_sample,
    reports=("loss", "mse_frame", "mse_flow", "kl"),
    checkpoint="clustering.pt",
    registered_model_key="clustering.registered_model",
    # the loss is only comparable across trials with the same lmd_cm
    tune=TuneDefaults(metric="loss", mode="min", epochs_key="clustering.epochs", space={
        "optim.lr_cm": "loguniform(1e-4, 1e-2)", "optim.lr_ae_frame": "loguniform(1e-5, 1e-3)"}),
    score="hungarian_accuracy",
    loss="loss",
    # the autoencoders learn the representation; the joint stage (encoder lr 1e-4) moves slowly
    learning=(("history_ae_frame.json", "loss", 0.1), ("history_ae_flow.json", "loss", 0.1),
              ("history_clustering.json", "loss", 0.0)),
    words=("clustering",),
    tiny=("autoencoder.seq_len=8", "autoencoder.stride=4", "autoencoder.width=96", "autoencoder.height=72",
          "autoencoder.base_channels=4", "autoencoder.latent_channels=8", "autoencoder.epochs=6", "clustering.ndf=8",
          "clustering.epochs=2", "clustering.n_clusters=4", "clustering.kmeans_init=2", "flow.method=dis",
          "clustering.add_motion_feature=true"),  # the published head collapses to one cluster at these sizes (README)
    commands="actionops.pipelines.individual_clustering.commands",
))
