"""`actionops registry ...`: the MLflow model registry: list, show, promote, rollback, compare, models."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from actionops.cli.common import JsonOpt, console, group, print_json

app = group(
    "registry",
    "MLflow model registry: versions and aliases. Training sets `candidate`; `promote` moves\n"
    "`champion` (what production loads as models:/NAME@champion) only when the candidate beats it\n"
    "on an evaluation metric over the same data; `rollback` undoes the last promotion.",
    "actionops registry promote clip-classifier --metric macro_f1 --min-delta 0.01",
)
NameArg = Annotated[str, typer.Argument(help="Registered model name (see `actionops registry list`).")]


@app.command("list")
def list_models(json_out: JsonOpt = False) -> None:
    """List registered models with their latest version and aliases.

    \b
    Example:
      actionops registry list --json
    """
    from rich.table import Table

    from actionops.platform.tracking import list_registered_models, tracking_uri

    rows = list_registered_models()
    if json_out:
        print_json(rows)
        return
    table = Table(title=f"Registered models ({tracking_uri()})")
    for column in ("name", "latest version", "versions", "aliases"):
        table.add_column(column)
    for row in rows:
        aliases = ", ".join(f"{a}->v{v}" for a, v in sorted(row["aliases"].items())) or "-"
        table.add_row(row["name"], str(row["latest_version"]), str(row["versions"]), aliases)
    console.print(table)


@app.command("show")
def show(name: NameArg, json_out: JsonOpt = False) -> None:
    """Versions of a model: aliases, evaluation scores (eval.* tags), source run, dataset version,
    promotion records.

    \b
    Example:
      actionops registry show clip-classifier
    """
    from rich.table import Table

    from actionops.platform.registry import show as show_model

    info = show_model(name)
    if json_out:
        print_json(info)
        return
    table = Table(title=f"{name}: " + (", ".join(f"{a}->v{v}" for a, v in sorted(info["aliases"].items())) or "no aliases"))
    for column in ("version", "aliases", "created", "eval", "dataset version", "source run", "promotion"):
        table.add_column(column)
    for row in info["versions"]:
        evals = ", ".join(f"{k}={v}" for k, v in row["eval"].items() if k not in ("data", "split")) or "-"
        promo = f"{row['promotion'].get('by', '')} {row['promotion'].get('at', '')}: {row['promotion'].get('reason', '')}" \
            if row["promotion"] else "-"
        table.add_row(str(row["version"]), ", ".join(row["aliases"]) or "-", row["created"], evals,
                      str(row["dataset_version"] or "-"), (row["run_id"] or "-")[:12], promo)
    console.print(table)


@app.command("promote")
def promote(
    name: NameArg,
    version: Annotated[Optional[str], typer.Option("--version", help="Version to promote (default: the candidate).")] = None,
    metric: Annotated[Optional[str], typer.Option("--metric", help="Evaluation metric compared (eval.<metric> tag); default: the one its evaluation marked primary (macro_f1 for classifiers, roc_auc for anomaly detectors, hungarian_accuracy for clustering).")] = None,
    min_delta: Annotated[float, typer.Option("--min-delta", help="It must beat the champion by MORE than this (0: a tie is refused; negative: ties and regressions up to it pass).")] = 0.0,
    force: Annotated[bool, typer.Option("--force", help="Promote without the comparison (recorded as forced).")] = False,
    reason: Annotated[Optional[str], typer.Option("--reason", help="Why, recorded on the version.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Make a version the champion if it beats the current champion on --metric, both evaluated on
    the same data version and the same split (`actionops evaluate ... --model models:/NAME/V`
    records them); a tie is refused. The first promotion just sets it. The replaced champion becomes previous-champion; who/when/why become tags.

    \b
    Example:
      actionops evaluate classifier data/clips --model models:/clip-classifier@candidate
      actionops registry promote clip-classifier --metric macro_f1 --min-delta 0.01
    """
    from actionops.platform.registry import promote as promote_version

    result = promote_version(name, version=version, metric=metric, min_delta=min_delta, force=force, reason=reason)
    if json_out:
        print_json(result)
        return
    console.print(f"{name}: champion -> v{result['champion']}"
                  + (f" (previous champion v{result['previous_champion']})" if result["previous_champion"] else "")
                  + f"; {result['decision']}")


@app.command("rollback")
def rollback(
    name: NameArg,
    reason: Annotated[Optional[str], typer.Option("--reason", help="Why, recorded on the version.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Point champion back at the version the last promotion replaced.

    \b
    Example:
      actionops registry rollback clip-classifier --reason "worse on live data"
    """
    from actionops.platform.registry import rollback as rollback_model

    result = rollback_model(name, reason)
    if json_out:
        print_json(result)
        return
    console.print(f"{name}: champion -> v{result['champion']} (was v{result['rolled_back']})")


@app.command("compare")
def compare(
    name: NameArg,
    v1: Annotated[str, typer.Argument(help="First version.")],
    v2: Annotated[str, typer.Argument(help="Second version.")],
    json_out: JsonOpt = False,
) -> None:
    """Two versions side by side: evaluation scores, training-run metrics, params that differ.

    \b
    Example:
      actionops registry compare clip-classifier 1 2
    """
    from rich.table import Table

    from actionops.platform.registry import compare as compare_versions

    info = compare_versions(name, v1, v2)
    if json_out:
        print_json(info)
        return
    table = Table(title=f"{name}: v{v1} vs v{v2}")
    for column in ("", f"v{v1}", f"v{v2}"):
        table.add_column(column)
    for section in ("eval", "run_metrics", "params_that_differ"):
        for key, (a, b) in info[section].items():
            fmt = (lambda x: f"{x:.4f}" if isinstance(x, float) else str(x if x is not None else "-"))
            table.add_row(f"{section.split('_')[0]}: {key}", fmt(a), fmt(b))
    a, b = info["dataset_version"]
    table.add_row("dataset version", str(a or "-"), str(b or "-"))
    console.print(table)


@app.command("models")
def models(json_out: JsonOpt = False) -> None:
    """Model architectures the registry of builders knows (for --model / classifier.model).

    \b
    Example:
      actionops registry models
    """
    from actionops.models import list_models

    names = list_models()
    if json_out:
        print_json(names)
        return
    console.print("\n".join(names))
