"""Synthetic scenes with ground truth: a room with a table, people doing distinct activities.

Two layouts (see `../shared/handbook/methods.md`):
- `or-scene`: operating-room layout, `OUT/{train,test}/<video>.mp4` and per video
  `<video>/json/pose.json` (1-based `frame`, `id`, `bbox` [x1,y1,x2,y2], `keypoints`),
  `<video>/coor.npy` (table centre, pixels), `<video>/json/annotation_clustering.json`
  (`[{"frame","id","label"}]`). 3-6 people per video, each doing one activity.
- `clips`: classification layout, `OUT/<activity>/<clip>.mp4` with one person and
  `train.csv`/`val.csv`/`test.csv` (`path,label`, paths relative to OUT).

Activities differ in how the limbs move, as real actions do (Weizmann's bend / wave / jack),
not in where people stand:
    work_at_table    at a long side of the table, forearms forward, hands circling fast
    wave             standing, one arm raised and waving over the head
    bend             standing, bending down to the floor and up again, arms hanging
    walk             walking to and fro across the view (gait: legs and arms swing); may leave the frame
Every activity but work_at_table stands or walks anywhere on the floor, the table's sides
included (work_at_table is at the table by definition, so 40% of the others stand there too).
What a model must ignore varies: clothing colour (any hue), body size (0.8-1.25), each video's
lighting and colour cast, slow lighting drift, camera jitter (the whole frame shifts by up to
~1 px; boxes follow it), sensor noise. `variety=False` gives every video one look (one
clothing colour, size 1, even light, still camera), for models that cannot learn to ignore it
(an untrained backbone's features). The clips layout frames its actor (`zoom`), as action
datasets do. People are articulated stick figures (13 joints) drawn in
depth order, so they occlude each other and the table. Deterministic per seed: the same
arguments give byte-identical files.
"""

from __future__ import annotations

import colorsys
import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from actionops.platform.video import write_video

# Bump when the drawing changes, so `synthesize` knows old outputs are stale.
GENERATOR_VERSION = 4
ACTIVITIES = ("work_at_table", "wave", "bend", "walk")
JOINTS = (
    "head", "neck", "l_shoulder", "r_shoulder", "l_hand", "r_hand", "l_elbow", "r_elbow",
    "pelvis", "l_knee", "r_knee", "l_foot", "r_foot",
)  # fmt: skip
BONES = ((1, 2), (1, 3), (2, 6), (6, 4), (3, 7), (7, 5), (1, 8), (8, 9), (9, 11), (8, 10), (10, 12))


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
    slot: float  # where: 0..1 along a table side, or a floor position (with `spot`)
    speed: float  # frequency / walking speed multiplier
    phase: float  # start phase in radians
    scale: float  # body size multiplier
    spot: tuple[float, float] = (0.5, 0.5)  # floor position in room fractions (feet), for standing / walking
    at_table: bool = False  # stands at a long side of the table
    heading: float = 0.0  # walking direction (radians) / waving arm (sign)

    def pose(self, t: float, room: Room) -> np.ndarray:
        """Joint positions (13, 2) in pixels at time `t` seconds."""
        feet, walk, arms, arm_phase, bend = self._motion(t, room)
        return _skeleton(feet, room.person_height * self.scale, walk, arms, arm_phase, bend)

    def _anchor(self, room: Room) -> np.ndarray:
        w, h = room.width, room.height
        x0, y0, x1, y1 = room.table
        if self.at_table:
            side_y = y0 - 0.01 * h if self.slot < 0.5 else y1 + 0.28 * h
            return np.array([x0 + (0.15 + 0.7 * (self.slot * 2 % 1)) * (x1 - x0), side_y])
        return np.array([(0.10 + 0.80 * self.spot[0]) * w, (0.45 + 0.50 * self.spot[1]) * h])

    def _motion(self, t: float, room: Room) -> tuple[np.ndarray, float, str, float, float]:
        w = room.width
        ph, f = self.phase, self.speed
        feet = self._anchor(room)
        sway = 0.008 * w * math.sin(0.8 * t + ph)
        if self.activity == "work_at_table":
            return feet + [sway, 0], 0.0, "work", 2 * math.pi * 2.2 * f * t + ph, 0.0
        if self.activity == "wave":
            return feet + [sway, 0], 0.0, "wave" if self.heading >= 0 else "wave_left", 2 * math.pi * 1.5 * f * t + ph, 0.0
        if self.activity == "bend":
            bend = 0.5 - 0.5 * math.cos(2 * math.pi * 0.55 * f * t + ph)  # 0 upright .. 1 bent down
            return feet + [sway, 0], 0.0, "hang", ph, bend
        # walk: to and fro along a line through the spot, 0.45 w long; the far end may be out of frame
        direction = np.array([math.cos(self.heading), 0.35 * math.sin(self.heading)])
        span = 0.45 * w
        s = (0.20 * w * f * t / span + self.slot * 2) % 2.0
        u = (s if s < 1 else 2 - s) - 0.5
        return feet + u * span * direction, 2 * math.pi * 1.6 * f * t + ph, "swing", ph, 0.0


