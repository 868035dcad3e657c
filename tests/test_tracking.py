from __future__ import annotations

import mlflow
import numpy as np
import pytest
import torch

from actionops.platform import tracking


def test_default_store_is_sqlite_under_mlruns(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("ACTIONOPS_MLRUNS", raising=False)
    monkeypatch.chdir(tmp_path)
    assert tracking.tracking_uri() == f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    assert tracking.tracking_uri() == "http://mlflow.example:5000"


def test_checkpoint_model_round_trip_through_registry_alias(mlflow_store, tmp_path):
    """A checkpoint logged as a pyfunc model: params, metrics, tags, signature, alias, and the
    module rebuilt from the registry (weights only) gives the same outputs."""
    from actionops.models import create_model
    from actionops.models.checkpoint import build_from_checkpoint, infer_numpy, save_checkpoint
    from actionops.pipelines.spine import register_checkpoint

    torch.manual_seed(0)
    args = {"num_classes": 3, "num_frames": 2, "image_size": 16, "patch": 8, "dim": 16, "spatial_depth": 1,
            "temporal_depth": 1, "heads": 2}
    model = create_model("vivit_tiny", **args).eval()
    path = save_checkpoint(tmp_path / "tiny.pt", {"model_name": "vivit_tiny", "model_args": args, "model": model.state_dict()})
    example = {"clip": np.random.default_rng(0).standard_normal((2, 2, 3, 16, 16)).astype(np.float32)}
    with tracking.start_run("unit", run_name="rt", params={"a.b": 1, "a.c": None},
                            config_yaml="a:\n  b: 1\n", dataset_version="abc123") as run:
        tracking.log_metrics({"loss": 0.5, "note": "skipped"}, step=0)
        version = register_checkpoint(path, example, "tiny", {"why": "test"})
    assert version == "1"
    # the store is where we said, with artifacts beside it
    assert (mlflow_store / "mlflow.db").is_file() and (mlflow_store / "artifacts").is_dir()
    stored = mlflow.get_run(run.info.run_id)
    assert stored.data.params == {"a.b": "1", "a.c": "null"}
    assert stored.data.metrics == {"loss": 0.5}
    assert stored.data.tags["actionops.dataset_version"] == "abc123"
    assert str(tracking.version_by_alias("tiny", "candidate").version) == "1"
    assert tracking.version_by_alias("tiny", "champion") is None
    pyfunc = mlflow.pyfunc.load_model("models:/tiny@candidate")
    assert pyfunc.metadata.signature is not None
    batch = {"clip": np.random.default_rng(1).standard_normal((3, 2, 3, 16, 16)).astype(np.float32)}
    expected = infer_numpy(model, batch)
    np.testing.assert_allclose(pyfunc.predict(batch), expected, rtol=1e-5, atol=1e-5)
    rebuilt = build_from_checkpoint(tracking.load_checkpoint_state("models:/tiny@candidate"))
    np.testing.assert_allclose(infer_numpy(rebuilt, batch), expected, rtol=1e-6, atol=1e-6)

    tracking.set_alias("tiny", "champion", 1)
    assert tracking.version_by_alias("tiny", "champion").tags["why"] == "test"
    rows = tracking.list_registered_models()
    assert rows == [{"name": "tiny", "latest_version": 1, "versions": 1,
                     "aliases": {"candidate": "1", "champion": "1"}}]


def test_experiment_created_once(mlflow_store):
    first = tracking.ensure_experiment("same")
    assert tracking.ensure_experiment("same") == first


def test_loading_unknown_model_is_a_clear_error(mlflow_store):
    from actionops.errors import ActionopsError

    with pytest.raises(ActionopsError, match="models:/nope@champion"):
        tracking.load_checkpoint_state("models:/nope@champion")


@pytest.mark.slow  # ~16 s: four processes
def test_dataset_input_logged_by_four_processes_at_once(mlflow_store, tmp_path):
    """Four processes log the same dataset input at the same moment (as four Tune trials did);
    none may fail with a UNIQUE-constraint race on the SQLite store."""
    import subprocess
    import sys
    import time

    dataset = tmp_path / "clips"
    dataset.mkdir()
    tracking.ensure_experiment("inputs")
    start = time.time() + 3  # every process waits for this instant, then logs
    code = (
        "import sys, time\n"
        "from actionops.platform import tracking\n"
        "with tracking.start_run('inputs', run_name=sys.argv[1]):\n"
        "    time.sleep(max(0.0, float(sys.argv[2]) - time.time()))\n"
        "    tracking.log_dataset_input(sys.argv[3], 'md5-abc', context='training')\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, f"trial-{i}", str(start), str(dataset)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(4)]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    assert all(rc == 0 for rc, _ in results), [err[-800:] for rc, err in results if rc]
    runs = mlflow.search_runs(experiment_names=["inputs"], output_format="list")
    assert len(runs) == 4 and all(len(r.inputs.dataset_inputs) == 1 for r in runs)


def test_secrets_never_reach_the_store(mlflow_store):
    import mlflow

    params = {"auth.api_key": "abc123", "ray.auth_token": "tok", "db.password": "pw", "train.epochs": 3,
              "tracking.uri": "http://alice:hunter2@mlflow:5000", "data.path": "/data/clips"}
    config = "auth:\n  api_key: abc123\ntracking:\n  uri: https://alice:hunter2@host/x\ntrain:\n  epochs: 3\n"
    with tracking.start_run("secrets", params=params, config_yaml=config) as run:
        pass
    logged = mlflow.MlflowClient().get_run(run.info.run_id).data.params
    assert logged["auth.api_key"] == logged["ray.auth_token"] == logged["db.password"] == "[redacted]"
    assert logged["train.epochs"] == "3" and logged["data.path"] == "/data/clips"
    assert logged["tracking.uri"] == "http://[redacted]@mlflow:5000"
    text = mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/config.yaml")
    assert "abc123" not in text and "hunter2" not in text and "epochs: 3" in text and "api_key: [redacted]" in text


def test_an_unreachable_tracking_server_is_buffered_then_named(mlflow_store, monkeypatch):
    """EpochLogger on a worker keeps training when the server cannot be reached (one warning naming
    it; the rows stay for the next call, which writes every missing step once); the driver's
    sync raises, and the CLI turns that into one line naming the server. (The real outage, a
    server process killed and restarted mid-run, is tests/test_faults.py, slow.)"""
    import socket

    from mlflow.entities import Metric  # noqa: F401  (the client the logger uses is MLflow's own)

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    run_id = mlflow.MlflowClient().create_run(tracking.ensure_experiment("outage")).info.run_id
    history = [{"epoch": 1, "loss": 2.0}, {"epoch": 2, "loss": 1.5}]
    down = tracking.EpochLogger(run_id, dead)
    with pytest.warns(RuntimeWarning, match=f"MLflow tracking server {dead} is unreachable"):
        down.log(history)  # tolerated: no exception
    with pytest.raises(Exception) as info:
        down.log(history, tolerate=False)
    assert tracking.unreachable_server(info.value) == "connection refused"
    assert tracking.unreachable_server(ValueError("a bad metric name")) is None
    back = tracking.EpochLogger(run_id, tracking.tracking_uri())  # the server is back: the same history
    back.log(history[:1])
    back.log(history)  # writes only what the store lacks
    steps = sorted(m.step for m in mlflow.MlflowClient().get_metric_history(run_id, "loss"))
    assert steps == [1, 2]


def test_the_cli_names_an_unreachable_tracking_server(tmp_path):
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": dead, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}
    done = subprocess.run([os.path.join(os.path.dirname(sys.executable), "actionops"), "registry", "list"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert done.returncode == 1
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: cannot reach the MLflow tracking server at {dead}"), done.stderr
