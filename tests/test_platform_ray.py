"""Real local Ray: the session context manager and a Ray Data job over real mp4 files."""

from __future__ import annotations

import json

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


def test_demo_end_to_end(ray_local, mlflow_store, tmp_path, monkeypatch):
    import mlflow

    from actionops.cli.main import app

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["demo", "--data", str(tmp_path / "demo"), "--set", "synth.videos=2",
                                      "--set", "synth.frames=12", "--set", "synth.width=64",
                                      "--set", "synth.height=48"])
    assert result.exit_code == 0, result.output
    runs = mlflow.search_runs(experiment_names=["actionops-demo"], output_format="list")
    assert len(runs) == 1
    run = runs[0]
    assert run.data.metrics["videos"] == 2 and run.data.metrics["frames"] == 24
    assert run.data.params["synth.videos"] == "2"
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, "figures")}
    assert artifacts == {"figures/ground_truth_frame.png"}
    summary = json.loads((tmp_path / "demo" / "synth.json").read_text())
    assert len(summary["videos"]) == 2
