"""The individual-clustering pipeline as registered stages (`actionops pipeline run individual-clustering`)."""

from __future__ import annotations

from pathlib import Path

from actionops.pipelines.individual_clustering import stages
from actionops.pipelines.registry import Pipeline, Stage, index_stage, output_file, register_pipeline
from actionops.platform.layout import VIDEO_SUFFIXES


def _manifest(ctx) -> Path:
    return ctx.manifest_path


def _videos(ctx) -> list[Path]:
    return sorted(p for p in Path(ctx.dataset).glob("*/*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)


def _flow(ctx) -> dict:
    from actionops.platform.data import compute_flow
    from actionops.platform.flow import parse_size

    _, rows = ctx.rows()
    f = ctx.cfg.flow
    report = compute_flow(rows, method=f.method, size=parse_size(f.size), comp=f.comp, chunk_frames=f.chunk_frames,
                          dis_preset=f.dis_preset, resume=True)
    if report.failed:
        ctx.say(f"[yellow]warning:[/] flow failed for {len(report.failed)} videos: {report.failed[0].reason}")
    return {"computed": report.videos, "up_to_date": report.skipped, "frames_per_second": round(report.fps, 1)}


PIPELINE = register_pipeline(Pipeline(
    name="individual-clustering",
    description="Unsupervised activity clusters per person per window (operating-room videos, methods.md §1).",
    package="individual_clustering",
    stages=(
        Stage("index", "probe every video, check pose files -> manifest.parquet", index_stage, _videos, lambda c: [_manifest(c)]),
        Stage("flow", "optical flow per video (resumable)", _flow, lambda c: [_manifest(c)], lambda c: [], ("flow",), always=True),
        Stage("autoencoder_frame", "pretrain the RGB 3D-conv autoencoder", lambda c: stages.train_autoencoder(c, "frame"),
              lambda c: [_manifest(c)], output_file("ae_frame.pt"), ("autoencoder", "train")),
        Stage("autoencoder_flow", "pretrain the optical-flow 3D-conv autoencoder", lambda c: stages.train_autoencoder(c, "flow"),
              lambda c: [_manifest(c)], output_file("ae_flow.pt"), ("autoencoder", "flow", "train")),
        Stage("clustering", "joint DEC training (k-means init); register model as candidate", stages.train_clustering,
              lambda c: [Path(c.out) / "ae_frame.pt", Path(c.out) / "ae_flow.pt"], output_file("clustering.pt"),
              ("autoencoder", "clustering", "optim", "train")),
        Stage("predict", "cluster every person of the test split", lambda c: stages.predict(c, "test"),
              lambda c: [Path(c.out) / "clustering.pt"], output_file("predictions/test/embeddings.npz"), ("autoencoder",)),
        Stage("evaluate", "Hungarian accuracy, NMI, ARI, majority vote on the test split", lambda c: stages.evaluate(c, "test"),
              lambda c: [Path(c.out) / "predictions/test/embeddings.npz"], output_file("metrics_test.json")),
    ),
))
