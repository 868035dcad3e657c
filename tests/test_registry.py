"""Registry lifecycle on a real MLflow store: show, promote (rules), rollback, compare."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from actionops.cli.main import app
from actionops.errors import ActionopsError
from actionops.platform import registry, tracking

runner = CliRunner()
NAME = "clip-classifier"


@pytest.fixture()
def three_versions(mlflow_store, tmp_path):
    """Three registered versions of a tiny classifier, each with an evaluation on data `d1`."""
    from actionops.models import create_model
    from actionops.pipelines.spine import register_checkpoint

    import numpy as np

    args = {"num_classes": 2, "num_frames": 2, "image_size": 16, "patch": 8, "dim": 16, "spatial_depth": 1,
            "temporal_depth": 1, "heads": 2}
    versions = []
    for i, f1 in enumerate([0.80, 0.70, 0.90]):
        torch.manual_seed(i)
        model = create_model("vivit_tiny", **args)
        path = tmp_path / f"v{i}.pt"
        torch.save({"model_name": "vivit_tiny", "model_args": args, "model": model.state_dict(), "labels": ["a", "b"]}, path)
        with tracking.start_run("registry-test", run_name=f"train-{i}", params={"optim.lr": 10.0 ** -(i + 2)}):
            tracking.log_metrics({"best_val_macro_f1": f1})
            version = register_checkpoint(path, {"clip": np.zeros((2, 2, 3, 16, 16), np.float32)}, NAME,
                                          {"dataset_version": f"md5-{i}"})
        tracking.set_version_tags(NAME, version, {"eval.macro_f1": f1, "eval.accuracy": f1, "eval.data": "d1",
                                                  "eval.split": "test", "eval.primary": "macro_f1"})
        versions.append(version)
    return versions


def test_promotion_rules_and_rollback(three_versions):
    v1, v2, v3 = three_versions
    first = registry.promote(NAME, version=v1)
    assert first["champion"] == v1 and "first promotion" in first["decision"]
    with pytest.raises(ActionopsError, match="is worse than champion"):
        registry.promote(NAME, version=v2)  # 0.70 < 0.80 on the primary metric (macro_f1): refused
    assert str(tracking.version_by_alias(NAME, "champion").version) == v1
    with pytest.raises(ActionopsError, match="does not beat"):
        registry.promote(NAME, version=v3, min_delta=0.2)  # better, but not by 0.2
    forced = registry.promote(NAME, version=v2, force=True, reason="hotfix")
    assert forced["champion"] == v2 and forced["previous_champion"] == v1
    version = tracking.version_by_alias(NAME, "champion")
    assert version.tags["promotion.reason"] == "hotfix" and version.tags["promotion.replaced"] == v1
    assert version.tags["promotion.by"] and version.tags["promotion.at"]
    back = registry.rollback(NAME)
    assert back == {"name": NAME, "champion": v1, "rolled_back": v2}
    with pytest.raises(ActionopsError, match="no previous champion"):
        registry.rollback(NAME)
    better = registry.promote(NAME)  # the candidate alias: the last registered version, v3
    assert better["champion"] == v3 and better["previous_champion"] == v1 and "0.9000 vs champion" in better["decision"]
    assert str(tracking.version_by_alias(NAME, "previous-champion").version) == v1


def test_promotion_compares_like_with_like(three_versions):
    v1, v2, v3 = three_versions
    registry.promote(NAME, version=v1)
    tracking.set_version_tags(NAME, v3, {"eval.data": "d2"})
    with pytest.raises(ActionopsError, match=r"different data versions \(d2 vs d1\)"):
        registry.promote(NAME, version=v3)
    tracking.set_version_tags(NAME, v3, {"eval.data": "d1", "eval.split": "val"})  # a val score vs a test score
    with pytest.raises(ActionopsError, match=r"different splits \(val vs test\)"):
        registry.promote(NAME, version=v3)
    tracking.set_version_tags(NAME, v3, {"eval.split": "test"})
    with pytest.raises(ActionopsError, match="no evaluation of 'roc_auc'.*it has: accuracy, macro_f1"):
        registry.promote(NAME, version=v3, metric="roc_auc")
    tracking.set_version_tags(NAME, v3, {"eval.macro_f1": 0.8})  # a tie on macro_f1 is refused at min_delta 0
    with pytest.raises(ActionopsError, match="ties champion"):
        registry.promote(NAME, version=v3)
    with pytest.raises(ActionopsError, match="does not beat champion.*more than 0.2"):
        registry.promote(NAME, version=v3, metric="accuracy", min_delta=0.2)  # accuracy 0.9 vs 0.8, not by > 0.2
    assert str(tracking.version_by_alias(NAME, "champion").version) == v1  # nothing moved
    tie = registry.promote(NAME, version=v3, min_delta=-0.01)  # a negative min-delta lets a tie through
    assert tie["champion"] == v3 and "macro_f1 0.8000 vs champion" in tie["decision"] and "test split" in tie["decision"]
    with pytest.raises(ActionopsError, match="has no version 42"):
        registry.promote(NAME, version="42")
    with pytest.raises(ActionopsError, match="no registered model named 'nope'"):
        registry.promote("nope")


def test_registry_cli_show_compare_promote(three_versions):
    v1, v2, v3 = three_versions
    result = runner.invoke(app, ["registry", "promote", NAME, "--version", v1, "--json"])
    assert result.exit_code == 0, result.output
    refused = runner.invoke(app, ["registry", "promote", NAME, "--version", v2])
    assert refused.exit_code == 1 and "refused" in refused.exception.message
    shown = json.loads(runner.invoke(app, ["registry", "show", NAME, "--json"]).stdout)
    by_version = {row["version"]: row for row in shown["versions"]}
    assert by_version[v1]["aliases"] == ["champion"] and by_version[v3]["aliases"] == ["candidate"]
    assert by_version[v2]["dataset_version"] == "md5-1" and by_version[v2]["eval"]["macro_f1"] == "0.7"
    assert by_version[v1]["run_metrics"]["best_val_macro_f1"] == pytest.approx(0.8)
    compared = json.loads(runner.invoke(app, ["registry", "compare", NAME, v1, v3, "--json"]).stdout)
    assert compared["eval"]["macro_f1"] == ["0.8", "0.9"]
    assert compared["params_that_differ"]["optim.lr"] == ["0.01", "0.0001"]
    table = runner.invoke(app, ["registry", "show", NAME])
    assert table.exit_code == 0 and "champion" in table.output
