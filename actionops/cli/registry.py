"""`actionops registry ...`: the MLflow model registry (list now; show/promote/rollback later)."""

from __future__ import annotations

from actionops.cli.common import JsonOpt, console, group, print_json

app = group(
    "registry",
    "MLflow model registry: registered models, versions and aliases (candidate, champion).",
    "actionops registry list",
)


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
