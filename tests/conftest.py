"""Shared fixtures: one real local Ray per session, a fresh real MLflow SQLite store per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("DVC_NO_ANALYTICS", "1")
SHARED_DATA = Path(os.environ.get("ACTIONOPS_SHARED_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))


@pytest.fixture(scope="session")
def ray_local():
    """A real local Ray (2 CPUs), started once: Ray start-up costs ~5 s."""
    from actionops.platform.cluster import ray_session

    with ray_session(num_cpus=2, num_gpus=0) as info:
        yield info


@pytest.fixture()
def mlflow_store(tmp_path, monkeypatch):
    """A real, empty MLflow store (SQLite + local artifacts) in a temporary folder."""
    store = tmp_path / "mlruns"
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("ACTIONOPS_MLRUNS", str(store))
    from actionops.platform import tracking

    tracking.configure()
    return store


@pytest.fixture(scope="session")
def or_scenes(tmp_path_factory):
    """A tiny generated operating-room dataset (3 videos x 24 frames)."""
    from actionops.platform.synth import generate_or_scenes

    out = tmp_path_factory.mktemp("or")
    generate_or_scenes(out, videos=3, frames=24, width=96, height=72, seed=7)
    return out
