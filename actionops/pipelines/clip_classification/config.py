"""params.yaml section of the clip-classification pipeline (reference values in methods.md §2)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from actionops.platform.config import NonNegative, NonNegativeFloat, Positive, PositiveFloat, Share, config_section


@config_section("classifier")
@dataclass(frozen=True)
class ClassifierConfig:
    """Model, clips, optimisation, sampling and evaluation of `train classifier`."""

    model: str = "tsm_resnet18"  # see `actionops registry models` / models/classifiers.py
    weights: str | None = None  # local .pt file or models:/NAME@ALIAS (nothing is downloaded)
    num_frames: Positive = 16  # frames per clip, sampled across the whole video
    size: Positive = 112  # square input side (reference 224)
    clip_input: Literal["rgb", "rgb_diff", "flow", "rgb+flow", "rgb_diff+flow"] = "rgb"  # rgb_diff: frame t+1 - frame t; flow: Farneback t -> t+1; a+b: two streams, late fusion
    flow_source: Literal["input", "stage"] = "input"  # flow inputs: of the two frames at the model's size, or the flow stage's (README)
    clips_per_video: Positive = 4  # training clips drawn per video and epoch (random positions)
    eval_clips: Positive = 3  # clips per video at evaluation, scores averaged (video-level prediction)
    epochs: Positive = 20
    batch_size: Positive = 8
    lr: PositiveFloat = 1e-3
    weight_decay: NonNegativeFloat = 1e-4
    warmup_epochs: NonNegative = 1  # linear warm-up before the cosine schedule
    label_smoothing: Share = 0.05
    clip_grad: NonNegativeFloat = 1.0
    freeze_until: str | None = None  # e.g. layer2 (freeze up to that block; with pretrained weights)
    balance_tau: NonNegativeFloat = 0.5  # class-balanced sampling weight count^-tau (0: plain sampling)
    augment: bool = True  # flip, random crop, colour jitter (train only)
    early_stopping: NonNegative = 0  # stop after this many epochs without a better val macro-F1 (0: off)
    val_fraction: Share = 0.2  # held out (stratified) from train when the layout has no val split
    test_fraction: Share = 0.2  # held out when the layout has no splits at all (class folders)
    window_frames: NonNegative = 64  # `predict classifier`: frames spanned by one window (0: whole video)
    window_stride: Positive = 32  # frames between window starts
    registered_model: str = "clip-classifier"  # MLflow registered model
    inference: str = "eager"  # evaluate/predict path: eager | channels_last | jit | compile (models/inference.py)
