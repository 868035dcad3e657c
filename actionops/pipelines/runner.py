"""`actionops pipeline run METHOD`: a method's stages in order, skipping up-to-date ones.

A stage is up to date when its outputs exist and its stamp (`<out>/.stamps/<stage>.json`) records
what it was made from, all unchanged: the md5 of every input file's BYTES (videos, annotation
files, label CSVs, the manifest, upstream checkpoints), the config sections it reads, and the code
(a digest of the actionops package's sources and its version). These are the rules DVC applies to
dvc.yaml (content hashes, params, code as a dependency), so both ways of running a pipeline agree:
a video replaced by one of the same size and length, a changed annotation or a changed line of
code re-runs the stages that read it; nothing changed, nothing runs. Hashes are cached per file by
(size, mtime, inode) in `<out>/.stamps/hashes.json`, as DVC's state cache does, so an unchanged
dataset is not read again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path
from typing import Any

from actionops.pipelines.method import Method, Stage


def output_file(name: str) -> Callable[[Any], list[Path]]:
    """A stage's inputs/outputs callable: the file `name` in the context's output folder."""
    return lambda ctx: [Path(ctx.out) / name]


def dataset_inputs(ctx: Any) -> list[Path]:
    """Inputs of an `index` stage: every video of the dataset with its annotation files (pose
    boxes, table position, labels) and the label CSVs at its root, as the layout finds them."""
    from actionops.platform.data import REJECTED_NAME
    from actionops.platform.layout import list_entries

    root = Path(ctx.dataset)
    _, entries, rejected = list_entries(root)
    files = {Path(p) for e in entries for p in (e.path, e.pose_path, e.coor_path, e.annotation_path) if p}
    files |= {Path(r.path) for r in rejected if Path(r.path).is_file()}
    return sorted(files | {p for p in root.glob("*.csv") if p.name != REJECTED_NAME})  # not what index writes


def index_stage(ctx: Any) -> dict:
    """The `index` stage every pipeline starts with: probe the videos into the context's manifest."""
    from actionops.platform.data import index_dataset

    result = index_dataset(ctx.dataset, out=ctx.manifest_path)
    return {"videos": len(result.manifest), "rejected": len(result.rejected)}


def flow_stage(ctx: Any) -> dict:
    """The `flow` stage (`flow.*` settings): optical flow of every video into its manifest `flow_path`
    (resumable: done videos are skipped). Individual clustering reads it; so do trajectories and the
    classifier's `flow_source=stage` inputs when their method and size match."""
    from actionops.platform.data import compute_flow
    from actionops.platform.flow import parse_size

    _, rows = ctx.rows(verify=False)  # compute_flow fails a video changed since indexing alone
    f = ctx.cfg.flow
    report = compute_flow(rows, method=f.method, size=parse_size(f.size), comp=f.comp, chunk_frames=f.chunk_frames,
                          dis_preset=f.dis_preset, resume=True)
    if report.failed:
        ctx.say(f"[yellow]warning:[/] flow failed for {len(report.failed)} videos: {report.failed[0].reason}")
    return {"computed": report.videos, "up_to_date": report.skipped, "frames_per_second": round(report.fps, 1)}


@lru_cache(maxsize=1)
def code_digest() -> str:
    """md5 over the actionops package's Python sources (paths and bytes) and its version."""
    import actionops

    root = Path(actionops.__file__).parent
    digest = hashlib.md5(str(actionops.__version__).encode())
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


