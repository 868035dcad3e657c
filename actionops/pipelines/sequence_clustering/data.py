"""Sequences as windows on Ray Data: read (one task per file), subsample, normalise with the
model's `Normaliser`, cut into windows of source + target frames every `stride` frames."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from actionops.errors import DataError
from actionops.pipelines.context import Context


def sequence_rows(ctx: Context, split: str | None = None) -> list[dict]:
    """Manifest rows of a sequence dataset (indexed on first use), optionally of one split."""
    layout, rows = ctx.rows()
    if not str(layout).startswith("sequences/"):
        raise DataError(f"{ctx.dataset} is indexed as a {layout} video dataset",
                        "sequence commands read pose / mocap sequences: `actionops data index DATASET --layout sequences` "
                        "(or sequences/pose for the pose.json tracks of a video layout)")
    if split:
        chosen = [r for r in rows if r["split"] == split]
        if not chosen:
            splits = sorted({str(r["split"]) for r in rows})
            raise DataError(f"no sequences in the {split} split of {ctx.dataset} (splits: {', '.join(splits)})",
                            "pick one of those splits (--split), or none for every sequence")
        rows = chosen
    return rows


def read_row(row: dict, every: int) -> np.ndarray:
    """A manifest row's frames, subsampled."""
    from actionops.platform.sequences import read_sequence, subsample

    person = row.get("person")
    x, _ = read_sequence(row["path"], person=None if person is None or (isinstance(person, float) and np.isnan(person)) else int(person))
    return subsample(x, every)


def fit_normaliser(rows: list[dict], c: Any):
    """Per-channel standardisation fitted on `rows` (constant channels dropped)."""
    from actionops.platform.sequences import Normaliser

    return Normaliser.fit([read_row(r, c.subsample) for r in rows], c.min_std)


def window_length(spec: dict) -> int:
    return int(spec["source_len"]) + int(spec["target_len"])


def spec_of(c: Any) -> dict:
    """What a model was trained on (stored in its checkpoint; reused at prediction)."""
    return {"subsample": int(c.subsample), "source_len": int(c.source_len), "target_len": int(c.target_len),
            "stride": int(c.stride)}


def _windows_of(row: dict, spec: dict, normaliser: dict) -> list[dict]:
    from actionops.platform.sequences import Normaliser

    x = Normaliser.from_dict(normaliser)(read_row(row, spec["subsample"]), source=row["path"])
    length = window_length(spec)
    return [{"video_id": str(row["video_id"]), "start": int(s), "frames": int(len(x)),
             "window": np.ascontiguousarray(x[s:s + length])}
            for s in range(0, len(x) - length + 1, int(spec["stride"]))]


def short_sequences(rows: list[dict], spec: dict) -> list[dict]:
    """Rows too short for one window after subsampling."""
    return [r for r in rows if int(r["frames"]) // int(spec["subsample"]) < window_length(spec)]


def window_dataset(rows: list[dict], spec: dict, normaliser: Any, say: Any = None):
    """Ray Dataset of windows {video_id, start, frames, window (L x D)} over `rows`, in row order.
    Sequences shorter than one window are left out with a warning naming them."""
    from actionops.platform.data import _from_items

    short = short_sequences(rows, spec)
    if short and say:
        say(f"[yellow]warning:[/] {len(short)} sequences shorter than {window_length(spec)} frames after subsampling "
            f"by {spec['subsample']} are left out, e.g. {short[0]['path']} ({short[0]['frames']} frames)")
    wrong = [r for r in rows if r.get("dims") is not None and int(r["dims"]) != normaliser.dims]
    if wrong:  # checked here, before any Ray task: names the file and both channel counts
        normaliser(np.zeros((1, int(wrong[0]["dims"])), np.float32), source=str(wrong[0]["path"]))
    usable = [r for r in rows if r not in short]
    if not usable:
        raise DataError(f"every sequence is shorter than source_len + target_len = {window_length(spec)} frames after "
                        f"subsampling by {spec['subsample']} (longest: {max(int(r['frames']) for r in rows)} frames)",
                        "lower sequences.source_len / target_len / subsample")
    items = [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()} for r in usable]
    ds = _from_items(items, ordered=True)
    return ds.flat_map(_windows_of, fn_kwargs={"spec": spec, "normaliser": normaliser.to_dict()})


def frame_truth(row: dict, every: int) -> list[str] | None:
    """Per-frame true labels of a row after subsampling: its label, or its truth file; None if neither."""
    from actionops.platform.sequences import frame_labels, read_ground_truth

    if row.get("truth_path"):
        labels = frame_labels(read_ground_truth(row["truth_path"]))
        return labels[::every]
    if row.get("label"):
        return [str(row["label"])] * -(-int(row["frames"]) // every)
    return None


def truth_segments(row: dict):
    from actionops.platform.sequences import read_ground_truth

    return read_ground_truth(row["truth_path"]) if row.get("truth_path") else None


def frames_to_windows(n_frames: int, starts: np.ndarray, source_len: int) -> np.ndarray:
    """For every frame, the index of the window whose source part is centred nearest to it."""
    centres = np.asarray(starts, np.float64) + source_len / 2.0
    frames = np.arange(n_frames)[:, None]
    return np.abs(frames - centres[None, :]).argmin(1)


def checkpoint_spec(state: dict) -> tuple[dict, Any]:
    from actionops.platform.sequences import Normaliser

    if "normaliser" not in state or "windows" not in state:
        raise DataError("not a sequence model checkpoint (no normaliser / window spec)",
                        "pass seq2seq.pt written by `actionops train sequences`")
    return dict(state["windows"]), Normaliser.from_dict(state["normaliser"])


def out_path(ctx: Context, *parts: str) -> Path:
    path = Path(ctx.out).joinpath(*parts)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
