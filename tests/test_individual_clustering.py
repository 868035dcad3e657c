"""Individual clustering: model maths, metrics, and the pipeline on real Ray Train + MLflow."""

from __future__ import annotations

import json
import os
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from actionops.cli.main import app
from actionops.evaluation.metrics import clustering_scores, hungarian_accuracy, majority_vote_accuracy
from actionops.models import create_model, list_models
from actionops.models.autoencoder3d import SPATIAL_STRIDE
from actionops.models.dec import dec_target, padded_to_rois, student_t_assignment
from actionops.platform.synth import generate_or_scenes
from conftest import tiny_cfg

runner = CliRunner()
METHOD = "individual-clustering"
TINY = tiny_cfg(METHOD)


# ----------------------------------------------------------------------------- models and maths
@pytest.mark.parametrize("name", ["conv3d_autoencoder"])
def test_autoencoder_shapes(name):
    model = create_model(name, in_channels=2, base_channels=4, latent_channels=8)
    x = torch.rand(2, 2, 4, 36, 48) * 2 - 1
    recon, latent = model(x)
    assert recon.shape == x.shape and recon.abs().max() <= 1
    assert latent.shape == (2, 8, 2, 36 // SPATIAL_STRIDE, 48 // SPATIAL_STRIDE)
    recon.pow(2).mean().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_registry_knows_models_and_rejects_typos():
    from actionops.errors import ActionopsError

    assert {"conv3d_autoencoder", "person_clustering_head", "individual_clustering"} <= set(list_models())
    with pytest.raises(ActionopsError, match="did you mean conv3d_autoencoder"):
        create_model("conv3d_autoencodr")


def test_roialign_features_come_from_where_the_box_is():
    head = create_model("person_clustering_head", latent_channels=1, n_clusters=2, ndf=3, roi_output=2)
    latent = torch.zeros(1, 1, 2, 9, 12)  # stride 4: input 36 x 48
    latent[..., 1:5, 5:9] = 1.0  # covers every cell sampled for input box x 24..32, y 8..16
    rois = torch.tensor([[0, 24.0, 8.0, 32.0, 16.0], [0, 0.0, 24.0, 8.0, 32.0]])
    z = head.embed_people(latent, rois)
    bias = head.embed.bias.detach()
    assert torch.allclose(z[1], bias)  # box over zeros: only the bias
    expected = head.embed.weight.sum(dim=1).detach() + bias  # pooled features all ones under the box
    assert torch.allclose(z[0], expected, atol=1e-5)


def test_padded_rois():
    rois = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(2, 3, 4)
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]], dtype=torch.float32)
    out, people = padded_to_rois(rois, mask)
    assert out.tolist() == [[0, 0, 1, 2, 3], [0, 4, 5, 6, 7], [1, 12, 13, 14, 15]]
    assert people.tolist() == [0, 1, 3]


def test_student_t_and_dec_target_by_hand():
    q = student_t_assignment(torch.tensor([[0.0, 0.0]]), torch.tensor([[0.0, 0.0], [1.0, 0.0]]), alpha=1.0)
    assert torch.allclose(q, torch.tensor([[2 / 3, 1 / 3]]))
    p = dec_target(torch.tensor([[0.9, 0.1], [0.6, 0.4]]))
    # f = (1.5, 0.5); q^2/f = [[0.54, 0.02], [0.24, 0.32]]; rows renormalised
    assert torch.allclose(p, torch.tensor([[0.54 / 0.56, 0.02 / 0.56], [0.24 / 0.56, 0.32 / 0.56]]), atol=1e-6)


def test_infer_returns_padded_assignments():
    model = create_model("individual_clustering", frame_args={"in_channels": 3, "base_channels": 4, "latent_channels": 8},
                         flow_args={"in_channels": 2, "base_channels": 4, "latent_channels": 8},
                         head_args={"latent_channels": 8, "n_clusters": 3, "ndf": 4}).eval()
    batch = {"frames": torch.zeros(2, 3, 4, 36, 48), "flow": torch.zeros(2, 2, 4, 36, 48),
             "rois": torch.tensor([[[0, 0, 10, 10], [0, 0, 0, 0]], [[5, 5, 20, 30], [1, 1, 9, 9]]], dtype=torch.float32),
             "mask": torch.tensor([[1.0, 0.0], [1.0, 1.0]]), "spatial": torch.zeros(2, 2, 1)}
    q = model.infer(batch)
    assert q.shape == (2, 2, 3) and float(q[0, 1].abs().sum()) == 0.0
    assert torch.allclose(q[1].sum(dim=1), torch.ones(2))


