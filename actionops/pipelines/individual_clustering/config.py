"""params.yaml sections of the individual-clustering pipeline (reference keys in methods.md §1)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

from actionops.platform.config import NonNegativeFloat, Positive, PositiveFloat, Range, config_section


@config_section("autoencoder")
@dataclass(frozen=True)
class AutoencoderConfig:
    """Windows and the two 3D-conv autoencoders (RGB frames, optical flow)."""

    seq_len: Positive = 8  # frames per window (reference: 20)
    stride: Positive = 4  # frames between window starts
    width: Positive = 96  # input size after resizing (reference: 640x360)
    height: Positive = 72
    flow_clip: PositiveFloat = 4.0  # flow pixels (at input size) mapped to +-1 for the Tanh decoder
    base_channels: Positive = 16
    latent_channels: Positive = 64
    epochs: Positive = 8
    batch_size: Positive = 8
    lr: PositiveFloat = 1e-3


@dataclass(frozen=True)
class RoIAlignConfig:
    output_size: Positive = 5
    aligned: bool = True


@config_section("clustering")
@dataclass(frozen=True)
class ClusteringConfig:
    """DEC clustering head and joint training."""

    n_clusters: Annotated[int, Range(2)] = 4
    ndf: Positive = 32
    alpha: PositiveFloat = 2.0
    roialign: RoIAlignConfig = field(default_factory=RoIAlignConfig)
    add_spatial_feature: bool = False  # needs coor.npy (table centre) beside each video
    add_motion_feature: bool = False  # our addition: per-person flow orientation histograms
    motion_grid: Positive = 2  # grid cells per side of the person box
    motion_bins: Positive = 8  # orientation bins (weighted by magnitude, sqrt + L2 normalised)
    motion_unsigned: bool = True  # bins over 180 degrees (opposite vectors alike: phase-invariant), else 360
    motion_weight: NonNegativeFloat = 1.0  # scale of the descriptor against the L2-normalised deep embedding
    features: Literal["autoencoders", "backbone"] = "autoencoders"  # backbone: person RoIs from clustering.backbone's feature map
    backbone: str = ""  # features=backbone: models:/video-pretrained@ALIAS or a `train pretrain` checkpoint (.pt)
    backbone_layer: Literal["layer1", "layer2", "layer3", "layer4"] = "layer4"  # the feature map RoIs are pooled from (Weizmann: layer4 > layer3)
    epochs: Positive = 6
    batch_size: Positive = 8
    update_interval: Positive = 1  # epochs between DEC target refreshes (computed over the whole shard)
    kmeans_init: Positive = 10  # k-means restarts for the centroid initialisation
    registered_model: str = "individual-clustering"  # MLflow registered model


@config_section("optim")
@dataclass(frozen=True)
class OptimConfig:
    """Joint training: Adam, StepLR x0.1 at half the epochs; encoders get MSE + lmd_cm x KL."""

    lr_ae_frame: PositiveFloat = 1e-4
    lr_ae_flow: PositiveFloat = 1e-4
    lr_cm: PositiveFloat = 1e-3
    lmd_cm: NonNegativeFloat = 10.0
    weight_decay: NonNegativeFloat = 0.0


def uses_backbone(cfg) -> bool:
    """True when people are embedded by a pretrained video backbone (clustering.features=backbone)."""
    return cfg.clustering.features == "backbone"
