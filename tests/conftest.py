"""Shared fixtures: one real local Ray per session, isolated real MLflow stores, the tiny config of
every method (`tiny_cfg`) and one pipeline run per method per session (`method_run`)."""

from __future__ import annotations

import json
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


def use_stores(mp: pytest.MonkeyPatch, root: Path) -> Path:
    """Point MLflow (embedded SQLite store) and Ray Train storage at folders under `root`."""
    mp.delenv("MLFLOW_TRACKING_URI", raising=False)
    mp.setenv("ACTIONOPS_MLRUNS", str(root / "mlruns"))
    mp.setenv("ACTIONOPS_STORAGE", str(root / "ray_results"))
    from actionops.platform import tracking

    tracking.configure()
    return root / "mlruns"


@pytest.fixture()
def mlflow_store(tmp_path, monkeypatch):
    """A real, empty MLflow store (SQLite + local artifacts) and Ray Train storage in a temporary folder."""
    return use_stores(monkeypatch, tmp_path)


def tiny_cfg(method_id: str) -> list[str]:
    """`--set` arguments that make `method_id` train in seconds on CPU (the method's own `tiny`)."""
    from actionops.pipelines.method import get_method

    return [arg for item in get_method(method_id).tiny for arg in ("--set", item)]


def method_ids() -> list[str]:
    from actionops.pipelines.method import list_methods

    return [m.id for m in list_methods()]


@pytest.fixture(scope="session")
def method_runs(ray_local, tmp_path_factory):
    """`get(method_id)`: the method's whole pipeline run once per session through the CLI
    (`actionops pipeline run ID SAMPLE --out OUT` with its tiny config) on its own sample data,
    MLflow store and Ray Train storage. Returns data, out, root, the stage rows and the context."""
    from typer.testing import CliRunner

    from actionops.cli.main import app
    from actionops.pipelines import load_config
    from actionops.pipelines.context import Context
    from actionops.pipelines.method import get_method

    cache: dict[str, dict] = {}

    def get(method_id: str) -> dict:
        if method_id not in cache:
            method = get_method(method_id)
            root = tmp_path_factory.mktemp(method_id)
            data = method.sample(root / "data", 3)
            mp = pytest.MonkeyPatch()
            use_stores(mp, root)
            try:
                result = CliRunner().invoke(app, ["pipeline", "run", method.id, str(data), "--out", str(root / "out"),
                                                  *tiny_cfg(method.id), "--json"])
            finally:
                mp.undo()
            assert result.exit_code == 0, result.output
            cfg = load_config(None, list(method.tiny))
            cache[method_id] = {"method": method, "data": data, "out": root / "out", "root": root,
                                "rows": json.loads(result.stdout),
                                "ctx": Context(cfg=cfg, dataset=data, out=root / "out")}
        return cache[method_id]

    return get


@pytest.fixture()
def run_of(method_runs, monkeypatch):
    """`run_of(method_id)`: the session's run of that method, with its stores active for this test."""

    def get(method_id: str) -> dict:
        run = method_runs(method_id)
        use_stores(monkeypatch, run["root"])
        return run

    return get


@pytest.fixture(scope="session")
def or_scenes(tmp_path_factory):
    """A tiny generated operating-room dataset (3 videos x 24 frames)."""
    from actionops.platform.synth import generate_or_scenes

    out = tmp_path_factory.mktemp("or")
    generate_or_scenes(out, videos=3, frames=24, width=96, height=72, seed=7)
    return out


class MlflowServer:
    """A real `mlflow server` process bound to 127.0.0.1 only, with its own SQLite backend and
    artifact root under `root`; `stop()` kills it, `start()` brings it back on the same port with
    the same stores (a server restart)."""

    def __init__(self, root: Path) -> None:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.root = root
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = None

    def start(self, timeout: float = 240) -> None:
        import signal
        import subprocess
        import sys
        import time
        import urllib.request

        log = open(self.root / "server.log", "a")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{self.root / 'server.db'}",
             "--artifacts-destination", str(self.root / "server_artifacts"), "--host", "127.0.0.1",
             "--port", str(self.port), "--workers", "1"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + timeout  # start-up takes 15-60 s on 2 busy cores
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(f"{self.url}/health", timeout=2).status == 200:
                    return
            except OSError:
                time.sleep(0.5)
        os.killpg(self.proc.pid, signal.SIGKILL)
        raise RuntimeError(f"mlflow server did not start: {(self.root / 'server.log').read_text()[-2000:]}")

    def stop(self, kill: bool = False) -> None:
        import signal
        import subprocess

        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=20)
