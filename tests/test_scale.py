"""Beyond one machine (issue #19): a real multi-node Ray cluster on loopback (a head and two worker
nodes, each its own raylet and object store: `ray.cluster_utils.Cluster`) that the CLI joins by
address as a user would, and a real `mlflow server` process on loopback that the driver and the
Ray Train workers log to through MLFLOW_TRACKING_URI. (Tune across nodes and the fault rows that
kill nodes are not built yet; see README "Faults".)"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from typer.testing import CliRunner

from actionops.cli.main import app
from conftest import MlflowServer, tiny_cfg, use_stores


def _sequences(folder, seed: int = 0, per_class: int = 3, frames: int = 60) -> None:
    """Two classes of 2-channel sines (slow / fast), `per_class` sequences each, as .npy files."""
    rng = np.random.default_rng(seed)
    for label, freq in (("slow", 0.05), ("fast", 0.2)):
        (folder / "train" / label).mkdir(parents=True)
        for i in range(per_class):
            t = np.arange(frames) + rng.uniform(0, 10)
            wave = np.stack([np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t)], 1)
            np.save(folder / "train" / label / f"{i}.npy", wave.astype(np.float32))


def _cli(args: list[str], env: dict, timeout: int = 600) -> dict:
    """An `actionops` command in its own process (as a user runs it); its --json output."""
    done = subprocess.run([os.path.join(os.path.dirname(sys.executable), "actionops"), *args, "--json"],
                          capture_output=True, text=True, env=env, timeout=timeout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(done.stdout)


def _cluster_env(cluster, tmp_path) -> dict:
    """The environment of an `actionops` process joining `cluster`, its storage a local folder
    standing for NFS, its MLflow store embedded under tmp_path."""
    env = {**os.environ, "RAY_ADDRESS": cluster.address, "ACTIONOPS_MLRUNS": str(tmp_path / "mlruns"),
           "ACTIONOPS_STORAGE": str(tmp_path / "shared" / "ray_results")}
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


@pytest.fixture(scope="module")
def loopback_cluster():
    """A head (1 CPU) and two worker nodes (1 CPU each), every one a separate raylet process."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, connect=False, head_node_args={"num_cpus": 1})
    nodes = [cluster.add_node(num_cpus=1) for _ in range(2)]
    cluster.wait_for_nodes()
    yield cluster, nodes
    cluster.shutdown()


@pytest.mark.slow  # ~2 min: three raylets, index + flow + a 2-worker fit across them
def test_index_flow_and_a_two_node_fit_on_a_loopback_cluster(loopback_cluster, or_scenes, tmp_path):
    cluster, _ = loopback_cluster
    env = _cluster_env(cluster, tmp_path)
    out = tmp_path / "derived"
    indexed = _cli(["data", "index", str(or_scenes), "--out", str(out / "m.parquet"), "--flow-dir", str(out / "flow")], env)
    assert indexed["videos"] == 3
    flow = _cli(["flow", "compute", str(out / "m.parquet"), "--method", "dis"], env)
    assert flow["videos"] == 3 and not flow["failed"] and len(list((out / "flow").rglob("*.npy"))) == 3
    _sequences(tmp_path / "seqs")
    epochs = 3
    trained = _cli(["train", "sequences", str(tmp_path / "seqs"), "--out", str(tmp_path / "out"),
                    *tiny_cfg("sequence-clustering"), "--set", f"sequences.epochs={epochs}",
                    "--set", "train.num_workers=2", "--set", "train.placement_strategy=STRICT_SPREAD"], env)
    assert trained["epochs"] == epochs
    workers = trained["workers"]
    assert [w["rank"] for w in workers] == [0, 1]
    assert len({w["node_id"] for w in workers}) == 2  # one worker per node: DDP (gloo) between two raylets
    history = json.loads((tmp_path / "out" / "history_seq2seq.json").read_text())
    assert history[-1]["loss"] < history[0]["loss"]  # the two workers trained one model together


@pytest.mark.slow  # ~2 min: two trials, each a 2-worker fit spread over two raylets
def test_a_campaign_runs_its_trials_across_the_nodes(loopback_cluster, tmp_path):
    from pathlib import Path

    cluster, _ = loopback_cluster
    env = _cluster_env(cluster, tmp_path)
    storage = tmp_path / "shared" / "ray_results"
    _sequences(tmp_path / "seqs")
    result = _cli(["tune", "sequences", str(tmp_path / "seqs"), "--samples", "2", "--max-concurrent", "2",
                   "--scheduler", "fifo", "--out", str(tmp_path / "tune"), *tiny_cfg("sequence-clustering"),
                   "--set", "sequences.epochs=2", "--set", "train.num_workers=2",
                   "--set", "train.placement_strategy=STRICT_SPREAD"], env)
    assert len(result["trials"]) == 2
    runs: dict[Path, list[str]] = {}
    for record in storage.rglob("workers/rank-*.json"):
        runs.setdefault(record.parent, []).append(json.loads(record.read_text())["node_id"])
    assert len(runs) == 2, sorted(runs)  # one Train run per trial, each recorded where its workers ran
    assert all(len(set(nodes)) == 2 for nodes in runs.values())  # every trial spans two raylets
    assert len({n for nodes in runs.values() for n in nodes}) >= 2


