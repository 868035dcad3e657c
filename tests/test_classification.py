"""Clip classification: models, TSM shift, sampler, splits, and train/evaluate/predict on real Ray + MLflow."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from actionops.cli.main import app
from actionops.errors import ActionopsError, DataError
from actionops.models import create_model, list_models
from actionops.evaluation.metrics import macro_f1
from actionops.models.classifiers import CLASSIFIERS, count_parameters, freeze_until, load_weights, temporal_shift
from actionops.pipelines.clip_classification.data import class_weights, eval_indices, make_splits, windows
from actionops.pipelines.clip_classification.loops import is_better, lr_factor
from actionops.platform.synth import generate_clips
from conftest import tiny_cfg

runner = CliRunner()


def said(result) -> str:
    """What the user sees of a CLI failure: the error's message and hint (main() prints them)."""
    exc = result.exception
    return f"{exc.message} (hint: {exc.hint})" if isinstance(exc, ActionopsError) else result.output
TINY = [*tiny_cfg("clip-classification"), "--set", "classifier.window_frames=8", "--set", "classifier.window_stride=8"]
METHOD = "clip-classification"
# reference parameter counts (methods.md §2, 7 classes) where the architecture is the reference's
REFERENCE_PARAMS_M = {"tsm_resnet18": 11.0, "r2plus1d_18": 31.0, "cnn_lstm_resnet18": 13.28}


# ----------------------------------------------------------------------------- models
@pytest.mark.parametrize("name", CLASSIFIERS)
def test_every_classifier_trains_a_step_on_a_tiny_clip(name):
    torch.manual_seed(0)
    frames = 32 if name == "slowfast_r50" else 4  # SlowFast takes exactly 32 frames
    model = create_model(name, num_classes=3, num_frames=frames, image_size=32)
    x = torch.randn(2, frames, 3, 32, 32)
    logits = model(x)
    assert logits.shape == (2, 3)
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 2])).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None for g in grads)
    probs = model.eval().infer({"clip": x})
    assert torch.allclose(probs.sum(-1), torch.ones(2), atol=1e-5)
    assert count_parameters(model) > 1e6
    if name in REFERENCE_PARAMS_M:
        full = create_model(name, num_classes=7, num_frames=16, image_size=112)
        assert count_parameters(full) / 1e6 == pytest.approx(REFERENCE_PARAMS_M[name], rel=0.03)


def test_registry_lists_classifiers_and_names_choices():
    assert set(CLASSIFIERS) <= set(list_models())
    with pytest.raises(ActionopsError) as info:
        create_model("tsm_resnet81", num_classes=2)
    assert "tsm_resnet18" in info.value.hint and "r2plus1d_18" in info.value.hint


def test_temporal_shift_moves_channel_folds_by_hand():
    b, t, c = 1, 3, 8
    x = torch.arange(b * t * c, dtype=torch.float32).view(b * t, c, 1, 1) + 1  # value = 1 + t*c + channel
    out = temporal_shift(x, num_segments=t, fold_div=4).view(t, c)
    ref = x.view(t, c)
    # channels 0-1 (fold 8/4=2) take the next frame's values, the last frame gets zeros
    assert torch.equal(out[:2, :2], ref[1:, :2]) and torch.equal(out[2, :2], torch.zeros(2))
    # channels 2-3 take the previous frame's values, the first frame gets zeros
    assert torch.equal(out[1:, 2:4], ref[:2, 2:4]) and torch.equal(out[0, 2:4], torch.zeros(2))
    assert torch.equal(out[:, 4:], ref[:, 4:])  # the rest is untouched