def _skeleton(feet: np.ndarray, size: float, walk: float, arms: str, arm_phase: float, bend: float = 0.0) -> np.ndarray:
    fx, fy = feet
    leg = 0.25 * size
    pelvis = np.array([fx, fy - 2 * leg])
    trunk = 0.30 * size  # pelvis to neck
    # bending forward (seen from the front): the upper body folds down and a little to the side
    lean = bend * math.radians(100)
    neck = pelvis + trunk * np.array([0.35 * math.sin(lean), -math.cos(lean)])
    head = neck + 0.11 * size * np.array([0.35 * math.sin(lean), -math.cos(lean)])
    shoulders = [neck + [-0.12 * size, 0.03 * size], neck + [0.12 * size, 0.03 * size]]
    swing = 0.5 * math.sin(walk) if walk else 0.0
    knees, foot_pts = [], []
    for side, sign in ((0, 1), (1, -1)):
        angle = sign * swing
        hip = pelvis + [(-1 if side == 0 else 1) * 0.06 * size, 0]
        knee = hip + leg * np.array([math.sin(angle) + 0.25 * bend * (1 if side else -1), math.cos(angle)])
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
        elif arms in ("wave", "wave_left") and side == (1 if arms == "wave" else 0):  # raised, waving over the head
            elbow = sh + arm * np.array([sign * 0.6, -0.8])
            a = 0.9 * math.sin(arm_phase)
            hand = elbow + arm * np.array([math.sin(a), -math.cos(a)])
        else:  # hanging (bending: the arms hang from the shoulders towards the floor), or resting
            elbow = sh + [sign * 0.03 * size, arm]
            hand = elbow + [-sign * 0.02 * size, arm]
        elbows.append(elbow)
        hands.append(hand)
    joints = [head, neck, *shoulders, *hands, *elbows, pelvis, *knees, *foot_pts]
    return np.stack(joints).astype(np.float64)


class SceneRenderer:
    """Draws one video's frames and collects boxes, keypoints and labels per person per frame."""

    def __init__(self, room: Room, people: list[Person], fps: int, noise: float, rng: np.random.Generator,
                 variety: bool = True):
        self.room, self.people, self.fps, self.noise, self.rng = room, people, fps, noise, rng
        # the video's look: lighting gain and colour cast, drift, camera jitter (all to be ignored)
        self.cast = rng.uniform(0.80, 1.15) * rng.uniform(0.9, 1.1, size=3)
        self.drift = (float(rng.uniform(0.0, 0.08)), float(rng.uniform(0.1, 0.6)), float(rng.uniform(0, 2 * math.pi)))
        self.jitter = float(rng.uniform(0.0, 1.0))  # pixels
        self.jitter_phase = rng.uniform(0, 2 * math.pi, size=4)
        if not variety:  # one look for every video: even light, still camera
            self.cast, self.drift, self.jitter = np.ones(3), (0.0, 0.0, 0.0), 0.0
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

    def shift(self, t: float) -> np.ndarray:
        """Camera jitter at `t`: a smooth wobble of up to `jitter` pixels."""
        p = self.jitter_phase
        return self.jitter * np.array([0.6 * math.sin(7.1 * t + p[0]) + 0.4 * math.sin(13.3 * t + p[1]),
                                       0.6 * math.sin(6.3 * t + p[2]) + 0.4 * math.sin(11.7 * t + p[3])])

    def frame(self, index: int) -> np.ndarray:
        import cv2

        t = index / self.fps
        img = self.background.copy()
        table_depth = self.room.table[3]
        shift = self.shift(t)
        poses = [(p, p.pose(t, self.room)) for p in self.people]
        table_drawn = False
        for person, joints in sorted(poses, key=lambda item: item[1][-1, 1]):
            if not table_drawn and joints[-1, 1] > table_depth:
                self._draw_table(img)
                table_drawn = True
            self._draw_person(img, joints, person)
            self._record(index, person, joints + shift)
        if not table_drawn:
            self._draw_table(img)
        if self.jitter:
            move = np.float32([[1, 0, shift[0]], [0, 1, shift[1]]])
            img = cv2.warpAffine(img, move, (self.room.width, self.room.height), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_REPLICATE)
        amp, freq, phase = self.drift
        gain = (1.0 + amp * math.sin(2 * math.pi * freq * t + phase)) * self.cast
        noisy = img.astype(np.float32) * gain.astype(np.float32) + self.rng.normal(0, self.noise, img.shape)
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


PLAIN_COLOUR = (60, 90, 160)  # everyone's clothing when variety is off


