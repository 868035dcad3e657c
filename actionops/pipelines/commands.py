"""What the CLI commands of every method share (used by `actionops/cli/` and by each method's
`commands.py`): Typer option types, the config and stage context of a command, printing.
Imports nothing heavy: commands import torch, ray and mlflow inside their bodies."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console

console = Console()
err_console = Console(stderr=True)

ParamsOpt = Annotated[
    Optional[Path],
    typer.Option("--params", help="Parameters file (default: ./params.yaml if present, else built-in defaults)."),
]
SetOpt = Annotated[
    Optional[list[str]],
    typer.Option("--set", help="Override one parameter, repeatable: --set section.key=value."),
]
AddressOpt = Annotated[
    Optional[str],
    typer.Option("--address", help="Ray cluster address (default: RAY_ADDRESS, else start a local Ray)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON (for scripts).")]
OutOpt = Annotated[
    Optional[Path],
    typer.Option("--out", help="Output folder (default outputs/<method>/<dataset name>)."),
]
ResumeOpt = Annotated[bool, typer.Option("--resume", help="Continue the last interrupted run from its checkpoint.")]
SplitOpt = Annotated[str, typer.Option("--split", help="Split to use: train, val or test.")]


def load_cfg(params: Optional[Path], sets: Optional[list[str]], **cli_overrides: Any):
    """Resolve the config: params file, then `--set`, then explicit CLI options (dotted keys as a__b)."""
    from actionops.pipelines import load_config

    cfg = load_config(params, sets or [])
    given = {key: value for key, value in cli_overrides.items() if value is not None}
    return cfg.with_overrides({k.replace("__", "."): v for k, v in given.items()}) if given else cfg


def stage_context(method: str, dataset: Path, out: Optional[Path], params, sets, address, resume: bool = False,
                  json_out: bool = False, **overrides):
    """Config + Context for a stage of `method` (output folder outputs/<method id>/<dataset name>
    unless --out; no chatter on stdout with --json)."""
    from actionops.pipelines.context import Context
    from actionops.pipelines.method import get_method
    from actionops.platform.data import resolve_dataset

    cfg = load_cfg(params, sets, ray__address=address, **overrides)
    root, manifest = resolve_dataset(dataset)
    return Context(cfg=cfg, dataset=root, out=Path(out) if out else get_method(method).default_out(root),
                   console=err_console if json_out else console, resume=resume, manifest=manifest)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def show_result(title: str, result: dict, json_out: bool = False) -> None:
    """Print a stage's result dict as a table (or JSON)."""
    if json_out:
        print_json(result)
        return
    from rich.table import Table

    table = Table(title=title)
    table.add_column("")
    table.add_column("value")
    for key, value in result.items():
        if isinstance(value, float):
            value = f"{value:.4f}"
        elif isinstance(value, dict):
            value = ", ".join(f"{k}: {v:.4f}" if isinstance(v, float) else f"{k}: {v}" for k, v in value.items())
        elif isinstance(value, list) and len(value) > 8:
            value = f"[{len(value)} items]"
        table.add_row(str(key), str(value))
    console.print(table)