def test_freeze_until_and_weights(tmp_path):
    model = create_model("tsm_resnet18", num_classes=3, num_frames=4, image_size=32)
    frozen = freeze_until(model, "layer2")
    names = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert len(names) == frozen and names[-1].startswith("layer2.") and all(not n.startswith("layer3") for n in names)
    with pytest.raises(ActionopsError, match="no block named 'layer9'"):
        freeze_until(model, "layer9")
    from actionops.pipelines.clip_classification.stages import weights_state

    source = create_model("tsm_resnet18", num_classes=5, num_frames=4, image_size=32)
    torch.save({"model_name": "tsm_resnet18", "model": source.state_dict()}, tmp_path / "w.pt")
    report = load_weights(model, weights_state(str(tmp_path / "w.pt")))
    assert report["skipped"] == ["fc.bias", "fc.weight"]  # a different head is not loaded
    src = source.state_dict()
    assert all(torch.equal(v, src[k]) for k, v in model.state_dict().items() if not k.startswith("fc."))
    with pytest.raises(ActionopsError, match="download"):
        weights_state("kinetics")
    with pytest.raises(ActionopsError, match="missing .*missing.pt"):
        weights_state(str(tmp_path / "missing.pt"))


# ----------------------------------------------------------------------------- sampling, splits, schedule
def test_class_balanced_sampler_frequencies():
    labels = [0] * 80 + [1] * 15 + [2] * 5
    rng = np.random.default_rng(0)
    for tau, expected in [(0.0, [0.80, 0.15, 0.05]), (1.0, [1 / 3] * 3)]:
        draws = np.asarray(labels)[rng.choice(len(labels), size=20000, p=class_weights(labels, tau))]
        freq = np.bincount(draws, minlength=3) / len(draws)
        assert np.allclose(freq, expected, atol=0.015), (tau, freq)
    # tau 0.5 (the reference): class mass proportional to sqrt(count)
    probs = class_weights(labels, 0.5)
    mass = [probs[np.asarray(labels) == k].sum() for k in range(3)]
    assert np.allclose(mass, np.sqrt([80, 15, 5]) / np.sqrt([80, 15, 5]).sum())


def test_splits_from_class_folders_and_bad_classes(tmp_path):
    rows = [{"video_id": f"{lab}/{i}", "path": f"/x/{lab}/{i}.mp4", "label": lab, "split": "all", "frames": 10}
            for lab in ("a", "b", "c") for i in range(10)]
    s = make_splits(rows, val_fraction=0.2, test_fraction=0.2)
    assert s.labels == ["a", "b", "c"]
    assert (len(s.train), len(s.val), len(s.test)) == (18, 6, 6)
    assert {r["label"] for r in s.test} == {"a", "b", "c"}
    assert not {r["video_id"] for r in s.train} & {r["video_id"] for r in s.test + s.val}
    assert make_splits(rows, val_fraction=0.2, test_fraction=0.2).test == s.test  # deterministic
    csv_rows = [dict(r, split="train") for r in rows[:20]] + [dict(rows[25], split="test")]
    with pytest.raises(DataError, match="class 'c' of the test split"):
        make_splits(csv_rows, val_fraction=0.0, test_fraction=0.0)


def test_clip_positions_windows_and_schedule():
    assert eval_indices(100, 4, 0, 1).tolist() == [12, 37, 62, 87]
    assert eval_indices(3, 5, 0, 1).tolist() == [0, 1, 2, 2, 2]  # short video: last frame repeated
    assert windows(10, 64, 32) == [(0, 10)]
    assert windows(100, 40, 30) == [(0, 40), (30, 70), (60, 100)]
    assert lr_factor(0, 10, 1) == 0.5 and lr_factor(1, 10, 1) == 1.0 and lr_factor(9, 10, 1) < 0.05
    assert macro_f1(np.array([0, 0, 1, 1]), np.array([0, 0, 1, 0]), range(2)) == pytest.approx((0.8 + 2 / 3) / 2)
    assert macro_f1(np.array([0, 0]), np.array([0, 0]), range(3)) == pytest.approx(1 / 3)  # absent classes score 0
    # best checkpoint: higher macro-F1 wins; at equal macro-F1 (a saturated val set) the lower loss
    assert is_better(0.9, 2.0, 0.8, 0.1) and is_better(1.0, 0.3, 1.0, 0.5)
    assert not is_better(1.0, 0.6, 1.0, 0.5) and not is_better(0.7, 0.0, 0.8, 0.5)


