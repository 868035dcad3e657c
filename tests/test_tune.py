"""Ray Tune campaigns on real Ray + MLflow: search-space parsing, a 4-trial ASHA campaign with 4
concurrent trials, and resuming a campaign whose driver was killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
from typer.testing import CliRunner

from actionops.cli.main import app
from actionops.errors import ConfigError
from actionops.platform.synth import generate_clips
from actionops.platform.tune import parse_space

runner = CliRunner()
TINY = ["--set", "classifier.num_frames=4", "--set", "classifier.size=32", "--set", "classifier.clips_per_video=1",
        "--set", "classifier.eval_clips=1", "--set", "classifier.batch_size=4", "--set", "classifier.epochs=2"]
KNOWN = {"classifier.lr", "classifier.batch_size"}


def test_search_space_errors_name_the_key():
    parsed = parse_space({"classifier.lr": "loguniform(1e-4, 1e-2)", "classifier.batch_size": "choice([4, 8])"}, KNOWN)
    assert set(parsed) == KNOWN
    cases = {"classifier.lrr": ("uniform(0, 1)", "did you mean classifier.lr"),
             "classifier.lr": ("logunifom(1e-4, 1)", "did you mean loguniform")}
    for key, (text, hint) in cases.items():
        with pytest.raises(ConfigError) as info:
            parse_space({key: text}, KNOWN)
        assert hint in info.value.hint
    for text, message in [("uniform(2, 1)", "low < high"), ("choice(3)", "[list]"), ("loguniform(0, 1)", "low > 0"),
                          ("lr=0.1", "cannot read")]:
        with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
            parse_space({"classifier.lr": text}, KNOWN)


@pytest.fixture(scope="module")
def tiny_clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("tune") / "clips"
    generate_clips(root, videos=12, frames=12, width=48, height=48, seed=2)
    return root


@pytest.fixture()
def stores(tmp_path, monkeypatch):
    from conftest import use_stores

    use_stores(monkeypatch, tmp_path)
    return tmp_path


def _children(parent_id: str) -> list:
    from actionops.platform import tracking

    client = mlflow.MlflowClient(tracking.tracking_uri())
    parent = client.get_run(parent_id)
    return client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent_id}'")


@pytest.mark.slow
def test_asha_campaign_four_concurrent_trials(ray_local, tiny_clips, stores):
    """Four trials at once on the embedded SQLite store: none is lost (they used to race on
    logging the same dataset input). Slow: a campaign of four trainings."""
    from actionops.platform import tracking

    out = stores / "out"
    bad_metric = runner.invoke(app, ["tune", "classifier", str(tiny_clips), "--out", str(out), "--metric", "f1", *TINY])
    assert bad_metric.exit_code == 1 and "not reported" in bad_metric.exception.message
    result = runner.invoke(app, ["tune", "classifier", str(tiny_clips), "--out", str(out), "--samples", "4",
                                 "--max-concurrent", "4", "--scheduler", "asha", *TINY, "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert len(info["trials"]) == 4 and all(r["status"] == "done" for r in info["trials"])
    assert info["registered"] == "clip-classifier v1"
    children = _children(info["mlflow_parent_run_id"])
    assert len(children) == 4 and all(r.info.status in ("FINISHED", "KILLED") for r in children), [r.info.status for r in children]
    parent = mlflow.MlflowClient(tracking.tracking_uri()).get_run(info["mlflow_parent_run_id"])
    assert len(parent.inputs.dataset_inputs) == 1 and not any(r.inputs.dataset_inputs for r in children)
    assert all("val_macro_f1" in r.data.metrics for r in children)
    version = tracking.version_by_alias("clip-classifier", "candidate")
    assert version.tags["trial"] == info["best"]["trial"]
    scores = [r["val_macro_f1"] for r in info["trials"] if r["val_macro_f1"] is not None]
    assert info["best"]["val_macro_f1"] == max(s for r, s in zip(info["trials"], scores) if r["completed"])
    client = mlflow.MlflowClient(tracking.tracking_uri())
    artifacts = {a.path for a in client.list_artifacts(info["mlflow_parent_run_id"], "figures")}
    assert "figures/parallel_coordinates.png" in artifacts
    again = runner.invoke(app, ["tune", "classifier", str(tiny_clips), "--out", str(out), *TINY])
    assert again.exit_code == 1 and "already exists" in again.exception.message


@pytest.mark.slow
def test_killed_campaign_resumes_without_rerunning_finished_trials(ray_local, tiny_clips, stores):
    """Slow: a campaign started, SIGKILLed after its first trial, resumed."""
    out = stores / "out"
    args = ["tune", "classifier", str(tiny_clips), "--out", str(out), "--samples", "3", "--max-concurrent", "1",
            "--scheduler", "fifo", *TINY, "--set", "classifier.epochs=1"]
    env = {**os.environ, "ACTIONOPS_MLRUNS": str(stores / "mlruns"), "ACTIONOPS_STORAGE": str(stores / "ray_results")}
    proc = subprocess.Popen([sys.executable, "-m", "actionops.cli.main", *args], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    campaign = out / "tune" / f"tune-clip-classification-{tiny_clips.name}"
    deadline = time.time() + 400
    finished: dict[Path, float] = {}
    while time.time() < deadline and proc.poll() is None:
        finished = {p: p.stat().st_mtime for p in campaign.glob("trial_*/classifier.pt")
                    if (p.parent / "trial_result.json").is_file()}
        if finished:
            break
        time.sleep(1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert finished, "no trial finished before the deadline"
    time.sleep(3)  # let the killed driver's Ray processes go
    result = runner.invoke(app, [*args, "--resume", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert len(info["trials"]) == 3 and all(r["completed"] for r in info["trials"])
    for path, mtime in finished.items():  # finished trials were not run again
        assert path.stat().st_mtime == mtime
    names = [r.info.run_name for r in _children(info["mlflow_parent_run_id"])]
    for path in finished:
        assert names.count("trial-" + path.parent.name.removeprefix("trial_")) == 1


def test_parallel_coordinates_draw_categorical_parameters_as_named_axes(recwarn):
    """A `choice` of strings (the shipped space's clip_input) was an all-NaN axis: no line crossed it."""
    import matplotlib

    matplotlib.use("Agg")
    from actionops.evaluation.plots import parallel_coordinates_figure

    rows = [{"params": {"classifier.lr": 1e-4, "classifier.clip_input": "flow"}, "val_macro_f1": 0.9},
            {"params": {"classifier.lr": 3e-3, "classifier.clip_input": "rgb_diff"}, "val_macro_f1": 0.6},
            {"params": {"classifier.lr": 1e-3, "classifier.clip_input": "flow"}, "val_macro_f1": 0.8}]
    fig = parallel_coordinates_figure(rows, ["classifier.lr", "classifier.clip_input"], "val_macro_f1")
    ax = fig.axes[0]
    texts = {t.get_text() for t in ax.texts}
    assert {"flow", "rgb_diff"} <= texts  # the categories name their places on the axis
    ys = [tuple(line.get_ydata()) for line in ax.lines if len(line.get_ydata()) == 3]
    assert sorted(y[1] for y in ys) == [0.0, 0.0, 1.0]  # flow (index 0) twice, rgb_diff once
    assert not [w for w in recwarn if "All-NaN" in str(w.message)]
