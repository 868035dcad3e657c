"""Splits, class-balanced training clips, evaluation clips and prediction windows (Ray Datasets).

Training clips: each epoch draws `len(train) x clips_per_video` clips; every draw picks a video
with probability proportional to its class weight count^-tau (a WeightedRandomSampler with
replacement, inside the Ray Data map), then one random frame per temporal segment across the
whole video, then flip / random crop / colour jitter. Every draw is seeded by (train.seed,
epoch, slot): every epoch sees new clips, and the same config draws the same clips (a rerun,
a `--resume`, a recovered worker). Each training worker builds its epoch's Ray Dataset from its
own slots (`epoch_dataset`), so the draws do not depend on which worker reads which block.

Clip input (`classifier.clip_input`): `rgb` (normalised frames) or `rgb_diff`, TSN's RGB
difference: at every sampled position t the model sees frame t+1 minus frame t (both normalised,
same crop / flip / jitter). The difference keeps what moves and drops static appearance
(background, clothing), which a model trained from scratch on few performers otherwise latches on
to. `flow`: optical flow from frame t to t+1 (OpenCV Farneback with the flow stage's parameters)
as three channels, dx, dy and magnitude, in pixels at the input size divided by FLOW_SCALE x size
and clipped to [-1, 1]; computed from the same augmented frames (a flip flips the flow too).
`rgb+flow` / `rgb_diff+flow`: both, six channels, for the late-fusion two-stream model
(`two_stream`: one network per stream, logits averaged). The choice travels in the checkpoint
(`clip_input`), so evaluate / predict feed the same input.

Frame cache: when the training videos, decoded at the size clips are cut from, fit in
CACHE_BUDGET_BYTES, each is decoded once (a Ray task) into Ray's object store and every epoch
cuts its clips from memory (`cache_frames`): the same pixels as decoding per clip (same decoder,
same resize), without a decode per clip per epoch, which on small inputs costs about a fifth of
the CPU that training has. Larger training sets decode per clip, as before.

Where flow comes from (`classifier.flow_source`): `input` computes it on the fly from the two frames
at the model's input size (64-112 px: ~1 ms a frame pair, less than decoding). `stage` uses the flow
stage's flow instead: `flow.method` on the frames at `flow.size` (or the video's own size), read
from the flow stage's finished file when `actionops flow compute` has run on the dataset (same
method, size and video bytes), else computed the same way for just the clip's frame pairs (a video
never indexed, `predict`), then resized to the clip with its vectors rescaled and cut with the same
crop and flip as the frames (a flip negates dx). Finer flow sees small limb motion that 64 px frames
lose. The choice travels in the checkpoint (`flow`), as `clip_input` does.
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from actionops.errors import ConfigError, DataError

CLIP_INPUTS = ("rgb", "rgb_diff", "flow", "rgb+flow", "rgb_diff+flow")
FLOW_SCALE = 1 / 16  # flow of FLOW_SCALE x input size pixels (4 px at 64) maps to 1
CLIPS_PER_BLOCK = 8  # clips decoded per Ray Data task (one task per clip costs more than the decode)
CACHE_BUDGET_BYTES = 2 << 30  # training videos decoded once into the object store when they fit
AHEAD_BUDGET_BYTES = 1 << 30  # clips a training worker holds when it draws ahead (`epoch_batches`)
AHEAD_CLIPS_PER_BLOCK = 32  # clips per Ray Data task when drawing ahead (nothing waits on the first block)


@dataclass(frozen=True)
class Splits:
    labels: list[str]
    train: list[dict]
    val: list[dict]
    test: list[dict]
    warnings: list[str]


def _stratified_take(rows: list[dict], fraction: float, salt: str) -> tuple[list[dict], list[dict]]:
    """Deterministically move about `fraction` of each class (at least one video, never the
    last one) out of `rows`: (kept, taken)."""
    kept, taken = [], []
    by_class: dict[str, list[dict]] = {}
    for row in rows:
        by_class.setdefault(row["label"], []).append(row)
    for label, members in sorted(by_class.items()):
        members = sorted(members, key=lambda r: zlib.crc32(f"{salt}:{r['video_id']}".encode()))
        n = min(len(members) - 1, max(1, round(len(members) * fraction))) if fraction > 0 else 0
        taken += members[:n]
        kept += members[n:]
    return kept, taken


def make_splits(rows: Sequence[dict], *, val_fraction: float, test_fraction: float, dataset: Path | None = None) -> Splits:
    """Train/val/test rows and the class list (the train split's labels, sorted).

    Layout splits are used as given; class folders (split "all") are split stratified by
    `test_fraction` then `val_fraction`; a layout without val gets one carved from train.
    A val/test class unknown to train is an error; unlabelled videos are dropped with a warning.
    """
    warnings: list[str] = []
    labelled = [r for r in rows if r.get("label")]
    if len(labelled) < len(rows):
        warnings.append(f"{len(rows) - len(labelled)} videos have no label and are left out")
    by_split: dict[str, list[dict]] = {}
    for row in labelled:
        by_split.setdefault(row["split"], []).append(row)
    if "train" not in by_split:
        pool = by_split.pop("all", [])
        if not pool:
            raise DataError(f"no labelled training videos in {dataset or 'the dataset'}",
                            "use class folders (DATASET/<label>/<video>.mp4) or train.csv with path,label")
        train, test = _stratified_take(pool, test_fraction, "test")
        by_split = {"train": train, "test": test}
    train = by_split["train"]
    val = by_split.get("val", [])
    if not val and val_fraction > 0:
        train, val = _stratified_take(train, val_fraction, "val")
    labels = sorted({r["label"] for r in train})
    if len(labels) < 2:
        raise DataError(f"the training split has {len(labels)} class(es)", "a classifier needs at least two classes")
    for name, split_rows in (("val", val), ("test", by_split.get("test", []))):
        unknown = sorted({r["label"] for r in split_rows} - set(labels))
        if unknown:
            example = next(r["path"] for r in split_rows if r["label"] == unknown[0])
            raise DataError(f"class {unknown[0]!r} of the {name} split (e.g. {example}) has no training video",
                            "add training videos of that class or remove it from the split")
    if dataset is not None:
        warnings += empty_class_folders(dataset)
    return Splits(labels, train, val, by_split.get("test", []), warnings)


def empty_class_folders(root: Path) -> list[str]:
    """Warnings for class folders that hold no video (their class cannot be learnt)."""
    from actionops.platform.layout import VIDEO_SUFFIXES, detect_layout

    root = Path(root)
    try:
        if detect_layout(root) != "class-folders":
            return []
    except DataError:
        return []
    out = []
    for folder in sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".") and d.name != "flow"):
        if not any(p.suffix.lower() in VIDEO_SUFFIXES for p in folder.rglob("*")):
            out.append(f"class folder {folder} holds no video: class {folder.name!r} is left out")
    return out


def class_weights(labels: Sequence[int], tau: float) -> np.ndarray:
    """Per-sample probabilities with class weight count^-tau (tau 0: uniform over samples,
    tau 1: uniform over classes)."""
    counts = Counter(int(v) for v in labels)
    w = np.array([counts[int(v)] ** -tau for v in labels], dtype=np.float64)
    return w / w.sum()


# ----------------------------------------------------------------------------- frame helpers
def augment(frames: np.ndarray, size: int, rng: np.random.Generator, flow: np.ndarray | None = None):
    """(T, H, W, 3) uint8 decoded at ~1.15 x size -> random crop to size, flip, colour jitter. With
    `flow` ((T', H, W, 2) pixels at the frames' size): (frames, flow with the same crop and flip)."""
    t, h, w, _ = frames.shape
    y, x = rng.integers(0, h - size + 1), rng.integers(0, w - size + 1)
    out = frames[:, y:y + size, x:x + size].astype(np.float32)
    if flow is not None:
        flow = flow[:, y:y + size, x:x + size].copy()
    if rng.random() < 0.5:
        out = out[:, :, ::-1]
        if flow is not None:
            flow = flow[:, :, ::-1] * np.array([-1.0, 1.0], np.float32)
    brightness, contrast, saturation = rng.uniform(0.8, 1.2, size=3)
    grey = out.mean(axis=3, keepdims=True)
    out = grey + (out - grey) * saturation
    out = (out - out.mean()) * contrast + out.mean()
    out = out * brightness
    out = np.clip(out, 0, 255).astype(np.uint8)
    return out if flow is None else (out, np.ascontiguousarray(flow, np.float32))


def check_clip_input(clip_input: str) -> str:
    if clip_input not in CLIP_INPUTS:
        raise ConfigError(f"classifier.clip_input: unknown clip input {clip_input!r}",
                          f"choose one of {', '.join(CLIP_INPUTS)}")
    return clip_input


def input_channels(clip_input: str) -> int:
    """Channels per frame of the model input: 3, or 6 for the two-stream inputs."""
    return 6 if "+" in check_clip_input(clip_input) else 3


def input_indices(indices: np.ndarray, num_video_frames: int, clip_input: str) -> np.ndarray:
    """Frames to decode for a clip at `indices`: the same (rgb), or each position t and t+1
    (every other input: first all t, then all t+1; the last frame pairs with the one before it)."""
    if clip_input == "rgb":
        return indices
    first = np.clip(np.asarray(indices), 0, max(num_video_frames - 2, 0))
    return np.concatenate([first, np.minimum(first + 1, max(num_video_frames - 1, 0))])


def flow_channels(frames: np.ndarray, flow: np.ndarray | None = None) -> np.ndarray:
    """(2T, H, W, 3) uint8 frames (all t, then all t+1) -> (T, 3, H, W) float32: flow t -> t+1 as
    dx, dy, magnitude over FLOW_SCALE x size, clipped to [-1, 1]. `flow` ((T, H, W, 2) pixels at the
    frames' size, `flow_source=stage`) is used instead of computing it from the frames."""
    import cv2

    from actionops.platform.flow import FARNEBACK_PARAMS

    t = len(frames) // 2
    scale = FLOW_SCALE * max(frames.shape[1], frames.shape[2])
    out = np.empty((t, 3, frames.shape[1], frames.shape[2]), np.float32)
    if flow is None:
        gray = [cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in frames]
        flow = np.stack([cv2.calcOpticalFlowFarneback(gray[i], gray[t + i], None, **FARNEBACK_PARAMS) for i in range(t)])
    if flow.shape != (t, frames.shape[1], frames.shape[2], 2):
        raise ValueError(f"flow of shape {flow.shape} for {t} frame pairs of {frames.shape[2]}x{frames.shape[1]}")
    out[:, 0], out[:, 1] = flow[..., 0], flow[..., 1]
    out[:, 2] = np.hypot(flow[..., 0], flow[..., 1])
    return np.clip(out / scale, -1.0, 1.0)


def to_input(frames: np.ndarray, clip_input: str, flow: np.ndarray | None = None) -> np.ndarray:
    """Decoded (T or 2T, H, W, 3) uint8 frames from `input_indices` -> model input (T, C, H, W)
    float32, C = `input_channels(clip_input)`; `flow`: the flow stage's flow fitted to the frames."""
    from actionops.platform.data import normalize_frames

    if clip_input == "rgb":
        return normalize_frames(frames)
    t = len(frames) // 2
    streams = []
    if clip_input.startswith("rgb_diff"):
        x = normalize_frames(frames)
        streams.append(x[t:] - x[:t])
    elif clip_input.startswith("rgb"):
        streams.append(normalize_frames(frames[:t]))
    if clip_input.endswith("flow"):
        streams.append(flow_channels(frames, flow))
    return np.ascontiguousarray(np.concatenate(streams, axis=1) if len(streams) > 1 else streams[0])


def eval_indices(num_video_frames: int, num_frames: int, k: int, n: int) -> np.ndarray:
    """The k-th of n deterministic clips: one frame per segment at offset (k + 0.5) / n."""
    if num_video_frames < num_frames:
        return np.minimum(np.arange(num_frames), num_video_frames - 1)
    edges = np.linspace(0, num_video_frames, num_frames + 1)
    picks = edges[:-1] + (edges[1:] - edges[:-1]) * (k + 0.5) / n
    return picks.astype(int).clip(0, num_video_frames - 1)


def _items(rows: Sequence[dict], labels: Sequence[str]) -> list[dict]:
    return [{"video_id": r["video_id"], "path": r["path"], "frames": int(r["frames"]),
             "label": labels.index(r["label"]) if r.get("label") in labels else -1,
             "flow_path": r.get("flow_path") or "", "source": r.get("content_md5") or ""} for r in rows]


def flow_options(c: Any, flow_cfg: Any) -> dict | None:
    """What the clip makers need for `classifier.flow_source=stage` (plain data: it travels in the
    loop config and the checkpoint); None: flow of the input frames (or no flow input)."""
    if getattr(c, "flow_source", "input") != "stage" or not c.clip_input.endswith("flow"):
        return None
    from actionops.platform.flow import parse_size

    try:
        size = parse_size(flow_cfg.size)
    except ValueError as exc:
        raise ConfigError(f"flow.size: {exc}", "set it to WxH (e.g. 320x240) or null") from None
    return {"method": flow_cfg.method, "dis_preset": flow_cfg.dis_preset, "size": list(size) if size else None}


def stage_flow(video: dict, first: np.ndarray, flow: dict) -> np.ndarray:
    """Flow t -> t+1 for every t of `first` at the flow stage's resolution, (T, h, w, 2) float32 pixels:
    read from the video's finished flow file when it matches `flow` (method, size, these bytes), else
    computed the same way (the flow stage's grayscale decode and flow function) for these pairs only."""
    from actionops.platform.flow import finished_flow, flow_function
    from actionops.platform.video import decode_range

    size = tuple(flow["size"]) if flow.get("size") else None
    first = np.asarray(first, int)
    cached = finished_flow(video.get("flow_path") or None, video.get("frames"), flow["method"], size,
                           video.get("source") or None, flow.get("dis_preset", "fast"))
    if cached is not None:
        return np.asarray(cached[np.minimum(first + 1, cached.shape[0] - 1)], np.float32)
    wanted = sorted(set(first.tolist()) | set((first + 1).tolist()))
    got = dict(decode_range(video["path"], wanted[0], wanted[-1] + 1, size=size, gray=True, keep=set(wanted)))
    if not got:
        raise DataError(f"{video['path']} decodes to no frames in [{wanted[0]}, {wanted[-1]}]")
    last = got[max(got)]
    calc = flow_function(flow["method"], flow.get("dis_preset", "fast"))
    return np.stack([calc(got.get(int(t), last), got.get(int(t) + 1, last)) for t in first]).astype(np.float32)


def fit_flow(flow: np.ndarray, width: int, height: int) -> np.ndarray:
    """(T, h, w, 2) flow in pixels -> (T, height, width, 2) in pixels of the new size (vectors rescaled)."""
    import cv2

    t, h, w, _ = flow.shape
    if (w, h) == (width, height):
        return flow
    out = np.stack([cv2.resize(np.ascontiguousarray(f), (width, height), interpolation=cv2.INTER_AREA) for f in flow])
    return (out * np.array([width / w, height / h], np.float32)).astype(np.float32)


def draw_spec(rows: Sequence[dict], labels: Sequence[str], c: Any, seed: int, flow: dict | None = None) -> dict:
    """Everything a training worker needs to draw its clips (plain data: it travels in the loop config).
    `flow`: `flow_options` (the flow stage's flow for flow inputs)."""
    videos = _items(rows, labels)
    return {"videos": videos, "probs": class_weights([v["label"] for v in videos], c.balance_tau).tolist(),
            "slots": len(videos) * c.clips_per_video, "num_frames": c.num_frames, "size": c.size,
            "augment": bool(c.augment), "clip_input": check_clip_input(c.clip_input), "seed": int(seed), "flow": flow}


def clip_stage_flow(video: dict, wanted: np.ndarray, clip_input: str, flow: dict | None, side: int) -> np.ndarray | None:
    """The flow stage's flow of a clip's frame pairs (`wanted` from `input_indices`) at side x side."""
    if flow is None or not clip_input.endswith("flow"):
        return None
    return fit_flow(stage_flow(video, np.asarray(wanted)[:len(wanted) // 2], flow), side, side)


def source_size(spec: dict) -> int:
    """The square side training clips are cut from (a margin for the random crop when augmenting)."""
    return int(round(spec["size"] * 1.15)) if spec["augment"] else spec["size"]


def cache_frames(spec: dict, budget: int = CACHE_BUDGET_BYTES) -> dict:
    """`spec` whose videos carry `frames_ref`, every frame decoded once into Ray's object store by a
    Ray task, when they fit in `budget` bytes; else `spec` as it is (clips decode per draw)."""
    import ray
    from ray.util import get_current_placement_group

    if get_current_placement_group() is not None:
        # inside a placement group (a Tune trial): its child tasks would wait for CPUs the group
        # does not hold; the Ray Data decode of the training workers runs outside it, as before
        return spec
    side = source_size(spec)
    paths = sorted({v["path"] for v in spec["videos"]})
    frames = {v["path"]: int(v["frames"]) for v in spec["videos"]}
    if not paths or sum(frames[p] for p in paths) * side * side * 3 > budget:
        return spec
    from actionops.platform.video import read_frames

    task = ray.remote(num_cpus=0.5)(read_frames)
    refs = {p: task.remote(p, (side, side)) for p in paths}
    return {**spec, "videos": [{**v, "frames_ref": refs[v["path"]]} for v in spec["videos"]]}


def draw_clip(spec: dict, epoch: int, slot: int) -> dict:
    """Training clip `slot` of `epoch`: a class-balanced video, random frames, augmentation;
    {"clip": (T, 3, S, S) float32, "label"}. Deterministic in (seed, epoch, slot)."""
    from actionops.platform.data import decode_clip, sample_indices

    rng = np.random.default_rng([spec["seed"], epoch, slot])
    videos = spec["videos"]
    video = videos[int(rng.choice(len(videos), p=spec["probs"]))]
    size, big = spec["size"], source_size(spec)
    indices = sample_indices(video["frames"], spec["num_frames"], "random", rng)
    wanted = input_indices(indices, video["frames"], spec["clip_input"])
    if "frames_ref" in video:  # decoded once (cache_frames)
        import ray

        cached = ray.get(video["frames_ref"])
        frames = cached[np.minimum(wanted, len(cached) - 1)]
    else:
        frames = decode_clip(video["path"], wanted, (big, big))
    flow = clip_stage_flow(video, wanted, spec["clip_input"], spec.get("flow"), big)
    if spec["augment"]:
        if flow is None:
            frames = augment(frames, size, rng)
        else:
            frames, flow = augment(frames, size, rng, flow)
    return {"clip": to_input(frames, spec["clip_input"], flow), "label": video["label"]}


def clips_per_worker(spec: dict, world_size: int) -> int:
    """Training clips each of `world_size` workers draws an epoch (the slots rounded up: equal steps)."""
    return -(-spec["slots"] // world_size)


def epoch_dataset(spec: dict, epoch: int, rank: int = 0, world_size: int = 1, part: tuple[int, int] | None = None,
                  rows_per_block: int = CLIPS_PER_BLOCK):
    """The training clips of one epoch for worker `rank` of `world_size`: slots rank, rank + world,
    ... (every worker gets the same count, the slots rounded up to a multiple of the workers, so
    DDP ranks take the same number of steps). Clips are decoded by Ray Data tasks, in slot order.
    `part` (start, stop): only this worker's clips start..stop-1 (`epoch_batches` draws ahead in parts)."""
    from actionops.platform.data import _from_items

    per_worker = clips_per_worker(spec, world_size)
    start, stop = part or (0, per_worker)
    slots = [{"slot": rank + k * world_size} for k in range(start, min(stop, per_worker))]

    def draw(item: dict) -> dict:
        return draw_clip(spec, epoch, int(item["slot"]))

    # half a CPU per decode task: it still schedules when training workers hold most of a small node
    return _from_items(slots, ordered=True, rows_per_block=rows_per_block).map(draw, num_cpus=0.5)


def epoch_batches(spec: dict, epoch: int, rank: int = 0, world_size: int = 1, batch_size: int = 8,
                  ahead: bool = False, budget: int = AHEAD_BUDGET_BYTES):
    """Numpy batches (clip, label) of `epoch_dataset` for this worker, in slot order.

    `ahead=False`: streamed, Ray Data tasks make clips while the model trains (a GPU trains while the
    CPUs decode). `ahead=True`: Ray Data makes a part of the epoch (at most `budget` bytes of clips)
    with every free CPU, the worker copies it into its memory, trains on it, then draws the next part.
    On a CPU worker whose torch threads use every core, clips made alongside the training step slow
    it down (Weizmann, 2 cores: 17.4 s an epoch streamed, 14.9 s ahead, `benchmarks/clip_feed.py`;
    on UT-Interaction, whose clips cost more to draw, a wash: 13.9 s streamed, 14.7 s ahead, README).
    Parts are whole batches: both ways give the same batches."""
    if not ahead:
        yield from epoch_dataset(spec, epoch, rank, world_size).iter_batches(batch_size=batch_size, batch_format="numpy")
        return
    import ray

    per_worker = clips_per_worker(spec, world_size)
    clip_bytes = 4 * spec["num_frames"] * input_channels(spec["clip_input"]) * spec["size"] ** 2
    step = max(1, budget // (clip_bytes * batch_size)) * batch_size
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    for start in range(0, per_worker, step):
        stop = min(start + step, per_worker)
        # about two blocks per CPU, each large enough that a task costs Ray Data less than its clips
        rows = min(AHEAD_CLIPS_PER_BLOCK, max(CLIPS_PER_BLOCK, -(-(stop - start) // (2 * cpus))))
        part = epoch_dataset(spec, epoch, rank, world_size, (start, stop), rows)
        held = [{k: np.array(v) for k, v in batch.items()}
                for batch in part.iter_batches(batch_size=batch_size, batch_format="numpy")]
        yield from held
        del held  # before the next part is drawn: one part in memory at a time


def eval_items(rows: Sequence[dict], labels: Sequence[str]) -> list[dict]:
    """video_id, path, frames, label (index, -1 when unknown) per video."""
    return _items(rows, labels)


def eval_clip_maker(num_frames: int, size: int, eval_clips: int, clip_input: str = "rgb", flow: dict | None = None):
    """item (path, frames, k; flow_path, source with `flow`) -> the k-th deterministic evaluation clip
    (T, C, S, S). `flow`: `flow_options` of the checkpoint (the flow stage's flow)."""
    from actionops.platform.data import decode_clip

    check_clip_input(clip_input)

    def make(item: dict) -> np.ndarray:
        n = int(item["frames"])
        indices = input_indices(eval_indices(n, num_frames, int(item["k"]), eval_clips), n, clip_input)
        frames = decode_clip(str(item["path"]), indices, (size, size))
        return to_input(frames, clip_input, clip_stage_flow(item, indices, clip_input, flow, size))

    return make


def window_clip_maker(num_frames: int, size: int, clip_input: str = "rgb", flow: dict | None = None):
    """item (video, start, end) -> a clip spread uniformly over the window's frames. `flow`: as
    `eval_clip_maker` (computed for the window's pairs: a predicted video has no flow file)."""
    from actionops.platform.data import decode_clip

    check_clip_input(clip_input)

    def make(item: dict) -> np.ndarray:
        start, end = int(item["start"]), int(item["end"])
        indices = start + eval_indices(end - start, num_frames, 0, 1)
        # frame pairs (rgb_diff, flow) stay inside the window ([start, end) frames)
        indices = start + input_indices(indices - start, end - start, clip_input)
        frames = decode_clip(str(item["video"]), indices, (size, size))
        video = {"path": str(item["video"]), "flow_path": item.get("flow_path"), "frames": item.get("frames"),
                 "source": item.get("source")}
        return to_input(frames, clip_input, clip_stage_flow(video, indices, clip_input, flow, size))

    return make


def eval_dataset(rows: Sequence[dict], labels: Sequence[str], c: Any, flow: dict | None = None):
    """`eval_clips` deterministic clips per video (validation during training); columns clip, label,
    video_id, k. `flow`: `flow_options`."""
    from actionops.platform.data import _from_items

    items = [{**item, "k": k} for item in _items(rows, labels) for k in range(c.eval_clips)]
    make_clip = eval_clip_maker(c.num_frames, c.size, c.eval_clips, c.clip_input, flow)

    def make(item: dict) -> dict:
        return {"clip": make_clip(item), "label": item["label"], "video_id": item["video_id"], "k": item["k"]}

    return _from_items(items, ordered=True, rows_per_block=CLIPS_PER_BLOCK).map(make)


def windows(num_video_frames: int, window: int, stride: int) -> list[tuple[int, int]]:
    """[start, end) frame spans of sliding windows covering the whole video (window 0: the whole video)."""
    from actionops.platform.windows import window_spans

    return window_spans(num_video_frames, window, stride, cover_end=True)
