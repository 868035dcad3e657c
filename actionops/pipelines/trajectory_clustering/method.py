"""Trajectory clustering and self-supervised video pretraining (methods.md §5) as a registered
method: `actionops pipeline run trajectory-clustering DATASET`.

Stages: index -> trajectories (dense trajectories on Ray Data, resumable) -> encode (per-part PCA +
GMM, a Fisher vector per video) -> cluster (faiss k-means: the video_id / cluster table) -> train
(3D ResNet-18: instance recognition, Local Aggregation with the trajectory clusters, tuning with
k-means on [memory bank + Fisher vectors]; registered as video-pretrained) -> evaluate (k-NN and
linear probe on the labels, pretrained vs random init)."""

from __future__ import annotations

from pathlib import Path

from actionops.pipelines.method import Method, Stage, TuneDefaults, lazy, register_method
from actionops.pipelines.runner import dataset_inputs, index_stage, output_file
from actionops.pipelines.trajectory_clustering import config as _config  # noqa: F401  (registers its sections)

STAGES = "actionops.pipelines.trajectory_clustering.stages"


def _sample(root: Path, seed: int = 0) -> Path:
    """20 tiny one-person clips of 4 activities (24 frames, 48 px), train/val/test CSVs (3/1/1 per class).
    One look for all (`variety=False`): instance recognition on 20 videos in a few CPU epochs
    otherwise tells videos apart by clothing colour, which says nothing of the activity."""
    from actionops.platform.synth import generate_clips

    generate_clips(root, videos=20, frames=24, width=48, height=48, variety=False, seed=seed)
    return root


def _trajectory_files(ctx) -> list[Path]:
    """What encode reads: every video's parquet and the spec they were made with (rewritten only when they change)."""
    folder = Path(ctx.out) / "trajectories"
    return sorted(p for p in folder.glob("*.parquet") if ".part-" not in p.name) + [folder / "trajectories_spec.json"]


def _fisher(ctx) -> list[Path]:
    return [Path(ctx.out) / "fisher_model" / "fisher.npz"]


def _table(ctx) -> list[Path]:
    return [Path(ctx.out) / f"clusters.{ctx.cfg.trajectories.table_format}"]


METHOD = register_method(Method(
    id="trajectory-clustering",
    description="Dense trajectories + Fisher vectors + k-means video clusters, and a 3D ResNet-18 pretrained "
                "on them without labels (methods.md §5).",
    package="trajectory_clustering",
    sections=("trajectories", "pretrain"),
    stages=(
        Stage("index", "probe every video -> manifest.parquet", index_stage, dataset_inputs, lambda c: [c.manifest_path]),
        Stage("trajectories", "dense trajectories of every video on Ray Data (resumable; skips done videos)",
              lazy(f"{STAGES}:compute_stage"), lambda c: [c.manifest_path], output_file("trajectories_report.json"),
              ("trajectories",), always=True),
        Stage("encode", "per-part PCA + GMM on a sample; a Fisher vector per video", lazy(f"{STAGES}:encode_stage"),
              _trajectory_files, _fisher, ("trajectories",)),
        Stage("cluster", "faiss k-means of the Fisher vectors -> video_id / cluster table; purity, NMI",
              lambda c: lazy(f"{STAGES}:cluster_stage")(c), _fisher, _table, ("trajectories",)),
        Stage("train", "pretrain the 3D ResNet on Ray Train (IR -> LA -> tuning); register video-pretrained",
              lazy(f"{STAGES}:train_pretrain"), lambda c: [c.manifest_path, *_fisher(c), *_table(c)],
              output_file("pretrain.pt"), ("pretrain", "train")),
        Stage("evaluate", "k-NN and linear-probe accuracy of the frozen features, pretrained vs random init",
              lambda c: lazy(f"{STAGES}:evaluate_pretrain")(c, None, "test"),
              lambda c: [Path(c.out) / "pretrain.pt", c.manifest_path], output_file("metrics_pretrain.json"),
              ("pretrain",)),
    ),
    train=lazy(f"{STAGES}:train_pretrain"),
    evaluate=lambda ctx, model=None, split="test": lazy(f"{STAGES}:evaluate_pretrain")(ctx, model, split),
    predict=lazy(f"{STAGES}:predict_test"),
    register=lazy(f"{STAGES}:register_pretrained"),
    prepare_tune=lazy(f"{STAGES}:prepare_tune"),
    sample=_sample,
    reports=("loss", "ir_loss", "stage"),
    checkpoint="pretrain.pt",
    registered_model_key="pretrain.registered_model",
    tune=TuneDefaults(metric="ir_loss", mode="min", epochs_key="pretrain.epochs", space={
        "pretrain.lr": "loguniform(0.003, 0.1)", "pretrain.weight_decay": "loguniform(1e-5, 1e-3)"}),
    score="knn_accuracy",
    loss="loss",
    learning=(("history_pretrain.json", "ir_loss", 0.2),),
    words=("pretrain", "trajectories"),
    tiny=("trajectories.length=8", "trajectories.step=4", "trajectories.tube=16", "trajectories.gmm_components=2",
          "trajectories.restarts=2", "pretrain.num_frames=4", "pretrain.size=32", "pretrain.clip_input=rgb_diff", "pretrain.dim=32",
          "pretrain.ir_epochs=4", "pretrain.la_epochs=1", "pretrain.epochs=6", "pretrain.lr=0.01",
          "pretrain.temperature=0.1", "pretrain.clips_per_video=4", "pretrain.eval_clips=2", "pretrain.background=16", "pretrain.knn_k=3"),
    commands="actionops.pipelines.trajectory_clustering.commands",
))
