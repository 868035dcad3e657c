"""Resume, not restart: a training process SIGKILLed after its first checkpoints and continued
with `--resume` runs only the remaining epochs, keeps one continuous MLflow metric series (same
run, no step twice) and ends with the weights of an uninterrupted run with the same seed (the
session's pipeline run of the same config on the same data)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import mlflow
import pytest
import torch
from typer.testing import CliRunner

from actionops.cli.main import app
from conftest import tiny_cfg, use_stores

METHOD = "individual-clustering"


@pytest.mark.slow  # 80 s: a real process group SIGKILLed and a second CLI run
def test_sigkilled_training_resumes_remaining_epochs_into_the_same_run(method_runs, tmp_path, monkeypatch):
    run = method_runs(METHOD)  # its autoencoder_frame stage is the uninterrupted run
    epochs = run["ctx"].cfg.autoencoder.epochs
    assert epochs >= 4, "the tiny config needs room to kill after checkpoints and before the end"
    storage = tmp_path / "ray_results"
    env = {**os.environ, "ACTIONOPS_MLRUNS": str(tmp_path / "mlruns"), "ACTIONOPS_STORAGE": str(storage),
           "RAY_AUTH_MODE": "disabled"}
    for key in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS"):
        env.pop(key, None)
    args = ["train", "autoencoder", str(run["data"]), "--out", str(tmp_path / "out"), "--datatype", "frame",
            *tiny_cfg(METHOD), "--set", "train.max_failures=0"]
    killed = subprocess.Popen([sys.executable, "-m", "actionops.cli.main", *args], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, start_new_session=True)  # its own group: Ray dies with it
    deadline = time.time() + 300
    while time.time() < deadline and killed.poll() is None:
        if len(list(storage.glob("ae-frame-*/checkpoint_*/state.pt"))) >= 2:  # epoch 1's checkpoint is registered
            break
        time.sleep(0.02)
    assert killed.poll() is None, f"training ended before it could be killed: {killed.stderr.read()[-2000:]}"
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait(timeout=60)
    assert not (tmp_path / "out" / "ae_frame.pt").exists()  # it really died mid-run

    use_stores(monkeypatch, tmp_path)
    resumed = CliRunner().invoke(app, [*args, "--resume", "--json"])
    assert resumed.exit_code == 0, resumed.output
    summary = json.loads(resumed.stdout)
    done_before = epochs - summary["reported_epochs"]
    assert summary["epochs"] == epochs and 1 <= done_before < epochs, summary  # finished epochs were not re-run

    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name(METHOD)
    runs = client.search_runs([experiment.experiment_id])
    assert [r.info.run_id for r in runs] == [summary["mlflow_run_id"]]  # the resumed run continued the killed one
    steps = [m.step for m in client.get_metric_history(summary["mlflow_run_id"], "loss")]
    assert steps == list(range(1, epochs + 1)), steps  # one continuous series, no step twice
    assert runs[0].info.status == "FINISHED"

    resumed_weights = torch.load(tmp_path / "out" / "ae_frame.pt", weights_only=True)["model"]
    straight = torch.load(run["out"] / "ae_frame.pt", weights_only=True)["model"]
    assert resumed_weights.keys() == straight.keys()
    assert all(torch.equal(resumed_weights[k], straight[k]) for k in straight), "resumed weights differ from a straight run"


def test_resume_with_nothing_to_resume_is_a_clear_error(tmp_path):
    from actionops.errors import ActionopsError
    from actionops.platform.train import previous_mlflow_run, resolve_run_name

    with pytest.raises(ActionopsError, match="nothing to resume for ae-frame-x") as info:
        resolve_run_name("ae-frame-x", str(tmp_path), resume=True)
    assert "without --resume" in info.value.hint
    fresh = resolve_run_name("ae-frame-x", str(tmp_path), resume=False)
    assert resolve_run_name("ae-frame-x", str(tmp_path), resume=True) == fresh  # --resume finds the last run

    class Cfg:
        storage_path = str(tmp_path)

    assert previous_mlflow_run("ae-frame-x", Cfg, resume=True) is None  # no MLflow run recorded for it yet
    (tmp_path / ".ae-frame-x.mlflow").write_text("abc123")
    assert previous_mlflow_run("ae-frame-x", Cfg, resume=True) == "abc123"
    assert previous_mlflow_run("ae-frame-x", Cfg, resume=False) is None
