"""DVC: dataset versions (data add / versions / checkout) and the repo's dvc.yaml, on a real DVC
in temporary git repositories; the MLflow input digest equals the DVC hash of the data."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from actionops.cli.main import app
from actionops.errors import ActionopsError
from actionops.platform import versioning

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()
GIT = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]


def _env(**extra: str) -> dict[str, str]:
    venv_bin = str(Path(sys.executable).parent)
    return {**os.environ, "DVC_NO_ANALYTICS": "1", "PATH": f"{venv_bin}:{os.environ['PATH']}", **extra}


def _sh(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, cwd=cwd, env=_env(**env), capture_output=True, text=True)
    assert proc.returncode == 0, f"{args} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def _dvc(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return _sh([sys.executable, "-m", "dvc", *args], cwd, **env)


def _git_dvc_repo(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    _sh(["git", "init", "-q"], path)
    _dvc(["init", "-q"], path)
    _dvc(["config", "core.analytics", "false"], path)
    return path


def _digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def said(result) -> str:
    """What the user sees of a CLI failure: the error's message and hint (main() prints them)."""
    exc = result.exception
    return f"{exc.message} (hint: {exc.hint})" if isinstance(exc, ActionopsError) else result.output


def _synth_clips(out: Path, videos: int = 4, seed: int = 0) -> None:
    result = runner.invoke(app, ["data", "synth", str(out), "--kind", "clips", "--videos", str(videos), "--frames", "8",
                                 "--width", "48", "--height", "32", "--seed", str(seed), "--json"])
    assert result.exit_code == 0, result.output


# ----------------------------------------------------------------------------- packing
def test_pack_is_deterministic_and_unpacks_to_the_same_files(tmp_path):
    frames = tmp_path / "ds" / "cam1" / "frames"
    frames.mkdir(parents=True)
    for i in range(12):
        (frames / f"{i:05d}.jpg").write_bytes(bytes([i]) * (100 + i))
    (tmp_path / "ds" / "cam1" / "meta.txt").write_text("not a frame")
    found = versioning.frame_folders(tmp_path / "ds", threshold=10)
    assert found == [frames]
    assert versioning.frame_folders(tmp_path / "ds", threshold=13) == []
    first = versioning.pack_folder(frames).read_bytes()
    os.utime(frames / "00003.jpg", (1, 1))  # a different mtime must not change the bytes
    assert versioning.pack_folder(frames).read_bytes() == first
    before = _digests(frames)
    shutil.rmtree(frames)
    versioning.unpack_folder(frames.with_name("frames.tar"))
    assert _digests(frames) == before