def test_unsigned_motion_descriptor_is_phase_invariant():
    """Unsigned orientation bins: a motion and its reverse (the two halves of a wave) give the same
    descriptor; signed bins tell them apart. Both are sqrt + L2 normalised."""
    from actionops.platform.flow import flow_histogram_features
    from actionops.pipelines.individual_clustering.windows import box_motion

    rng = np.random.default_rng(0)
    up = np.zeros((4, 16, 16, 2), np.float32)
    up[..., 1] = -2.0 + 0.1 * rng.standard_normal((4, 16, 16))  # moving up
    down = -up
    signed = [flow_histogram_features(f, grid=2, bins=8) for f in (up, down)]
    unsigned = [flow_histogram_features(f, grid=2, bins=8, unsigned=True) for f in (up, down)]
    assert np.linalg.norm(signed[0] - signed[1]) > 1.0
    np.testing.assert_allclose(unsigned[0], unsigned[1], atol=1e-6)
    assert np.isclose(np.linalg.norm(unsigned[0]), 1.0)
    # per person box on (2, T, H, W) flow: only the box's pixels count
    field = np.zeros((2, 4, 32, 32), np.float32)
    field[:, :, :16, :16] = up.transpose(3, 0, 1, 2)
    desc = box_motion(field, np.array([[0, 0, 16, 16], [16, 16, 32, 32]], np.float32), 2, 8, unsigned=True)
    np.testing.assert_allclose(desc[0], unsigned[0], atol=1e-6)
    assert not desc[1].any()


@pytest.mark.parametrize("clip_input", ["rgb_diff", "rgb"])
def test_backbone_sees_the_input_it_was_pretrained_on(clip_input):
    """A window in [-1, 1] becomes exactly the clip the classifier / pretraining pipeline makes of
    the same frames (frames spread over the window, ImageNet normalisation, t+1 - t differences),
    and a person box lands on the feature map where it is in the window."""
    from actionops.pipelines.clip_classification.data import eval_indices, input_indices, to_input
    from actionops.platform.data import symmetric_frames

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (24, 32, 32, 3), dtype=np.uint8)
    head = {"latent_channels": 64, "n_clusters": 2, "ndf": 4, "alpha": 1.0, "roi_output": 2, "spatial_scale": 1.0,
            "aligned": True, "add_spatial_feature": False}
    model = create_model("individual_clustering_backbone", backbone_args={
        "backbone": "r3d_18", "dim": 8, "num_frames": 8, "image_size": 32, "clip_input": clip_input},
        layer="layer1", head_args=head)
    window = torch.from_numpy(symmetric_frames(frames).transpose(1, 0, 2, 3))[None]  # (1, 3, T, H, W)
    got = model.backbone_input(window)[0].numpy().transpose(1, 0, 2, 3)  # (T, 3, H, W)
    expected = to_input(frames[input_indices(eval_indices(24, 8, 0, 1), 24, clip_input)], clip_input)
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert not any(p.requires_grad for p in model.backbone.parameters())
    model.train()
    assert not model.backbone.training and model.head.training  # frozen BatchNorm statistics
    fmap = model.feature_map(window)
    assert fmap.shape == (1, 64, 8, 16, 16)  # layer1: 1/2 of the 32 px input


def test_motion_spec_travels_with_the_model():
    """The descriptor a model was trained on is recorded in its head args and wins over params."""
    from actionops.pipelines import load_config
    from actionops.pipelines.individual_clustering.stages import _head_args, motion_spec

    cfg = load_config(None, ["clustering.add_motion_feature=true", "clustering.motion_grid=3",
                             "clustering.motion_unsigned=false"])
    head = _head_args(cfg)
    assert head["motion_spec"] == [3, 8, False] and head["motion_dim"] == 72
    create_model("person_clustering_head", **head)  # the builder accepts it
    later = load_config(None, [])  # params changed since: the model's own spec is used
    assert motion_spec(later.clustering, head) == (3, 8, False)
    assert motion_spec(later.clustering) == (2, 8, True)


