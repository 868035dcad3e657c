"""The method contract, checked for every registered method (a new method gets these for free):
its pipeline runs from the CLI, trains, checkpoints, evaluates and registers; the registered
candidate predicts what the local checkpoint predicts; training learns; and nothing outside a
method's package names it. Plus the architecture rule between layers."""

from __future__ import annotations

import ast
import dataclasses
import json
from pathlib import Path

import mlflow
import numpy as np
import pytest
from typer.testing import CliRunner

from actionops.cli.main import app
from conftest import method_ids, tiny_cfg

PACKAGE = Path(__file__).resolve().parents[1] / "actionops"
runner = CliRunner()


@pytest.mark.parametrize("method_id", method_ids())
def test_pipeline_trains_checkpoints_registers_and_logs(run_of, method_id):
    run = run_of(method_id)
    method, out = run["method"], run["out"]
    assert [r["stage"] for r in run["rows"]] == [s.name for s in method.stages]
    assert all(r["status"] == "done" for r in run["rows"])
    import torch

    state = torch.load(out / method.checkpoint, weights_only=True)
    assert {"model_name", "model_args", "model"} <= set(state)  # rebuilt through the registry, never unpickled
    name = method.registered_model(run["ctx"].cfg)
    client = mlflow.MlflowClient()
    version = client.get_model_version_by_alias(name, "candidate")
    assert version.tags["dataset"] == str(run["data"].resolve())
    training = client.get_run(version.run_id)
    assert training.info.experiment_id == client.get_experiment_by_name(method.experiment).experiment_id
    epochs = int(state.get("epoch") or run["ctx"].cfg.flat()[method.tune.epochs_key])
    reported = [key for key in method.reports if key in training.data.metrics]
    assert reported, f"none of {method.reports} logged"
    for key in reported:  # one point per epoch, steps 1..N, from the training worker
        assert [m.step for m in client.get_metric_history(training.info.run_id, key)] == list(range(1, epochs + 1))
    assert training.data.params  # the resolved config
    assert {a.path for a in client.list_artifacts(training.info.run_id)} >= {"config.yaml", "figures"}
    assert mlflow.pyfunc.load_model(f"models:/{name}@candidate").metadata.signature is not None
    logged = Path(mlflow.artifacts.download_artifacts(f"models:/{name}@candidate"))  # models-from-code:
    assert (logged / "pyfunc_model.py").is_file() and "python_model" not in (logged / "MLmodel").read_text()
    pickles = [p for p in logged.rglob("*") if p.is_file() and (p.suffix in (".pkl", ".pickle") or p.read_bytes()[:1] == b"\x80")]
    assert not pickles, pickles  # no pickled wrapper; the weights load with the weights-only unpickler
    assert [torch.load(p, weights_only=True)["model_name"] for p in logged.glob("artifacts/*.pt")] == [state["model_name"]]
    assert len(training.inputs.dataset_inputs) == 1  # the dataset, logged once


@pytest.mark.parametrize("method_id", method_ids())
def test_second_pipeline_run_finds_every_stage_up_to_date(run_of, method_id):
    run = run_of(method_id)
    result = runner.invoke(app, ["pipeline", "run", method_id, str(run["data"]), "--out", str(run["out"]),
                                 *tiny_cfg(method_id), "--json"])
    assert result.exit_code == 0, result.output
    stages = {s.name: s for s in run["method"].stages}
    for row in json.loads(result.stdout):
        assert row["status"] == ("done" if stages[row["stage"]].always else "up to date"), row


@pytest.mark.parametrize("method_id", method_ids())
def test_checkpoint_of_another_method_is_refused_by_name(run_of, method_id, tmp_path):
    from actionops.errors import ActionopsError

    run = run_of(method_id)
    state_of = __import__("torch").load(run["out"] / run["method"].checkpoint, weights_only=True)
    assert (state_of["method"], state_of["stage"]) == (method_id, Path(run["method"].checkpoint).stem)
    other_id = next(m for m in method_ids() if m != method_id)
    other = run_of(other_id)
    ctx = dataclasses.replace(run["ctx"], out=tmp_path)
    with pytest.raises(ActionopsError) as err:  # was "unexpected KeyError" deep in predict
        run["method"].predict(ctx, str(other["out"] / other["method"].checkpoint))
    text = str(err.value)
    assert f"is a {other_id} checkpoint" in text and f"expects a {method_id} checkpoint" in text


