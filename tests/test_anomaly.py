"""Embedding anomaly detection (methods.md §3): backbones as embedders, the embeddings file, the
analysis, the threshold chosen on validation only, the detector separating its action from the
others, and the bad-input messages. The pipeline itself (embed -> analyze -> train -> evaluate,
registry, predict) runs once per session under the method contract (`run_of`)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from actionops.cli.main import app
from actionops.errors import ActionopsError, DataError

METHOD = "anomaly-detection"
runner = CliRunner()
DIMS = {"tsm_resnet18": 512, "r2plus1d_18": 512, "cnn_lstm_resnet18": 512, "x3d_xs": 2048, "slow_r50": 2048,
        "vivit_tiny": 192, "slowfast_r50": 2304}


def spec(backbone: str, frames: int = 4, size: int = 32, clip_input: str = "rgb", seed: int = 0) -> SimpleNamespace:
    return SimpleNamespace(backbone=backbone, num_frames=frames, size=size, clip_input=clip_input, seed=seed)


HEAVY = {"r2plus1d_18", "slow_r50", "slowfast_r50", "cnn_lstm_resnet18"}  # seconds each on 2 cores: `make test-all`


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n for n in sorted(DIMS)])
def test_every_backbone_embeds_a_clip_to_its_width_deterministically(name):
    from actionops.models.checkpoint import build_from_checkpoint
    from actionops.models.embedding import clip_embedder
    from actionops.pipelines.anomaly_detection.embeddings import resolve_backbone

    frames = 32 if name == "slowfast_r50" else 4
    state, identity = resolve_backbone(spec(name, frames))
    again, identity_again = resolve_backbone(spec(name, frames))
    assert identity["dim"] == DIMS[name] and identity["weights_digest"] == identity_again["weights_digest"]
    assert resolve_backbone(spec(name, frames, seed=1))[1]["weights_digest"] != identity["weights_digest"]
    clip = torch.randn(2, frames, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    outs = []
    for s in (state, again):
        with torch.no_grad():
            outs.append(clip_embedder(build_from_checkpoint(s))(clip))
    assert outs[0].shape == (2, DIMS[name])
    torch.testing.assert_close(outs[0], outs[1])
    assert not torch.allclose(outs[0][0], outs[0][1])  # the clip matters


def test_backbone_refusals_name_the_reason():
    from actionops.pipelines.anomaly_detection.embeddings import resolve_backbone

    with pytest.raises(ActionopsError) as unknown:
        resolve_backbone(spec("resnet_3d_9000"))
    assert "unknown model 'resnet_3d_9000'" in unknown.value.message and "r2plus1d_18" in unknown.value.hint
    with pytest.raises(ActionopsError) as hub:
        resolve_backbone(spec("kinetics"))
    assert "download" in hub.value.message
    with pytest.raises(ActionopsError) as frames:
        resolve_backbone(spec("slowfast_r50", frames=8))
    assert "exactly 32 frames" in frames.value.message
    result = runner.invoke(app, ["embed", "no/such/dataset", "--backbone", "slowfast_r50", "--set", "embed.num_frames=16"])
    assert result.exit_code == 1 and "exactly 32 frames" in result.exception.message  # before any video is read


def test_embeddings_file_round_trips_with_the_backbone_identity(run_of):
    from actionops.pipelines.anomaly_detection.embeddings import read_embeddings, write_embeddings

    run = run_of(METHOD)
    emb = read_embeddings(run["out"] / "embeddings.parquet")
    ident = emb.identity
    assert ident["backbone"] == "tsm_resnet18" and ident["dim"] == emb.X.shape[1] == 512
    assert {"weights_digest", "num_frames", "size", "clip_input", "resolved"} <= set(ident)
    assert ident["clip_input"] == "rgb_diff" and ident["num_frames"] == 4
    assert len(emb.X) == len(set(emb.video_id)) == 40 and (emb.clip == -1).all()  # one mean row per video
    assert set(emb.split) == {"train", "val", "test"} and np.isfinite(emb.X).all()
    rows = [{"video_id": v, "path": p, "label": lab, "split": s, "view": -1, "clip": 0, "clip_start": 0, "clip_end": 4,
             "vector": x} for v, p, lab, s, x in zip(emb.video_id, emb.frame["path"], emb.label, emb.split, emb.X)]
    copy = write_embeddings(run["root"] / "copy.parquet", rows, emb.meta)
    back = read_embeddings(copy)
    np.testing.assert_array_equal(back.X, emb.X)
    assert back.meta == emb.meta and list(back.label) == list(emb.label)


@pytest.mark.slow
def test_per_clip_embeddings_and_split_from_the_cli(run_of, ray_local, tmp_path):
    from actionops.pipelines.anomaly_detection.embeddings import read_embeddings

    run = run_of(METHOD)
    target = tmp_path / "test.parquet"
    result = runner.invoke(app, ["embed", str(run["data"]), "--split", "test", "--per-clip", "--out", str(target),
                                 *[a for t in run["method"].tiny for a in ("--set", t)], "--json"])
    assert result.exit_code == 0, result.output
    emb = read_embeddings(target)
    assert set(emb.split) == {"test"} and len(set(emb.video_id)) == 8 and len(emb.X) == 8 * 2  # 2 clips each
    full = read_embeddings(run["out"] / "embeddings.parquet")
    for vid in set(emb.video_id):  # the per-video rows are the mean of these clips
        np.testing.assert_allclose(emb.X[emb.video_id == vid].mean(axis=0), full.X[full.video_id == vid][0], atol=1e-5)


def test_analysis_reports_centroids_silhouette_and_neighbours(run_of):
    run = run_of(METHOD)
    result = runner.invoke(app, ["analyze", "embeddings", str(run["out"] / "embeddings.parquet"), "--json"])
    assert result.exit_code == 0, result.output
    analysis = json.loads(result.stdout)
    folder = Path(analysis["outputs"])
    assert {p.name for p in folder.iterdir()} >= {"analysis.json", "centroid_distances.csv", "embeddings-tsne.png",
                                                  "embeddings-pca.png"}
    assert set(analysis["classes"]) == {"work_at_table", "wave", "bend", "walk"}
    for row in analysis["classes"].values():
        assert row["in_class_farthest"] > 0 and row["members"] == 10
    assert -1 <= analysis["silhouette"] <= 1 and 0 <= analysis["knn_agreement"] <= 1
    assert len((folder / "centroid_distances.csv").read_text().splitlines()) == 41


def test_detector_scores_its_action_lower_than_the_others(run_of):
    run = run_of(METHOD)
    metrics = json.loads((run["out"] / "metrics_anomaly.json").read_text())
    assert metrics["normal"] == "work_at_table" and metrics["normal_videos"] == 2 and metrics["anomalous_videos"] == 6
    assert metrics["roc_auc"] >= 0.9, metrics["roc_auc"]
    rows = [line.split(",") for line in (run["out"] / "scores_test.csv").read_text().splitlines()[1:]]
    normal = [float(r[2]) for r in rows if r[1] == "work_at_table"]
    others = [float(r[2]) for r in rows if r[1] != "work_at_table"]
    assert np.mean(normal) < 0.8 * np.mean(others), (normal, others)
    assert set(metrics["vs_each"]) == {"wave", "bend", "walk"}
    assert set(metrics["baselines"]) == {"centroid", "mahalanobis", "knn"}
    assert {"roc_auc", "pr_auc", "precision", "recall", "f1"} <= set(metrics)
    assert (run["out"] / "error_hist_log.png").is_file()


def test_threshold_and_training_data_never_see_the_test_split(run_of, tmp_path):
    """Test vectors blown up by 1000x change neither the training rows nor the threshold; the
    validation rows do change the threshold (it is chosen there)."""
    from actionops.pipelines.anomaly_detection.embeddings import read_embeddings, write_embeddings
    from actionops.pipelines.anomaly_detection.stages import _val_threshold, autoencoder_scores, detector_data

    run = run_of(METHOD)
    ctx = run["ctx"]
    state = torch.load(run["out"] / "anomaly.pt", weights_only=True)
    emb = read_embeddings(run["out"] / "embeddings.parquet")

    def altered(split: str) -> Path:
        rows = [{"video_id": v, "path": p, "label": lab, "split": s, "view": -1, "clip": -1, "clip_start": 0, "clip_end": 1,
                 "vector": x * (1000.0 if s == split else 1.0)}
                for v, p, lab, s, x in zip(emb.video_id, emb.frame["path"], emb.label, emb.split, emb.X)]
        return write_embeddings(tmp_path / f"{split}.parquet", rows, emb.meta)

    original = detector_data(dataclasses.replace(ctx, out=run["out"]))
    for split, same in (("test", True), ("val", False)):
        path = altered(split)
        other_ctx = dataclasses.replace(ctx, cfg=ctx.cfg.with_overrides({"anomaly.embeddings": str(path)}))
        data = detector_data(other_ctx)
        np.testing.assert_array_equal(data["x_train"], original["x_train"])
        changed = read_embeddings(path)
        threshold, _ = _val_threshold(changed, "work_at_table", autoencoder_scores(state, changed.X), ctx.cfg.anomaly)
        assert (threshold == pytest.approx(state["threshold"], rel=1e-6)) is same, (split, threshold, state["threshold"])


def test_threshold_rules():
    from actionops.pipelines.anomaly_detection.scoring import choose_threshold

    normal = np.arange(1.0, 21.0)  # 20 normal validation scores
    assert choose_threshold(normal, np.array([30.0]), "fpr", 0.05)[0] == 19.0  # one of 20 (5 %) may lie above
    assert choose_threshold(normal[:3], np.array([]), "fpr", 0.05)[0] == 3.0  # too few to spare any: the highest
    t, rule = choose_threshold(np.array([1.0, 2.0]), np.array([5.0, 6.0]), "best_f1", 0.05)
    assert rule == "best_f1" and 2.0 < t < 5.0
    assert choose_threshold(np.array([1.0, 2.0]), np.array([]), "best_f1", 0.05) == (2.0, "fpr")  # no anomalies in val


def _tiny_parquet(path: Path, labels_splits: list[tuple[str, str]], dim: int = 8, meta: dict | None = None) -> Path:
    from actionops.pipelines.anomaly_detection.embeddings import write_embeddings

    rng = np.random.default_rng(0)
    rows = [{"video_id": f"v{i}", "path": f"/x/v{i}.mp4", "label": lab, "split": s, "view": -1, "clip": -1,
             "clip_start": 0, "clip_end": 8, "vector": rng.normal(size=dim)} for i, (lab, s) in enumerate(labels_splits)]
    return write_embeddings(path, rows, meta or {"backbone": {"backbone": "x", "dim": dim}})


def test_bad_inputs_get_clear_messages(run_of, tmp_path):
    from actionops.pipelines.anomaly_detection.embeddings import read_embeddings
    from actionops.pipelines.anomaly_detection.stages import detector_data, evaluate_anomaly

    run = run_of(METHOD)
    ctx = run["ctx"]

    def with_file(path: Path, **more):
        return dataclasses.replace(ctx, out=tmp_path, cfg=ctx.cfg.with_overrides({"anomaly.embeddings": str(path), **more}))

    few = _tiny_parquet(tmp_path / "few.parquet", [("screw", "train"), ("screw", "test"), ("unscrew", "train"),
                                                    ("unscrew", "val"), ("unscrew", "test")])
    with pytest.raises(DataError) as short:
        detector_data(with_file(few, **{"anomaly.normal": "screw"}))
    assert "action 'screw' has 2 videos (train 1, val 0, test 1)" in short.value.message and "at least 4" in short.value.message
    with pytest.raises(DataError) as unknown:
        detector_data(with_file(few, **{"anomaly.normal": "hammer"}))
    assert "labels there: screw, unscrew" in unknown.value.hint
    # embeddings of another backbone than the detector's: both named
    other = _tiny_parquet(tmp_path / "other.parquet", [("work_at_table", "test"), ("wave", "test")], dim=8,
                          meta={"backbone": {"backbone": "x3d_xs", "resolved": "x3d_xs (random init, seed 0)", "dim": 8}})
    with pytest.raises(DataError) as mismatch:
        evaluate_anomaly(with_file(other), str(run["out"] / "anomaly.pt"), "test")
    assert "8-d embeddings of x3d_xs" in mismatch.value.message and "512-d embeddings of tsm_resnet18" in mismatch.value.message
    unlabelled = _tiny_parquet(tmp_path / "unlabelled.parquet", [("", "all"), ("", "all")])
    with pytest.raises(DataError, match="has no labels"):
        read_embeddings(unlabelled)
    empty = _tiny_parquet(tmp_path / "empty.parquet", [])
    with pytest.raises(DataError, match="holds no embeddings"):
        read_embeddings(empty)
    (tmp_path / "junk.parquet").write_text("not parquet")
    result = runner.invoke(app, ["train", "anomaly", str(tmp_path / "junk.parquet"), "--normal", "x"])
    assert result.exit_code == 1 and "not a readable parquet" in result.exception.message


@pytest.mark.slow  # ~15 s
def test_registered_detector_evaluates_and_predicts_from_the_cli(run_of, ray_local, tmp_path):
    run = run_of(METHOD)
    uri = "models:/anomaly-work-at-table@candidate"
    result = runner.invoke(app, ["evaluate", "anomaly", str(run["out"] / "embeddings.parquet"), "--model", uri,
                                 "--out", str(tmp_path / "eval"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["roc_auc"] == json.loads((run["out"] / "metrics_anomaly.json").read_text())["roc_auc"]
    video = next((run["data"] / "work_at_table").glob("*.mp4"))
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 64)
    result = runner.invoke(app, ["predict", "anomaly", str(video), str(broken), "--model", uri, "--out",
                                 str(tmp_path / "pred"), "--set", "anomaly.window_frames=8", "--set",
                                 "anomaly.window_stride=8", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["videos"] == 1 and summary["failed"] == 1 and summary["windows"] == 2  # 16 frames, windows of 8
    predictions = json.loads((tmp_path / "pred" / "predictions.json").read_text())
    entry = predictions["videos"][str(video)]
    assert entry["anomalous"] == (entry["score"] > predictions["threshold"]) and len(entry["windows"]) == 2
    assert "broken.mp4" in predictions["failed"][0]["path"]


@pytest.mark.slow
def test_end_to_end_with_a_frozen_best_epoch_keeps_and_names_the_original_backbone(run_of, ray_local, tmp_path):
    """On the one-look sample the frozen backbone's epochs already win validation: the detector then
    says it keeps the original backbone (its identity, no copy, no re-embedding), never "fine-tuned"."""
    from actionops.pipelines.anomaly_detection.embeddings import read_embeddings

    run = run_of(METHOD)
    emb_path = run["out"] / "embeddings.parquet"
    result = runner.invoke(app, ["train", "anomaly", str(emb_path), "--normal", "work_at_table", "--out", str(tmp_path),
                                 *[a for t in run["method"].tiny for a in ("--set", t)], "--set", "anomaly.end_to_end=true",
                                 "--set", "anomaly.unfreeze_after=2", "--set", "anomaly.epochs=3",
                                 "--set", "anomaly.registered_name=anomaly-e2e-frozen", "--json"])
    assert result.exit_code == 0, result.output
    history = json.loads((tmp_path / "history_anomaly.json").read_text())
    state = torch.load(tmp_path / "anomaly.pt", weights_only=True)
    assert state["best_epoch"] <= 2, f"the sample no longer lets a frozen epoch win: {history}"
    original = read_embeddings(emb_path).identity
    assert state["backbone"] == original and "backbone_state" not in state
    assert state["backbone"]["kind"] != "fine-tuned"
    assert not list(tmp_path.glob("embeddings-ft-*.parquet"))
    result = runner.invoke(app, ["evaluate", "anomaly", str(emb_path), "--model", "models:/anomaly-e2e-frozen@candidate",
                                 "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output


@pytest.mark.slow
def test_end_to_end_mode_trains_the_backbone_after_unfreezing(run_of, ray_local, tmp_path):
    """anomaly.end_to_end: the backbone is frozen for unfreeze_after epochs, then trained; the
    detector carries its fine-tuned backbone, embeds the videos with it, and evaluates / predicts
    from the registry with it."""
    from actionops.models.embedding import weights_digest
    from actionops.pipelines.anomaly_detection.embeddings import read_embeddings

    from actionops.platform.synth import generate_clips

    run = run_of(METHOD)
    # varied looks (the sample has one): the frozen random backbone does not already separate the
    # actions perfectly, so the best validation epoch is one whose backbone trained
    data = tmp_path / "varied"
    generate_clips(data, videos=40, frames=16, width=48, height=48, seed=3)
    emb_path = tmp_path / "embeddings.parquet"
    result = runner.invoke(app, ["embed", str(data), "--out", str(emb_path),
                                 *[a for t in run["method"].tiny for a in ("--set", t)], "--json"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["train", "anomaly", str(emb_path), "--normal", "work_at_table", "--out", str(tmp_path),
                                 *[a for t in run["method"].tiny for a in ("--set", t)], "--set", "anomaly.end_to_end=true",
                                 "--set", "anomaly.unfreeze_after=2", "--set", "anomaly.epochs=4",
                                 "--set", "anomaly.registered_name=anomaly-e2e", "--json"])
    assert result.exit_code == 0, result.output
    history = json.loads((tmp_path / "history_anomaly.json").read_text())
    assert [h["backbone_trained"] for h in history] == [0.0, 0.0, 1.0, 1.0] and all("val_roc_auc" in h for h in history)
    state = torch.load(tmp_path / "anomaly.pt", weights_only=True)
    original = read_embeddings(emb_path).identity
    assert state["backbone"]["kind"] == "fine-tuned"
    assert state["backbone"]["weights_digest"] == weights_digest(state["backbone_state"]["model"]) != original["weights_digest"]
    own = read_embeddings(tmp_path / f"embeddings-ft-{state['backbone']['weights_digest'][:8]}.parquet")
    assert own.identity["weights_digest"] == state["backbone"]["weights_digest"] and len(own.X) == 40
    result = runner.invoke(app, ["evaluate", "anomaly", str(emb_path), "--model", "models:/anomaly-e2e@candidate",
                                 "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["backbone"]["kind"] == "fine-tuned"
    video = next((data / "wave").glob("*.mp4"))
    result = runner.invoke(app, ["predict", "anomaly", str(video), "--model", "models:/anomaly-e2e@candidate",
                                 "--out", str(tmp_path / "pred"), "--json"])
    assert result.exit_code == 0, result.output
