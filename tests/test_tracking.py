from __future__ import annotations

import mlflow
import numpy as np
import pytest
import torch
from torch import nn

from actionops.platform import tracking


class TinyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(3, 4, kernel_size=3, padding=1)
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv(x).mean(dim=(2, 3, 4)))


def test_default_store_is_sqlite_under_mlruns(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("ACTIONOPS_MLRUNS", raising=False)
    monkeypatch.chdir(tmp_path)
    assert tracking.tracking_uri() == f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    assert tracking.tracking_uri() == "http://mlflow.example:5000"


@pytest.mark.parametrize("model_format", ["pt2", "pickle"])
def test_model_round_trip_through_registry_alias(mlflow_store, model_format):
    torch.manual_seed(0)
    model = TinyNet().eval()
    example = np.random.default_rng(0).standard_normal((2, 3, 4, 8, 8)).astype(np.float32)
    with tracking.start_run("unit", run_name="rt", params={"a.b": 1, "a.c": None},
                            config_yaml="a:\n  b: 1\n", dataset_version="abc123") as run:
        tracking.log_metrics({"loss": 0.5, "note": "skipped"}, step=0)
        logged = tracking.log_torch_model(model, example, model_format=model_format,
                                          registered_name="tiny", version_tags={"why": "test"})
    assert logged["version"] == "1"
    # the store is where we said, with artifacts beside it
    assert (mlflow_store / "mlflow.db").is_file() and (mlflow_store / "artifacts").is_dir()
    stored = mlflow.get_run(run.info.run_id)
    assert stored.data.params == {"a.b": "1", "a.c": "null"}
    assert stored.data.metrics == {"loss": 0.5}
    assert stored.data.tags["actionops.dataset_version"] == "abc123"
    info = mlflow.models.get_model_info(logged["uri"])
    assert info.signature is not None and tuple(info.signature.inputs.to_dict()[0]["tensor-spec"]["shape"][1:]) == (3, 4, 8, 8)

    assert str(tracking.version_by_alias("tiny", "candidate").version) == "1"
    assert tracking.version_by_alias("tiny", "champion") is None
    loaded = tracking.load_model("models:/tiny@candidate")
    batch = np.random.default_rng(1).standard_normal((3, 3, 4, 8, 8)).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(batch)).numpy()
        got = loaded(torch.from_numpy(batch)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)

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
        tracking.load_model("models:/nope@champion")
