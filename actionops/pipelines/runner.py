"""`actionops pipeline run METHOD`: a method's stages in order, skipping up-to-date ones.

A stage is up to date when its outputs exist and a stamp (`<out>/.stamps/<stage>.json`) records
the same inputs (size and mtime of each file) and the same config sections as now.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from actionops.pipelines.method import Method, Stage


def output_file(name: str) -> Callable[[Any], list[Path]]:
    """A stage's inputs/outputs callable: the file `name` in the context's output folder."""
    return lambda ctx: [Path(ctx.out) / name]


def dataset_inputs(ctx: Any) -> list[Path]:
    """Inputs of an `index` stage over a class-folder / CSV dataset: every video and CSV in it."""
    from actionops.platform.layout import VIDEO_SUFFIXES

    root = Path(ctx.dataset)
    videos = (p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
    return sorted([*videos, *root.glob("*.csv")])


def index_stage(ctx: Any) -> dict:
    """The `index` stage every pipeline starts with: probe the videos into the context's manifest."""
    from actionops.platform.data import index_dataset

    result = index_dataset(ctx.dataset, out=ctx.manifest_path)
    return {"videos": len(result.manifest), "rejected": len(result.rejected)}


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


def run_pipeline(method: Method, ctx: Any, *, force: bool = False, only: Sequence[str] = (),
                 on_stage: Callable[[int, Stage, str], None] | None = None) -> list[dict]:
    """Run the stages in order; skip up-to-date ones unless `force`. Returns a row per stage."""
    rows = []
    for i, stage in enumerate(method.stages, start=1):
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
