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
    """The walking/roaming activities move their boxes; standing at the head end does not."""
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
    assert np.mean(travel["stand_at_head"]) < 3
    assert np.mean(travel["walk_to_trolley"]) > 5


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
