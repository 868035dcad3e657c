"""Sequence data (methods.md §4, groundwork): importers of every format on tiny files, bad input
named, ground truth (Barbic files, per-frame labels), `concat_recording` labels frame for frame,
normalisation, and boundary / frame scores against hand-computed values."""

from __future__ import annotations

import json

import numpy as np
import pytest

from actionops.errors import DataError
from actionops.evaluation.segmentation import boundaries_from_labels, boundary_scores, frame_accuracy
from actionops.platform.sequences import (
    Normaliser,
    Segment,
    concat_recording,
    detect_sequence_layout,
    frame_labels,
    list_sequences,
    read_ground_truth,
    read_sequence,
    segments_from_labels,
)


def _write_txt(path, array, sep=","):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(sep.join(f"{v:g}" for v in row) for row in array) + "\n")


def test_every_format_reads_to_frames_by_channels(tmp_path):
    import scipy.io

    x = np.arange(24, dtype=np.float32).reshape(6, 4)
    _write_txt(tmp_path / "a.txt", x)  # CMU exp-map text: commas, no header
    (tmp_path / "b.csv").write_text("c0,c1,c2,c3\n" + "\n".join(" , ".join(f"{v:g}" for v in r) for r in x))  # header
    np.save(tmp_path / "c.npy", x)
    scipy.io.savemat(tmp_path / "d.mat", {"expmapchannels": x.astype(np.float64)})
    scipy.io.savemat(tmp_path / "e.mat", {"motion": x.astype(np.float64)})
    _write_txt(tmp_path / "f.txt", x, sep=" ")
    for name in ("a.txt", "b.csv", "c.npy", "d.mat", "e.mat", "f.txt"):
        got, dropped = read_sequence(tmp_path / name)
        np.testing.assert_array_equal(got, x, err_msg=name)
        assert dropped == 0 and got.dtype == np.float32


def test_pose_json_tracks_become_one_sequence_per_person(tmp_path):
    records = []
    for frame in range(5):
        for pid, x0 in ((1, 10.0), (2, 50.0)):
            kps = [[x0 + frame + k, 20.0 + k, 1] for k in range(3)]
            records.append({"frame": frame, "id": pid, "bbox": [x0, 10.0, x0 + 10, 40.0], "keypoints": kps})
    pose = tmp_path / "pose.json"
    pose.write_text(json.dumps(records))
    one, _ = read_sequence(pose, person=1)
    two, _ = read_sequence(pose, person=2)
    assert one.shape == (5, 6) and two.shape == (5, 6)
    assert not np.allclose(one[0], one[-1])  # the keypoints move inside the box


def test_bad_sequence_files_are_named(tmp_path):
    (tmp_path / "ragged.txt").write_text("1,2,3\n4,5,6\n7,8\n")
    with pytest.raises(DataError, match=r"ragged.txt, line 3: 2 values where earlier lines have 3"):
        read_sequence(tmp_path / "ragged.txt")
    (tmp_path / "word.txt").write_text("1,2\n3,oops\n")
    with pytest.raises(DataError, match=r"word.txt, line 2: 'oops' is not a number"):
        read_sequence(tmp_path / "word.txt")
    (tmp_path / "nan.txt").write_text("1,2\nnan,3\n4,inf\n5,6\n")
    got, dropped = read_sequence(tmp_path / "nan.txt")
    assert dropped == 2 and got.tolist() == [[1, 2], [5, 6]]
    (tmp_path / "allnan.txt").write_text("nan,1\n")
    with pytest.raises(DataError, match="no frame without NaN/inf"):
        read_sequence(tmp_path / "allnan.txt")
    with pytest.raises(DataError, match="does not exist"):
        read_sequence(tmp_path / "missing.npy")


