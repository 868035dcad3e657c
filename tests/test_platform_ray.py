"""Real local Ray: the session context manager and a Ray Data job over real mp4 files."""

from __future__ import annotations

import json

import pytest
import ray
from typer.testing import CliRunner

from actionops.platform.cluster import resolve_address, ray_session
from actionops.platform.data import probe_videos


def test_resolve_address(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert resolve_address(None) is None and resolve_address("local") is None
    monkeypatch.setenv("RAY_ADDRESS", "ray://head:10001")
    assert resolve_address(None) == "ray://head:10001"
    assert resolve_address("10.0.0.1:6379") == "10.0.0.1:6379"


def test_an_unreachable_head_is_one_line_naming_it(tmp_path):
    import socket

    from actionops.cli.main import app

    with socket.socket() as sock:  # a port nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = CliRunner().invoke(app, ["data", "index", str(tmp_path), "--address", f"127.0.0.1:{port}"])
    assert result.exit_code == 1
    assert f"cannot reach the Ray head at 127.0.0.1:{port}" in result.exception.message
    assert "unset both for a local run" in result.exception.hint


def test_local_session_reports_resources_and_nests(ray_local):
    assert ray.is_initialized()
    assert ray_local.num_cpus == 2 and ray_local.num_nodes == 1
    with ray_session() as inner:  # reuses the outer session and leaves it running
        assert inner.num_cpus == 2
    assert ray.is_initialized()


def test_probe_videos_on_ray_data_catches_bad_files(ray_local, or_scenes, tmp_path):
    bad = tmp_path / "text.mp4"
    bad.write_text("not a video")
    empty = tmp_path / "empty.mp4"
    empty.touch()
    good = sorted(or_scenes.glob("*/*.mp4"))
    rows = probe_videos([*good, bad, empty])
    assert [r["path"] for r in rows] == [str(p) for p in [*good, bad, empty]]
    assert all(r["error"] is None and r["frames"] == 24 and r["codec"] == "h264" for r in rows[:-2])
    assert "not a readable video" in rows[-2]["error"] and "empty" in rows[-1]["error"]


@pytest.mark.slow
def test_demo_end_to_end(ray_local, mlflow_store, tmp_path, monkeypatch):
    """`actionops demo` (tiny sizes): synth -> ... -> evaluate, model registered; a second run
    skips every up-to-date stage. Slow: the whole pipeline, which the method contract tests
    already run in the fast suite."""
    import mlflow

    from actionops.cli.main import app

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ACTIONOPS_STORAGE", str(tmp_path / "ray_results"))
    tiny = [f"--set={kv}" for kv in (
        "synth.videos=3", "synth.frames=16", "synth.width=96", "synth.height=72", "synth.max_people=4",
        "autoencoder.seq_len=4", "autoencoder.width=48", "autoencoder.height=36", "autoencoder.base_channels=4",
        "autoencoder.latent_channels=8", "autoencoder.epochs=1", "clustering.epochs=1", "clustering.n_clusters=3",
        "clustering.ndf=8", "clustering.kmeans_init=1", "flow.method=dis")]
    args = ["demo", "--data", str(tmp_path / "demo"), "--out", str(tmp_path / "out"), *tiny]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "hungarian_accuracy" in result.output and "individual-clustering v1" in result.output
    metrics = json.loads((tmp_path / "out" / "metrics_test.json").read_text())
    assert 0 <= metrics["hungarian_accuracy"] <= 1
    runs = mlflow.search_runs(experiment_names=["individual-clustering"], output_format="list")
    assert {r.info.run_name for r in runs} >= {"autoencoder-frame", "autoencoder-flow", "clustering", "evaluate-test"}
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    assert again.output.count("(up to date)") == 6  # every stage but the always-checked flow
    assert len(mlflow.search_runs(experiment_names=["individual-clustering"], output_format="list")) == len(runs)
