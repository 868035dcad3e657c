"""Trajectory clustering as a method and video pretraining (issue #18): the CLI writes the cluster
table keyed by video id; every pretraining stage runs on two workers with one memory bank; a
classifier starts from the registered backbone, and a backbone of another input is refused by name.
The method contract tests (test_method_contract.py) cover the pipeline, registry and learning."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from actionops.cli.main import app
from conftest import tiny_cfg

runner = CliRunner()
METHOD = "trajectory-clustering"


def test_cluster_command_writes_the_table_by_video_id(run_of):
    run = run_of(METHOD)
    args = [str(run["data"]), "--out", str(run["out"]), *tiny_cfg(METHOD), "--json"]
    result = runner.invoke(app, ["trajectories", "cluster", *args[:3], "--k", "3", *args[3:]])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(run["out"] / "clusters.csv", dtype={"video_id": str})
    assert list(table.columns) == ["video_id", "cluster"] and table["cluster"].nunique() == 3
    fisher_ids = np.load(run["out"] / "fisher_model" / "fisher.npz")["video_id"].tolist()
    assert sorted(table["video_id"]) == sorted(fisher_ids)
    scores = json.loads(result.stdout)
    assert 0.0 <= scores["nmi"] <= 1.0 and scores["k"] == 3
    too_many = runner.invoke(app, ["trajectories", "cluster", *args[:3], "--k", "50", *args[3:]])
    assert too_many.exit_code == 1 and "cannot make 50 clusters" in str(too_many.exception)
    # the pipeline's own table (k = the 4 labels) is put back for the other tests
    assert runner.invoke(app, ["trajectories", "cluster", *args]).exit_code == 0


def test_knn_and_linear_probe_scores():
    from actionops.pipelines.trajectory_clustering.stages import knn_predict, linear_probe

    rng = np.random.default_rng(0)
    centres = np.eye(3) * 5
    x = np.concatenate([c + rng.normal(0, 0.3, (6, 3)) for c in centres])
    y = [str(i) for i in range(3) for _ in range(6)]
    assert knn_predict(x, y, x, 3, leave_one_out=True) == y
    assert knn_predict(x, y, x[:1] * 0 + centres[2], 1) == ["2"]
    assert linear_probe(x, y, centres) == ["0", "1", "2"]


@pytest.mark.slow  # 45 s: a 2-worker Ray Train run (make test-all, as the other DDP tests)
def test_every_pretraining_stage_runs_on_two_workers(run_of, tmp_path):
    """One epoch each of instance recognition, Local Aggregation and tuning, DDP on 2 workers (the
    loop stops if the two memory banks differ after an epoch)."""
    run = run_of(METHOD)
    out = tmp_path / "two"
    out.mkdir()
    for name in ("trajectories", "fisher_model", "clusters.csv", "trajectories_report.json"):  # reuse the trajectories
        src = run["out"] / name
        (out / name).symlink_to(src, target_is_directory=src.is_dir())
    sets = [*tiny_cfg(METHOD), "--set", "train.num_workers=2", "--set", "pretrain.ir_epochs=1",
            "--set", "pretrain.la_epochs=1", "--set", "pretrain.epochs=3", "--set", "pretrain.registered_model=two-workers"]
    result = runner.invoke(app, ["train", "pretrain", str(run["data"]), "--out", str(out), *sets, "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert sorted(w["rank"] for w in summary["workers"]) == [0, 1]
    history = json.loads((out / "history_pretrain.json").read_text())
    assert [h["stage"] for h in history] == [1.0, 2.0, 3.0]
    assert all(np.isfinite(h["loss"]) for h in history)
    import torch

    state = torch.load(out / "pretrain.pt", weights_only=True)
    assert state["bank"].shape == (20, 32) and len(state["video_ids"]) == 20
    assert torch.allclose(state["bank"].norm(dim=1), torch.ones(20), atol=1e-4)


def test_classifier_starts_from_the_registered_backbone(run_of, tmp_path):
    import torch

    run = run_of(METHOD)
    clips = run["data"]
    pretrained = torch.load(run["out"] / "pretrain.pt", weights_only=True)
    sets = ["--set", "classifier.num_frames=4", "--set", "classifier.size=32", "--set", "classifier.clip_input=rgb_diff",
            "--set", "classifier.epochs=1", "--set", "classifier.batch_size=8", "--set", "classifier.eval_clips=1",
            "--set", "classifier.clips_per_video=1"]
    result = runner.invoke(app, ["train", "classifier", str(clips), "--model", "r3d_18", "--weights",
                                 "models:/video-pretrained@candidate", "--out", str(tmp_path / "cls"), *sets])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())  # rich wraps long lines
    assert "tensors from models:/video-pretrained@candidate, 2 skipped (new head)" in said  # the projection head
    init = torch.load(tmp_path / "cls" / "init.pt", weights_only=True)
    backbone = {k: v for k, v in pretrained["model"].items() if k.startswith("net.")}
    assert backbone and all(torch.equal(init[k], v) for k, v in backbone.items())  # every backbone tensor came over
    assert "net.fc.weight" in init and "head.weight" not in init
    # another input size than the backbone was pretrained on: refused, naming the key
    wrong = runner.invoke(app, ["train", "classifier", str(clips), "--model", "r3d_18", "--weights",
                                "models:/video-pretrained@candidate", "--out", str(tmp_path / "bad"),
                                *sets, "--set", "classifier.size=48"])
    assert wrong.exit_code == 1
    text = str(wrong.exception)
    assert "pretrained with size 32 (this run: 48)" in text and "classifier.size=32" in text
    other = runner.invoke(app, ["train", "classifier", str(clips), "--model", "r2plus1d_18", "--weights",
                                "models:/video-pretrained@candidate", "--out", str(tmp_path / "bad2"), *sets])
    assert other.exit_code == 1 and "model r3d_18 (this run: r2plus1d_18)" in str(other.exception)


@pytest.mark.slow
def test_pretrain_resumes_from_its_checkpoint(run_of, tmp_path):
    """A pretraining run stopped after its first stage continues with --resume: fewer epochs run
    and one history (the bank comes back from the checkpoint)."""
    run = run_of(METHOD)
    out = tmp_path / "resume"
    out.mkdir()
    for name in ("trajectories", "fisher_model", "clusters.csv"):
        src = run["out"] / name
        (out / name).symlink_to(src, target_is_directory=src.is_dir())
    base = [str(run["data"]), "--out", str(out), *tiny_cfg(METHOD), "--set", "pretrain.registered_model=resumed", "--json"]
    first = runner.invoke(app, ["train", "pretrain", *base, "--set", "train.fault_at_epoch=2",
                                "--set", "train.max_failures=0"])
    assert first.exit_code != 0
    second = runner.invoke(app, ["train", "pretrain", *base, "--resume"])
    assert second.exit_code == 0, second.output
    summary = json.loads(second.stdout)
    assert summary["reported_epochs"] == 4  # epochs 3-6 only
    history = json.loads((out / "history_pretrain.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3, 4, 5, 6]


def test_embed_takes_the_pretrained_backbone(run_of):
    """`actionops embed --backbone pretrain.pt` (or models:/video-pretrained@...): the projection is
    removed and the backbone's 512-d features come out, with the input the backbone was trained on."""
    from types import SimpleNamespace

    import torch

    from actionops.models.checkpoint import build_from_checkpoint
    from actionops.models.embedding import clip_embedder
    from actionops.pipelines.anomaly_detection.embeddings import resolve_backbone

    run = run_of(METHOD)
    e = SimpleNamespace(backbone=str(run["out"] / "pretrain.pt"), num_frames=8, size=112, clip_input="rgb", seed=0)
    state, identity = resolve_backbone(e)
    assert (identity["backbone"], identity["dim"], identity["num_frames"], identity["size"], identity["clip_input"]) == \
        ("video_pretrained", 512, 4, 32, "rgb_diff")
    clip = torch.randn(2, 4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    net = build_from_checkpoint(state)
    with torch.no_grad():
        expected = torch.nn.functional.normalize(net.features(clip), dim=1)
        got = clip_embedder(build_from_checkpoint(state))(clip)
    torch.testing.assert_close(got, expected)


def test_individual_clustering_pools_people_from_the_pretrained_backbone(run_of, tmp_path):
    """`train clustering --weights models:/video-pretrained@candidate`: person RoIs come from the
    frozen backbone's feature map (no autoencoder is trained or read), only the DEC head learns,
    the model registers and predicts from the registry; `pipeline run` skips both autoencoder
    stages; anything but a pretrained backbone is refused by name."""
    import torch

    from actionops.models.checkpoint import build_from_checkpoint

    scenes = run_of("individual-clustering")
    traj = run_of(METHOD)  # its stores stay active: video-pretrained@candidate is there
    pretrained = torch.load(traj["out"] / "pretrain.pt", weights_only=True)
    out = tmp_path / "bb"
    sets = [*tiny_cfg("individual-clustering"), "--set", "clustering.registered_model=backbone-clustering",
            "--set", "clustering.epochs=3", "--set", "clustering.backbone_layer=layer3"]
    result = runner.invoke(app, ["train", "clustering", str(scenes["data"]), "--out", str(out), *sets,
                                 "--weights", "models:/video-pretrained@candidate", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["registered"] == "backbone-clustering v1"
    assert not list(out.glob("ae_*.pt"))
    state = torch.load(out / "clustering.pt", weights_only=True)
    assert state["model_name"] == "individual_clustering_backbone"
    assert state["model_args"]["source"] == "models:/video-pretrained@candidate"
    weights = state["model"]
    moved = [k for k in weights if k.startswith("backbone.")]
    assert moved and not any(k.startswith("backbone.layer4") for k in moved)
    assert all(torch.equal(weights[k], pretrained["model"]["net." + k[len("backbone."):]]) for k in moved)  # frozen
    init = torch.load(out / "clustering_init.pt", weights_only=True)["model"]
    assert not torch.allclose(init["head.embed.weight"], weights["head.embed.weight"])  # the head trained
    history = json.loads((out / "history_clustering.json").read_text())
    assert len(history) == 3 and all(h["mse_frame"] == 0.0 and np.isfinite(h["kl"]) for h in history)
    model = build_from_checkpoint(state)
    fmap = model.feature_map(torch.zeros(2, 3, 8, 72, 96))
    assert fmap.shape[:2] == (2, 256) and fmap.shape[-2:] == (4, 4)  # 32 px input (the backbone's), 1/8
    predicted = runner.invoke(app, ["predict", "clustering", str(scenes["data"]), "--out", str(out), *sets,
                                    "--model", "models:/backbone-clustering@candidate", "--json"])
    assert predicted.exit_code == 0, predicted.output
    emb = np.load(out / "predictions" / "test" / "embeddings.npz")
    assert emb["embedding"].shape[1] == 8 + 32 and len(emb["cluster"]) > 0  # tiny ndf + the fused 2x2x8 flow descriptor
    # the pipeline: the two autoencoder stages are skipped, the rest runs on the backbone
    piped = runner.invoke(app, ["pipeline", "run", "individual-clustering", str(scenes["data"]), "--out",
                                str(tmp_path / "pipe"), *sets, "--set", "clustering.features=backbone",
                                "--set", f"clustering.backbone={traj['out'] / 'pretrain.pt'}", "--json"])
    assert piped.exit_code == 0, piped.output
    rows = {r["stage"]: r for r in json.loads(piped.stdout)}
    assert rows["autoencoder_frame"]["result"]["skipped"].startswith("clustering.features=backbone")
    assert rows["evaluate"]["status"] == "done" and not list((tmp_path / "pipe").glob("ae_*.pt"))
    # a checkpoint that is not a pretrained backbone: refused, naming what it is
    wrong = runner.invoke(app, ["train", "clustering", str(scenes["data"]), "--out", str(tmp_path / "w"), *sets,
                                "--weights", str(scenes["out"] / "clustering.pt")])
    assert wrong.exit_code == 1
    assert "holds a individual_clustering model" in str(wrong.exception) and "train pretrain" in wrong.exception.hint
    empty = runner.invoke(app, ["train", "clustering", str(scenes["data"]), "--out", str(tmp_path / "w"), *sets,
                                "--set", "clustering.features=backbone"])
    assert empty.exit_code == 1 and "clustering.backbone is empty" in str(empty.exception)
