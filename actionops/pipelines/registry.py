"""Pipelines as ordered stages, run with skipping of up-to-date stages.

A pipeline registers itself with `register_pipeline(Pipeline(...))` in its package's
`pipeline.py`; `actionops pipeline list|run` reads the registry. A stage is up to date when its
outputs exist and a stamp (`<out>/.stamps/<stage>.json`) records the same inputs (size and
mtime of each file) and the same config sections as now.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from actionops.errors import ActionopsError

# Modules whose import registers a pipeline.
PIPELINE_MODULES = ("actionops.pipelines.individual_clustering.pipeline",
                    "actionops.pipelines.clip_classification.pipeline")
_PIPELINES: dict[str, Pipeline] = {}


@dataclass(frozen=True)
class Stage:
    name: str
    description: str
    run: Callable[[Any], dict]
    inputs: Callable[[Any], Sequence[Path]]
    outputs: Callable[[Any], Sequence[Path]]
    sections: tuple[str, ...] = ()
    always: bool = False  # cheap stages that check their own work (e.g. resumable flow)


@dataclass(frozen=True)
class Pipeline:
    name: str
    description: str
    stages: tuple[Stage, ...]
    package: str = ""  # actionops.pipelines.<package>: its stages module gives the default output folder


def output_file(name: str) -> Callable[[Any], list[Path]]:
    """A stage's inputs/outputs callable: the file `name` in the context's output folder."""
    return lambda ctx: [Path(ctx.out) / name]


def index_stage(ctx: Any) -> dict:
    """The `index` stage every pipeline starts with: probe the videos into the context's manifest."""
    from actionops.platform.data import index_dataset

    result = index_dataset(ctx.dataset, out=ctx.manifest_path)
    return {"videos": len(result.manifest), "rejected": len(result.rejected)}


def register_pipeline(pipeline: Pipeline) -> Pipeline:
    _PIPELINES[pipeline.name] = pipeline
    return pipeline


def list_pipelines() -> list[Pipeline]:
    for module in PIPELINE_MODULES:
        importlib.import_module(module)
    return [_PIPELINES[name] for name in sorted(_PIPELINES)]


def get_pipeline(name: str) -> Pipeline:
    known = {p.name: p for p in list_pipelines()}
    if name not in known:
        raise ActionopsError(f"unknown pipeline {name!r}", f"known pipelines: {', '.join(known)}")
    return known[name]


def _fingerprint(ctx: Any, stage: Stage) -> dict:
    files = {}
    for path in stage.inputs(ctx):
        path = Path(path)
        if path.is_file():
            st = path.stat()
            files[str(path)] = [st.st_size, st.st_mtime_ns]
        else:
            files[str(path)] = None
    sections = {name: asdict(ctx.cfg.section(name)) for name in stage.sections}
    digest = hashlib.sha256(json.dumps(sections, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return {"inputs": files, "config": digest}


def _stamp_path(ctx: Any, stage: Stage) -> Path:
    return Path(ctx.out) / ".stamps" / f"{stage.name}.json"


def is_up_to_date(ctx: Any, stage: Stage) -> bool:
    stamp = _stamp_path(ctx, stage)
    if stage.always or not stamp.is_file():
        return False
    if not all(Path(p).exists() for p in stage.outputs(ctx)):
        return False
    return json.loads(stamp.read_text()) == _fingerprint(ctx, stage)


def run_pipeline(pipeline: Pipeline, ctx: Any, *, force: bool = False, only: Sequence[str] = (),
                 on_stage: Callable[[int, Stage, str], None] | None = None) -> list[dict]:
    """Run the stages in order; skip up-to-date ones unless `force`. Returns a row per stage."""
    rows = []
    for i, stage in enumerate(pipeline.stages, start=1):
        if only and stage.name not in only:
            continue
        if not force and is_up_to_date(ctx, stage):
            rows.append({"stage": stage.name, "status": "up to date", "result": {}})
            if on_stage:
                on_stage(i, stage, "up to date")
            continue
        if on_stage:
            on_stage(i, stage, "running")
        result = stage.run(ctx)
        stamp = _stamp_path(ctx, stage)
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(json.dumps(_fingerprint(ctx, stage)))
        rows.append({"stage": stage.name, "status": "done", "result": result})
    return rows
