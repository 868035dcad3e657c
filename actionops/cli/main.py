"""`actionops`: the entry point. Adds the command groups and turns known errors into one line.

Only typer and rich are imported at start-up; torch, ray and mlflow load inside commands, so
`actionops --help` is instant.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, Optional

import typer

from actionops import __version__
from actionops.cli import data, demo, flow, pipeline, registry, tune
from actionops.cli.common import err_console, group

app = typer.Typer(
    name="actionops",
    help=(
        "Ray-distributed MLOps for spatio-temporal action recognition: cluster, classify, track, "
        "version and promote action models from video and pose sequences.\n\n"
        "\b\nExample:\n  actionops demo                       # synthetic scenes end to end\n"
        "  actionops data synth data/or --kind or-scene --videos 6"
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
# Groups whose commands the methods contribute (each method's commands.py, found through the
# method registry); a method may also add a group of its own (e.g. `analyze`) or a top-level
# command (group None, e.g. `embed`).
GROUPS = {
    "train": group("train", "Training on Ray Train workers (GPU when present, DDP across train.num_workers), tracked in MLflow.",
                   "actionops train autoencoder data/or --datatype flow --set autoencoder.epochs=10"),
    "predict": group("predict", "Predictions from a trained (local checkpoint) or registered (models:/NAME@ALIAS) model.",
                     "actionops predict clustering data/or --split test --model models:/individual-clustering@champion"),
    "evaluate": group("evaluate", "Scores against ground truth, logged to MLflow and metrics files; a registered version\n"
                      "evaluated with --model models:/... gets eval.* tags (what `registry promote` compares).",
                      "actionops evaluate classifier data/clips --model models:/clip-classifier@candidate"),
}


def _add_method_commands() -> None:
    from actionops.pipelines.method import method_commands

    commands = method_commands()
    for group_name, name, function in commands:
        if group_name is None:  # a top-level command (e.g. `actionops embed`)
            app.command(name)(function)
            continue
        if group_name not in GROUPS:  # a group of the methods' own: its help lists its commands
            members = [(n, f) for g, n, f in commands if g == group_name]
            lines = "\n".join(f"  {n}: {' '.join((f.__doc__ or '').strip().split(chr(10) * 2)[0].split())}" for n, f in members)
            GROUPS[group_name] = group(group_name, f"{group_name.capitalize()} commands of the methods:\n\n\b\n{lines}",
                                       f"actionops {group_name} {members[0][0]} --help")
        GROUPS[group_name].command(name)(function)


_add_method_commands()
app.add_typer(data.app, name="data")
app.add_typer(flow.app, name="flow")
app.add_typer(GROUPS["train"], name="train")
app.add_typer(tune.app, name="tune")
app.add_typer(GROUPS["predict"], name="predict")
app.add_typer(GROUPS["evaluate"], name="evaluate")
for extra in sorted(set(GROUPS) - {"train", "predict", "evaluate"}):
    app.add_typer(GROUPS[extra], name=extra)
app.add_typer(registry.app, name="registry")
app.add_typer(pipeline.app, name="pipeline")
app.command("demo", help=demo.HELP)(demo.demo)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"actionops {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        Optional[bool],
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit."),
    ] = None,
) -> None:
    """Root options."""


def main() -> None:
    """Console-script entry: run the app; known errors become one line on stderr, exit 1."""
    from actionops.errors import ActionopsError

    debug = os.environ.get("ACTIONOPS_DEBUG") == "1"
    try:
        app()
    except ActionopsError as exc:
        if debug:
            raise
        _say(exc.message, exc.hint)
        sys.exit(1)
    except KeyboardInterrupt:
        err_console.print("interrupted", highlight=False)
        sys.exit(130)
    except Exception as exc:  # unknown failure: still one line, traceback on request
        if debug:
            raise
        from actionops.platform import tracking

        reason = tracking.unreachable_server(exc)
        if reason is not None:
            _say(f"cannot reach the MLflow tracking server at {tracking.redact('', tracking.tracking_uri())} ({reason})",
                 "start it again (or point MLFLOW_TRACKING_URI at a running one); checkpoints are kept on the "
                 "training storage: rerun the same command with --resume to continue and log what is missing")
            sys.exit(1)
        first = str(exc).splitlines()[0] if str(exc) else ""
        _say(f"unexpected {type(exc).__name__}: {first}", "rerun with ACTIONOPS_DEBUG=1 to see the traceback")
        sys.exit(1)


def _say(message: str, hint: str | None) -> None:
    from rich.text import Text

    line = Text.assemble(("error: ", "bold red"), message)
    if hint:
        line.append(f" (hint: {hint})", style="dim")
    err_console.print(line, highlight=False, soft_wrap=True)


if __name__ == "__main__":
    main()
