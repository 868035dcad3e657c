"""Resume, not restart: a training process SIGKILLed after its first checkpoint and continued with
`--resume` runs only the remaining epochs, keeps one continuous MLflow metric series (same run,
no step twice) and ends with the weights of an uninterrupted run with the same seed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import torch

from conftest import tiny_cfg

EPOCHS = 8


def _train(data: Path, out: Path, env: dict, *extra: str) -> subprocess.Popen:
    args = [sys.executable, "-m", "actionops.cli.main", "train", "autoencoder", str(data), "--out", str(out),
            "--datatype", "frame", *tiny_cfg("individual-clustering"), "--set", f"autoencoder.epochs={EPOCHS}",
            "--set", "train.max_failures=0", *extra]
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # its own process group: the kill takes Ray with it


def test_sigkilled_training_resumes_remaining_epochs_into_the_same_run(tmp_path):
    from actionops.pipelines.method import get_method

    data = get_method("individual-clustering").sample(tmp_path / "data", 3)
    storage = tmp_path / "ray_results"
    env = {**os.environ, "ACTIONOPS_MLRUNS": str(tmp_path / "mlruns"), "ACTIONOPS_STORAGE": str(storage),
           "RAY_AUTH_MODE": "disabled"}
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("RAY_ADDRESS", None)

    killed = _train(data, tmp_path / "killed", env)
    deadline = time.time() + 240
    while time.time() < deadline and killed.poll() is None:
        if list(storage.glob("ae-frame-*/checkpoint_*/state.pt")):
            break
        time.sleep(0.05)
    assert killed.poll() is None, f"training ended before it could be killed: {killed.stderr.read()[-2000:]}"
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait(timeout=60)
    assert not (tmp_path / "killed" / "ae_frame.pt").exists()  # it really died mid-run

    resumed = _train(data, tmp_path / "killed", env, "--resume", "--json")
    stdout, stderr = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, stderr[-3000:]
    summary = json.loads(stdout)
    done_before = EPOCHS - summary["reported_epochs"]
    assert summary["epochs"] == EPOCHS and 1 <= done_before < EPOCHS, summary  # finished epochs were not re-run

    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("individual-clustering")
    runs = client.search_runs([experiment.experiment_id])
    assert [r.info.run_id for r in runs] == [summary["mlflow_run_id"]]  # the resumed run continued the killed one
    steps = [m.step for m in client.get_metric_history(summary["mlflow_run_id"], "loss")]
    assert steps == list(range(1, EPOCHS + 1)), steps  # one continuous series, no step twice
    assert runs[0].info.status == "FINISHED"

    straight = _train(data, tmp_path / "straight", env, "--json")
    _, stderr = straight.communicate(timeout=600)
    assert straight.returncode == 0, stderr[-3000:]
    a = torch.load(tmp_path / "killed" / "ae_frame.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "straight" / "ae_frame.pt", weights_only=True)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), "resumed weights differ from a straight run"


def test_resume_with_nothing_to_resume_is_a_clear_error(tmp_path):
    env = {**os.environ, "ACTIONOPS_MLRUNS": str(tmp_path / "mlruns"), "ACTIONOPS_STORAGE": str(tmp_path / "rr")}
    from actionops.pipelines.method import get_method

    data = get_method("individual-clustering").sample(tmp_path / "data", 3)
    proc = _train(data, tmp_path / "out", env, "--resume")
    _, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 1 and "nothing to resume" in stderr and "Traceback" not in stderr
