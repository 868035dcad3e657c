"""Ray Data datasets over videos. Work is split per file; one bad file never fails a block."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from actionops.errors import DataError


def _probe_row(row: dict[str, Any]) -> dict[str, Any]:
    from actionops.platform.video import probe_video

    try:
        return {**probe_video(row["path"]), "error": None}
    except DataError as exc:  # caught per file so the rest of the block goes on
        return {"path": row["path"], "frames": 0, "fps": 0.0, "width": 0, "height": 0,
                "codec": "", "duration": 0.0, "error": exc.message}


def probe_videos(paths: Sequence[str | Path]) -> list[dict[str, Any]]:
    """Probe every video in parallel on the current Ray session (one task per file).

    Rows carry `error` (None when fine) instead of raising, in input order.
    """
    import ray

    items = [{"path": str(p)} for p in paths]
    if not items:
        return []
    ds = ray.data.from_items(items, override_num_blocks=min(len(items), 200))
    rows = ds.map(_probe_row).take_all()
    order = {item["path"]: i for i, item in enumerate(items)}
    return sorted(rows, key=lambda row: order[row["path"]])
