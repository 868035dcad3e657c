"""Faults from the outside world (issue #19), each with real processes and a real device: an output
disk that fills up (a small tmpfs mounted in a private mount namespace of its own: `unshare`, no
root needed where user namespaces are allowed; skipped where they are not) and a real MLflow
tracking server stopped in the middle of a training run (slow)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from actionops.cli.main import app

ACTIONOPS = os.path.join(os.path.dirname(sys.executable), "actionops")
# mount a tmpfs of $1 bytes over $2, run the command, then copy what the tmpfs holds to $3 (the
# mount vanishes with the namespace), exit with the command's status
IN_SMALL_DISK = 'mount -t tmpfs -o size="$1" tmpfs "$2" || exit 97; d="$2"; k="$3"; shift 3; "$@"; rc=$?; ' \
                'mkdir -p "$k"; cp -a "$d"/. "$k"/; exit $rc'


def _can_mount_tmpfs() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
                            "mount -t tmpfs -o size=64k tmpfs /tmp"], capture_output=True)
    return probe.returncode == 0


needs_tmpfs = pytest.mark.skipif(not _can_mount_tmpfs(), reason="no unprivileged mount namespaces here (unshare)")


def _on_small_disk(size: str, folder: Path, kept: Path, argv: list[str], env: dict) -> subprocess.CompletedProcess:
    folder.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", IN_SMALL_DISK, "sh",
                           size, str(folder), str(kept), *argv], capture_output=True, text=True, env=env, timeout=600)


def _env(tmp_path: Path) -> dict:
    env = {**os.environ, "ACTIONOPS_MLRUNS": str(tmp_path / "mlruns"), "ACTIONOPS_STORAGE": str(tmp_path / "ray_results")}
    for key in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS"):
        env.pop(key, None)
    return env


@needs_tmpfs
@pytest.mark.slow  # ~40 s: two CLI processes with their own Ray; make test keeps the one-line fault checks
def test_a_full_output_disk_is_one_line_and_leaves_nothing_half_written(or_scenes, tmp_path):
    """Flow onto a 3 MB tmpfs (each video's flow is 1.3 MB): the run stops with one line naming the
    file it could not write; what the disk holds is whole (every .npy loads, every finished video
    has its sidecar, no temporary); with space again, the same command finishes only what is left.
    And a manifest written to a full disk: one line naming it, nothing left."""
    flow_dir = tmp_path / "flow"
    runner = CliRunner()
    indexed = runner.invoke(app, ["data", "index", str(or_scenes), "--out", str(tmp_path / "m.parquet"),
                                  "--flow-dir", str(flow_dir), "--json"])
    assert indexed.exit_code == 0, indexed.output
    kept = tmp_path / "kept"
    done = _on_small_disk("3m", flow_dir, kept, [ACTIONOPS, "flow", "compute", str(tmp_path / "m.parquet"), "--method", "dis"],
                          _env(tmp_path))
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    errors = [ln for ln in done.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and f"no space left writing {flow_dir}" in errors[0] and "rerun the same command" in errors[0], \
        done.stderr[-2000:]
    left = sorted(p for p in kept.rglob("*") if p.is_file())
    assert not [p for p in left if ".tmp" in p.name], left  # no temporary survived
    finished = [p for p in left if p.suffix == ".npy" and ".part-" not in p.name]
    assert len(finished) < 3  # the disk really filled up
    for path in (p for p in left if p.suffix == ".npy"):
        assert np.load(path).shape[1:] == (72, 96, 2)  # whole: a truncated file would not load
    for path in finished:
        assert path.with_suffix(".json").is_file()
    # space again (the kept files put back on an ordinary disk): only what is missing is computed
    shutil.copytree(kept, flow_dir, dirs_exist_ok=True)
    again = runner.invoke(app, ["flow", "compute", str(tmp_path / "m.parquet"), "--method", "dis", "--json"])
    assert again.exit_code == 0, again.output
    report = json.loads(again.stdout)
    assert report["skipped_up_to_date"] == len(finished) and report["videos"] == 3 - len(finished) and not report["failed"]

    manifest_disk = tmp_path / "manifests"
    done = _on_small_disk("4k", manifest_disk, tmp_path / "kept2",
                          [ACTIONOPS, "data", "index", str(or_scenes), "--out", str(manifest_disk / "m.parquet")],
                          _env(tmp_path))
    assert done.returncode == 1
    errors = [ln for ln in done.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and f"no space left writing {manifest_disk / 'm.parquet'}" in errors[0], done.stderr[-2000:]
    assert not list((tmp_path / "kept2").iterdir())  # neither the manifest nor its temporary


def _runs(client, experiment: str) -> list:
    found = client.get_experiment_by_name(experiment)
    return client.search_runs([found.experiment_id]) if found else []


def _loss_steps(client, run_id: str) -> list[int]:
    return sorted(m.step for m in client.get_metric_history(run_id, "loss"))


def _wait(condition, timeout: float, what: str, proc=None) -> None:
    import time

    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the run ended before {what}: {proc.communicate()[1][-3000:]}")
        try:
            if condition():
                return
        except Exception:  # the server is starting or stopped: ask again
            pass
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow  # ~5 min: a server started three times and three trainings in their own processes
@pytest.mark.timeout(1500)
def test_an_mlflow_server_stopped_mid_run_loses_no_epoch(tmp_path):
    """(a) stopped and restarted while the run trains: the worker keeps training, the epochs it
    could not write stay in the checkpoint's history and reach the server when it is back; the
    run ends FINISHED with every step once. (b) stopped until the end: the command fails with one
    line naming the server, the checkpoints stay, and `--resume` with the server back writes the
    missing steps and finishes the run without training again."""
    import signal
    import subprocess as sp

    import mlflow

    from conftest import MlflowServer, tiny_cfg
    from test_scale import _sequences

    server = MlflowServer(tmp_path)
    server.start()
    client = mlflow.MlflowClient(tracking_uri=server.url)
    env = {**_env(tmp_path), "MLFLOW_TRACKING_URI": server.url,
           "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0"}
    _sequences(tmp_path / "seqs", seed=1, per_class=10, frames=300)
    storage = tmp_path / "ray_results"

    def train(out: str, epochs: int, *extra: str) -> sp.Popen:
        return sp.Popen([ACTIONOPS, "train", "sequences", str(tmp_path / "seqs"), "--out", str(tmp_path / out),
                         *tiny_cfg("sequence-clustering"), "--set", f"sequences.epochs={epochs}", *extra, "--json"],
                        env=env, stdout=sp.PIPE, stderr=sp.PIPE, text=True, start_new_session=True)

    def checkpoints(out: str) -> int:
        """Epochs done by the run writing to `out`, from its newest checkpoint."""
        import torch

        done = 0
        for path in storage.glob(f"seq2seq-{out}-*/checkpoint_*/state.pt"):
            try:
                done = max(done, int(torch.load(path, weights_only=True)["epoch"]))
            except Exception:  # being written or rotated away
                pass
        return done

    try:
        # (a) stopped for a few epochs, then back while the run still trains
        epochs = 45  # ~2 s each on 2 shared cores: the run outlasts the stop and the restart (~15 s)
        proc = train("a", epochs)
        _wait(lambda: any(len(_loss_steps(client, r.info.run_id)) >= 2 for r in _runs(client, "sequence-clustering")),
              300, "two epochs in the server", proc)
        server.stop(kill=True)
        stopped_at = checkpoints("a")
        _wait(lambda: checkpoints("a") >= stopped_at + 3, 300, "three epochs trained without the server", proc)
        server.start()
        assert proc.poll() is None, "the run ended before the server was back: give it more epochs"
        out, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err[-3000:]
        summary = json.loads(out[out.index("{"):])
        run = client.get_run(summary["mlflow_run_id"])
        assert run.info.status == "FINISHED"
        assert [m.step for m in sorted(client.get_metric_history(run.info.run_id, "loss"), key=lambda m: m.step)] \
            == list(range(1, epochs + 1))  # every epoch once, those of the outage included

        # (b) stopped until the end: one line naming the server, checkpoints kept, --resume finishes
        epochs = 6
        proc = train("b", epochs)
        _wait(lambda: any(r.info.run_id != summary["mlflow_run_id"] and _loss_steps(client, r.info.run_id)
                          for r in _runs(client, "sequence-clustering")),
              300, "an epoch of the second run in the server", proc)
        server.stop(kill=True)
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 1, out[-2000:] + err[-2000:]
        errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
        assert len(errors) == 1 and f"cannot reach the MLflow tracking server at {server.url}" in errors[0], err[-3000:]
        assert "--resume" in errors[0]
        assert checkpoints("b") == epochs  # every epoch's checkpoint is kept
        server.start()
        proc = train("b", epochs, "--resume")
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
        resumed = json.loads(out[out.index("{"):])
        assert resumed["reported_epochs"] == 0  # nothing trained again
        assert _loss_steps(client, resumed["mlflow_run_id"]) == list(range(1, epochs + 1))
        assert client.get_run(resumed["mlflow_run_id"]).info.status == "FINISHED"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        server.stop()