# ----------------------------------------------------------------------------- data add / versions / checkout
def test_data_add_new_version_checkout_restores_bytes(tmp_path, monkeypatch):
    repo = _git_dvc_repo(tmp_path / "proj")
    remote = tmp_path / "remote"
    monkeypatch.setenv("ACTIONOPS_DVC_REMOTE", str(remote))
    monkeypatch.chdir(repo)
    data = repo / "data" / "clips"
    _synth_clips(data)
    frames = data / "frames"
    frames.mkdir()
    for i in range(5):
        (frames / f"{i}.png").write_bytes(b"png" * (i + 1))

    added = runner.invoke(app, ["data", "add", "data/clips", "--pack-threshold", "5", "--note", "first", "--json"])
    assert added.exit_code == 0, added.output
    v1 = json.loads(added.output)
    assert v1["version"] == "v1" and v1["new"] and v1["md5"].endswith(".dir") and v1["packed"] == ["frames"]
    assert v1["remote"] == "actionops-env" and any(remote.rglob("*")), "nothing pushed to the remote"
    assert versioning.dataset_version(data) == v1["md5"]
    assert (data / "frames.tar").is_file() and "/data/clips/frames/" in (repo / ".dvcignore").read_text()
    v1_files = _digests(data)

    again = runner.invoke(app, ["data", "add", "data/clips", "--json"])
    assert json.loads(again.output)["version"] == "v1" and not json.loads(again.output)["new"]

    # change one video -> a new version with another hash
    video = sorted(data.rglob("*.mp4"))[0]
    _synth_clips(tmp_path / "other", seed=7)
    shutil.copy(sorted((tmp_path / "other").rglob("*.mp4"))[0], video)
    (frames / "0.png").write_bytes(b"changed frame")
    v2 = json.loads(runner.invoke(app, ["data", "add", "data/clips", "--json"]).output)
    assert v2["version"] == "v2" and v2["md5"] != v1["md5"]

    listed = json.loads(runner.invoke(app, ["data", "versions", "clips", "--json"]).output)
    assert [v["version"] for v in listed["versions"]] == ["v1", "v2"]
    assert [v["current"] for v in listed["versions"]] == [False, True] and not listed["modified"]
    assert listed["versions"][0]["note"] == "first"

    # back to v1 from the cache: every byte as it was, packed frames unpacked again
    out = runner.invoke(app, ["data", "checkout", "clips@v1", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["source"] == "cache"
    assert _digests(data) == v1_files

    # an edit inside a packed frame folder (DVC sees only the tar) is found before anything is removed
    (frames / "1.png").write_bytes(b"edited, never added")
    listed = json.loads(runner.invoke(app, ["data", "versions", "clips", "--json"]).output)
    assert listed["modified"] is True and any("frames/" in e for e in listed["edits"])
    refused = runner.invoke(app, ["data", "checkout", "clips@v2"])
    assert refused.exit_code == 1 and "clips/frames/: edited since it was packed" in said(refused)
    assert (frames / "1.png").read_bytes() == b"edited, never added"  # nothing lost
    (frames / "1.png").write_bytes(b"png" * 2)  # back as recorded
    # an edit in no version is not thrown away without --force
    (data / "train.csv").write_text("path,label\n")
    refused = runner.invoke(app, ["data", "checkout", "clips@v2"])
    assert refused.exit_code == 1 and "in no recorded version" in said(refused)
    # an unknown state (DVC cannot read the .dvc file) refuses too: fail closed
    dvc_file = repo / "data" / "clips.dvc"
    good = dvc_file.read_text()
    dvc_file.write_text("outs: [{{not yaml\n")
    unknown = runner.invoke(app, ["data", "checkout", "clips@v2"])
    assert unknown.exit_code == 1 and "cannot tell whether data/clips has edits" in said(unknown), said(unknown)
    assert (data / "train.csv").read_text() == "path,label\n"
    dvc_file.write_text(good)
    # with the local cache gone, the version comes back from the remote
    shutil.rmtree(repo / ".dvc" / "cache")
    by_hash = runner.invoke(app, ["data", "checkout", f"clips@{v2['md5'][:8]}", "--force", "--json"])
    assert by_hash.exit_code == 0, by_hash.output
    assert json.loads(by_hash.output)["source"] == "remote" and json.loads(by_hash.output)["version"] == "v2"
    assert versioning.dataset_version(data) == v2["md5"]
    assert (frames / "0.png").read_bytes() == b"changed frame"


@pytest.mark.slow  # ~20 s: two clones and a remote
def test_another_checkout_pulls_what_data_add_pushed(tmp_path, monkeypatch):
    """A team's flow: one checkout adds a dataset (pushed to the repository's default remote, a
    folder standing for shared storage) and commits the .dvc file and datasets.yaml; another
    clone of the git repository, with no DVC cache and no data, gets every byte of each version
    from the remote."""
    monkeypatch.delenv("ACTIONOPS_DVC_REMOTE", raising=False)
    repo = _git_dvc_repo(tmp_path / "alice")
    remote = tmp_path / "shared-remote"
    _dvc(["remote", "add", "--default", "team", str(remote)], repo)
    monkeypatch.chdir(repo)
    _synth_clips(repo / "data" / "clips", videos=3)
    added = runner.invoke(app, ["data", "add", "data/clips", "--json"])
    assert added.exit_code == 0, added.output
    v1 = json.loads(added.output)
    assert v1["remote"] == "team" and any(remote.rglob("*"))
    v1_files = _digests(repo / "data" / "clips")
    _sh([*GIT, "add", "-A"], repo)
    _sh([*GIT, "commit", "-qm", "clips v1"], repo)
    (repo / "data" / "clips" / "extra.txt").write_text("added in v2")
    v2 = json.loads(runner.invoke(app, ["data", "add", "data/clips", "--json"]).output)
    assert v2["version"] == "v2"
    _sh([*GIT, "commit", "-qam", "clips v2"], repo)

    bob = tmp_path / "bob"
    _sh(["git", "clone", "-q", str(repo), str(bob)], tmp_path)
    assert not (bob / "data" / "clips").exists() and not (bob / ".dvc" / "cache").exists()
    monkeypatch.chdir(bob)
    got = runner.invoke(app, ["data", "checkout", "clips@v1", "--json"])
    assert got.exit_code == 0, said(got)
    assert json.loads(got.output)["source"] == "remote"
    assert _digests(bob / "data" / "clips") == v1_files
    got = runner.invoke(app, ["data", "checkout", "clips@v2", "--json"])
    assert got.exit_code == 0, said(got)
    assert (bob / "data" / "clips" / "extra.txt").read_text() == "added in v2"


def test_data_add_errors_name_the_problem(tmp_path, monkeypatch):
    outside = tmp_path / "plain"
    outside.mkdir()
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["data", "add", str(outside)])
    assert result.exit_code == 1 and "not inside a DVC repository" in said(result) and "dvc init" in said(result)
    repo = _git_dvc_repo(tmp_path / "proj")
    monkeypatch.chdir(repo)
    assert "unknown dataset 'nope'" in said(runner.invoke(app, ["data", "versions", "nope"]))
    assert "names no version" in said(runner.invoke(app, ["data", "checkout", "nope"]))


# ----------------------------------------------------------------------------- the repo's dvc.yaml
def _tiny_params(path: Path) -> None:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["classifier"].update(num_frames=4, size=32, clips_per_video=1, eval_clips=2, batch_size=4, epochs=1,
                                model="tsm_resnet18")
    params["trajectories"].update(step=4, length=6, tube=16, gmm_components=2, restarts=2)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def _ran(proc: subprocess.CompletedProcess) -> list[str]:
    return [line.split("'")[1] for line in proc.stdout.splitlines() if line.startswith("Running stage")]


def _repo_with_real_pipeline(tmp_path: Path) -> Path:
    """A fresh git+DVC repo holding the real dvc.yaml (with a smaller generated dataset: the stages
    and their wiring unchanged), the package and a tiny params.yaml."""
    repo = _git_dvc_repo(tmp_path / "proj")
    spec = (REPO / "dvc.yaml").read_text()
    assert "--videos 24 --frames 40 --width 96 --height 72" in spec
    (repo / "dvc.yaml").write_text(spec.replace("--videos 24 --frames 40 --width 96 --height 72",
                                                "--videos 12 --frames 12 --width 48 --height 48"))
    shutil.copytree(REPO / "actionops", repo / "actionops", ignore=shutil.ignore_patterns("__pycache__"))
    _tiny_params(repo / "params.yaml")
    (repo / ".gitignore").write_text("/mlruns/\n/ray_results/\n/outputs/\n")
    _sh([*GIT, "add", "-A"], repo)
    _sh([*GIT, "commit", "-qm", "pipeline"], repo)
    return repo


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.mark.slow  # 80 s: five DVC-started indexing processes; test_lineage.py covers the rules fast
def test_repo_dvc_yaml_index_follows_content_params_and_user_data(tmp_path):
    """The data stages of the real dvc.yaml: repro, a no-op repro, a changed param re-running the
    stages that depend on it with a different manifest (same paths, labels and sizes, other frames);
    then `data.clips` pointed at a user's folder outside the repository (no synth, nothing else
    edited), where a video replaced by one of the same size and frame count re-runs the index and
    changes the manifest, which every stage that reads the videos depends on (with the folder).
    The training stages run in the slow tests below."""
    from test_lineage import same_size_replacement

    repo = _repo_with_real_pipeline(tmp_path)
    first = _dvc(["repro", "index@clips"], repo)
    assert _ran(first) == ["synth@clips", "index@clips"], first.stdout
    manifest = repo / "outputs/dvc/clips/manifest.parquet"
    assert manifest.is_file()
    assert _ran(_dvc(["repro", "index@clips"], repo)) == []
    before = _md5(manifest)
    changed = _dvc(["exp", "run", "-S", "synth.seed=5", "index@clips"], repo)
    assert _ran(changed) == ["synth@clips", "index@clips"], changed.stdout
    assert _md5(manifest) != before  # so training re-runs

    mine, other = tmp_path / "elsewhere" / "my_clips", tmp_path / "other"
    _synth_clips(mine, videos=6, seed=3)
    _synth_clips(other, videos=6, seed=9)
    video = sorted(mine.rglob("*.mp4"))[0]
    replacement = same_size_replacement(video, sorted(other.rglob("*.mp4"))[0])
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["data"]["clips"] = str(mine)  # outside the repository
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    user = _dvc(["repro", "index@clips"], repo)
    assert _ran(user) == ["index@clips"], user.stdout  # the user's folder: no synth stage upstream
    before = _md5(manifest)
    video.write_bytes(replacement)
    again = _dvc(["repro", "index@clips"], repo)
    assert _ran(again) == ["index@clips"] and _md5(manifest) != before

    from dvc.repo import Repo

    with Repo(str(repo)) as dvc_repo:  # who depends on the folder and the manifest
        deps = {stage.name: {os.path.normpath(str(d.def_path)) for d in stage.deps} for stage in dvc_repo.index.stages}
    for stage in ("train_classifier", "evaluate_classifier", "embed"):
        assert str(mine) in deps[stage], (stage, deps[stage])
    for stage in ("train_classifier", "evaluate_classifier", "embed", "clustering", "predict_clustering",
                  "evaluate_clustering", "autoencoder@frame", "flow", "flow_clips"):
        assert any(d.endswith("manifest.parquet") for d in deps[stage]), (stage, deps[stage])


@pytest.mark.slow
def test_repo_dvc_yaml_repro_noop_and_experiment(tmp_path):
    """The classifier half of the real dvc.yaml in a fresh git+DVC repo: repro, a no-op repro,
    `dvc exp run -S` re-running only the stages of that param, metrics changed, and the training
    run's MLflow input digest equal to the data's hash in dvc.lock. Slow: six actionops processes,
    two of them trainings."""
    import mlflow

    repo = _repo_with_real_pipeline(tmp_path)
    store, storage = tmp_path / "mlruns", tmp_path / "ray_results"
    uri = f"sqlite:///{store}/mlflow.db"
    env = {"ACTIONOPS_MLRUNS": str(store), "ACTIONOPS_STORAGE": str(storage), "MLFLOW_TRACKING_URI": uri}

    first = _dvc(["repro", "evaluate_classifier"], repo, **env)
    assert _ran(first) == ["synth@clips", "index@clips", "flow_clips", "train_classifier", "evaluate_classifier"]
    metrics = json.loads((repo / "outputs/dvc/clips/metrics.json").read_text())
    assert 0.0 <= metrics["accuracy"] <= 1.0 and metrics["parameters_m"] > 1
    assert json.loads((repo / "outputs/dvc/clips/history_classifier.json").read_text())[0]["epoch"] == 1

    second = _dvc(["repro", "evaluate_classifier"], repo, **env)
    assert _ran(second) == [], second.stdout

    # the MLflow training run saw exactly the data version DVC recorded
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    data_hash = next(o["md5"] for o in lock["stages"]["synth@clips"]["outs"] if o["path"] == "data/clips")
    assert versioning.dataset_version(repo / "data" / "clips") == data_hash
    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name("clip-classification")
    assert experiment is not None, "no clip-classification experiment in the test's MLflow store"
    runs = client.search_runs([experiment.experiment_id], "tags.`actionops.stage` = 'train_classifier'")
    assert runs, "no training run in MLflow"
    assert {d.dataset.digest for d in runs[0].inputs.dataset_inputs} == {data_hash[:36]}
    assert runs[0].data.tags["actionops.dataset_version"] == data_hash

    # one param changed: only the stages that read it run again, and the metrics follow
    exp = _dvc(["exp", "run", "-S", "classifier.model=cnn_lstm_resnet18", "evaluate_classifier"], repo, **env)
    assert _ran(exp) == ["train_classifier", "evaluate_classifier"], exp.stdout
    changed = json.loads((repo / "outputs/dvc/clips/metrics.json").read_text())
    assert changed["model"] == "cnn_lstm_resnet18" and changed["parameters_m"] != metrics["parameters_m"]
    shown = json.loads(_dvc(["exp", "show", "--json"], repo).stdout)
    assert "cnn_lstm_resnet18" in json.dumps(shown)


@pytest.mark.slow
def test_repo_dvc_yaml_trajectory_stages_follow_their_params(tmp_path):
    """The trajectory-clustering stages of the real dvc.yaml: repro up to the cluster table (purity
    and NMI as DVC metrics), a no-op repro, a k change re-running only the clustering, a tracking
    change re-running trajectories, Fisher vectors and clustering. Slow: seven actionops processes."""
    repo = _repo_with_real_pipeline(tmp_path)
    env = {"ACTIONOPS_MLRUNS": str(tmp_path / "mlruns"), "ACTIONOPS_STORAGE": str(tmp_path / "ray_results"),
           "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlruns/mlflow.db"}
    traj = repo / "outputs/dvc/clips/trajectory-clustering"
    first = _dvc(["repro", "cluster_trajectories"], repo, **env)
    assert _ran(first) == ["synth@clips", "index@clips", "trajectories", "encode_trajectories",
                           "cluster_trajectories"], first.stdout
    metrics = json.loads((traj / "metrics_trajectories.json").read_text())
    assert metrics["k"] == 4 and 0.0 <= metrics["nmi"] <= 1.0  # k: the clips' classes
    table = (traj / "clusters.csv").read_text().splitlines()
    assert table[0] == "video_id,cluster" and len(table) - 1 == metrics["videos"] >= 8
    assert _ran(_dvc(["repro", "cluster_trajectories"], repo, **env)) == []
    fewer = _dvc(["exp", "run", "-S", "trajectories.k=3", "cluster_trajectories"], repo, **env)
    assert _ran(fewer) == ["cluster_trajectories"], fewer.stdout
    assert json.loads((traj / "metrics_trajectories.json").read_text())["k"] == 3
    finer = _dvc(["exp", "run", "-S", "trajectories.step=3", "cluster_trajectories"], repo, **env)
    assert _ran(finer) == ["trajectories", "encode_trajectories", "cluster_trajectories"], finer.stdout


@pytest.mark.slow
def test_repo_dvc_yaml_reruns_training_on_replaced_video_and_evaluation_on_relabel(tmp_path):
    """The classifier half of the real dvc.yaml on a user folder (`data.clips`): one video's bytes
    replaced (same size and frame count) -> index, training and evaluation run again and the
    evaluation changes; one test label changed -> the evaluation runs again and scores the new
    truth; then nothing runs. Slow: three trainings in DVC-started processes."""
    from test_lineage import same_size_replacement

    repo = _repo_with_real_pipeline(tmp_path)
    mine, other = tmp_path / "my_clips", tmp_path / "other"
    _synth_clips(mine, videos=12, seed=3)
    _synth_clips(other, videos=12, seed=9)
    test_csv = mine / "test.csv"
    rows = test_csv.read_text().splitlines()
    video = mine / rows[1].split(",")[0]
    replacement = same_size_replacement(video, other / rows[1].split(",")[0])
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["data"]["clips"] = str(mine)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {"ACTIONOPS_MLRUNS": str(tmp_path / "mlruns"), "ACTIONOPS_STORAGE": str(tmp_path / "ray_results"),
           "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlruns/mlflow.db"}
    predictions = repo / "outputs/dvc/clips/predictions_eval.csv"

    first = _dvc(["repro", "evaluate_classifier"], repo, **env)
    assert _ran(first) == ["index@clips", "flow_clips", "train_classifier", "evaluate_classifier"], first.stdout
    before = predictions.read_text()
    video.write_bytes(replacement)
    second = _dvc(["repro", "evaluate_classifier"], repo, **env)
    assert _ran(second) == ["index@clips", "flow_clips", "train_classifier", "evaluate_classifier"], second.stdout
    assert predictions.read_text() != before

    path, label = rows[1].rsplit(",", 1)
    new_label = next(lab for lab in sorted({line.rsplit(",", 1)[1] for line in rows[1:]}) if lab != label)
    test_csv.write_text("\n".join([rows[0], f"{path},{new_label}", *rows[2:]]) + "\n")
    third = _dvc(["repro", "evaluate_classifier"], repo, **env)
    assert "evaluate_classifier" in _ran(third), third.stdout
    truth = {line.split(",")[0]: line.split(",")[1] for line in predictions.read_text().splitlines()[1:]}
    assert truth[str(Path(path).with_suffix(""))] == new_label
    assert _ran(_dvc(["repro", "evaluate_classifier"], repo, **env)) == []