def test_ground_truth_barbic_and_frame_labels(tmp_path):
    gt = tmp_path / "05_ground_truth.txt"
    # the second boundary lists its frames out of order: its window is [min, max]
    gt.write_text("3\n1 walking\n90 100 110\n2 jump\n230 190 210\n3 walk\n300\n")
    segs = read_ground_truth(gt, frames=300)
    assert [(s.label, s.start, s.end) for s in segs] == [("walking", 0, 100), ("jump", 100, 210), ("walk", 210, 300)]
    assert (segs[1].earliest, segs[1].latest) == (90, 110) and (segs[2].earliest, segs[2].latest) == (190, 230)
    with pytest.raises(DataError, match="covers 300 frames but its recording has 280"):
        read_ground_truth(gt, frames=280)
    # a last frame given inclusive / 1-based (off by one, as in most CMU subject-86 files) is stretched
    assert read_ground_truth(gt, frames=301)[-1].end == 301 and read_ground_truth(gt, frames=299)[-1].end == 299
    labels = tmp_path / "r.labels.csv"
    labels.write_text("frame,label\n" + "".join(f"{i},{'a' if i < 3 else 'b'}\n" for i in range(5)))
    assert frame_labels(read_ground_truth(labels)) == ["a", "a", "a", "b", "b"]


def test_layouts_found(tmp_path):
    x = np.ones((4, 2))
    for split, label in (("train", "walk"), ("train", "run"), ("test", "walk")):
        _write_txt(tmp_path / "cf" / split / label / f"{label}_1.txt", x)
    layout, entries, _ = list_sequences(tmp_path / "cf")
    assert layout == "class-folders" and {(e.split, e.label) for e in entries} == {("train", "walk"), ("train", "run"), ("test", "walk")}
    rec = tmp_path / "rec"
    rec.mkdir()
    np.save(rec / "r1.npy", x)
    (rec / "r1.labels.csv").write_text("frame,label\n0,a\n1,a\n2,b\n3,b\n")
    layout, entries, _ = list_sequences(rec)
    assert layout == "recordings" and entries[0].truth_path.endswith("r1.labels.csv")
    (tmp_path / "cs").mkdir()
    np.save(tmp_path / "cs" / "s1.npy", x)
    (tmp_path / "cs" / "train.csv").write_text("path,label\ns1.npy,walk\n../escape.npy,run\nnope.npy,run\n")
    layout, entries, rejected = list_sequences(tmp_path / "cs")
    assert layout == "csv" and [e.label for e in entries] == ["walk"] and len(rejected) == 2
    assert detect_sequence_layout(tmp_path / "empty_missing") is None


def test_concat_recording_labels_match_sources_frame_for_frame(tmp_path):
    rng = np.random.default_rng(0)
    for label, width in (("a", 5), ("b", 7), ("c", 9), ("d", 4)):
        (tmp_path / "src" / label).mkdir(parents=True)
        for i in range(2):  # every frame of a file holds ord(label) * 10 + i: its source is readable from it
            frames = np.full((width + i, 3), ord(label) * 10 + i, np.float32) + rng.normal(0, 0.01, (width + i, 3))
            np.save(tmp_path / "src" / label / f"{label}{i}.npy", frames.astype(np.float32))
    _, entries, _ = list_sequences(tmp_path / "src")
    summary = concat_recording(entries, actions=3, per_action=2, seed=4, out=tmp_path / "rec")
    x = np.load(tmp_path / "rec" / "recording.npy")
    truth = frame_labels(read_ground_truth(tmp_path / "rec" / "recording.labels.csv", frames=len(x)))
    assert len(truth) == len(x) == summary["frames"] and len(set(truth)) == 3 and len(summary["pieces"]) == 6
    for frame, label in zip(x, truth):  # every frame's label is the label of the file it came from
        assert int(round(float(frame[0]))) // 10 == ord(label)
    again = concat_recording(entries, actions=3, per_action=2, seed=4, out=tmp_path / "rec2")
    assert again["actions"] == summary["actions"] and np.array_equal(np.load(tmp_path / "rec2" / "recording.npy"), x)
    assert list_sequences(tmp_path / "rec")[0] == "recordings"
    with pytest.raises(DataError, match="--actions 9 but the dataset has 4 labels"):
        concat_recording(entries, actions=9, per_action=1, seed=0, out=tmp_path / "x")


def test_normaliser_drops_constant_channels_and_checks_dims():
    a = np.stack([np.arange(10.0), np.full(10, 3.0), np.arange(10.0) * 2], 1)
    norm = Normaliser.fit([a])
    assert norm.keep == (0, 2)
    y = norm(a)
    assert y.shape == (10, 2) and np.allclose(y.mean(0), 0, atol=1e-6) and np.allclose(y.std(0), 1, atol=1e-6)
    assert Normaliser.from_dict(norm.to_dict()) == norm
    with pytest.raises(DataError, match="has 4 channels, the model was trained on 3"):
        norm(np.ones((5, 4)), source="new.npy")


