"""Sequence clustering and temporal segmentation (methods.md §4) as a registered method:
`actionops pipeline run sequence-clustering DATASET`."""

from __future__ import annotations

from pathlib import Path

from actionops.pipelines.method import Method, Stage, TuneDefaults, lazy, register_method
from actionops.pipelines.runner import index_stage, output_file
from actionops.pipelines.sequence_clustering import config as _config  # noqa: F401  (registers its sections)

STAGES = "actionops.pipelines.sequence_clustering.stages"


def _sequence_files(ctx) -> list[Path]:
    from actionops.platform.sequences import list_sequences

    _, entries, rejected = list_sequences(ctx.dataset)
    files = {Path(p) for e in entries for p in (e.path, e.truth_path) if p}
    return sorted(files | {Path(p) for p, _ in rejected if Path(p).is_file()} | set(Path(ctx.dataset).glob("*.csv")) -
                  {Path(ctx.dataset) / "rejected.csv"})


def _index(ctx) -> dict:
    from actionops.platform.sequences import index_sequences, is_sequence_dataset

    if not is_sequence_dataset(ctx.dataset):
        return index_stage(ctx)  # e.g. pose tracks of a video layout are read from its manifest
    result = index_sequences(ctx.dataset, out=ctx.manifest_path)
    return {"sequences": len(result.manifest), "rejected": len(result.rejected)}


def _sample(root: Path, seed: int = 0) -> Path:
    """Synthetic sequences with distinct dynamics: 3 classes of 5-channel sines (one channel
    constant), 0.05 / 0.12 / 0.3 cycles a frame, random phase and amplitude; train 4, test 2 per class."""
    import numpy as np

    rng = np.random.default_rng(seed)
    for split, n in (("train", 4), ("test", 2)):
        for label, freq in (("slow", 0.05), ("medium", 0.12), ("fast", 0.3)):
            folder = root / split / label
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                t = np.arange(int(rng.integers(56, 72)))[:, None]
                phase = rng.uniform(0, 2 * np.pi, 4)
                x = rng.uniform(0.8, 1.2) * np.sin(2 * np.pi * freq * t + phase) + rng.normal(0, 0.05, (len(t), 4))
                np.save(folder / f"{label}_{i}.npy", np.concatenate([x, np.ones((len(t), 1))], 1).astype(np.float32))
    return root


METHOD = register_method(Method(
    id="sequence-clustering",
    description="Unsupervised clusters and segments of pose / mocap sequences from seq2seq GRU states (methods.md §4).",
    package="sequence_clustering",
    sections=("sequences", "seqcluster"),
    stages=(
        Stage("index", "read every sequence file -> manifest.parquet", _index, _sequence_files, lambda c: [c.manifest_path]),
        Stage("train", "train the GRU seq2seq on Ray Train; register it as candidate", lazy(f"{STAGES}:train_sequences"),
              lambda c: [c.manifest_path], output_file("seq2seq.pt"), ("sequences", "train")),
        Stage("evaluate", "cluster the test split's windows; ARI, AMI, V-measure, Hungarian accuracy per frame",
              lambda c: lazy(f"{STAGES}:evaluate")(c, None, c.cfg.seqcluster.split),
              lambda c: [Path(c.out) / "seq2seq.pt", c.manifest_path], output_file("metrics_sequences.json"),
              ("seqcluster",)),
    ),
    train=lazy(f"{STAGES}:train_sequences"),
    evaluate=lambda ctx, model=None, split="test": lazy(f"{STAGES}:evaluate")(ctx, model, split),
    predict=lazy(f"{STAGES}:predict_test"),
    register=lazy(f"{STAGES}:register_sequences"),
    prepare_tune=lazy(f"{STAGES}:prepare_tune"),
    sample=_sample,
    reports=("loss",),
    checkpoint="seq2seq.pt",
    registered_model_key="sequences.registered_model",
    tune=TuneDefaults(metric="loss", mode="min", epochs_key="sequences.epochs", space={
        "sequences.lr": "loguniform(1e-4, 3e-3)", "sequences.decoder": 'choice(["learned", "fixed_state"])'}),
    score="hungarian_accuracy",
    loss="loss",
    learning=(("history_seq2seq.json", "loss", 0.3),),
    words=("sequences",),
    tiny=("sequences.hidden=32", "sequences.source_len=8", "sequences.target_len=8", "sequences.stride=4",
          "sequences.subsample=1", "sequences.epochs=15", "sequences.lr=0.01", "seqcluster.smooth=1",
          "seqcluster.linkage=average"),  # separate short sequences: single linkage chains across them
    commands="actionops.pipelines.sequence_clustering.commands",
))