def test_rgb_diff_clip_input_on_a_real_video(clips):
    """rgb_diff: at each sampled position t the clip is normalised frame t+1 minus frame t, from
    the same decoded video; pairs never leave the video or the prediction window."""
    from actionops.errors import ConfigError
    from actionops.pipelines.clip_classification.data import (
        check_clip_input,
        eval_clip_maker,
        input_indices,
        window_clip_maker,
    )
    from actionops.platform.data import decode_clip, normalize_frames

    assert input_indices(np.array([0, 5, 11]), 12, "rgb_diff").tolist() == [0, 5, 10, 1, 6, 11]
    assert input_indices(np.array([0, 5, 11]), 12, "rgb").tolist() == [0, 5, 11]
    assert input_indices(np.array([0, 0]), 1, "rgb_diff").tolist() == [0, 0, 0, 0]  # one-frame video: zeros
    video = next(Path(clips).rglob("*.mp4"))
    item = {"path": str(video), "frames": 12, "k": 1}
    rgb = eval_clip_maker(4, 32, 2, "rgb")(item)
    diff = eval_clip_maker(4, 32, 2, "rgb_diff")(item)
    positions = np.minimum(eval_indices(12, 4, 1, 2), 10)  # [2, 5, 8, 11]: the last pairs as (10, 11)
    frames = decode_clip(str(video), np.concatenate([positions, positions + 1]), (32, 32))
    expected = normalize_frames(frames[4:]) - normalize_frames(frames[:4])
    assert diff.shape == rgb.shape == (4, 3, 32, 32) and diff.dtype == np.float32
    assert np.allclose(diff, expected) and np.allclose(rgb[:3], normalize_frames(frames[:3]))
    assert float(np.abs(diff).max()) > 0.1  # the synthetic people move
    window = window_clip_maker(2, 32, "rgb_diff")({"video": str(video), "start": 4, "end": 8})
    w_frames = decode_clip(str(video), np.array([5, 6, 6, 7]), (32, 32))  # positions 5, 6 (window 4..7) and +1
    assert np.allclose(window, normalize_frames(w_frames[2:]) - normalize_frames(w_frames[:2]))
    with pytest.raises(ConfigError, match="classifier.clip_input"):
        check_clip_input("optical_flow")


@pytest.mark.parametrize("path", ["channels_last", "jit", pytest.param("compile", marks=pytest.mark.slow)])
def test_inference_paths_match_eager(path):
    """Every inference path gives the eager logits (the scorer actors use them by config)."""
    from actionops.models.inference import optimized
    from actionops.pipelines.clip_classification.stages import ClipScorer

    if path == "compile" and not shutil.which("g++"):
        pytest.skip("torch.compile on CPU needs a C++ compiler")
    torch.manual_seed(0)
    model = create_model("tsm_resnet18", num_classes=3, num_frames=4, image_size=32).eval()
    x = torch.randn(2, 4, 3, 32, 32)
    with torch.no_grad():
        eager = model(x)
    fast = optimized(model, x, path)(x)
    assert fast.shape == eager.shape and float((fast - eager).abs().max()) < 1e-4
    state = {"model_name": "tsm_resnet18", "model_args": {"num_classes": 3, "num_frames": 4, "image_size": 32},
             "model": model.state_dict(), "labels": ["a", "b", "c"]}
    scorer = ClipScorer(state, make_clip=lambda item: x[int(item["i"])].numpy(), inference=path)
    probs = scorer({"i": np.array([0, 1])})["probs"]
    assert np.allclose(probs, torch.softmax(eager, 1).numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="unknown inference path"):
        optimized(model, x, "tensorrt")


# ----------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("cls") / "clips"
    generate_clips(root, videos=12, frames=12, width=48, height=48, seed=5)
    return root


