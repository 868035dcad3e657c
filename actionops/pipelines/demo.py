"""`actionops demo`: synthetic operating-room scenes through the platform, end to end.

Stages now: synthesize -> probe every video on Ray Data -> log a tracked MLflow run (params,
metrics, config, a frame with ground-truth boxes). The pipeline issues extend it with flow,
autoencoders, clustering, evaluation and registration.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from actionops.platform.config import Config, SynthConfig
from actionops.platform.progress import progress_bar

# The demo's own small sizes, applied over the params file (a `--set` still overrides them): the
# shipped params.yaml is chosen on real video (README: Scoreboard) and takes longer than a demo
# should; these keep `make demo` to a few minutes on a laptop. Method choices (the motion
# descriptor, its weight) stay the product's.
DEMO_SETS = (
    "autoencoder.seq_len=8",
    "autoencoder.stride=4",
    "autoencoder.epochs=8",
    "clustering.epochs=6",
)


def demo_config(params: Any = None, sets: list[str] | None = None, **overrides: Any) -> Config:
    """params file, then DEMO_SETS, then the user's `--set`s, then explicit CLI options."""
    from actionops.pipelines.commands import load_cfg

    return load_cfg(params, [*DEMO_SETS, *(sets or [])], **overrides)


def synthesize(synth: SynthConfig, out: str | Path, console: Any = None) -> dict:
    """Generate the dataset `synth` describes under `out`; skip when `out` already holds it."""
    from actionops.platform import synth as generator

    out = Path(out)
    stamp = out / "synth.json"
    wanted = {**asdict(synth), "generator_version": generator.GENERATOR_VERSION}
    if stamp.exists() and json.loads(stamp.read_text()).get("config") == wanted:
        if console:
            console.print(f"[green]up to date[/] {out} (same synth parameters)")
        return json.loads(stamp.read_text())
    kwargs = {k: v for k, v in asdict(synth).items() if k != "kind"}
    if synth.kind == "or-scene":
        make = generator.generate_or_scenes
    else:
        make = generator.generate_clips
        kwargs = {k: kwargs[k] for k in ("videos", "frames", "width", "height", "fps", "noise", "seed")}
    with progress_bar(console, f"synth {synth.kind}", synth.videos) as advance:
        summary = make(out, progress=advance, **kwargs)
    summary["config"] = wanted
    stamp.write_text(json.dumps(summary, separators=(",", ":")))
    if console:
        console.print(f"[green]wrote[/] {synth.videos} videos to {out}")
    return summary


def run_demo(cfg: Config, data_dir: str | Path, out: str | Path, console: Any) -> dict:
    """Synthesize scenes, then run the individual-clustering pipeline on them; return the
    test metrics, the registered model version and where things are."""
    from actionops.pipelines.context import Context
    from actionops.pipelines.method import get_method
    from actionops.pipelines.runner import run_pipeline
    from actionops.platform import tracking
    from actionops.platform.cluster import ray_session

    data_dir = Path(data_dir)
    method = get_method("individual-clustering")
    total = len(method.stages) + 1
    console.rule(f"[bold]1/{total} synthesize operating-room scenes")
    synthesize(cfg.synth, data_dir, console)
    ctx = Context(cfg=cfg, dataset=data_dir, out=Path(out), console=console)

    def on_stage(i: int, stage, status: str) -> None:
        console.rule(f"[bold]{i + 1}/{total} {stage.name}[/] ({status}): {stage.description}")

    start = time.perf_counter()
    with ray_session(cfg.ray) as session:
        console.print(f"Ray: {session.num_cpus:g} CPUs, {session.num_gpus:g} GPUs, {session.num_nodes} node(s)")
        run_pipeline(method, ctx, on_stage=on_stage)
    metrics = json.loads((Path(out) / "metrics_test.json").read_text())
    name = method.registered_model(cfg)
    version = tracking.version_by_alias(name, tracking.CANDIDATE)
    return {"metrics": metrics, "model": f"{name} v{version.version}" if version else None,
            "seconds": time.perf_counter() - start, "out": str(out)}