def test_metrics_against_known_permutations():
    truth = ["a", "a", "b", "b", "c", "c"]
    scores = clustering_scores(truth, [2, 2, 0, 0, 1, 1])
    assert scores["hungarian_accuracy"] == 1.0 and scores["nmi"] == pytest.approx(1.0) and scores["ari"] == pytest.approx(1.0)
    assert hungarian_accuracy(truth, [0, 0, 0, 0, 1, 1]) == pytest.approx(4 / 6)
    # one cluster for everything: majority vote (many-to-one) and Hungarian agree at 1/3
    assert majority_vote_accuracy(truth, [0] * 6) == pytest.approx(2 / 6)
    # more clusters than classes: majority vote is optimistic, Hungarian is not
    assert majority_vote_accuracy(truth, [0, 1, 2, 3, 4, 5]) == 1.0
    assert hungarian_accuracy(truth, [0, 1, 2, 3, 4, 5]) == pytest.approx(3 / 6)


# ----------------------------------------------------------------------------- the pipeline
def test_pipeline_logs_registers_predicts_and_scores(run_of, tmp_path):
    run = run_of(METHOD)
    out, scenes = run["out"], run["data"]
    rows = {r["stage"]: r["result"] for r in run["rows"]}
    assert rows["autoencoder_frame"]["epochs"] == run["ctx"].cfg.autoencoder.epochs
    assert rows["clustering"]["registered"] == "individual-clustering v1"
    client = mlflow.MlflowClient()
    runs = {r.info.run_name: r for r in mlflow.search_runs(experiment_names=["individual-clustering"], output_format="list")}
    assert {"autoencoder-frame", "autoencoder-flow", "clustering", "predict-test", "evaluate-test"} <= set(runs)
    figures = {a.path for a in client.list_artifacts(runs["clustering"].info.run_id, "figures")}
    assert {"figures/loss_curves.png", "figures/train_embeddings_tsne.png", "figures/train_embeddings_pca.png",
            "figures/train_contingency.png"} <= figures
    # predictions: one JSON per test video with [{"frame", "id", "label"}]
    test_videos = sorted(p.stem for p in (scenes / "test").glob("*.mp4"))
    pred_dir = out / "predictions" / "test"
    assert sorted(p.stem for p in pred_dir.glob("*.json")) == test_videos
    records = json.loads((pred_dir / f"{test_videos[0]}.json").read_text())
    assert records and set(records[0]) == {"frame", "id", "label"} and 0 <= records[0]["label"] < 3
    assert (pred_dir / "boxes.mp4").stat().st_size > 0
    metrics = json.loads((out / "metrics_test.json").read_text())
    for key in ("hungarian_accuracy", "nmi", "ari", "ami", "v_measure", "majority_vote_accuracy"):
        assert key in metrics and key in rows["evaluate"]
    assert sum(map(sum, metrics["contingency"]["counts"])) == metrics["person_windows"] > 0
    headline = json.loads((out / "metrics.json").read_text())
    assert headline["test"]["hungarian_accuracy"] == metrics["hungarian_accuracy"]
    # the CLI's evaluate with --model predicts with that version and tags it
    result = runner.invoke(app, ["evaluate", "clustering", str(scenes), "--out", str(tmp_path), *TINY,
                                 "--model", "models:/individual-clustering@candidate", "--json"])
    assert result.exit_code == 0, result.output
    version = client.get_model_version_by_alias("individual-clustering", "candidate")
    assert version.tags["eval.hungarian_accuracy"] == f"{json.loads(result.stdout)['hungarian_accuracy']:.6f}"
    pyfunc = mlflow.pyfunc.load_model("models:/individual-clustering@candidate")
    assert pyfunc.metadata.signature is not None


@pytest.fixture()
def scenes(run_of):
    return run_of(METHOD)["data"]