def test_classifier_run_logs_curves_and_keeps_its_input_kind(run_of):
    import mlflow

    run = run_of(METHOD)
    client = mlflow.MlflowClient()
    version = client.get_model_version_by_alias("clip-classifier", "candidate")
    artifacts = {a.path for a in client.list_artifacts(version.run_id, "figures")}
    assert {"figures/loss_curves.png", "figures/accuracy_curves.png"} <= artifacts
    assert client.get_run(version.run_id).data.params["classifier.model"] == "tsm_resnet18"
    state = torch.load(run["out"] / "classifier.pt", weights_only=True)
    assert state["labels"] == sorted(p.name for p in run["data"].iterdir() if p.is_dir())
    assert state["clip_input"] == run["ctx"].cfg.classifier.clip_input  # evaluate / predict feed what it was trained on
    assert version.tags["clip_input"] == state["clip_input"] and version.tags["labels"] == ",".join(state["labels"])


@pytest.mark.slow  # ~35 s: the contract compares local and registered predictions in make test
def test_evaluate_and_predict_commands_by_alias(run_of, tmp_path):
    run = run_of(METHOD)
    """The CLI side (the method contract compares local and registered predictions and scores)."""
    common = [str(run["data"]), "--out", str(run["out"]), *TINY]
    alias = runner.invoke(app, ["evaluate", "classifier", *common, "--model", "models:/clip-classifier@candidate", "--json"])
    assert alias.exit_code == 0, alias.output
    a = b = json.loads(alias.stdout)
    assert sum(map(sum, a["confusion_matrix"])) == a["videos"] == 4
    assert b["latency"]["batch1_ms_per_clip"] > 0 and b["parameters_m"] > 1
    out = run["out"]
    assert json.loads((out / "confusion_matrix.json").read_text())["labels"] == a["labels"]
    assert (out / "confusion_matrix.png").stat().st_size > 0
    from actionops.platform import tracking

    version = tracking.version_by_alias("clip-classifier", "candidate")
    assert version.tags["eval.macro_f1"] == f"{b['macro_f1']:.6f}"

    videos = run["data"] / "work_at_table"
    result = runner.invoke(app, ["predict", "classifier", str(videos), "--model", "models:/clip-classifier@candidate",
                                 "--out", str(tmp_path / "alias"), *TINY, "--json"])
    assert result.exit_code == 0, result.output
    assert set(json.loads(result.stdout)["labels"]) == {p.name for p in videos.glob("*.mp4")}
    rows = list(csv.DictReader(open(tmp_path / "alias" / "predictions.csv")))
    assert len(rows) == 2 * len(list(videos.glob("*.mp4")))  # 12 frames, windows of 8 every 8 -> 2 per video
    # the MLflow pyfunc gives the same probabilities as the module
    import mlflow

    from actionops.models.checkpoint import build_from_checkpoint

    x = np.random.default_rng(0).standard_normal((2, 4, 3, 32, 32)).astype(np.float32)
    pyfunc = mlflow.pyfunc.load_model("models:/clip-classifier@candidate").predict({"clip": x})
    direct = build_from_checkpoint(torch.load(out / "classifier.pt", weights_only=True)).infer({"clip": torch.from_numpy(x)})
    assert np.allclose(pyfunc, direct.numpy(), atol=1e-6)


