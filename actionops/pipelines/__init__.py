"""Pipelines, one package per method; each registers a `Method` (see `method.py`). Importing a
method registers its `params.yaml` sections, so `load_config` here knows every section of every
method."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from actionops.platform.config import Config
from actionops.platform.config import load_config as _load_platform_config


def load_config(params: str | Path | None = None, overrides: Sequence[str] = ()) -> Config:
    """Resolve `params.yaml` (or `params`) plus `--set` overrides against every known section."""
    from actionops.pipelines.method import discover

    discover()
    return _load_platform_config(params, overrides)
