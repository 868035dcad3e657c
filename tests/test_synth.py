from __future__ import annotations

import csv
import hashlib
import json

import av
import numpy as np

from actionops.platform.synth import ACTIVITIES, generate_clips, generate_or_scenes


def _digest(root):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_or_scene_layout_decodes_with_pyav(or_scenes):
    videos = sorted(or_scenes.glob("*/*.mp4"))
    assert {v.parent.name for v in videos} == {"train", "test"}
    for video in videos:
        with av.open(str(video)) as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name == "h264"
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        assert len(frames) == 24 and frames[0].shape == (72, 96, 3)
        meta = video.with_suffix("")
        assert (meta / "json" / "pose.json").is_file()
        assert np.load(meta / "coor.npy").shape == (2,)


def test_boxes_in_frame_and_labels_cover_every_box(or_scenes):
    for video in sorted(or_scenes.glob("*/*.mp4")):
        meta = video.with_suffix("")
        pose = json.loads((meta / "json" / "pose.json").read_text())
        labels = json.loads((meta / "json" / "annotation_clustering.json").read_text())
        assert pose, video
        for rec in pose:
            x1, y1, x2, y2 = rec["bbox"]
            assert 0 <= x1 < x2 <= 96 and 0 <= y1 < y2 <= 72
            assert 1 <= rec["frame"] <= 24
        boxed = {(r["frame"], r["id"]) for r in pose}
        labelled = {(r["frame"], r["id"]): r["label"] for r in labels}
        assert boxed == set(labelled)
        assert set(labelled.values()) <= set(ACTIVITIES)
        # each person keeps one activity for the whole video
        per_id = {}
        for (_, pid), label in labelled.items():
            per_id.setdefault(pid, set()).add(label)
        assert all(len(v) == 1 for v in per_id.values())
        assert 3 <= len(per_id) <= 6


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    kwargs = dict(videos=2, frames=12, width=64, height=48)
    generate_or_scenes(tmp_path / "a", seed=3, **kwargs)
    generate_or_scenes(tmp_path / "b", seed=3, **kwargs)
    generate_or_scenes(tmp_path / "c", seed=4, **kwargs)
    a, b, c = (_digest(tmp_path / n) for n in "abc")
    assert a == b
    assert a.keys() == c.keys() and a != c


def test_activities_differ_in_motion(or_scenes):
    """Walking moves a box across the room; the others stay where they stand (their limbs move)."""
    travel = {}
    for video in sorted(or_scenes.glob("*/*.mp4")):
        meta = video.with_suffix("")
        pose = json.loads((meta / "json" / "pose.json").read_text())
        labels = {(r["frame"], r["id"]): r["label"] for r in
                  json.loads((meta / "json" / "annotation_clustering.json").read_text())}
        tracks = {}
        for rec in pose:
            x1, y1, x2, y2 = rec["bbox"]
            tracks.setdefault(rec["id"], []).append(((x1 + x2) / 2, labels[(rec["frame"], rec["id"])]))
        for points in tracks.values():
            xs = [p[0] for p in points]
            travel.setdefault(points[0][1], []).append(max(xs) - min(xs))
    assert np.mean(travel["walk"]) > 10
    assert max(np.mean(travel[a]) for a in ("work_at_table", "wave", "bend")) < 6


def test_clips_layout_with_csvs(tmp_path):
    generate_clips(tmp_path, videos=12, frames=10, width=64, height=48, seed=1)
    seen = set()
    for split in ("train", "val", "test"):
        with open(tmp_path / f"{split}.csv") as fh:
            rows = list(csv.DictReader(fh))
        assert rows and set(rows[0]) == {"path", "label"}
        for row in rows:
            assert (tmp_path / row["path"]).is_file()
            assert row["path"].split("/")[0] == row["label"]
            seen.add(row["path"])
    assert len(seen) == 12


