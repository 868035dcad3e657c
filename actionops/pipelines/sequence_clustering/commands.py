"""CLI commands of sequence clustering: `train sequences`, `cluster sequences`, `evaluate sequences`, `segment`."""

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
    console,
    show_result,
    stage_context,
)
from actionops.pipelines.method import command

METHOD = "sequence-clustering"
DatasetArg = Annotated[Path, typer.Argument(help="Sequence dataset (class folders or CSVs of .txt/.csv/.npy/.mat files, "
                                                 "recordings with truth files, or the manifest from `data index --out`).")]
ModelOpt = Annotated[Optional[str], typer.Option("--model", help="models:/sequence-seq2seq@candidate or a .pt file "
                                                                 "(default: seq2seq.pt in the output folder).")]
ClustersOpt = Annotated[Optional[int], typer.Option("--n-clusters", min=2, help="Number of clusters (default "
                                                    "seqcluster.n_clusters; else the number of true labels when known, "
                                                    "else the best silhouette in [2, seqcluster.max_clusters]).")]
SeqSplitOpt = Annotated[Optional[str], typer.Option("--split", help="Only this split (train, val, test); "
                                                    "default seqcluster.split (test; recordings are all test).")]


@command("train", "sequences")
def train_sequences(
    dataset: DatasetArg,
    epochs: Annotated[Optional[int], typer.Option("--epochs", help="Overrides sequences.epochs.")] = None,
    out: OutOpt = None,
    resume: ResumeOpt = False,
    address: AddressOpt = None,
    params: ParamsOpt = None,
    set_: SetOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """GRU seq2seq (one cell shared by encoder and decoder, sequences.hidden units; decoder fed its
    own predictions; MSE, Adam, clipping) on windows of sequences.source_len + target_len frames,
    through Ray Train. Constant channels are dropped and the rest standardised on the training
    sequences; both are stored with the model. Registered as sequence-seq2seq with alias candidate.

    \b
    Example:
      actionops train sequences ../shared/data/cmu_mocap --epochs 30
      actionops train sequences data/mocap --set sequences.decoder=fixed_state
    """
    from actionops.pipelines.sequence_clustering.stages import train_sequences as train
    from actionops.platform.cluster import ray_session

    ctx = stage_context(METHOD, dataset, out, params, set_, address, resume, json_out, sequences__epochs=epochs)
    with ray_session(ctx.cfg.ray):
        result = train(ctx)
    show_result("seq2seq", result, json_out)


def _split(ctx, split: Optional[str]) -> Optional[str]:
    return split if split is not None else ctx.cfg.seqcluster.split


@command("cluster", "sequences")
def cluster_sequences(
    dataset: DatasetArg,
    n_clusters: ClustersOpt = None,
    model: ModelOpt = None,
    split: SeqSplitOpt = None,
    out: OutOpt = None,
    address: AddressOpt = None,
    params: ParamsOpt = None,
    set_: SetOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Embed every window (decoder / encoder states, seqcluster.embedding) as a Ray Data batch-inference
    job and cluster them (agglomerative with cosine distance, or k-means on faiss); every frame takes
    the cluster of its window. Writes predictions/<split>/windows.npz and one labels CSV per sequence
    (frame, cluster, truth). `evaluate sequences` also scores them.

    \b
    Example:
      actionops cluster sequences data/cmu5_s0 --n-clusters 5 --split test
    """
    from actionops.pipelines.sequence_clustering.stages import predict
    from actionops.platform.cluster import ray_session

    ctx = stage_context(METHOD, dataset, out, params, set_, address, json_out=json_out)
    with ray_session(ctx.cfg.ray):
        result = predict(ctx, model, _split(ctx, split), n_clusters)
    show_result("sequence clusters", result, json_out)


@command("evaluate", "sequences")
def evaluate_sequences(
    dataset: DatasetArg,
    n_clusters: ClustersOpt = None,
    model: ModelOpt = None,
    split: SeqSplitOpt = None,
    out: OutOpt = None,
    address: AddressOpt = None,
    params: ParamsOpt = None,
    set_: SetOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Cluster a split and score it per frame against its labels or truth files: ARI, AMI,
    V-measure (homogeneity, completeness), Hungarian accuracy; metrics_sequences.json, contingency
    table, PCA / t-SNE of the window embeddings and a timeline of clusters against the truth in MLflow.

    \b
    Example:
      actionops evaluate sequences data/cmu5_s0 --model models:/sequence-seq2seq@candidate
    """
    from actionops.pipelines.sequence_clustering.stages import evaluate
    from actionops.platform.cluster import ray_session

    ctx = stage_context(METHOD, dataset, out, params, set_, address, json_out=json_out)
    with ray_session(ctx.cfg.ray):
        result = evaluate(ctx, model, _split(ctx, split), n_clusters)
    if json_out:
        show_result("", result, True)
        return
    show_result(f"sequence clustering ({result['split']}, k={result['n_clusters']}, {result['criterion']})",
                {k: result[k] for k in ("ari", "ami", "v_measure", "homogeneity", "completeness", "hungarian_accuracy",
                                        "chance", "windows", "frames")})


@command(None, "segment")
def segment(
    dataset: DatasetArg,
    n_clusters: ClustersOpt = None,
    model: ModelOpt = None,
    split: Annotated[Optional[str], typer.Option("--split", help="Only this split (default: every sequence).")] = None,
    out: OutOpt = None,
    address: AddressOpt = None,
    params: ParamsOpt = None,
    set_: SetOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Cut continuous recordings at their action boundaries and label the segments by clustering.
    Boundaries (seqcluster.boundary_cue): peaks of the change of the window states between the
    windows before and after (embedding, default), peaks of the prediction error (error, the
    reference's cue) or changes of the cluster labels (labels). With truth on at least two
    recordings, the change width, peak share and edge are chosen leave-one-recording-out (never on
    the recording scored). Against truth files: boundary precision / recall / F1 (a boundary counts
    inside the annotated [earliest, latest] window) and frame accuracy after Hungarian matching;
    segments.json, segments/*.csv, metrics_segment.json and an MLflow run with the figures.

    \b
    Example:
      actionops segment ../shared/data/cmu_mocap/subject_86 --model models:/sequence-seq2seq@champion
    """
    from actionops.pipelines.sequence_clustering.stages import segment as run
    from actionops.platform.cluster import ray_session

    ctx = stage_context(METHOD, dataset, out, params, set_, address, json_out=json_out)
    with ray_session(ctx.cfg.ray):
        result = run(ctx, model, split, n_clusters)
    if json_out:
        show_result("", result, True)
        return
    for vid, row in result["recordings"].items():
        console.print(f"{vid}: {len(row['boundaries'])} boundaries" + (
            f", boundary F1 {row['boundary_f1']:.3f} (P {row['boundary_precision']:.3f}, R {row['boundary_recall']:.3f}), "
            f"frame accuracy {row['frame_accuracy']:.3f}" if "boundary_f1" in row else ""), highlight=False)
    if "boundary_f1" in result:
        console.print(f"mean boundary F1 {result['boundary_f1']:.3f}, frame accuracy {result['frame_accuracy']:.3f} "
                      f"({result['selection']})")