def test_bad_classifier_inputs_are_clear(run_of, tmp_path):
    from rich.console import Console

    from actionops.pipelines import load_config
    from actionops.pipelines.clip_classification.stages import dataset_splits
    from actionops.pipelines.context import Context

    run = run_of(METHOD)
    clips = run["data"]
    common = [str(clips), "--out", str(run["out"]), *TINY]
    unknown = runner.invoke(app, ["train", "classifier", *common, "--model", "resnet_lstm"])
    assert unknown.exit_code == 1 and "unknown model 'resnet_lstm'" in said(unknown) and "tsm_resnet18" in said(unknown)
    hub = runner.invoke(app, ["train", "classifier", *common, "--weights", "kinetics"])
    assert hub.exit_code == 1 and "nothing is downloaded" in said(hub)
    # a CSV row naming a missing file is rejected with its reason; the rest is indexed
    bad = tmp_path / "bad"
    shutil.copytree(clips, bad, ignore=shutil.ignore_patterns("manifest*", "rejected*"))
    (bad / "test.csv").write_text((bad / "test.csv").read_text() + "ghost/none.mp4,ghost\n")
    result = runner.invoke(app, ["data", "index", str(bad)])
    assert result.exit_code == 0, result.output
    rejected = (bad / "rejected.csv").read_text()
    assert "ghost/none.mp4" in rejected and "not found" in rejected
    # a class of the test split that training never saw
    (bad / "ghost").mkdir()
    shutil.copy(next((bad / "work_at_table").glob("*.mp4")), bad / "ghost" / "g.mp4")
    (bad / "test.csv").write_text((bad / "test.csv").read_text().replace("ghost/none.mp4", "ghost/g.mp4"))
    for name in ("manifest.parquet", "manifest.json", "rejected.csv"):
        (bad / name).unlink(missing_ok=True)
    result = runner.invoke(app, ["evaluate", "classifier", str(bad), "--out", str(run["out"]), *TINY])
    assert result.exit_code == 1 and "class 'ghost' of the test split" in said(result)
    # class folders: an empty class folder and clips shorter than T frames are warned about
    folders = tmp_path / "folders"
    shutil.copytree(clips, folders, ignore=shutil.ignore_patterns("*.csv", "manifest*", "rejected*", "*.json"))
    (folders / "empty_class").mkdir()
    console = Console(record=True, width=300)
    cfg = load_config(None, ["classifier.num_frames=16"])
    splits = dataset_splits(Context(cfg=cfg, dataset=folders, out=tmp_path / "o", console=console))
    text = console.export_text()
    assert "empty_class holds no video" in text and "shorter than 16 frames" in text
    assert splits.labels == ["bend", "walk", "wave", "work_at_table"]
    with pytest.raises(DataError):
        make_splits([], val_fraction=0.2, test_fraction=0.2)


def test_training_draws_are_seeded_per_epoch_and_slot(ray_local, clips):
    """Training clips depend only on (seed, epoch, slot): an epoch drawn twice is the same, the
    next epoch differs, and the workers' slots partition the epoch with equal counts (DDP)."""
    from types import SimpleNamespace

    from actionops.pipelines.clip_classification.data import draw_clip, draw_spec, epoch_dataset

    videos = sorted(Path(clips).rglob("*.mp4"))[:5]
    rows = [{"video_id": v.stem, "path": str(v), "frames": 12, "label": v.parent.name} for v in videos]
    labels = sorted({r["label"] for r in rows})
    c = SimpleNamespace(balance_tau=0.5, clips_per_video=1, num_frames=4, size=32, augment=True, clip_input="rgb")
    spec = draw_spec(rows, labels, c, seed=3)

    def take(ds):
        return [(int(r["label"]), np.asarray(r["clip"])) for r in ds.take_all()]

    first, again, later = take(epoch_dataset(spec, 0)), take(epoch_dataset(spec, 0)), take(epoch_dataset(spec, 1))
    assert len(first) == 5 and all(a[0] == b[0] and np.array_equal(a[1], b[1]) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(first, later, strict=True))
    ranks = [take(epoch_dataset(spec, 0, rank, 2)) for rank in (0, 1)]
    assert [len(r) for r in ranks] == [3, 3]  # 5 slots over 2 workers: rounded up, same step count
    assert all(np.array_equal(ranks[0][k][1], first[2 * k][1]) for k in range(3))  # rank 0: slots 0, 2, 4
    assert np.array_equal(ranks[1][0][1], draw_clip(spec, 0, 1)["clip"])