def test_activities_differ_in_limb_motion_and_appearance_varies(or_scenes):
    """What tells the activities apart is how the limbs move (keypoints relative to the feet): a
    waving hand above the head, a head that bends below the shoulders' height, legs that stride; and
    what a model must ignore varies: clothing colours, each video's light."""
    lifts, drops, strides = {}, {}, {}
    for video in sorted(or_scenes.glob("*/*.mp4")):
        meta = video.with_suffix("")
        labels = {(r["frame"], r["id"]): r["label"] for r in
                  json.loads((meta / "json" / "annotation_clustering.json").read_text())}
        per = {}
        for rec in json.loads((meta / "json" / "pose.json").read_text()):
            per.setdefault(rec["id"], []).append((labels[(rec["frame"], rec["id"])], np.array(rec["keypoints"])[:, :2]))
        for items in per.values():
            label, kp = items[0][0], np.stack([k for _, k in items])
            height = np.median(kp[:, 11:13, 1].max(1) - kp[:, 0, 1])  # feet to head
            lifts.setdefault(label, []).append(float(np.max(kp[:, 0, 1] - kp[:, 4:6, 1].min(1)) / height))  # hand over head
            drops.setdefault(label, []).append(float(np.ptp(kp[:, 11:13, 1].max(1) - kp[:, 0, 1]) / height))  # head height range
            strides.setdefault(label, []).append(float(np.ptp(kp[:, 11, 0] - kp[:, 12, 0]) / height))  # feet apart, together
    assert min(lifts["wave"]) > 0.05 and max(lifts["bend"] + lifts["walk"]) < 0.0
    assert min(drops["bend"]) > 0.3 and max(drops["wave"] + drops["work_at_table"]) < 0.1
    assert min(strides["walk"]) > 0.5 and max(strides["wave"] + strides["bend"]) < 0.3

    first = [av.open(str(v)) for v in sorted(or_scenes.glob("*/*.mp4"))[:2]]
    means = [next(c.decode(c.streams.video[0])).to_ndarray(format="rgb24")[:10].reshape(-1, 3).mean(0) for c in first]
    for c in first:
        c.close()
    assert np.abs(means[0] - means[1]).max() > 3  # the back wall under another light


def _first_frames(videos):
    out = []
    for v in videos:
        with av.open(str(v)) as c:
            out.append(next(c.decode(c.streams.video[0])).to_ndarray(format="rgb24").astype(np.float32))
    return out


def test_variety_off_gives_one_look_and_a_subset_of_activities(tmp_path):
    """`variety=False`: every video under the same light with the same clothing (what an untrained
    backbone's sample needs); `activities` limits what people do; an unknown activity is named."""
    import pytest

    plain = generate_or_scenes(tmp_path / "plain", videos=3, frames=4, width=96, height=72, variety=False,
                               activities=("walk", "wave"), seed=2)
    assert plain["activities"] == ["wave", "walk"]
    labels = {r["label"] for p in (tmp_path / "plain").rglob("annotation_clustering.json")
              for r in json.loads(p.read_text())}
    assert labels and labels <= {"wave", "walk"}
    walls = [f[:10].reshape(-1, 3).mean(0) for f in _first_frames(sorted((tmp_path / "plain").glob("*/*.mp4")))]
    assert max(np.abs(w - walls[0]).max() for w in walls) < 1.5  # one light for all (noise aside)
    with pytest.raises(ValueError, match="jump"):
        generate_or_scenes(tmp_path / "bad", videos=1, frames=2, activities=("jump",))


def test_clips_frame_their_actor(tmp_path):
    """A clip keeps a window of a zoomed room around its actor: the window lies in the room and holds
    the person's median position; the person is drawn `zoom` times larger than in a scene."""
    import pytest

    from actionops.platform.synth import Room, _framing, _make_person

    room = Room(2 * round(64 * 1.8 / 2), 2 * round(48 * 1.8 / 2))
    for seed in range(8):
        person = _make_person(1, ACTIVITIES[seed % 4], np.random.default_rng(seed))
        x, y, w, h = _framing(room, person, 10, 10, 64, 48)
        assert (w, h) == (64, 48) and 0 <= x <= room.width - w and 0 <= y <= room.height - h
        cx, cy = np.median(np.concatenate([person.pose(i / 10, room) for i in range(10)]), axis=0)
        assert x <= cx <= x + w and y <= cy <= y + h
    assert room.person_height / 48 == pytest.approx(0.30 * 1.8, rel=0.02)
    with pytest.raises(ValueError, match="zoom"):
        generate_clips(tmp_path / "c", videos=1, frames=2, zoom=0.5)
