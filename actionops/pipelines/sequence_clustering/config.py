"""params.yaml sections of sequence clustering and temporal segmentation (methods.md §4)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from actionops.platform.config import Fraction, NonNegative, NonNegativeFloat, Positive, PositiveFloat, Range, config_section


@config_section("sequences")
@dataclass(frozen=True)
class SequencesConfig:
    """Windows and the GRU seq2seq (`actionops train sequences`); reference values in comments."""

    subsample: Positive = 2  # keep every n-th frame (reference: every second)
    min_std: NonNegativeFloat = 1e-4  # channels with a smaller std on the training data are dropped
    source_len: Positive = 25  # frames the encoder reads (reference 25; subject 86: 50)
    target_len: Positive = 25  # frames the decoder predicts (reference 25)
    stride: Positive = 5  # frames between window starts
    hidden: Positive = 1024  # GRU units (reference 1024)
    decoder: Literal["learned", "fixed_weights", "fixed_state"] = "learned"  # see models/seq2seq.py
    residual: bool = True  # predict the change from the previous frame
    epochs: Positive = 20
    batch_size: Positive = 16  # reference 16
    lr: PositiveFloat = 1e-4  # Adam (reference 1e-4)
    clip_grad: PositiveFloat = 1.0  # reference 1
    adversarial: NonNegativeFloat = 0.0  # weight of the two GRU discriminators' loss (reference's subject-86 variant; 0: off)
    train_split: str | None = None  # train on this split only (default: every sequence: unsupervised)
    registered_model: str = "sequence-seq2seq"


@config_section("seqcluster")
@dataclass(frozen=True)
class SeqClusterConfig:
    """Clustering the windows' embeddings (`actionops cluster sequences`) and cutting recordings
    (`actionops segment`)."""

    n_clusters: Annotated[int, Range(2)] | None = None  # None: chosen by the best silhouette in [2, max_clusters]
    max_clusters: Annotated[int, Range(2)] = 10
    algorithm: Literal["agglomerative", "kmeans"] = "agglomerative"  # kmeans runs on faiss
    # agglomerative (cosine; ward: euclidean). single (the reference) chains the consecutive windows of
    # one action: CMU 5 actions ARI 0.94 against 0.62 with average (benchmarks/sequences_real.py)
    linkage: Literal["single", "average", "complete", "ward"] = "single"
    embedding: Literal["decoder", "encoder", "both"] = "decoder"  # which state represents a window
    split: str | None = "test"  # the split clustered by default (None: every sequence)
    smooth: NonNegative = 2  # median filter over this many windows each side before labels are read
    # `actionops segment`: where recordings are cut (see stages.segment)
    boundary_cue: Literal["embedding", "error", "labels"] = "embedding"  # change of the window states | prediction error peaks | cluster label changes
    segment_embedding: Literal["decoder", "encoder", "both"] = "both"  # the window states `segment` reads
    change_width: Positive = 24  # windows each side the change curve compares (embedding / error cues)
    peak_share: Fraction = 0.6  # a boundary's peak reaches this share of the recording's highest
    min_segment: NonNegative = 200  # frames: the closest two boundaries (labels cue: the shortest run kept)
    edge: NonNegative = 400  # frames at each end of a recording where no boundary is placed
    select: bool = True  # with truth on >= 2 recordings: width, share and edge chosen leave-one-recording-out on a grid
