"""params.yaml sections of embedding analysis and anomaly detection (methods.md §3)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from actionops.platform.config import Fraction, NonNegative, NonNegativeFloat, Positive, PositiveFloat, Share, config_section


@config_section("embed")
@dataclass(frozen=True)
class EmbedConfig:
    """Clip embeddings from a video backbone with its head removed (`actionops embed`)."""

    # a local .pt checkpoint, models:/NAME@ALIAS, or a registry name (random init). Default: the champion
    # classifier (train it on your own videos first): on held-out Weizmann performers it gives mean
    # ROC-AUC 1.000 where the same architecture untrained gives 0.940 (README: anomaly benchmark)
    backbone: str = "models:/clip-classifier@champion"
    num_frames: Positive = 8  # frames per clip for a named backbone (a trained checkpoint brings its own)
    size: Positive = 112  # square input side for a named backbone (a trained checkpoint brings its own)
    clip_input: Literal["rgb", "rgb_diff"] = "rgb_diff"  # for a named backbone (a trained checkpoint brings its own)
    clips: Positive = 8  # clips per video at fixed positions spread over the video
    per_clip: bool = True  # keep one row per clip (false: one row per video, the clips' mean)
    augment_copies: NonNegative = 0  # extra augmented clips per training-split video (flip, crop, colour); never val/test
    batch_size: Positive = 8
    seed: int = 0  # initialisation of a named (untrained) backbone, and the augmentation draws
    val_fraction: Share = 0.2  # held out per class when the dataset has no val split
    test_fraction: Share = 0.2  # held out per class when the dataset has no splits at all


@config_section("anomaly")
@dataclass(frozen=True)
class AnomalyConfig:
    """The one-action detector (`actionops train anomaly`): an MLP autoencoder on the normal
    action's embeddings, its threshold chosen on the validation split."""

    normal: str | None = None  # the action of interest (a label of the embeddings); required
    embeddings: str | None = None  # embeddings parquet (default: <out>/embeddings.parquet of the pipeline)
    hidden: tuple[Positive, ...] = (256, 128)  # encoder widths, mirrored by the decoder
    dropout: Share = 0.3
    epochs: Positive = 60
    batch_size: Positive = 32
    lr: PositiveFloat = 0.001
    weight_decay: NonNegativeFloat = 0.00001
    threshold: Literal["fpr", "best_f1"] = "fpr"  # fpr: keep target_fpr of normal val videos under it; best_f1 on val
    target_fpr: Fraction = 0.05
    knn_k: Positive = 3  # k of the k-NN distance baseline
    min_train: Positive = 2  # fewest normal videos in train (val and test need one each)
    window_frames: NonNegative = 64  # `predict anomaly`: frames per window of a long video (0: whole video)
    window_stride: Positive = 32
    end_to_end: bool = False  # train the backbone too, on clips (one worker): frozen for unfreeze_after epochs
    unfreeze_after: NonNegative = 5
    backbone_lr: PositiveFloat = 0.00001
    clips_per_video: Positive = 4  # end to end: training clips drawn per normal video and epoch
    registered_name: str | None = None  # MLflow registered model (default anomaly-<normal>)

    @property
    def registered_model(self) -> str:
        import re

        if self.registered_name:
            return self.registered_name
        return "anomaly-" + re.sub(r"[^a-z0-9]+", "-", str(self.normal or "action").lower()).strip("-")