# a registered candidate's predict + evaluate costs 30-45 s a method: make test (12 minutes on a clean
# clone) checks one, make test-all every method
REGISTRY_FAST = "individual-clustering"


@pytest.mark.parametrize("method_id", [pytest.param(m, marks=() if m == REGISTRY_FAST else pytest.mark.slow)
                                       for m in method_ids()])
def test_candidate_from_registry_predicts_and_scores_like_the_local_checkpoint(run_of, method_id, tmp_path, ray_local):
    run = run_of(method_id)
    method, ctx = run["method"], run["ctx"]
    local_model = str(run["out"] / method.checkpoint)
    uri = f"models:/{method.registered_model(ctx.cfg)}@candidate"
    # other output folders: the pipeline's own outputs stay as its stages left them
    local_ctx, remote_ctx = (dataclasses.replace(ctx, out=tmp_path / name) for name in ("local", "remote"))
    local = Path(method.predict(local_ctx, local_model)["outputs"])
    remote = Path(method.predict(remote_ctx, uri)["outputs"])
    assert local.name == remote.name and local != remote
    if local.suffix == ".npz":
        a, b = np.load(local), np.load(remote)
        assert set(a.files) == set(b.files)
        for key in a.files:
            if a[key].dtype.kind == "f":
                np.testing.assert_allclose(a[key], b[key], rtol=1e-5, atol=1e-5)
            else:
                assert (a[key] == b[key]).all(), key
    else:
        assert local.read_text() == remote.read_text()
    by_alias = method.evaluate(remote_ctx, uri, "test")
    evaluate = next(stage for stage in method.stages if stage.name == "evaluate")  # the pipeline's own, local checkpoint
    by_file = json.loads(Path(evaluate.outputs(run["ctx"])[0]).read_text())
    assert by_alias[method.score] == by_file[method.score]
    version = mlflow.MlflowClient().get_model_version_by_alias(method.registered_model(ctx.cfg), "candidate")
    assert version.tags["eval.split"] == "test" and version.tags[f"eval.{method.score}"] == f"{by_alias[method.score]:.6f}"


@pytest.mark.parametrize("method_id", method_ids())
def test_training_learns(run_of, method_id, tmp_path, ray_local):
    """Each declared training loss falls by its margin, and the trained model beats chance on the
    data it learned from by a clear margin (a loop whose optimizer never steps fails both)."""
    run = run_of(method_id)
    method = run["method"]
    assert method.learning, f"{method_id} declares no training loss to check"
    for history_file, key, drop in method.learning:
        values = [row[key] for row in json.loads((run["out"] / history_file).read_text())]
        assert min(values[-2:]) < values[0] * (1 - drop), (history_file, key, values)
    scores = method.evaluate(dataclasses.replace(run["ctx"], out=tmp_path), str(run["out"] / method.checkpoint), "train")
    assert scores[method.score] >= scores["chance"] + 0.2, (method.score, scores[method.score], scores["chance"])


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_layers_import_one_way():
    """platform/ imports nothing from models, pipelines or cli; nothing outside cli imports cli;
    models import no pipeline."""
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE).as_posix()
        imports = _imports(path)
        if rel.startswith("platform/"):
            bad = {m for m in imports if m.startswith(("actionops.models", "actionops.pipelines", "actionops.cli"))}
            assert not bad, f"{rel} imports {bad}"
        if rel.startswith("models/"):
            assert not {m for m in imports if m.startswith(("actionops.pipelines", "actionops.cli"))}, rel
        if not rel.startswith("cli/"):
            assert not {m for m in imports if m.startswith("actionops.cli")}, f"{rel} imports the CLI"


def test_no_method_is_named_outside_its_package():
    """Adding a method touches no file outside its package: code outside the method packages
    (the demo aside, which runs individual clustering by design) never imports a method package."""
    from actionops.pipelines.method import list_methods

    packages = {f"actionops.pipelines.{m.package}" for m in list_methods()}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE).as_posix()
        if any(rel.startswith(f"pipelines/{m.package}/") for m in list_methods()) or rel == "pipelines/demo.py":
            continue
        hits = {m for m in _imports(path) if any(m == p or m.startswith(p + ".") for p in packages)}
        assert not hits, f"{rel} imports {hits}"


def test_unknown_method_names_the_known_ones():
    result = runner.invoke(app, ["pipeline", "run", "clip-clasification", "x"])
    assert result.exit_code == 1 and "did you mean clip-classification" in result.exception.hint