class _HashCache:
    """md5 of files, remembered by (size, mtime_ns, inode) across runs."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.known = json.loads(path.read_text())
        except (OSError, ValueError):
            self.known = {}

    def md5(self, file: Path) -> str:
        from actionops.platform.data import file_md5

        st = file.stat()
        key, stamp = str(file.resolve()), [st.st_size, st.st_mtime_ns, st.st_ino]
        hit = self.known.get(key)
        if hit and hit[0] == stamp:
            return hit[1]
        value = file_md5(file)
        self.known[key] = [stamp, value]
        return value

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text(json.dumps(self.known))
        tmp.replace(self.path)


def _fingerprint(ctx: Any, stage: Stage, hashes: _HashCache) -> dict:
    files = {}
    for path in stage.inputs(ctx):
        path = Path(path)
        files[str(path)] = hashes.md5(path) if path.is_file() else None
    sections = {name: asdict(ctx.cfg.section(name)) for name in stage.sections}
    pinned = pinned_aliases(sections)
    if pinned:  # only then: stamps of stages that read no alias keep their old hash
        sections = {**sections, "_registry_versions": pinned}
    config = hashlib.sha256(json.dumps(sections, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return {"inputs": files, "config": config, "code": code_digest()}


def pinned_aliases(sections: dict) -> dict[str, str]:
    """Every `models:/NAME@ALIAS` value of these config sections, pinned to the version the alias
    points at now: moving the alias (a promotion) re-runs the stages that read it."""
    from actionops.platform.tracking import resolve_model_version

    out = {}
    for section, values in sections.items():
        for key, value in values.items():
            if isinstance(value, str) and value.startswith("models:/") and "@" in value:
                try:
                    found = resolve_model_version(value)
                except Exception:  # noqa: BLE001 - an alias that cannot be read: the stage itself will say why
                    found = None
                out[f"{section}.{key}"] = f"{found[0]}/{found[1]}" if found else "unresolved"
    return out


def _stamp_path(ctx: Any, stage: Stage) -> Path:
    return Path(ctx.out) / ".stamps" / f"{stage.name}.json"


def _hashes(ctx: Any) -> _HashCache:
    return _HashCache(Path(ctx.out) / ".stamps" / "hashes.json")


def stale_reason(ctx: Any, stage: Stage, hashes: _HashCache | None = None) -> str | None:
    """Why `stage` must run (None: up to date)."""
    stamp = _stamp_path(ctx, stage)
    if stage.always:
        return "always runs (checks its own work)"
    if not stamp.is_file():
        return "never ran here"
    missing = [str(p) for p in stage.outputs(ctx) if not Path(p).exists()]
    if missing:
        return f"output {missing[0]} is missing"
    try:
        recorded = json.loads(stamp.read_text())
    except ValueError:
        return "its stamp is unreadable"
    now = _fingerprint(ctx, stage, hashes or _hashes(ctx))
    if recorded.get("code") != now["code"]:
        return "the actionops code changed"
    if recorded.get("config") != now["config"]:
        return f"config sections {', '.join(stage.sections)} changed"
    changed = [p for p in set(recorded.get("inputs", {})) | set(now["inputs"])
               if recorded.get("inputs", {}).get(p) != now["inputs"].get(p)]
    if changed:
        return f"{len(changed)} input file(s) changed, e.g. {sorted(changed)[0]}"
    return None


def is_up_to_date(ctx: Any, stage: Stage) -> bool:
    return stale_reason(ctx, stage) is None


def run_pipeline(method: Method, ctx: Any, *, force: bool = False, only: Sequence[str] = (),
                 on_stage: Callable[[int, Stage, str], None] | None = None) -> list[dict]:
    """Run the stages in order; skip up-to-date ones unless `force`. Returns a row per stage
    (stage, status, why it ran, result)."""
    rows = []
    hashes = _hashes(ctx)
    for i, stage in enumerate(method.stages, start=1):
        if only and stage.name not in only:
            continue
        reason = "--force" if force else stale_reason(ctx, stage, hashes)
        if reason is None:
            rows.append({"stage": stage.name, "status": "up to date", "reason": None, "result": {}})
            if on_stage:
                on_stage(i, stage, "up to date")
            continue
        if on_stage:
            on_stage(i, stage, f"running: {reason}")
        result = stage.run(ctx)
        stamp = _stamp_path(ctx, stage)
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(json.dumps(_fingerprint(ctx, stage, hashes)))  # after the run: what it was made from
        hashes.save()
        rows.append({"stage": stage.name, "status": "done", "reason": reason, "result": result})
    return rows
