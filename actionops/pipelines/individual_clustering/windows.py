"""Training/prediction rows for individual clustering: person windows with padded people.

Built on `platform.data.person_window_dataset`. Each row is one window of one video:
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
    from actionops.evaluation.baselines import flow_histogram_features

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
    from actionops.platform.data import person_window_dataset

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
