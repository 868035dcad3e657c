"""CLI commands of embedding anomaly detection: `embed`, `analyze embeddings`, `train|evaluate|predict anomaly`."""

from __future__ import annotations

import json
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
    console,
    err_console,
    load_cfg,
    show_result,
    stage_context,
)
from actionops.pipelines.method import command

METHOD = "anomaly-detection"
EmbArg = Annotated[Path, typer.Argument(help="Embeddings parquet written by `actionops embed`.")]
ModelOpt = Annotated[Optional[str], typer.Option("--model", help="models:/anomaly-ACTION@candidate or a .pt file "
                                                                 "(default: anomaly.pt beside the embeddings).")]


def _emb_context(emb: Path, out: Optional[Path], params, sets, address, resume=False, json_out=False, **overrides):
    """Config + Context for a stage that reads an embeddings file: the dataset is the one the file
    was embedded from (for lineage), the output folder the file's folder unless --out."""
    from actionops.pipelines.anomaly_detection.embeddings import read_embeddings
    from actionops.pipelines.context import Context

    meta = read_embeddings(emb, need_labels=False).meta
    cfg = load_cfg(params, sets, ray__address=address, anomaly__embeddings=str(Path(emb).resolve()), **overrides)
    dataset = Path(meta["dataset"]) if meta.get("dataset") and Path(meta["dataset"]).is_dir() else Path(emb).resolve().parent
    return Context(cfg=cfg, dataset=dataset, out=Path(out) if out else Path(emb).resolve().parent,
                   console=err_console if json_out else console, resume=resume)


