"""Clip classification (methods.md §2) as a registered method: `actionops pipeline run clip-classification`."""

from __future__ import annotations

from pathlib import Path

from actionops.pipelines.clip_classification import config as _config  # noqa: F401  (registers `classifier`)
from actionops.pipelines.method import Method, Stage, TuneDefaults, lazy, register_method
from actionops.pipelines.runner import dataset_inputs, flow_stage, index_stage, output_file

STAGES = "actionops.pipelines.clip_classification.stages"


def _sample(root: Path, seed: int = 0) -> Path:
    """20 tiny one-person clips of 4 activities in class folders, train/val/test CSVs (3/1/1 per class)."""
    from actionops.platform.synth import generate_clips

    generate_clips(root, videos=20, frames=12, width=48, height=48, seed=seed)
    return root


def _flow(ctx) -> dict:
    from actionops.pipelines.clip_classification.data import flow_options

    if flow_options(ctx.cfg.classifier, ctx.cfg.flow) is None:
        return {"skipped": "no flow input reads the flow stage (classifier.flow_source=input or an rgb input)"}
    return flow_stage(ctx)


METHOD = register_method(Method(
    id="clip-classification",
    description="Supervised clip classifier (class folders or train/val/test CSVs, methods.md §2).",
    package="clip_classification",
    sections=("classifier",),
    stages=(
        Stage("index", "probe every video -> manifest.parquet", index_stage, dataset_inputs, lambda c: [c.manifest_path]),
        Stage("flow", "optical flow per video, for flow inputs with classifier.flow_source=stage (else nothing)",
              _flow, lambda c: [c.manifest_path], lambda c: [], ("flow",), always=True),
        Stage("train", "train the classifier on Ray Train; register the best as candidate", lazy(f"{STAGES}:train_classifier"),
              lambda c: [c.manifest_path], output_file("classifier.pt"), ("classifier", "train")),
        Stage("evaluate", "accuracy, macro-F1, confusion matrix, latency on the test split",
              lambda c: lazy(f"{STAGES}:evaluate_classifier")(c, None, "test"),
              lambda c: [Path(c.out) / "classifier.pt", c.manifest_path],
              output_file("metrics.json"), ("classifier",)),
    ),
    train=lazy(f"{STAGES}:train_classifier"),
    evaluate=lambda ctx, model=None, split="test": lazy(f"{STAGES}:evaluate_classifier")(ctx, model, split, latency=False),
    predict=lazy(f"{STAGES}:predict_test"),
    register=lazy(f"{STAGES}:register_classifier"),
    prepare_tune=lazy(f"{STAGES}:prepare_tune"),
    sample=_sample,
    reports=("val_macro_f1", "val_accuracy", "val_loss", "train_loss", "train_accuracy", "best_val_macro_f1"),
    checkpoint="classifier.pt",
    registered_model_key="classifier.registered_model",
    tune=TuneDefaults(metric="val_macro_f1", mode="max", epochs_key="classifier.epochs", space={
        "classifier.lr": "loguniform(1e-4, 3e-3)", "classifier.weight_decay": "loguniform(1e-5, 1e-3)",
        "classifier.label_smoothing": "choice([0.0, 0.05, 0.1])", "classifier.clip_input": 'choice(["rgb", "rgb_diff"])'}),
    score="accuracy",
    loss="train_loss",
    learning=(("history_classifier.json", "train_loss", 0.3),),
    words=("classifier",),
    tiny=("classifier.model=tsm_resnet18", "classifier.num_frames=4", "classifier.size=32", "classifier.clips_per_video=4",
          "classifier.eval_clips=2", "classifier.batch_size=8", "classifier.epochs=6", "classifier.lr=0.003",
          "classifier.clip_input=rgb"),
    commands="actionops.pipelines.clip_classification.commands",
))
