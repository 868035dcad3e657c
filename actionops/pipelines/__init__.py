"""Pipelines, one package per method. Importing a pipeline's `config` module registers its
`params.yaml` sections, so `load_config` here knows every section of every pipeline."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path

from actionops.platform.config import Config
from actionops.platform.config import load_config as _load_platform_config

# Config modules are dataclasses only: cheap to import, no torch/ray/mlflow.
PIPELINE_CONFIG_MODULES: tuple[str, ...] = (
    "actionops.pipelines.individual_clustering.config",
    "actionops.pipelines.clip_classification.config",
)


def load_config(params: str | Path | None = None, overrides: Sequence[str] = ()) -> Config:
    """Resolve `params.yaml` (or `params`) plus `--set` overrides against every known section."""
    for module in PIPELINE_CONFIG_MODULES:
        importlib.import_module(module)
    return _load_platform_config(params, overrides)
