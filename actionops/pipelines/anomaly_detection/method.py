"""Embedding anomaly detection (methods.md §3) as a registered method: `actionops pipeline run anomaly-detection`."""

from __future__ import annotations

from pathlib import Path

from actionops.pipelines.anomaly_detection import config as _config  # noqa: F401  (registers `embed`, `anomaly`)
from actionops.pipelines.method import Method, Stage, TuneDefaults, lazy, register_method
from actionops.pipelines.runner import dataset_inputs, index_stage, output_file

STAGES = "actionops.pipelines.anomaly_detection.stages"


def _embeddings(ctx) -> list[Path]:
    return [lazy(f"{STAGES}:embeddings_path")(ctx)]


def _analysis(ctx) -> list[Path]:
    path = lazy(f"{STAGES}:embeddings_path")(ctx)
    return [path.with_name(f"{path.stem}-analysis") / "analysis.json"]


def _sample(root: Path, seed: int = 0) -> Path:
    """40 tiny one-person clips of 4 activities in class folders, train/val/test CSVs (6/2/2 per class).
    One look for all (`variety=False`): the tiny config embeds with an untrained backbone, whose random
    features cannot ignore clothing colour and light as a trained one learns to."""
    from actionops.platform.synth import generate_clips

    generate_clips(root, videos=40, frames=16, width=48, height=48, variety=False, seed=seed)
    return root


METHOD = register_method(Method(
    id="anomaly-detection",
    description="One-action anomaly detection on frozen backbone embeddings (t-SNE, centroids, autoencoder; methods.md §3).",
    package="anomaly_detection",
    sections=("embed", "anomaly"),
    stages=(
        Stage("index", "probe every video -> manifest.parquet", index_stage, dataset_inputs, lambda c: [c.manifest_path]),
        Stage("embed", "clip embeddings of a frozen backbone (Ray Data batch inference) -> embeddings.parquet",
              lambda c: lazy(f"{STAGES}:embed_stage")(c), lambda c: [c.manifest_path], _embeddings, ("embed",)),
        Stage("analyze", "t-SNE / PCA, centroid distances, silhouette, k-NN agreement of the embeddings",
              lambda c: lazy(f"{STAGES}:analyze_stage")(c), _embeddings, _analysis),
        Stage("train", "autoencoder on the normal action's embeddings (Ray Train); threshold on val; register",
              lazy(f"{STAGES}:train_anomaly"), _embeddings, output_file("anomaly.pt"), ("anomaly", "train")),
        Stage("evaluate", "ROC-AUC, PR-AUC, F1 at the threshold, baselines, histograms on the test split",
              lambda c: lazy(f"{STAGES}:evaluate_anomaly")(c, None, "test"),
              lambda c: [Path(c.out) / "anomaly.pt", *_embeddings(c)],
              output_file("metrics_anomaly.json"), ("anomaly",)),
    ),
    train=lazy(f"{STAGES}:train_anomaly"),
    evaluate=lambda ctx, model=None, split="test": lazy(f"{STAGES}:evaluate_anomaly")(ctx, model, split),
    predict=lazy(f"{STAGES}:predict_test"),
    register=lazy(f"{STAGES}:register_anomaly"),
    prepare_tune=lazy(f"{STAGES}:prepare_tune"),
    sample=_sample,
    reports=("train_loss", "val_loss", "val_roc_auc", "best_epoch"),
    checkpoint="anomaly.pt",
    registered_model_key="anomaly.registered_model",
    tune=TuneDefaults(metric="val_loss", mode="min", epochs_key="anomaly.epochs", space={
        "anomaly.lr": "loguniform(3e-4, 3e-3)", "anomaly.dropout": "choice([0.0, 0.1, 0.3])",
        "anomaly.weight_decay": "loguniform(1e-6, 1e-3)"}),
    score="roc_auc",
    loss="train_loss",
    learning=(("history_anomaly.json", "train_loss", 0.3),),
    words=("anomaly",),
    tiny=("embed.backbone=tsm_resnet18", "embed.num_frames=4", "embed.size=32", "embed.clips=2",
          "embed.clip_input=rgb_diff", "embed.per_clip=false", "anomaly.normal=work_at_table", "anomaly.hidden=[64,16]", "anomaly.epochs=20", "anomaly.dropout=0.0",
          "anomaly.batch_size=4", "anomaly.lr=0.005"),
    commands="actionops.pipelines.anomaly_detection.commands",
))
