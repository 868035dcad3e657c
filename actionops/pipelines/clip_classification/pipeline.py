"""The clip-classification pipeline as registered stages (`actionops pipeline run clip-classification`)."""

from __future__ import annotations

from pathlib import Path

from actionops.pipelines.clip_classification import stages
from actionops.pipelines.registry import Pipeline, Stage, index_stage, output_file, register_pipeline
from actionops.platform.layout import VIDEO_SUFFIXES


def _index_inputs(ctx) -> list[Path]:
    root = Path(ctx.dataset)
    videos = (p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
    return sorted([*videos, *root.glob("*.csv")])


PIPELINE = register_pipeline(Pipeline(
    name="clip-classification",
    description="Supervised clip classifier (class folders or train/val/test CSVs, methods.md §2).",
    package="clip_classification",
    stages=(
        Stage("index", "probe every video -> manifest.parquet", index_stage, _index_inputs, lambda c: [c.manifest_path]),
        Stage("train", "train the classifier on Ray Train; register the best as candidate", stages.train_classifier,
              lambda c: [c.manifest_path], output_file("classifier.pt"), ("classifier", "train")),
        Stage("evaluate", "accuracy, macro-F1, confusion matrix, latency on the test split",
              lambda c: stages.evaluate_classifier(c, None, "test"), output_file("classifier.pt"), output_file("metrics.json"), ("classifier",)),
    ),
))
