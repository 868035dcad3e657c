"""Synthetic scenes with ground truth: a room with a table, people doing distinct activities.

Two layouts (see `../shared/handbook/methods.md`):
- `or-scene`: operating-room layout, `OUT/{train,test}/<video>.mp4` and per video
  `<video>/json/pose.json` (1-based `frame`, `id`, `bbox` [x1,y1,x2,y2], `keypoints`),
  `<video>/coor.npy` (table centre, pixels), `<video>/json/annotation_clustering.json`
  (`[{"frame","id","label"}]`). 3-6 people per video, each doing one activity.
- `clips`: classification layout, `OUT/<activity>/<clip>.mp4` with one person and
  `train.csv`/`val.csv`/`test.csv` (`path,label`, paths relative to OUT).

Activities differ in motion and in place:
    work_at_table    stands at the table's long side, hands moving fast
    stand_at_head    stands still at the head (left) end of the table
    walk_to_trolley  walks back and forth between the table and the trolley
    roam_and_leave   walks a loop around the room that leaves the frame and comes back
People are articulated stick figures (13 joints) drawn in depth order, so they occlude each
other and the table; frames get sensor noise and brightness flicker. Deterministic per seed:
the same arguments give byte-identical files.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from actionops.platform.video import write_video

# Bump when the drawing changes, so `synthesize` knows old outputs are stale.
GENERATOR_VERSION = 3
ACTIVITIES = ("work_at_table", "stand_at_head", "walk_to_trolley", "roam_and_leave")
JOINTS = (
    "head", "neck", "l_shoulder", "r_shoulder", "l_hand", "r_hand", "l_elbow", "r_elbow",
    "pelvis", "l_knee", "r_knee", "l_foot", "r_foot",
)  # fmt: skip
BONES = ((1, 2), (1, 3), (2, 6), (6, 4), (3, 7), (7, 5), (1, 8), (8, 9), (9, 11), (8, 10), (10, 12))
# Everyone wears scrubs of nearly the same colour, as in a real operating room: activity must be
# told by motion and place, not by clothing.
SCRUB_COLOURS = ((52, 110, 150), (48, 104, 146), (56, 116, 156), (50, 112, 142), (54, 106, 152))


@dataclass(frozen=True)
class Room:
    """Scene geometry in pixels: table (x0, y0, x1, y1), trolley centre, person height."""

    width: int
    height: int

    @property
    def table(self) -> tuple[float, float, float, float]:
        w, h = self.width, self.height
        return (0.32 * w, 0.50 * h, 0.68 * w, 0.66 * h)

    @property
    def table_centre(self) -> tuple[float, float]:
        x0, y0, x1, y1 = self.table
        return ((x0 + x1) / 2, (y0 + y1) / 2)

    @property
    def trolley(self) -> tuple[float, float]:
        return (0.86 * self.width, 0.36 * self.height)

    @property
    def person_height(self) -> float:
        return 0.30 * self.height


@dataclass(frozen=True)
class Person:
    """One person: id, activity, clothing colour and the random parameters of the activity."""

    pid: int
    activity: str
    colour: tuple[int, int, int]
    slot: float  # where along the activity's place (0..1)
    speed: float  # frequency / walking speed multiplier
    phase: float  # start phase in radians
    scale: float  # body size multiplier

    def pose(self, t: float, room: Room) -> np.ndarray:
        """Joint positions (13, 2) in pixels at time `t` seconds."""
        feet, walk, arms, arm_phase = self._motion(t, room)
        return _skeleton(feet, room.person_height * self.scale, walk, arms, arm_phase)

    def _motion(self, t: float, room: Room) -> tuple[np.ndarray, float, str, float]:
        w, h = room.width, room.height
        x0, y0, x1, y1 = room.table
        ph = self.phase
        if self.activity == "work_at_table":
            side_y = y0 - 0.01 * h if self.slot < 0.5 else y1 + 0.28 * h
            x = x0 + (0.15 + 0.7 * (self.slot * 2 % 1)) * (x1 - x0)
            sway = 0.01 * w * math.sin(0.8 * t + ph)
            return np.array([x + sway, side_y]), 0.0, "work", 2 * math.pi * 2.2 * self.speed * t + ph
        if self.activity == "stand_at_head":
            x = x0 - (0.05 + 0.10 * (self.slot * 3 % 1)) * w
            y = y1 + (0.02 + 0.12 * self.slot) * h
            return np.array([x, y]), 0.0, "rest", 0.3 * math.sin(1.2 * t + ph)
        if self.activity == "walk_to_trolley":
            a = np.array([x1 + 0.05 * w, y1 + 0.12 * h])
            b = np.array(room.trolley) + np.array([-0.02 * w, 0.22 * h])
            dist = float(np.linalg.norm(b - a))
            v = 0.22 * w * self.speed
            s = (v * t / dist + self.slot * 2) % 2.0  # 0..1 out, 1..2 back
            u = s if s < 1 else 2 - s
            return a + u * (b - a), 2 * math.pi * 1.6 * self.speed * t + ph, "swing", ph
        # roam_and_leave: an elliptical loop whose left part lies outside the frame (a door)
        cx, cy, rx, ry = 0.40 * w, 0.62 * h, 0.62 * w, 0.30 * h
        ang = ph + 2 * math.pi * 0.07 * self.speed * t
        feet = np.array([cx + rx * math.cos(ang), cy + ry * math.sin(ang) + 0.12 * h])
        return feet, 2 * math.pi * 1.4 * self.speed * t + ph, "swing", ph


def _skeleton(feet: np.ndarray, size: float, walk: float, arms: str, arm_phase: float) -> np.ndarray:
    fx, fy = feet
    leg = 0.25 * size
    pelvis = np.array([fx, fy - 2 * leg])
    neck = np.array([fx, fy - 0.82 * size])
    head = np.array([fx, fy - 0.93 * size])
    shoulders = [neck + [-0.12 * size, 0.03 * size], neck + [0.12 * size, 0.03 * size]]
    swing = 0.5 * math.sin(walk) if walk else 0.0
    knees, foot_pts = [], []
    for side, sign in ((0, 1), (1, -1)):
        angle = sign * swing
        hip = pelvis + [(-1 if side == 0 else 1) * 0.06 * size, 0]
        knee = hip + leg * np.array([math.sin(angle), math.cos(angle)])
        knees.append(knee)
        foot_pts.append(knee + leg * np.array([math.sin(angle * 0.6), math.cos(angle * 0.6)]))
    elbows, hands = [], []
    arm = 0.16 * size
    for side, sign in ((0, -1), (1, 1)):
        sh = shoulders[side]
        if arms == "work":  # forearms forward over the table, hands circling fast
            elbow = sh + [sign * 0.08 * size, 0.12 * size]
            a = arm_phase + side * math.pi
            hand = elbow + arm * np.array([-sign * 0.4 + 0.8 * math.cos(a), 0.7 * math.sin(a)])
        elif arms == "swing":  # arms swing opposite to the legs
            angle = -sign * swing * 0.8 * (1 if side else -1)
            elbow = sh + arm * np.array([math.sin(angle), math.cos(angle)])
            hand = elbow + arm * np.array([math.sin(angle * 1.2), math.cos(angle * 1.2)])
        else:  # resting, hands folded in front, breathing sway
            elbow = sh + [sign * 0.03 * size, arm]
            hand = elbow + [-sign * 0.07 * size, arm * (0.9 + 0.05 * arm_phase)]
        elbows.append(elbow)
        hands.append(hand)
    joints = [head, neck, *shoulders, *hands, *elbows, pelvis, *knees, *foot_pts]
    return np.stack(joints).astype(np.float64)


class SceneRenderer:
    """Draws one video's frames and collects boxes, keypoints and labels per person per frame."""

    def __init__(self, room: Room, people: list[Person], fps: int, noise: float, rng: np.random.Generator):
        self.room, self.people, self.fps, self.noise, self.rng = room, people, fps, noise, rng
        self.background = self._background()
        self.pose_records: list[dict] = []
        self.label_records: list[dict] = []

    def _background(self) -> np.ndarray:
        import cv2

        w, h = self.room.width, self.room.height
        img = np.empty((h, w, 3), np.uint8)
        img[:] = (200, 205, 200)
        img[: int(0.28 * h)] = (170, 180, 185)  # back wall
        for x in range(0, w, max(8, w // 12)):  # floor tiles give the flow texture
            cv2.line(img, (x, int(0.28 * h)), (x, h), (185, 190, 186), 1)
        tx, ty = self.room.trolley
        cv2.rectangle(img, (int(tx - 0.05 * w), int(ty - 0.04 * h)), (int(tx + 0.05 * w), int(ty + 0.12 * h)), (120, 125, 135), -1)
        return img

    def _draw_table(self, img: np.ndarray) -> None:
        import cv2

        x0, y0, x1, y1 = (int(v) for v in self.room.table)
        cv2.rectangle(img, (x0, y0), (x1, y1), (95, 105, 120), -1)
        cx, cy = self.room.table_centre
        axes = (int(0.4 * (x1 - x0)), max(2, int(0.3 * (y1 - y0))))
        cv2.ellipse(img, (int(cx), int(cy)), axes, 0, 0, 360, (150, 190, 220), -1)  # draped patient

    def _draw_person(self, img: np.ndarray, joints: np.ndarray, person: Person) -> None:
        import cv2

        size = self.room.person_height * person.scale
        thick = max(2, int(round(0.07 * size)))
        pts = [tuple(int(round(v)) for v in p) for p in joints]
        for a, b in BONES:
            cv2.line(img, pts[a], pts[b], person.colour, thick, cv2.LINE_AA)
        cv2.circle(img, pts[0], max(2, int(0.08 * size)), (220, 190, 170), -1, cv2.LINE_AA)

    def frame(self, index: int) -> np.ndarray:
        t = index / self.fps
        img = self.background.copy()
        table_depth = self.room.table[3]
        poses = [(p, p.pose(t, self.room)) for p in self.people]
        table_drawn = False
        for person, joints in sorted(poses, key=lambda item: item[1][-1, 1]):
            if not table_drawn and joints[-1, 1] > table_depth:
                self._draw_table(img)
                table_drawn = True
            self._draw_person(img, joints, person)
            self._record(index, person, joints)
        if not table_drawn:
            self._draw_table(img)
        gain = 1.0 + 0.03 * math.sin(2 * math.pi * 0.5 * t)
        noisy = img.astype(np.float32) * gain + self.rng.normal(0, self.noise, img.shape)
        return np.clip(noisy, 0, 255).astype(np.uint8)

    def _record(self, index: int, person: Person, joints: np.ndarray) -> None:
        w, h = self.room.width, self.room.height
        margin = 0.06 * self.room.person_height * person.scale
        x1, y1 = joints.min(axis=0) - margin
        x2, y2 = joints.max(axis=0) + margin
        full = (x2 - x1) * (y2 - y1)
        cx1, cy1, cx2, cy2 = max(x1, 0), max(y1, 0), min(x2, w - 1), min(y2, h - 1)
        if cx2 - cx1 < 3 or cy2 - cy1 < 3 or (cx2 - cx1) * (cy2 - cy1) < 0.4 * full:
            return  # out of the room (or nearly): no box, no label, as a detector would see it
        visible = (joints[:, 0] >= 0) & (joints[:, 0] < w) & (joints[:, 1] >= 0) & (joints[:, 1] < h)
        keypoints = [[round(float(x), 1), round(float(y), 1), int(v)] for (x, y), v in zip(joints, visible)]
        box = [round(float(v), 1) for v in (cx1, cy1, cx2, cy2)]
        self.pose_records.append({"frame": index + 1, "id": person.pid, "bbox": box, "keypoints": keypoints})
        self.label_records.append({"frame": index + 1, "id": person.pid, "label": person.activity})


def _make_person(pid: int, activity: str, rng: np.random.Generator) -> Person:
    return Person(
        pid=pid,
        activity=activity,
        colour=SCRUB_COLOURS[int(rng.integers(len(SCRUB_COLOURS)))],
        slot=float(rng.uniform(0, 1)),
        speed=float(rng.uniform(0.8, 1.25)),
        phase=float(rng.uniform(0, 2 * math.pi)),
        scale=float(rng.uniform(0.9, 1.1)),
    )


def _render(path: Path, room: Room, people: list[Person], frames: int, fps: int, noise: float, rng) -> SceneRenderer:
    renderer = SceneRenderer(room, people, fps, noise, rng)
    write_video(path, (renderer.frame(i) for i in range(frames)), fps)
    return renderer


def generate_or_scenes(
    out: str | Path,
    *,
    videos: int = 6,
    frames: int = 80,
    width: int = 192,
    height: int = 144,
    fps: int = 10,
    min_people: int = 3,
    max_people: int = 6,
    noise: float = 4.0,
    test_fraction: float = 0.34,
    seed: int = 0,
    progress=None,
) -> dict:
    """Write `videos` operating-room scenes under `out` (train/test split); return a summary."""
    _check_sizes(videos, frames, width, height)
    if not 1 <= min_people <= max_people:
        raise ValueError("need 1 <= min_people <= max_people")
    out = Path(out)
    room = Room(width, height)
    n_test = min(videos - 1, max(1 if test_fraction > 0 else 0, round(videos * test_fraction)))
    summary = {"kind": "or-scene", "activities": list(ACTIVITIES), "videos": [], "seed": seed}
    for v in range(videos):
        rng = np.random.default_rng([seed, v])
        split = "test" if v >= videos - n_test else "train"
        n_people = int(rng.integers(min_people, max_people + 1))
        # every activity appears in every video that has room for it; the rest at random
        activities = list(rng.permutation(ACTIVITIES))[:n_people]
        activities += [str(a) for a in rng.choice(ACTIVITIES, size=n_people - len(activities))]
        people = [_make_person(pid, str(a), rng) for pid, a in enumerate(activities, start=1)]
        name = f"scene_{v:03d}"
        renderer = _render(out / split / f"{name}.mp4", room, people, frames, fps, noise, rng)
        meta = out / split / name
        _write_json(meta / "json" / "pose.json", renderer.pose_records)
        _write_json(meta / "json" / "annotation_clustering.json", renderer.label_records)
        np.save(meta / "coor.npy", np.array(room.table_centre, dtype=np.float32))
        summary["videos"].append({"name": name, "split": split, "people": n_people, "frames": frames})
        if progress:
            progress(v + 1, videos)
    _write_json(out / "synth.json", summary)
    return summary


def generate_clips(
    out: str | Path,
    *,
    videos: int = 24,
    frames: int = 48,
    width: int = 128,
    height: int = 96,
    fps: int = 10,
    noise: float = 4.0,
    seed: int = 0,
    progress=None,
) -> dict:
    """Write `videos` one-person clips in class folders plus train/val/test CSVs (60/20/20 per class)."""
    _check_sizes(videos, frames, width, height)
    out = Path(out)
    room = Room(width, height)
    rows: dict[str, list[tuple[str, str]]] = {"train": [], "val": [], "test": []}
    per_class: dict[str, list[str]] = {a: [] for a in ACTIVITIES}
    for v in range(videos):
        rng = np.random.default_rng([seed, v])
        activity = ACTIVITIES[v % len(ACTIVITIES)]
        rel = f"{activity}/clip_{v:03d}.mp4"
        _render(out / rel, room, [_make_person(1, activity, rng)], frames, fps, noise, rng)
        per_class[activity].append(rel)
        if progress:
            progress(v + 1, videos)
    for activity, paths in per_class.items():
        n = len(paths)
        n_val = n_test = n // 5 if n >= 5 else (1 if n >= 3 else 0)
        n_train = n - n_val - n_test
        for i, rel in enumerate(paths):
            split = "train" if i < n_train else "val" if i < n_train + n_val else "test"
            rows[split].append((rel, activity))
    for split, items in rows.items():
        with open(out / f"{split}.csv", "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["path", "label"])
            writer.writerows(items)
    summary = {"kind": "clips", "activities": list(ACTIVITIES), "seed": seed,
               "splits": {k: len(v) for k, v in rows.items()}}
    _write_json(out / "synth.json", summary)
    return summary


def _check_sizes(videos: int, frames: int, width: int, height: int) -> None:
    if videos < 1 or frames < 2:
        raise ValueError("need at least 1 video of at least 2 frames")
    if width < 32 or height < 32 or width % 2 or height % 2:
        raise ValueError(f"frame size {width}x{height} must be even and at least 32x32")


def _write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, separators=(",", ":")))
