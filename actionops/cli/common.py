"""Options and helpers shared by every command group (they live in `pipelines/commands.py`, where
each method's own commands find them too). Imports nothing heavy."""

from __future__ import annotations

import typer

from actionops.pipelines.commands import (  # noqa: F401  (re-exported for the command groups)
    AddressOpt,
    JsonOpt,
    OutOpt,
    ParamsOpt,
    ResumeOpt,
    SetOpt,
    SplitOpt,
    console,
    err_console,
    load_cfg,
    print_json,
    show_result,
    stage_context,
)


def group(name: str, help_text: str, example: str) -> typer.Typer:
    """A command group whose --help ends with an example."""
    return typer.Typer(
        name=name,
        help=f"{help_text}\n\n\b\nExample:\n  {example}",
        no_args_is_help=True,
        rich_markup_mode=None,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