def test_clips_drawn_ahead_in_parts_are_the_streamed_batches(ray_local, clips):
    """`epoch_batches(ahead=True)` (a part of the epoch made first, then trained on) yields the very
    batches the stream yields, in order, for every worker, also when the budget splits the epoch
    into several parts (the last batch short); `auto` draws ahead on CPU and streams beside a GPU."""
    from types import SimpleNamespace

    from actionops.pipelines.clip_classification.data import draw_spec, epoch_batches
    from actionops.platform.train import WorkerContext

    videos = sorted(Path(clips).rglob("*.mp4"))[:5]
    rows = [{"video_id": v.stem, "path": str(v), "frames": 12, "label": v.parent.name} for v in videos]
    labels = sorted({r["label"] for r in rows})
    c = SimpleNamespace(balance_tau=0.5, clips_per_video=3, num_frames=4, size=32, augment=True, clip_input="rgb_diff")
    spec = draw_spec(rows, labels, c, seed=5)
    clip_bytes = 4 * 4 * 3 * 32 * 32
    for rank, world in ((0, 1), (1, 2)):
        streamed = list(epoch_batches(spec, 2, rank, world, batch_size=4))
        parts = list(epoch_batches(spec, 2, rank, world, batch_size=4, ahead=True, budget=4 * clip_bytes))
        per_worker = -(-15 // world)  # 15 clips, or 8 per worker of 2: parts of one batch each
        assert [len(b["label"]) for b in parts] == [4] * (per_worker // 4) + ([per_worker % 4] if per_worker % 4 else [])
        assert len(streamed) == len(parts)
        for a, b in zip(streamed, parts, strict=True):
            assert np.array_equal(a["label"], b["label"]) and np.array_equal(a["clip"], b["clip"])
    assert WorkerContext.feeds_ahead("auto", "cpu") and not WorkerContext.feeds_ahead("auto", "cuda")
    assert WorkerContext.feeds_ahead("ahead", "cuda") and not WorkerContext.feeds_ahead("stream", "cpu")


def test_frame_cache_cuts_the_same_clips_as_decoding(ray_local, clips):
    """Training videos decoded once into the object store give the very clips that decoding per
    draw gives (rgb and rgb_diff, augmented); a set over the budget is left to decode per draw."""
    from types import SimpleNamespace

    from actionops.pipelines.clip_classification.data import cache_frames, draw_clip, draw_spec
    from actionops.platform.video import probe_video

    videos = sorted(Path(clips).rglob("*.mp4"))[:4]
    rows = [{"video_id": v.stem, "path": str(v), "frames": probe_video(v)["frames"], "label": v.parent.name} for v in videos]
    labels = sorted({r["label"] for r in rows})
    for clip_input in ("rgb", "rgb_diff"):
        c = SimpleNamespace(balance_tau=0.5, clips_per_video=2, num_frames=4, size=32, augment=True, clip_input=clip_input)
        spec = draw_spec(rows, labels, c, seed=1)
        cached = cache_frames(spec)
        assert all("frames_ref" in v for v in cached["videos"])
        for slot in range(6):
            a, b = draw_clip(spec, 2, slot), draw_clip(cached, 2, slot)
            assert a["label"] == b["label"] and np.array_equal(a["clip"], b["clip"])
    assert cache_frames(spec, budget=1000) is spec


@pytest.mark.slow
def test_same_config_trains_the_same_weights_on_two_workers(ray_local, clips, mlflow_store, tmp_path):
    """Two trainings of one config with DDP on 2 Ray workers give identical weights (seeded clip
    draws, ordered validation data): `dvc repro` of a classifier stage is reproducible. Slow:
    two 2-worker trainings."""
    outs = []
    for name in ("first", "again"):
        outs.append(tmp_path / name)
        result = runner.invoke(app, ["train", "classifier", str(clips), "--out", str(outs[-1]), *TINY, "--epochs", "2",
                                     "--set", "train.num_workers=2", "--json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["registered"] == f"clip-classifier v{len(outs)}"
    before = torch.load(outs[0] / "classifier.pt", weights_only=True)
    after = torch.load(outs[1] / "classifier.pt", weights_only=True)
    assert before["best_epoch"] == after["best_epoch"]
    assert all(torch.equal(before["model"][k], after["model"][k]) for k in before["model"])


def test_flow_input_follows_a_moving_square():
    """clip_input=flow: Farneback from frame t to t+1 as dx, dy, magnitude (over FLOW_SCALE x size);
    a bright square moving 2 px right gives dx ~ 0.5 on the square and ~0 elsewhere; the two-stream
    inputs stack the appearance channels and these."""
    from actionops.pipelines.clip_classification.data import FLOW_SCALE, input_channels, input_indices, to_input

    size, t = 64, 3
    frames = np.zeros((2 * t, size, size, 3), np.uint8)
    for i in range(t):  # all t first, then all t+1 (input_indices' order)
        x0 = 20 + 3 * i
        frames[i, 24:40, x0:x0 + 16] = 220
        frames[t + i, 24:40, x0 + 2:x0 + 18] = 220
    flow = to_input(frames, "flow")
    assert flow.shape == (t, 3, size, size) and flow.dtype == np.float32
    inside = flow[:, :, 28:36, 30:38].mean(axis=(2, 3))  # the square's interior edge band moves
    assert np.all(inside[:, 0] > 0.5 * 2 / (FLOW_SCALE * size)) and np.all(np.abs(inside[:, 1]) < 0.15)
    assert np.abs(flow[:, :2, :8, :8]).max() < 0.05  # the still background
    both = to_input(frames, "rgb_diff+flow")
    assert both.shape == (t, 6, size, size)
    assert np.allclose(both[:, :3], to_input(frames, "rgb_diff")) and np.allclose(both[:, 3:], flow)
    assert np.allclose(to_input(frames, "rgb+flow")[:, :3], to_input(frames[:t], "rgb"))
    assert [input_channels(c) for c in ("rgb", "flow", "rgb+flow")] == [3, 3, 6]
    assert list(input_indices(np.array([0, 5]), 6, "flow")) == [0, 4, 1, 5]  # pairs, the last kept inside


def test_two_stream_late_fusion_trains_and_embeds():
    from actionops.errors import ActionopsError
    from actionops.models.embedding import clip_embedder, embedding_dim

    model = create_model("two_stream", stream="tsm_resnet18", num_classes=3, num_frames=4, image_size=32)
    clip = torch.randn(2, 4, 6, 32, 32)
    model.eval()  # no dropout: the comparison is exact
    with torch.no_grad():
        expected = (model.appearance(clip[:, :, :3]) + model.motion(clip[:, :, 3:])) / 2
        assert torch.allclose(model(clip), expected, atol=1e-5)  # late fusion: the mean of the streams' logits
    model.train()
    logits = model(clip)
    assert logits.shape == (2, 3)
    logits.sum().backward()
    assert all(p.grad is not None for p in model.motion.parameters() if p.requires_grad)
    dim = embedding_dim(model)
    assert dim == 2 * embedding_dim(model.appearance)
    assert clip_embedder(model)(clip).shape == (2, dim)  # (the embedder replaces the heads in place)
    with pytest.raises(ActionopsError, match="not a clip classifier"):
        create_model("two_stream", stream="conv3d_autoencoder", num_classes=3)


def test_flow_from_the_flow_stage_is_read_and_cut_like_the_frames(ray_local, tmp_path):
    """classifier.flow_source=stage: a clip's flow comes from the flow stage's file when `flow compute`
    ran (the same numbers as computing it the same way, which a video without a file gets), is
    resized to the clip and cut with the frames' crop and flip (dx negated), and a clip drawn from
    the frame cache equals one decoded per draw."""
    from types import SimpleNamespace

    from actionops.pipelines.clip_classification.data import (
        _items,
        augment,
        cache_frames,
        draw_clip,
        draw_spec,
        eval_clip_maker,
        stage_flow,
    )
    from actionops.platform.data import compute_flow, index_dataset, load_manifest

    generate_clips(tmp_path / "clips", videos=4, frames=16, width=64, height=48, seed=2)
    index_dataset(tmp_path / "clips", out=tmp_path / "m.parquet", flow_dir=tmp_path / "flow")
    _, rows = load_manifest(tmp_path / "clips", tmp_path / "m.parquet")
    labels = sorted({r["label"] for r in rows})
    flow = {"method": "farneback", "dis_preset": "fast", "size": None}
    video = _items(rows, labels)[0]
    first = np.array([0, 5, 10])
    computed = stage_flow(video, first, flow)  # no flow file yet: computed for these pairs
    assert compute_flow(rows).failed == []
    cached = stage_flow(video, first, flow)
    assert cached.shape == (3, 48, 64, 2) and float(np.abs(cached).mean()) > 0.01  # people move
    assert np.allclose(cached, computed, atol=1e-4)
    assert not np.allclose(stage_flow(video, np.array([1, 6, 11]), flow), cached)  # other pairs, other flow

    rng_frames = np.random.default_rng(0).integers(0, 255, (3, 40, 40, 3)).astype(np.uint8)
    field = np.stack(np.meshgrid(np.arange(40.0), np.arange(40.0)), axis=-1).astype(np.float32)[None].repeat(3, 0) + 1
    flips = set()
    for seed in range(8):
        got_frames, got_flow = augment(rng_frames, 32, np.random.default_rng(seed), field)
        rng = np.random.default_rng(seed)
        y, x = rng.integers(0, 9), rng.integers(0, 9)
        flip = bool(rng.random() < 0.5)
        expected = field[:, y:y + 32, x:x + 32]
        if flip:
            expected = expected[:, :, ::-1] * np.array([-1.0, 1.0], np.float32)
        flips.add(flip)
        assert np.array_equal(got_flow, expected)
        assert np.array_equal(got_frames, augment(rng_frames, 32, np.random.default_rng(seed)))  # same draws
    assert flips == {True, False}

    c = SimpleNamespace(balance_tau=0.5, clips_per_video=2, num_frames=3, size=32, augment=True, clip_input="flow")
    spec = draw_spec(rows, labels, c, seed=1, flow=flow)
    plain = draw_spec(rows, labels, c, seed=1)
    for slot in range(3):
        a, b = draw_clip(spec, 0, slot), draw_clip(cache_frames(spec), 0, slot)
        assert a["clip"].shape == (3, 3, 32, 32) and np.array_equal(a["clip"], b["clip"])
        assert not np.allclose(a["clip"], draw_clip(plain, 0, slot)["clip"])  # not the input frames' flow
    item = {**video, "k": 0}
    with_file = eval_clip_maker(3, 32, 2, "flow", flow)(item)
    without = eval_clip_maker(3, 32, 2, "flow", flow)({**item, "flow_path": ""})
    assert with_file.shape == (3, 3, 32, 32) and np.allclose(with_file, without, atol=1e-4)


@pytest.mark.slow  # ~60 s: flow stage, a training, evaluate and predict through the CLI
def test_flow_stage_classifier_trains_evaluates_and_predicts_from_the_cli(ray_local, mlflow_store, tmp_path):
    """`train classifier` with clip_input=flow and flow_source=stage runs the flow stage first (every
    video's flow file), the checkpoint carries the flow spec, evaluate reads the flow files, predict
    (no files) computes the same flow."""
    data = tmp_path / "clips"
    generate_clips(data, videos=12, frames=12, width=48, height=48, seed=5)
    sets = [*TINY, "--set", "classifier.clip_input=flow", "--set", "classifier.flow_source=stage"]
    trained = runner.invoke(app, ["train", "classifier", str(data), "--out", str(tmp_path / "out"), *sets, "--json"])
    assert trained.exit_code == 0, said(trained)
    assert len(list((data / "flow").rglob("*.npy"))) == 12
    state = torch.load(tmp_path / "out" / "classifier.pt", weights_only=True)
    assert state["clip_input"] == "flow" and state["flow"] == {"method": "farneback", "dis_preset": "fast", "size": None}
    scored = runner.invoke(app, ["evaluate", "classifier", str(data), "--out", str(tmp_path / "out"), *sets,
                                 "--no-latency", "--json"])
    assert scored.exit_code == 0, said(scored)
    assert json.loads(scored.stdout)["videos"] == 4
    videos = data / "work_at_table"
    predicted = runner.invoke(app, ["predict", "classifier", str(videos), "--model", str(tmp_path / "out" / "classifier.pt"),
                                    "--out", str(tmp_path / "pred"), *sets, "--json"])
    assert predicted.exit_code == 0, said(predicted)
    assert set(json.loads(predicted.stdout)["labels"]) == {p.name for p in videos.glob("*.mp4")}
