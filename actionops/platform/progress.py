"""Rich progress bars for long work (no-ops when output is JSON)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any


@contextmanager
def progress_bar(console: Any, label: str, total: int, unit: str = ""):
    """Yield `update(done, total=None, **fields)`; draws nothing when `console` is None."""
    if console is None:
        yield lambda *args, **kwargs: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn(unit + "{task.fields[rate]}"), TimeElapsedColumn(), console=console)
    with bar:
        task = bar.add_task(label, total=total, rate="")

        def update(done: int, total: int | None = None, rate: str = "") -> None:
            bar.update(task, completed=done, total=total, rate=rate)

        yield update
