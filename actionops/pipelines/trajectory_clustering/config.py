"""params.yaml sections of trajectory clustering and video pretraining (methods.md §5)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from actionops.platform.config import (
    NonNegative,
    NonNegativeFloat,
    Positive,
    PositiveFloat,
    Range,
    Share,
    config_section,
)


@config_section("trajectories")
@dataclass(frozen=True)
class TrajectoriesConfig:
    """Dense trajectories, Fisher vectors and video clusters (`actionops trajectories compute|encode|cluster`)."""

    step: Positive = 5  # grid spacing in px (reference W=5)
    scales: Positive = 1  # pyramid levels, each 1/sqrt(2) of the one above (reference 8)
    length: Annotated[int, Range(2)] = 15  # frames a trajectory is tracked (reference L=15)
    tube: Positive = 32  # px square of the descriptor tube (reference 32)
    hog: bool = False  # HOG of the frames beside HOF / MBH (appearance; README: off measured better on real video)
    flow_method: Literal["farneback", "dis"] = "farneback"  # the flow stage's methods; its finished files are reused
    size: str | None = None  # "WxH": frames resized before tracking (the flow stage's size reuses its files); None: as is
    chunk_frames: Annotated[int, Range(2)] | None = 300  # longer videos are split into frame ranges (a Ray task each)
    gmm_components: Annotated[int, Range(1)] = 16  # K per part (reference 256; 16 won on Weizmann, see README)
    pca_keep: Share = 0.5  # share of each part's dimensions PCA keeps
    pca_variance: Share | None = None  # instead: the fewest dimensions explaining this fraction of each part's variance
    pca_dims: Positive | None = None  # instead: D dimensions per part (capped at the part's size); wins over both
    sample: Positive = 100_000  # trajectories sampled (over all videos) to fit PCA + GMM
    k: Annotated[int, Range(2)] | None = None  # clusters (None: the number of labels when known, else 8)
    restarts: Positive = 10  # faiss k-means restarts (nredo)
    table_format: Literal["csv", "parquet"] = "csv"
    seed: NonNegative = 0


@config_section("pretrain")
@dataclass(frozen=True)
class PretrainConfig:
    """Self-supervised 3D ResNet-18 pretraining (`actionops train pretrain`): instance recognition
    with a memory bank, Local Aggregation with the trajectory clusters as prior, then tuning with
    k-means on [memory bank + Fisher vectors]. Reference values in comments (methods.md §5)."""

    model: str = "r3d_18"  # backbone of video_pretrained (torchvision's 3D ResNet-18)
    num_frames: Positive = 16  # reference 16 x 112 x 112; params.yaml matches the classifier's input
    size: Positive = 112
    clip_input: Literal["rgb", "rgb_diff"] = "rgb"  # must equal the consumer's classifier.clip_input
    dim: Positive = 128  # embedding (memory bank) dimension (reference 128)
    temperature: PositiveFloat = 0.07  # reference 0.07
    bank_momentum: Share = 0.5  # m <- normalise(mu m + (1 - mu) v) (reference 0.5)
    nce_negatives: Positive = 4096  # negatives drawn from the bank; a smaller bank uses all of it (exact softmax)
    ir_epochs: NonNegative = 12  # stage 1: instance recognition (12 / 6 / 24 measured on Weizmann, README)
    la_epochs: NonNegative = 6  # stage 2: Local Aggregation, trajectory clusters as the fixed prior
    epochs: Positive = 24  # total; the epochs after ir + la tune with k-means on [bank + Fisher vectors]
    background: Positive = 4096  # LA background neighbours (nearest bank entries; reference 4096)
    tune_k: Annotated[int, Range(2)] | None = None  # k of the tuning k-means (None: the trajectory clusters' k)
    fisher_weight: NonNegativeFloat = 1.0  # weight of the Fisher vectors beside the bank in that k-means
    clips_per_video: Positive = 2  # training clips per video and epoch
    batch_size: Positive = 8
    lr: PositiveFloat = 0.01  # SGD, momentum 0.9 (reference 0.03 with batch 128 on 8 GPUs; batch 8 here)
    momentum: Share = 0.9
    weight_decay: NonNegativeFloat = 1e-4
    warmup_epochs: NonNegative = 1  # linear warm-up, then cosine to 0
    augment: bool = True  # random crop, flip, colour jitter
    eval_clips: Positive = 3  # clips averaged per video by evaluate / predict
    knn_k: Positive = 5  # evaluate: k-NN (cosine, majority) on the train split's features
    test_fraction: Share = 0.3  # evaluate on class folders: held-out share of each class (stratified)
    registered_model: str = "video-pretrained"