@command(None, "embed")
def embed(
    dataset: Annotated[Path, typer.Argument(help="Video dataset: class folders, or train/val/test.csv with path,label (or unlabelled videos).")],
    backbone: Annotated[Optional[str], typer.Option("--backbone", help="A registry name (random init: r2plus1d_18, slow_r50, "
                                                    "slowfast_r50, x3d_xs, tsm_resnet18, cnn_lstm_resnet18, vivit_tiny), "
                                                    "a .pt checkpoint, or models:/NAME@ALIAS. Nothing is downloaded.")] = None,
    split: Annotated[Optional[str], typer.Option("--split", help="Embed only this split (train, val or test).")] = None,
    per_clip: Annotated[Optional[bool], typer.Option("--per-clip/--per-video", help="One row per clip, or the mean per video (embed.per_clip).")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Parquet file (default outputs/anomaly-detection/<dataset>/embeddings.parquet).")] = None,
    address: AddressOpt = None,
    params: ParamsOpt = None,
    set_: SetOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Clip embeddings of a frozen video backbone (its head removed) as a Ray Data batch-inference
    job: the backbone is loaded once per actor (a GPU each when the cluster has GPUs), clips are
    decoded inside the job (embed.clips per video, at fixed positions), averaged per video or kept
    per clip, and written as parquet (video_id, path, label, split, clip, clip_start, vector) with
    the backbone's identity (name, weights digest, frames, size, input kind) in its metadata.
    embed.augment_copies adds augmented copies of training-split videos only.

    \b
    Example:
      actionops embed data/clips --backbone models:/clip-classifier@champion --out emb.parquet
      actionops embed data/clips --backbone slowfast_r50 --set embed.num_frames=32 --per-clip
    """
    from actionops.pipelines.anomaly_detection.embeddings import resolve_backbone
    from actionops.pipelines.anomaly_detection.stages import embed_stage
    from actionops.platform.cluster import ray_session

    ctx = stage_context(METHOD, dataset, None, params, set_, address, json_out=json_out, embed__backbone=backbone)
    target = Path(out) if out else ctx.out / "embeddings.parquet"
    resolved = resolve_backbone(ctx.cfg.embed)  # unknown names, hub weights, frame counts: refused before any work
    with ray_session(ctx.cfg.ray):
        result = embed_stage(ctx, split=split, out_path=target, per_clip=per_clip, backbone=resolved)
    show_result("embeddings", result, json_out)


@command("analyze", "embeddings")
def analyze_embeddings(
    embeddings: EmbArg,
    params: ParamsOpt = None,
    set_: SetOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """t-SNE and PCA scatter coloured by class, per-class centroid distances (in-class farthest and
    out-of-class nearest hyperspheres, what falls inside them), silhouette, k-NN class agreement
    (neighbours from other videos). Written to <stem>-analysis/ beside the parquet and logged to MLflow.

    \b
    Example:
      actionops analyze embeddings outputs/anomaly-detection/clips/embeddings.parquet
    """
    from actionops.pipelines.anomaly_detection.stages import analyze_stage

    ctx = _emb_context(embeddings, None, params, set_, None, json_out=json_out)
    result = analyze_stage(ctx, embeddings)
    if json_out:
        show_result("analysis", result, True)
        return
    show_result("embedding analysis", {k: result[k] for k in ("rows", "videos", "dim", "silhouette", "knn_agreement",
                                                               "nearest_centroid_accuracy", "chance", "outputs")})
    for cls, row in result["classes"].items():
        console.print(f"  {cls}: in-class farthest {row['in_class_farthest']:.3f}, out-of-class nearest "
                      f"{row['out_of_class_nearest']:.3f}, {row['others_inside_in_class_sphere']} others inside")


@command("train", "anomaly")
def train_anomaly(
    embeddings: EmbArg,
    normal: Annotated[Optional[str], typer.Option("--normal", help="The normal action (a label of the embeddings).")] = None,
    epochs: Annotated[Optional[int], typer.Option("--epochs", help="Overrides anomaly.epochs.")] = None,
    out: OutOpt = None,
    resume: ResumeOpt = False,
    address: AddressOpt = None,
    params: ParamsOpt = None,
    set_: SetOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """MLP autoencoder (BatchNorm1d input, anomaly.hidden mirrored, dropout) on the normal action's
    training embeddings, through Ray Train; the threshold is chosen on the validation split
    (anomaly.threshold: fpr with anomaly.target_fpr, or best_f1), never on test. Beside it, the
    baselines (centroid, Mahalanobis, k-NN distance) are fitted on the same embeddings. Registered as
    anomaly-<action> with alias candidate.

    \b
    Example:
      actionops train anomaly emb.parquet --normal screw --epochs 100
    """
    from actionops.pipelines.anomaly_detection.stages import train_anomaly as train
    from actionops.platform.cluster import ray_session

    ctx = _emb_context(embeddings, out, params, set_, address, resume, json_out, anomaly__normal=normal,
                       anomaly__epochs=epochs)
    with ray_session(ctx.cfg.ray):
        result = train(ctx)
    show_result(f"anomaly detector ({ctx.cfg.anomaly.normal})", result, json_out)


@command("evaluate", "anomaly")
def evaluate_anomaly(
    embeddings: EmbArg,
    model: ModelOpt = None,
    split: SplitOpt = "test",
    out: OutOpt = None,
    params: ParamsOpt = None,
    set_: SetOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """ROC-AUC, PR-AUC, precision / recall / F1 at the detector's threshold, two-class reports and
    confusion matrices against all other actions and each one, the baselines' ROC-AUC, error
    histograms (linear and log): metrics_anomaly.json and MLflow. The embeddings must come from the
    detector's backbone (checked by dimension and weights digest).

    \b
    Example:
      actionops evaluate anomaly emb.parquet --model models:/anomaly-screw@candidate
    """
    from actionops.pipelines.anomaly_detection.stages import evaluate_anomaly as evaluate

    ctx = _emb_context(embeddings, out, params, set_, None, json_out=json_out)
    result = evaluate(ctx, model, split)
    if json_out:
        show_result("", result, True)
        return
    show_result(f"anomaly detector {result['source']} on {split}",
                {k: result[k] for k in ("normal", "videos", "roc_auc", "pr_auc", "threshold", "precision", "recall",
                                        "f1", "accuracy", "best_baseline_roc_auc")})
    for name, row in result["baselines"].items():
        console.print(f"  baseline {name}: ROC-AUC {row['roc_auc']:.3f}, F1 {row['f1']:.3f}")


@command("predict", "anomaly")
def predict_anomaly(
    videos: Annotated[list[Path], typer.Argument(help="Video files or folders.")],
    model: Annotated[str, typer.Option("--model", help="models:/anomaly-ACTION@champion or a .pt detector.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for predictions.json / predictions.csv.")] = Path("predictions"),
    address: AddressOpt = None,
    params: ParamsOpt = None,
    set_: SetOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Score new videos: the detector and its backbone are loaded from the registry (or files), each
    video is embedded as in training and scored (reconstruction error), flagged above the threshold,
    and long videos are also scored per window (anomaly.window_frames / window_stride).

    \b
    Example:
      actionops predict anomaly new_recordings/ --model models:/anomaly-screw@champion
    """
    from actionops.pipelines.anomaly_detection.stages import predict_anomaly as predict
    from actionops.platform.cluster import ray_session

    cfg = load_cfg(params, set_, ray__address=address)
    with ray_session(cfg.ray):
        result = predict(cfg, videos, out, model, err_console if json_out else console)
    if json_out:
        show_result("", result, True)
    else:
        show_result(f"anomaly predictions ({result['normal']} is normal)", result)
        console.print(json.dumps({Path(v).name: e["score"] for v, e in
                                  list(json.loads(Path(result["predictions"]).read_text())["videos"].items())[:10]}))