@pytest.mark.slow  # ~50 s: two trainings; make test must stay within 12 minutes on a clean clone
def test_checkpoints_and_resume_on_a_pyarrow_filesystem_uri(ray_local, tmp_path, monkeypatch):
    """`train.storage_path` as a URI that pyarrow resolves (file:// here, standing for NFS; s3://,
    gs:// alike): Ray Train's checkpoints, the run pointers and the worker records land there, and
    `--resume` finds the run through it and continues the same MLflow run."""
    import mlflow

    use_stores(monkeypatch, tmp_path)
    store = tmp_path / "shared store"  # a space: the URI is percent-decoded by pyarrow
    uri = "file://" + str(store).replace(" ", "%20")
    _sequences(tmp_path / "seqs")
    args = ["train", "sequences", str(tmp_path / "seqs"), "--out", str(tmp_path / "out"), *tiny_cfg("sequence-clustering"),
            "--set", f"train.storage_path={uri}", "--json"]
    first = CliRunner().invoke(app, [*args, "--set", "sequences.epochs=2"])
    assert first.exit_code == 0, first.output
    summary = json.loads(first.stdout)
    assert summary["workers"] and summary["workers"][0]["rank"] == 0  # read back through the URI
    assert list(store.glob("seq2seq-*/checkpoint_*/state.pt")) and list(store.glob(".seq2seq-*.latest"))
    assert not (tmp_path / "ray_results").exists()  # nothing went to the default storage
    resumed = CliRunner().invoke(app, [*args, "--set", "sequences.epochs=4", "--resume"])
    assert resumed.exit_code == 0, resumed.output
    again = json.loads(resumed.stdout)
    assert again["epochs"] == 4 and again["reported_epochs"] == 2  # epochs 1-2 came from the checkpoint
    assert again["mlflow_run_id"] == summary["mlflow_run_id"]
    steps = [m.step for m in mlflow.MlflowClient().get_metric_history(again["mlflow_run_id"], "loss")]
    assert sorted(steps) == [1, 2, 3, 4]


@pytest.fixture()
def mlflow_server(tmp_path):
    """`mlflow server` on 127.0.0.1 only, with its own SQLite backend and artifact root."""
    server = MlflowServer(tmp_path)
    server.start()
    yield server.url, server.port
    server.stop()


@pytest.mark.slow  # ~1 min: a server process and a short training
def test_runs_metrics_models_and_aliases_land_in_an_mlflow_server(ray_local, mlflow_server, tmp_path, monkeypatch):
    import mlflow

    url, port = mlflow_server
    use_stores(monkeypatch, tmp_path / "local")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    _sequences(tmp_path / "seqs")
    epochs = 4
    result = CliRunner().invoke(app, ["train", "sequences", str(tmp_path / "seqs"), "--out", str(tmp_path / "out"),
                                      *tiny_cfg("sequence-clustering"), "--set", f"sequences.epochs={epochs}", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    client = mlflow.MlflowClient(tracking_uri=url, registry_uri=url)
    run = client.get_run(summary["mlflow_run_id"])
    assert run.info.status == "FINISHED"
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "loss")]
    assert sorted(steps) == list(range(1, epochs + 1))  # every epoch, logged by the Ray Train worker, once
    version = client.get_model_version_by_alias("sequence-seq2seq", "candidate")
    assert version.run_id == run.info.run_id
    assert not (tmp_path / "local" / "mlruns" / "mlflow.db").exists()  # nothing went to the embedded store
    others = {a for *_, (a, *_) in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)} - {"127.0.0.1"}
    for address in others:  # bound to loopback only: other interfaces of this machine are refused
        if not address.startswith("127."):
            with pytest.raises(OSError), socket.create_connection((address, port), timeout=2):
                pass


@pytest.mark.slow  # ~3 min; last in the module: it kills one of the cluster's nodes
def test_a_fit_survives_a_worker_nodes_raylet_killed(loopback_cluster, tmp_path):
    import mlflow

    cluster, nodes = loopback_cluster
    env = _cluster_env(cluster, tmp_path)
    storage = tmp_path / "shared" / "ray_results"
    _sequences(tmp_path / "seqs", seed=1, per_class=10, frames=300)  # epochs of a second or two
    epochs = 30
    proc = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "actionops"), "train", "sequences", str(tmp_path / "seqs"),
         "--out", str(tmp_path / "out"), *tiny_cfg("sequence-clustering"), "--set", f"sequences.epochs={epochs}",
         "--set", "train.num_workers=2", "--set", "train.placement_strategy=STRICT_SPREAD",
         "--set", "train.max_failures=3", "--json"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and not list(storage.rglob("checkpoint_*")):  # its first checkpoints
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        time.sleep(0.5)
    records = list(storage.rglob("workers/rank-*.json"))
    used = {json.loads(p.read_text())["node_id"] for p in records}
    victim = next(n for n in nodes if n.node_id in used)  # a worker node (not the head) holding a worker
    victim.kill_raylet()
    try:
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    cluster.remove_node(victim, allow_graceful=False)
    assert proc.returncode == 0, out[-2000:] + err[-3000:]
    # Ray's notice of the dead raylet reaches stdout before our JSON (it bypasses log_to_driver)
    summary = json.loads(out if out.startswith("{") else out[out.index("\n{") + 1:])
    assert summary["epochs"] == epochs
    assert victim.node_id not in {w["node_id"] for w in summary["workers"]}  # restarted on the surviving nodes
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    steps = sorted(m.step for m in client.get_metric_history(summary["mlflow_run_id"], "loss"))
    assert steps == list(range(1, epochs + 1))  # every epoch once in MLflow, none twice after the restart
    assert client.get_run(summary["mlflow_run_id"]).info.status == "FINISHED"
