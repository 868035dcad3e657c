"""Command groups whose commands are not built yet. Their --help says what is coming and which
issue builds it; invoking them exits with code 2 and says so, rather than pretending."""

from __future__ import annotations

import typer

from actionops.cli.common import err_console

PLANNED: dict[str, tuple[str, str, int]] = {}


def planned_groups() -> list[typer.Typer]:
    """One Typer group per planned command family."""
    groups = []
    for name, (text, example, issue) in PLANNED.items():
        sub = typer.Typer(
            name=name,
            help=f"{text}\n\nNot built yet (issue #{issue}); see README 'Status'.\n\n\b\nExample (planned):\n  {example}",
            rich_markup_mode=None,
            context_settings={"help_option_names": ["-h", "--help"]},
        )
        sub.callback(invoke_without_command=True)(_not_built(name, issue))
        groups.append(sub)
    return groups


def _not_built(name: str, issue: int):
    def callback(ctx: typer.Context) -> None:
        if ctx.invoked_subcommand is None:
            err_console.print(f"`actionops {name}` has no commands yet (issue #{issue}); see README 'Status'.")
            raise typer.Exit(2)

    callback.__doc__ = f"{name} commands (planned)."
    return callback
