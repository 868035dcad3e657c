"""params.yaml sections of the individual-clustering pipeline (reference keys in methods.md §1)."""

from __future__ import annotations

from dataclasses import dataclass, field

from actionops.platform.config import config_section


@config_section("autoencoder")
@dataclass(frozen=True)
class AutoencoderConfig:
    """Windows and the two 3D-conv autoencoders (RGB frames, optical flow)."""

    seq_len: int = 8  # frames per window (reference: 20)
    stride: int = 4  # frames between window starts
    width: int = 96  # input size after resizing (reference: 640x360)
    height: int = 72
    flow_clip: float = 4.0  # flow pixels (at input size) mapped to +-1 for the Tanh decoder
    base_channels: int = 16
    latent_channels: int = 64
    epochs: int = 8
    batch_size: int = 8
    lr: float = 1e-3


@dataclass(frozen=True)
class RoIAlignConfig:
    output_size: int = 5
    aligned: bool = True


@config_section("clustering")
@dataclass(frozen=True)
class ClusteringConfig:
    """DEC clustering head and joint training."""

    n_clusters: int = 4
    ndf: int = 32
    alpha: float = 2.0
    roialign: RoIAlignConfig = field(default_factory=RoIAlignConfig)
    add_spatial_feature: bool = False  # needs coor.npy (table centre) beside each video
    add_motion_feature: bool = False  # our addition: per-person flow orientation histograms
    motion_grid: int = 2  # grid cells per side of the person box
    motion_bins: int = 8  # orientation bins (weighted by magnitude, sqrt + L2 normalised)
    motion_unsigned: bool = True  # bins over 180 degrees (opposite vectors alike: phase-invariant), else 360
    motion_weight: float = 1.0  # scale of the descriptor against the L2-normalised deep embedding
    epochs: int = 6
    batch_size: int = 8
    update_interval: int = 1  # epochs between DEC target refreshes (computed over the whole shard)
    kmeans_init: int = 10  # k-means restarts for the centroid initialisation
    registered_model: str = "individual-clustering"  # MLflow registered model


@config_section("optim")
@dataclass(frozen=True)
class OptimConfig:
    """Joint training: Adam, StepLR x0.1 at half the epochs; encoders get MSE + lmd_cm x KL."""

    lr_ae_frame: float = 1e-4
    lr_ae_flow: float = 1e-4
    lr_cm: float = 1e-3
    lmd_cm: float = 10.0
    weight_decay: float = 0.0