def test_boundary_scores_match_hand_computed_values():
    truth = [Segment("a", 0, 100, 0, 0), Segment("b", 100, 200, 90, 110), Segment("c", 200, 300, 185, 215)]
    # 105 hits window 1, 107 is a second hit in the same window (false alarm), 250 hits nothing
    s = boundary_scores([105, 107, 250], truth)
    assert s["boundaries_hit"] == 1 and s["boundary_precision"] == pytest.approx(1 / 3) and s["boundary_recall"] == 0.5
    assert s["boundary_f1"] == pytest.approx(2 * (1 / 3) * 0.5 / (1 / 3 + 0.5))
    perfect = boundary_scores([100, 212], truth)
    assert perfect["boundary_f1"] == 1.0
    assert boundary_scores([120], truth, tolerance=10)["boundaries_hit"] == 1  # window widened by the tolerance
    labels = ["x"] * 5 + ["y"] * 3 + ["x"] * 2
    assert boundaries_from_labels(labels) == [5, 8]
    truth_labels = ["a"] * 5 + ["b"] * 5
    assert frame_accuracy(truth_labels, labels) == pytest.approx(0.8)
    assert [s.label for s in segments_from_labels(labels)] == ["x", "y", "x"]


def test_data_index_and_concat_from_the_cli(ray_local, tmp_path):
    from typer.testing import CliRunner

    from actionops.cli.main import app

    runner = CliRunner()
    rng = np.random.default_rng(1)
    for split, n in (("train", 2), ("test", 1)):
        for label in ("walk", "run", "jump"):
            for i in range(n):
                _write_txt(tmp_path / "ds" / split / label / f"{label}_{i}.txt", rng.normal(size=(12 + i, 4)))
    (tmp_path / "ds" / "train" / "run" / "broken.txt").write_text("1,2,3,4\n5,6\n")  # ragged: rejected, named
    result = runner.invoke(app, ["data", "index", str(tmp_path / "ds"), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["layout"] == "sequences/class-folders" and summary["sequences"] == 9 and summary["dims"] == [4]
    assert summary["rejected"] == 1 and "broken.txt, line 2" in summary["rejected_rows"][0]["reason"]

    made = runner.invoke(app, ["data", "concat", str(tmp_path / "ds"), "--actions", "2", "--per-action", "2",
                               "--seed", "3", "--split", "train", "--out", str(tmp_path / "rec"), "--json"])
    assert made.exit_code == 0, made.output
    assert len(json.loads(made.stdout)["pieces"]) == 4
    (tmp_path / "rec" / "short.npy").write_bytes((tmp_path / "rec" / "recording.npy").read_bytes())
    (tmp_path / "rec" / "short.labels.csv").write_text("frame,label\n0,walk\n1,run\n")  # truth of another length
    indexed = json.loads(runner.invoke(app, ["data", "index", str(tmp_path / "rec"), "--json"]).stdout)
    assert indexed["layout"] == "sequences/recordings" and indexed["sequences"] == 1 and indexed["with_truth"] == 1
    assert "covers 2 frames but its recording has" in indexed["rejected_rows"][0]["reason"]


def _sines(n_per: int = 30, length: int = 20, freqs=(0.1, 0.25, 0.5), seed: int = 0):
    rng = np.random.default_rng(seed)
    x, y = [], []
    for k, f in enumerate(freqs):
        for _ in range(n_per):
            t = np.arange(length) + rng.uniform(0, 1 / f)
            x.append(np.stack([np.sin(2 * np.pi * f * t), np.cos(2 * np.pi * f * t)], 1))
            y.append(k)
    return np.asarray(x, np.float32), np.asarray(y)


@pytest.mark.parametrize("decoder", ["learned", "fixed_weights", "fixed_state"])
def test_seq2seq_learns_and_its_states_cluster_sines_by_frequency(decoder):
    import torch
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.metrics import adjusted_rand_score

    from actionops.models import create_model

    x, y = _sines()
    source, target = torch.tensor(x[:, :10]), torch.tensor(x[:, 10:])
    torch.manual_seed(0)
    model = create_model("seq2seq_gru", dims=2, hidden=64, target=10, decoder=decoder)
    trainable = [p for p in model.parameters() if p.requires_grad]
    if decoder == "fixed_weights":  # the decoder's own cell never trains
        assert not any(p.requires_grad for p in model.decoder_cell.parameters()) and model.decoder_cell is not model.cell
    opt = torch.optim.Adam(trainable, 1e-2)
    losses = []
    for step in range(150):
        idx = torch.randint(0, len(x), (32,), generator=torch.Generator().manual_seed(step))
        loss = ((model(source[idx]) - target[idx]) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:10])  # it learns
    if decoder == "learned":  # the reference: decoder states of windows group by their dynamics
        emb = model.embed(source)["decoder"].numpy()
        clusters = AgglomerativeClustering(3, metric="cosine", linkage="average").fit_predict(emb)
        assert adjusted_rand_score(y, clusters) > 0.9
    assert model.infer({"source": source[:2]}).shape == (2, 10, 2)


def test_discriminators_tell_predicted_from_real_and_the_seq2seq_still_learns():
    import torch

    from actionops.models import create_model
    from actionops.models.seq2seq import adversarial_losses

    x, _ = _sines()
    source, target = torch.tensor(x[:, :10]), torch.tensor(x[:, 10:])
    torch.manual_seed(0)
    model = create_model("seq2seq_gru", dims=2, hidden=32, target=10)
    critics = torch.nn.ModuleList([create_model("sequence_discriminator", dims=2, hidden=16) for _ in range(2)])
    critic_opt = torch.optim.Adam(critics.parameters(), 1e-2)
    with torch.no_grad():
        untrained = model(source)
    first = None
    for _ in range(60):  # the critics alone, against an untrained seq2seq: they learn to tell
        _, critic_loss = adversarial_losses(critics, source, target, untrained)
        first = float(critic_loss) if first is None else first
        critic_opt.zero_grad()
        critic_loss.backward()
        critic_opt.step()
    assert first == pytest.approx(4 * np.log(2), abs=0.3) and float(critic_loss) < 0.3 * first
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    mse_first, mse = None, None
    for step in range(120):  # both together, as the training loop does: the seq2seq still learns
        idx = torch.randint(0, len(x), (32,), generator=torch.Generator().manual_seed(step))
        predicted = model(source[idx])
        mse = ((predicted - target[idx]) ** 2).mean()
        fooled, critic_loss = adversarial_losses(critics, source[idx], target[idx], predicted)
        opt.zero_grad()
        (mse + 0.05 * fooled).backward()
        opt.step()
        critic_opt.zero_grad()
        critic_loss.backward()
        critic_opt.step()
        mse_first = float(mse) if mse_first is None else mse_first
    assert float(mse) < 0.5 * mse_first


def test_change_curve_peaks_and_leave_one_out_selection():
    from actionops.evaluation.segmentation import change_curve, curve_peaks, leave_one_out
    from actionops.pipelines.sequence_clustering.stages import cue_boundaries

    rng = np.random.default_rng(0)
    directions = np.eye(4)
    x = np.concatenate([directions[k] + 0.05 * rng.normal(size=(n, 4)) for k, n in ((0, 30), (1, 20), (2, 40), (1, 3))])
    curve = change_curve(x, 5)
    assert curve[0] == 0.0 and curve.argmax() in (30, 50)
    assert curve_peaks(curve, 0.5, 5)[:2] == [30, 50]
    assert len({30, 50} & set(curve_peaks(curve, 0.5, 25))) == 1  # peaks closer than the gap: one kept
    assert curve_peaks(np.zeros(5), 0.5, 1) == []
    # windows every 2 frames, source 4, subsample 1: the peak between windows 15 and 16 sits at frame 33
    rec = {"x": x, "start": np.arange(len(x)) * 2, "frames": 2 * len(x) + 8}
    spec = {"subsample": 1, "stride": 2, "source_len": 4, "target_len": 4}
    found = cue_boundaries("embedding", rec, spec, (5, 0.5, 10, 0))
    assert found[:2] == [61, 101]
    assert cue_boundaries("embedding", rec, spec, (5, 0.5, 10, 70))[0] == 101  # inside the edge: dropped
    table = {"a": {"r1": 0.9, "r2": 0.8, "r3": 0.1}, "b": {"r1": 0.5, "r2": 0.5, "r3": 1.0}}
    # r3: b is best on r3 itself, a on the others (0.85 vs 0.5); r1, r2: b is better on the rest
    assert leave_one_out(table) == {"r1": "b", "r2": "b", "r3": "a"}