@pytest.mark.slow
def test_worker_failure_recovers_from_checkpoint(scenes, tmp_path):
    """One of 2 workers raises once after epoch 1; FailureConfig restarts from that checkpoint and
    MLflow holds each epoch once. Slow: a 2-worker fit restarted (a minute on 2 cores)."""
    result = runner.invoke(app, ["train", "autoencoder", str(scenes), "--out", str(tmp_path), *TINY, "--datatype", "frame",
                                 "--set", "train.num_workers=2", "--set", "train.max_failures=1",
                                 "--set", "train.fault_at_epoch=1", "--set", "autoencoder.epochs=3", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["epochs"] == 3
    marker = Path(os.environ["ACTIONOPS_STORAGE"]) / summary["run_name"] / ".fault-injected"
    assert json.loads(marker.read_text()) == {"epoch": 1, "rank": 1}  # the fault did happen
    steps = [m.step for m in mlflow.MlflowClient().get_metric_history(summary["mlflow_run_id"], "loss")]
    assert steps == [1, 2, 3]  # the restarted worker group did not log epoch 1 again


@pytest.mark.slow
def test_failed_run_resumes_with_same_epochs(scenes, tmp_path):
    """No retries: the injected fault kills the run after epoch 1; --resume finishes epochs 2-3 in
    the same MLflow run (steps 1, 2, 3 once each). Slow: tests/test_resume.py SIGKILLs a real
    process for the same guarantees in the fast suite."""
    args = ["train", "autoencoder", str(scenes), "--out", str(tmp_path), *TINY, "--datatype", "flow",
            "--set", "autoencoder.epochs=3", "--set", "train.max_failures=0"]
    failed = runner.invoke(app, [*args, "--set", "train.fault_at_epoch=1"])
    assert failed.exit_code != 0 and "--resume" in str(failed.exception)
    assert not (tmp_path / "ae_flow.pt").exists()
    resumed = runner.invoke(app, [*args, "--resume", "--json"])
    assert resumed.exit_code == 0, resumed.output
    summary = json.loads(resumed.stdout)
    assert summary["epochs"] == 3 and summary["reported_epochs"] == 2
    state = torch.load(tmp_path / "ae_flow.pt", weights_only=True)
    assert state["epoch"] == 3
    steps = [m.step for m in mlflow.MlflowClient().get_metric_history(summary["mlflow_run_id"], "loss")]
    assert steps == [1, 2, 3]


def test_bad_inputs_are_clear_errors(run_of, tmp_path):
    run = run_of(METHOD)
    scenes = run["data"]
    common = [str(scenes), "--out", str(run["out"]), *TINY]
    coor = next((scenes / "train").glob("*/coor.npy"))
    moved = coor.with_name("coor.moved")
    coor.rename(moved)
    try:
        result = runner.invoke(app, ["train", "clustering", *common, "--set", "clustering.add_spatial_feature=true"])
    finally:
        moved.rename(coor)
    # removed after indexing: named as a change since indexing (re-index, then the check below names it)
    assert result.exit_code != 0 and f"its annotation file {coor} is missing" in str(result.exception)
    many = runner.invoke(app, ["train", "clustering", *common, "--set", "clustering.n_clusters=500"])
    assert "clustering.n_clusters=500" in str(many.exception)
    nocoor = tmp_path / "nocoor"
    generate_or_scenes(nocoor, videos=2, frames=8, width=64, height=48, seed=9)
    next((nocoor / "train").glob("*/coor.npy")).unlink()  # absent when indexed: the spatial feature cannot be built
    assert runner.invoke(app, ["flow", "compute", str(nocoor), *TINY]).exit_code == 0
    spatial = runner.invoke(app, ["train", "clustering", str(nocoor), "--out", str(run["out"]), *TINY,
                                  "--set", "clustering.add_spatial_feature=true"])
    assert spatial.exit_code != 0 and "missing table centre" in str(spatial.exception) and "coor.npy" in str(spatial.exception)
    fresh = tmp_path / "noflow"
    generate_or_scenes(fresh, videos=2, frames=8, width=64, height=48, seed=9)
    noflow = runner.invoke(app, ["train", "autoencoder", str(fresh), "--out", str(tmp_path / "o"), *TINY, "--datatype", "flow"])
    assert "missing optical flow" in str(noflow.exception) and "flow compute" in noflow.exception.hint
