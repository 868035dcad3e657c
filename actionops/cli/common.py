"""Options and helpers shared by every command group. Imports nothing heavy."""

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


def load_cfg(params: Optional[Path], sets: Optional[list[str]], **cli_overrides: Any):
    """Resolve the config: params file, then `--set`, then explicit CLI options (dotted keys)."""
    from actionops.pipelines import load_config

    cfg = load_config(params, sets or [])
    given = {key: value for key, value in cli_overrides.items() if value is not None}
    return cfg.with_overrides({k.replace("__", "."): v for k, v in given.items()}) if given else cfg


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def group(name: str, help_text: str, example: str) -> typer.Typer:
    """A command group whose --help ends with an example."""
    return typer.Typer(
        name=name,
        help=f"{help_text}\n\n\b\nExample:\n  {example}",
        no_args_is_help=True,
        rich_markup_mode=None,
        context_settings={"help_option_names": ["-h", "--help"]},
    )


OutOpt = Annotated[
    Optional[Path],
    typer.Option("--out", help="Output folder (default outputs/<pipeline>/<dataset name>)."),
]
ResumeOpt = Annotated[bool, typer.Option("--resume", help="Continue the last interrupted run from its checkpoint.")]


def stage_context(dataset: Path, out: Optional[Path], params, sets, address, resume: bool = False,
                  json_out: bool = False, pipeline: str = "individual_clustering", **overrides):
    """Config + Context for a pipeline's stage (no chatter on stdout with --json)."""
    import importlib

    from actionops.pipelines.context import Context
    from actionops.platform.data import resolve_dataset

    default_out = importlib.import_module(f"actionops.pipelines.{pipeline}.stages").default_out
    cfg = load_cfg(params, sets, ray__address=address, **overrides)
    root, manifest = resolve_dataset(dataset)
    return Context(cfg=cfg, dataset=root, out=Path(out) if out else default_out(root),
                   console=err_console if json_out else console, resume=resume, manifest=manifest)


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
        table.add_row(str(key), str(value))
    console.print(table)