def _make_person(pid: int, activity: str, rng: np.random.Generator, variety: bool = True) -> Person:
    hue, sat, val = rng.uniform(0, 1), rng.uniform(0.35, 0.9), rng.uniform(0.35, 0.85)  # any clothing colour
    colour = tuple(int(255 * c) for c in colorsys.hsv_to_rgb(hue, sat, val))
    slot, speed, phase, scale = (float(v) for v in rng.uniform([0, 0.8, 0, 0.8], [1, 1.25, 2 * math.pi, 1.25]))
    return Person(
        pid=pid,
        activity=activity,
        colour=colour if variety else PLAIN_COLOUR,
        slot=slot,
        speed=speed,
        phase=phase,
        scale=scale if variety else 1.0,
        spot=(float(rng.uniform(0, 1)), float(rng.uniform(0, 1))),
        at_table=activity == "work_at_table" or (activity != "walk" and bool(rng.uniform() < 0.4)),
        # walkers cross the view (within 45 degrees of it, either way); a waving arm is the left or the right
        heading=_crossing(float(rng.uniform(-1, 1))) if activity == "walk" else float(rng.choice([-1.0, 1.0])),
    )


def _crossing(u: float) -> float:
    """A walking direction within 45 degrees of the image's x axis, to the right (u >= 0) or left."""
    return (abs(u) * 2 - 1) * math.pi / 4 + (0.0 if u >= 0 else math.pi)


def _render(path: Path, room: Room, people: list[Person], frames: int, fps: int, noise: float, rng,
            crop: tuple[int, int, int, int] | None = None, variety: bool = True) -> SceneRenderer:
    """Write the scene's frames to `path`; `crop` (x, y, w, h) keeps one window of the room."""
    renderer = SceneRenderer(room, people, fps, noise, rng, variety)
    if crop is None:
        write_video(path, (renderer.frame(i) for i in range(frames)), fps)
    else:
        x, y, w, h = crop
        write_video(path, (renderer.frame(i)[y:y + h, x:x + w] for i in range(frames)), fps)
    return renderer


def _framing(room: Room, person: Person, frames: int, fps: int, width: int, height: int) -> tuple[int, int, int, int]:
    """A fixed `width` x `height` window of `room` centred on where `person` is over the clip, as a
    camera framing one actor (a walker still crosses it); kept inside the room."""
    centre = np.median(np.concatenate([person.pose(i / fps, room) for i in range(frames)]), axis=0)
    x = int(np.clip(round(centre[0] - width / 2), 0, room.width - width))
    y = int(np.clip(round(centre[1] - height / 2), 0, room.height - height))
    return x, y, width, height


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
    activities: tuple[str, ...] = ACTIVITIES,
    variety: bool = True,
    seed: int = 0,
    progress=None,
) -> dict:
    """Write `videos` operating-room scenes under `out` (train/test split); return a summary."""
    _check_sizes(videos, frames, width, height)
    if not 1 <= min_people <= max_people:
        raise ValueError("need 1 <= min_people <= max_people")
    out = Path(out)
    unknown = sorted(set(activities) - set(ACTIVITIES))
    if unknown or not activities:
        raise ValueError(f"activities {unknown or 'none'}: choose from {', '.join(ACTIVITIES)}")
    activities = tuple(a for a in ACTIVITIES if a in activities)
    room = Room(width, height)
    n_test = min(videos - 1, max(1 if test_fraction > 0 else 0, round(videos * test_fraction)))
    summary = {"kind": "or-scene", "activities": list(activities), "videos": [], "seed": seed}
    for v in range(videos):
        rng = np.random.default_rng([seed, v])
        split = "test" if v >= videos - n_test else "train"
        n_people = int(rng.integers(min_people, max_people + 1))
        # every activity appears in every video that has room for it; the rest at random
        doing = list(rng.permutation(activities))[:n_people]
        doing += [str(a) for a in rng.choice(activities, size=n_people - len(doing))]
        people = [_make_person(pid, str(a), rng, variety) for pid, a in enumerate(doing, start=1)]
        name = f"scene_{v:03d}"
        renderer = _render(out / split / f"{name}.mp4", room, people, frames, fps, noise, rng, variety=variety)
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
    zoom: float = 1.8,
    variety: bool = True,
    seed: int = 0,
    progress=None,
) -> dict:
    """Write `videos` one-person clips in class folders plus train/val/test CSVs (60/20/20 per class).

    Each clip frames its actor as action datasets do (Weizmann, segmented UT-Interaction): the room
    is drawn `zoom` times larger and a `width` x `height` window around the person is kept, so the
    person is about 0.3 x `zoom` of the frame height and limb motion is visible at small sizes."""
    _check_sizes(videos, frames, width, height)
    if zoom < 1:
        raise ValueError(f"zoom {zoom} must be at least 1")
    out = Path(out)
    room = Room(2 * round(width * zoom / 2), 2 * round(height * zoom / 2))
    rows: dict[str, list[tuple[str, str]]] = {"train": [], "val": [], "test": []}
    per_class: dict[str, list[str]] = {a: [] for a in ACTIVITIES}
    for v in range(videos):
        rng = np.random.default_rng([seed, v])
        activity = ACTIVITIES[v % len(ACTIVITIES)]
        rel = f"{activity}/clip_{v:03d}.mp4"
        person = _make_person(1, activity, rng, variety)
        _render(out / rel, room, [person], frames, fps, noise, rng, _framing(room, person, frames, fps, width, height),
                variety)
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
    summary = {"kind": "clips", "activities": list(ACTIVITIES), "seed": seed, "zoom": zoom,
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
