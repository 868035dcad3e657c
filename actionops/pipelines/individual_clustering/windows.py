"""Training/prediction rows for individual clustering: person windows with padded people.

Built on `person_window_dataset` (below). Each row is one window of one video:
    frames  (3, T, H, W) float32 in [-1, 1]      flow   (2, T, H, W) float32 in [-1, 1]
    rois    (P, 4) boxes in input pixels (x1, y1, x2, y2), padded to P = max people
    mask    (P,) 1 for a real person             ids    (P,) person ids (-1 padding)
    labels  [P] true label or ""                  spatial (P, 1) distance to the table centre
    motion  (P, D) flow orientation histograms in each box (zeros without flow; only with `motion`)
    video_id, start
Padding to a fixed P keeps Ray Data batches rectangular.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import json

import numpy as np

from actionops.errors import DataError


def table_distances(boxes: np.ndarray, table_xy: np.ndarray, width: int, height: int) -> np.ndarray:
    """|box centre - table centre| / |(W, H)| per box, in original pixels: (P, 4) -> (P, 1)."""
    centres = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], axis=1)
    return (np.linalg.norm(centres - table_xy[None, :], axis=1) / np.hypot(width, height))[:, None].astype(np.float32)


def table_centres(rows: Sequence[dict], required: bool) -> dict[str, np.ndarray]:
    """coor.npy of every video; with `required`, a missing one is an error naming the video."""
    out = {}
    for r in rows:
        path = r.get("coor_path")
        if path and Path(path).is_file():
            out[r["video_id"]] = np.load(path).astype(np.float32).reshape(2)
        elif required:
            expected = Path(r["path"]).with_suffix("") / "coor.npy"
            raise DataError(f"missing table centre {expected} for {r['video_id']}",
                            "add coor.npy (x, y of the table centre in pixels) or set clustering.add_spatial_feature=false")
    return out


def box_motion(flow: np.ndarray, boxes: np.ndarray, grid: int, bins: int, unsigned: bool = False) -> np.ndarray:
    """Per box (input pixels) the flow orientation-histogram descriptor: (2, T, H, W), (P, 4) -> (P, D)."""
    from actionops.platform.flow import flow_histogram_features

    field = flow.transpose(1, 2, 3, 0)  # (T, H, W, 2)
    h, w = field.shape[1:3]
    out = np.zeros((len(boxes), grid * grid * bins), np.float32)
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        x1, y1 = int(max(0, np.floor(x1))), int(max(0, np.floor(y1)))
        x2, y2 = int(min(w, np.ceil(x2))), int(min(h, np.ceil(y2)))
        if x2 - x1 >= grid and y2 - y1 >= grid:
            out[i] = flow_histogram_features(field[:, y1:y2, x1:x2], grid, bins, unsigned=unsigned)
    return out


def window_dataset(rows: Sequence[dict], ae_cfg, *, frames: bool = True, flow: bool = True,
                   people: int | None = None, spatial: bool = False, motion: tuple[int, int, bool] | None = None):
    """The Ray Dataset of padded rows for `rows` (manifest rows of the operating-room layout);
    `motion` (grid, bins, unsigned: `stages.motion_spec`) adds the descriptor column."""
    if not rows:
        raise DataError("no videos to train on", "check the dataset's train split and rejected.csv")
    max_people = people or max(int(r["people"]) for r in rows)
    size = (ae_cfg.width, ae_cfg.height)
    sizes = {r["video_id"]: (int(r["width"]), int(r["height"])) for r in rows}
    tables = table_centres(rows, required=spatial) if spatial else {}
    base = person_window_dataset(rows, window=ae_cfg.seq_len, stride=ae_cfg.stride, size=size, with_frames=frames,
                                 with_flow=flow, normalize="symmetric", flow_clip=ae_cfg.flow_clip)

    def pad(row: dict) -> dict:
        boxes = np.asarray(row["boxes"], np.float32)[:max_people]
        n = len(boxes)
        out = {"video_id": row["video_id"], "start": int(row["start"])}
        rois = np.zeros((max_people, 4), np.float32)
        rois[:n] = boxes * np.tile(row["scale"], 2)  # video pixels -> input pixels, once
        out["rois"], out["mask"] = rois, (np.arange(max_people) < n).astype(np.float32)
        out["ids"] = np.full(max_people, -1, np.int64)
        out["ids"][:n] = np.asarray(row["ids"][:max_people])
        out["labels"] = np.array(list(row["labels"][:max_people]) + [""] * (max_people - n), dtype=object).astype(str).tolist()
        dist = np.zeros((max_people, 1), np.float32)
        if spatial:
            w, h = sizes[row["video_id"]]
            dist[:n] = table_distances(boxes, tables[row["video_id"]], w, h)
        out["spatial"] = dist
        if motion:
            grid, bins, unsigned = motion
            out["motion"] = np.zeros((max_people, grid * grid * bins), np.float32)
            if flow:
                out["motion"][:n] = box_motion(row["flow"].transpose(1, 0, 2, 3), rois[:n], grid, bins, unsigned)
        if frames:
            out["frames"] = np.ascontiguousarray(row["frames"].transpose(1, 0, 2, 3))
        if flow:
            out["flow"] = np.ascontiguousarray(row["flow"].transpose(1, 0, 2, 3))
        return out

    return base.map(pad)


def person_window_dataset(
    rows: Sequence[dict],
    *,
    window: int = 20,
    stride: int | None = None,
    size: tuple[int, int] | None = None,
    with_frames: bool = True,
    with_flow: bool = False,
    normalize: str = "imagenet",
    flow_clip: float = 10.0,
):
    """A Ray Dataset with one row per (video, window) of the operating-room layout.

    Row: video_id, start (0-based first frame), ids [P] and labels [P] (majority annotation label,
    "" when the video has none), boxes (P, 4) float32 in video pixels (each person's median box
    over the window), scale (sx, sy) from video pixels to the output frame size; with
    `with_frames` the frames (T, 3, H, W) float32 (`normalize`: "imagenet" mean/std, or
    "symmetric" to [-1, 1]); with `with_flow` the flow (T, 2, H, W) float32 from `flow_path`,
    resized (vectors scaled with the frame) and divided by `flow_clip` pixels, clipped to [-1, 1].
    `size` is (W, H), default the video's. Each video is decoded once, front to back; windows
    with nobody in them are skipped.
    """
    stride = stride or window
    for r in rows:
        if not r.get("pose_path"):
            raise DataError(f"{r['video_id']} has no pose.json", "person windows need the operating-room layout")
        if with_flow and not Path(r["flow_path"]).is_file():
            raise DataError(f"missing optical flow {r['flow_path']}", "run `actionops flow compute` on the dataset first")
    items = [{"video_id": r["video_id"], "path": r["path"], "pose_path": r["pose_path"], "flow_path": r["flow_path"],
              "annotation_path": r.get("annotation_path") or "", "frames": int(r["frames"]),
              "width": int(r["width"]), "height": int(r["height"])} for r in rows]

    def make_windows(item: dict):
        from actionops.platform.data import normalize_frames, resize_flow, symmetric_frames
        from actionops.platform.video import decode_range
        from actionops.platform.windows import window_spans

        tracks = PersonTracks(item["pose_path"], item["annotation_path"] or None, item["width"], item["height"])
        out_w, out_h = size or (item["width"], item["height"])
        scale = np.array([out_w / item["width"], out_h / item["height"]], np.float32)
        starts = [s for s, _ in window_spans(item["frames"], window, stride, cover_end=False)]
        frames = decode_range(item["path"], 0, starts[-1] + window, size=(out_w, out_h)) if with_frames else None
        flow = np.load(item["flow_path"], mmap_mode="r") if with_flow else None
        buffer: list[np.ndarray] = []
        first = 0  # index of buffer[0]
        for start in starts:
            people = tracks.window(start, window)
            if with_frames:
                while first + len(buffer) < start + window:
                    buffer.append(next(frames)[1])
                buffer, first = buffer[start - first:], start
            if not people["ids"]:
                continue
            row = {"video_id": item["video_id"], "start": start, "ids": people["ids"],
                   "labels": people["labels"], "boxes": np.asarray(people["boxes"], np.float32), "scale": scale}
            if with_frames:
                clip = np.stack(buffer[:window])
                row["frames"] = normalize_frames(clip) if normalize == "imagenet" else symmetric_frames(clip)
            if with_flow:
                row["flow"] = resize_flow(np.asarray(flow[start:start + window], np.float32), (out_w, out_h), flow_clip)
            yield row

    from actionops.platform.data import _from_items

    return _from_items(items, ordered=True).flat_map(make_windows)


class PersonTracks:
    """A video's person boxes and (optional) labels, loaded once, queried per window."""

    def __init__(self, pose_path: str, annotation_path: str | None, width: int, height: int) -> None:
        self.by_frame: dict[int, list[dict]] = {}
        from actionops.platform.layout import load_pose

        for rec in load_pose(pose_path, width=width, height=height):
            self.by_frame.setdefault(rec["frame"], []).append(rec)
        self.labels: dict[tuple[int, int], str] = {}
        if annotation_path:
            for rec in json.loads(Path(annotation_path).read_text()):
                self.labels[(int(rec["frame"]) - 1, int(rec["id"]))] = str(rec["label"])

    def window(self, start: int, length: int) -> dict[str, list]:
        """Per person seen in frames [start, start+length): id, median box, majority label."""
        by_id: dict[int, list[dict]] = {}
        for frame in range(start, start + length):
            for rec in self.by_frame.get(frame, ()):
                by_id.setdefault(rec["id"], []).append(rec)
        ids, boxes, majority = [], [], []
        for pid in sorted(by_id):
            recs = by_id[pid]
            ids.append(pid)
            boxes.append(np.median(np.asarray([r["bbox"] for r in recs]), axis=0).tolist())
            votes = [self.labels[(r["frame"], pid)] for r in recs if (r["frame"], pid) in self.labels]
            majority.append(max(sorted(set(votes)), key=votes.count) if votes else "")
        return {"ids": ids, "boxes": boxes, "labels": majority}
