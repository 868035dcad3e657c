"""The one Ray Train runner every pipeline uses (Ray Train V2, TorchTrainer), model-agnostic.

Driver side:
    result = run_training(loop, loop_config, train_cfg=cfg.train, name="ae-frame-<dataset>",
                          resume=False, datasets={"train": ds}, mlflow_run_id=run.info.run_id)
Worker side, inside `loop(config)`:
    ctx = worker_context(config)           # rank, world size, device, AMP, MLflow logger
    model = ctx.prepare(model)             # DDP + device
    state = load_checkpoint()              # dict or None (resume / recovery after a failure)
    for epoch in ...:
        ...
        ctx.end_epoch(epoch, metrics, state)  # checkpoint + ray.train.report + rank-0 MLflow

Resume: a fresh run gets a unique run name; `--resume` reuses the last run name of the same
`name` under `storage_path`, and Ray Train V2 hands the loop its latest checkpoint. Recovery
from worker failures is `FailureConfig(max_failures)`. A checkpoint is a plain dict saved with
torch.save and read with `weights_only=True` — never a pickled module.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actionops.errors import ActionopsError

CHECKPOINT_FILE = "state.pt"


def storage_root(storage_path: str | None) -> str:
    """Where Ray Train keeps runs: the config value, ACTIONOPS_STORAGE, else ./ray_results.
    On a cluster this must be storage every node sees (NFS path or s3://...)."""
    path = storage_path or os.environ.get("ACTIONOPS_STORAGE") or "ray_results"
    return path if "://" in path else str(Path(path).resolve())


def storage_fs(path: str) -> tuple[Any, str]:
    """(pyarrow filesystem, path inside it) of a storage location: a local path, or any URI
    pyarrow resolves (file:///nfs/..., s3://bucket/..., gs://...), as Ray Train itself does."""
    import pyarrow.fs

    if "://" in path:
        return pyarrow.fs.FileSystem.from_uri(path)
    return pyarrow.fs.LocalFileSystem(), str(Path(path).resolve())


def read_text(path: str) -> str | None:
    """The text of a small file at a storage path or URI; None when there is none."""
    import pyarrow.fs

    fs, inner = storage_fs(path)
    if fs.get_file_info(inner).type != pyarrow.fs.FileType.File:
        return None
    with fs.open_input_stream(inner) as fh:
        return fh.read().decode()


def write_text(path: str, text: str) -> None:
    """Write a small file at a storage path or URI, whole or not at all (a temporary beside it,
    then a move; on object stores a single put)."""
    fs, inner = storage_fs(path)
    parent, name = inner.rsplit("/", 1)
    fs.create_dir(parent, recursive=True)
    tmp = f"{parent}/.{name}.tmp{os.getpid()}"
    with fs.open_output_stream(tmp) as fh:
        fh.write(text.encode())
    fs.move(tmp, inner)


def join(root: str, *parts: str) -> str:
    """`root`/parts for a local path or a URI."""
    return "/".join([root.rstrip("/"), *parts])


def _pointer(root: str, name: str, kind: str = "latest") -> str:
    """The small file under the storage root that names the last run of `name` (kind `latest`)
    or its MLflow run (`mlflow`)."""
    return join(root, f".{name}.{kind}")


def safe_name(name: str) -> str:
    """`name` as a Ray Train run-name prefix (letters, digits, `_.-`)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")


def previous_mlflow_run(name: str, train_cfg: Any, resume: bool | str) -> str | None:
    """The MLflow run of the last run of `name` when it is to be resumed (`--resume`, or "auto"
    with a run to resume), so the resumed run continues that MLflow run; else None."""
    if not resume:
        return None
    storage = storage_root(train_cfg.storage_path)
    if read_text(_pointer(storage, safe_name(name))) is None:
        return None
    return (read_text(_pointer(storage, safe_name(name), "mlflow")) or "").strip() or None


def resolve_run_name(name: str, storage: str, resume: bool) -> str:
    """A unique name for a fresh run; the last run's name of `name` when resuming."""
    pointer = _pointer(storage, name)
    if resume:
        last = read_text(pointer)
        if last is None:
            raise ActionopsError(f"nothing to resume for {name} under {storage}", "run without --resume first")
        return last.strip()
    run_name = f"{name}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    write_text(pointer, run_name)
    return run_name


def resolve_use_gpu(use_gpu: str | bool) -> bool:
    """`auto`: GPUs when the Ray cluster has them."""
    if isinstance(use_gpu, bool):
        return use_gpu
    import ray

    return ray.cluster_resources().get("GPU", 0) > 0


@dataclass(frozen=True)
class TrainResult:
    run_name: str
    storage: str
    metrics: dict[str, Any]
    history: list[dict[str, Any]]      # every epoch's metrics (earlier runs of a resumed one included)
    checkpoint_state: dict[str, Any]
    reported: int = 0                  # epochs this fit() itself trained (0: a resumed run had none left)


def _data_config(datasets_to_split: list[str] | None, num_workers: int):
    """Train's ingest options with the row order kept: the same dataset gives each worker the
    same batches in the same order (reproducible models; no cost for materialized datasets).
    One worker splits nothing: it reads each dataset directly instead of through Ray Data's
    split-coordinator actor (same rows, one actor and a round trip per block fewer)."""
    import warnings

    import ray.train

    with warnings.catch_warnings():  # Ray 2.60 builds it with the deprecated exclude_resources
        warnings.simplefilter("ignore")
        options = ray.train.DataConfig.default_ingest_options()
    options.preserve_order = True
    split = [] if num_workers == 1 else ("all" if datasets_to_split is None else datasets_to_split)
    return ray.train.DataConfig(datasets_to_split=split, execution_options=options)


def run_training(
    loop: Callable[[dict], None],
    loop_config: dict[str, Any],
    *,
    train_cfg: Any,
    name: str,
    resume: bool | str = False,
    datasets: dict[str, Any] | None = None,
    mlflow_run_id: str | None = None,
    datasets_to_split: list[str] | None = None,
    callbacks: list | None = None,
    streams_data: bool = False,
) -> TrainResult:
    """Run `loop` on `train_cfg.num_workers` Ray Train workers; return the final state dict.

    `train_cfg` is the `train` config section (num_workers, use_gpu, max_failures, storage_path,
    amp, fault_at_epoch). `datasets_to_split` names the datasets sharded across workers (default
    all); the others (e.g. validation) reach every worker whole. `callbacks` go to the RunConfig
    (e.g. Tune's TuneReportCallback inside a trial). `streams_data`: the loop runs Ray Data
    pipelines of its own while it trains (CPUs are left for them as for a streaming dataset).
    `resume="auto"` resumes the last run of
    `name` when there is one. Needs a Ray session. Raises ActionopsError when training fails.
    """
    import ray.train
    from ray.train.torch import TorchTrainer

    from actionops.platform import tracking

    safe = safe_name(name)
    storage = storage_root(train_cfg.storage_path)
    if resume == "auto":
        resume = read_text(_pointer(storage, safe)) is not None
    run_name = resolve_run_name(safe, storage, bool(resume))
    if mlflow_run_id:  # a later --resume continues this MLflow run
        write_text(_pointer(storage, safe, "mlflow"), mlflow_run_id)
    use_gpu = resolve_use_gpu(train_cfg.use_gpu)
    cpus = worker_cpus(train_cfg, datasets or {}, use_gpu, streams_data)
    gpus = float(getattr(train_cfg, "gpus_per_worker", 1.0) or 1.0)
    config = {**loop_config, "_runner": {
        "mlflow_run_id": mlflow_run_id, "tracking_uri": tracking.tracking_uri() if mlflow_run_id else None,
        "amp": bool(train_cfg.amp), "fault_at_epoch": train_cfg.fault_at_epoch, "seed": int(train_cfg.seed),
        "torch_threads": train_cfg.torch_threads or max(1, (os.cpu_count() or 1) // train_cfg.num_workers),
        "fault_marker": join(storage, run_name, ".fault-injected"),
        "workers_dir": join(storage, run_name, "workers"),
        "fit_token": uuid.uuid4().hex,  # marks the checkpoints this fit() writes (see `reported`)
        "clip_feed": getattr(train_cfg, "clip_feed", "auto"),
    }}
    trainer = TorchTrainer(
        loop,
        train_loop_config=config,
        scaling_config=ray.train.ScalingConfig(num_workers=train_cfg.num_workers, use_gpu=use_gpu,
                                               resources_per_worker={"CPU": cpus, **({"GPU": gpus} if use_gpu else {})},
                                               placement_strategy=getattr(train_cfg, "placement_strategy", "PACK")),
        run_config=ray.train.RunConfig(
            name=run_name,
            storage_path=storage,
            failure_config=ray.train.FailureConfig(max_failures=train_cfg.max_failures),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=2),
            callbacks=callbacks or None,
        ),
        datasets=datasets or {},
        dataset_config=_data_config(datasets_to_split, train_cfg.num_workers),
    )
    try:
        result = trainer.fit()
    except Exception as exc:  # TrainingFailedError wraps the worker's error
        raise ActionopsError(f"training {run_name} failed: {_root_cause(exc)}",
                             f"checkpoints are kept under {storage}/{run_name}; fix the cause and rerun with --resume") from None
    if result.checkpoint is None:
        raise ActionopsError(f"training {run_name} reported no checkpoint")
    with result.checkpoint.as_directory() as folder:
        state = _load_state(Path(folder))
    # Train V2 keeps metrics only for the checkpoints it keeps: the whole history is in the checkpoint
    kept = result.metrics_dataframe.to_dict("records") if result.metrics_dataframe is not None else []
    history = list(state.get("history") or kept)
    # epochs this fit() trained: from the first epoch it ran (kept across restarts after a failure
    # inside it) to the last; 0 when the final checkpoint is an earlier run's (nothing was left)
    ran = int(state["epoch"]) - int(state.get("fit_first", 0)) if state.get("fit") == config["_runner"]["fit_token"] else 0
    return TrainResult(run_name, storage, dict(result.metrics or {}), history, state, ran)


def worker_cpus(train_cfg: Any, datasets: dict[str, Any], use_gpu: bool, streams_data: bool = False) -> float:
    """CPUs each training worker reserves. A dataset that is not materialised is re-executed by
    Ray Data while the workers train, and its tasks need CPUs of their own: when the workers
    would hold every CPU of the cluster, each takes a share that leaves one CPU free (on a
    2-CPU machine, 2 workers get 0.5 each); so does a loop that builds its own datasets
    (`streams_data`). `train.cpus_per_worker` overrides."""
    if getattr(train_cfg, "cpus_per_worker", None):
        return float(train_cfg.cpus_per_worker)
    import ray
    from ray.data.dataset import MaterializedDataset

    streaming = streams_data or any(not isinstance(ds, MaterializedDataset) for ds in datasets.values())
    total = ray.cluster_resources().get("CPU", 1.0)
    if streaming and not use_gpu and train_cfg.num_workers >= total:
        return max(0.1, (total - 1) / train_cfg.num_workers)
    return 1.0


def last_metrics(history: list[dict], state: dict | None = None) -> dict[str, float]:
    """Numeric metrics of the last reported epoch; from the checkpoint when this run reported none
    (a resumed run whose epochs were all done)."""
    row = history[-1] if history else (state or {}).get("metrics") or {}
    return {k: float(v) for k, v in row.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _root_cause(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    for line in reversed(text):
        if line.strip() and not line.startswith(" "):
            return line.strip()[:400]
    return type(exc).__name__


def _load_state(folder: Path) -> dict[str, Any]:
    import torch

    return torch.load(folder / CHECKPOINT_FILE, map_location="cpu", weights_only=True)


def unwrap(model: Any) -> Any:
    """The module inside a DDP wrapper (the model itself when not wrapped)."""
    return model.module if hasattr(model, "module") else model


def load_checkpoint() -> dict[str, Any] | None:
    """Inside a training loop: the latest checkpoint's state dict (resume/recovery), or None."""
    import ray.train

    checkpoint = ray.train.get_checkpoint()
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as folder:
        return _load_state(Path(folder))


def record_worker(folder: str, rank: int, world_size: int, device: str) -> None:
    """Write which node, host and process a training worker runs on (one small JSON per rank under
    `folder`, a path or URI on the run's storage, each start overwriting the last): on a cluster,
    where the workers of a run landed."""
    import socket

    import ray

    info = {"rank": rank, "world_size": world_size, "node_id": ray.get_runtime_context().get_node_id(),
            "node_ip": ray.util.get_node_ip_address(), "host": socket.gethostname(), "pid": os.getpid(),
            "device": device}
    write_text(join(folder, f"rank-{rank}.json"), json.dumps(info))


def workers_of(storage: str, run_name: str) -> list[dict]:
    """The `record_worker` entries of a training run, by rank."""
    import pyarrow.fs

    fs, inner = storage_fs(join(storage, run_name, "workers"))
    found = fs.get_file_info(pyarrow.fs.FileSelector(inner, allow_not_found=True))
    names = [f.base_name for f in found if re.fullmatch(r"rank-\d+\.json", f.base_name)]
    return sorted((json.loads(read_text(join(storage, run_name, "workers", n)) or "{}") for n in names),
                  key=lambda w: w["rank"])


class WorkerContext:
    """What a training loop needs from the runner: device, DDP, AMP, checkpoints, MLflow."""

    def __init__(self, config: dict[str, Any]) -> None:
        import ray.train
        import ray.train.torch
        import torch

        runner = config.get("_runner", {})
        ctx = ray.train.get_context()
        self.rank, self.world_size = ctx.get_world_rank(), ctx.get_world_size()
        self.device = ray.train.torch.get_device()
        self.use_amp = bool(runner.get("amp")) and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        self._runner = runner
        self.seed = int(runner.get("seed") or 0)
        # loops that draw their own clips (`epoch_batches`): ahead of the step on CPU workers, whose
        # torch threads use the cores that clips made alongside would take; streamed beside a GPU
        self.clips_ahead = self.feeds_ahead(runner.get("clip_feed", "auto"), self.device.type)
        self._history: list[dict[str, float]] | None = None  # every epoch's metrics, kept in the checkpoint
        self._logger = None
        if self.rank == 0 and runner.get("mlflow_run_id"):
            from actionops.platform.tracking import EpochLogger

            self._logger = EpochLogger(runner["mlflow_run_id"], runner["tracking_uri"])
        if runner.get("torch_threads"):  # Ray sets OMP_NUM_THREADS=1 per 1-CPU worker
            torch.set_num_threads(int(runner["torch_threads"]))
        if runner.get("workers_dir"):  # where each worker runs: <storage>/<run>/workers/rank-N.json
            record_worker(runner["workers_dir"], self.rank, self.world_size, str(self.device))

    @staticmethod
    def feeds_ahead(clip_feed: str, device_type: str) -> bool:
        """`train.clip_feed` on a device: draw clips ahead (`epoch_batches`) or stream them."""
        return clip_feed == "ahead" or (clip_feed == "auto" and device_type != "cuda")

    def epochs(self, start: int, total: int):
        """Epoch numbers `start..total-1` (0-based); torch's RNG is seeded per (seed, epoch) at the
        top of each, so a resumed run draws what an uninterrupted one would (dropout, shuffles)."""
        import torch

        for epoch in range(start, total):
            torch.manual_seed(self.seed * 100_003 + epoch)
            yield epoch

    def prepare(self, model: Any) -> Any:
        """Move to the device and wrap in DDP when there are several workers."""
        import ray.train.torch

        return ray.train.torch.prepare_model(model)

    def autocast(self):
        """Mixed precision on GPU (float16 with a GradScaler), a no-op on CPU."""
        import torch

        if self.use_amp:
            return torch.autocast("cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    def step(self, loss: Any, optimizer: Any, parameters: Any = None, clip: float | None = None) -> None:
        """Backward + (unscale, clip) + optimizer step, AMP-aware."""
        import torch

        optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if clip:
            self.scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(parameters, clip)
        self.scaler.step(optimizer)
        self.scaler.update()

    def end_epoch(self, epoch: int, metrics: dict[str, float], state: dict[str, Any]) -> None:
        """Checkpoint `state` (rank 0), report `metrics` (all ranks), then log them to MLflow (rank 0).

        `epoch` is 0-based; the reported metrics carry `epoch` = epoch + 1 (epochs done). MLflow
        comes after the checkpoint, so an epoch in the store always has its checkpoint; a resumed
        run writes what its checkpoint's history has and the store lacks (`EpochLogger`).
        """
        import ray.train
        import torch

        metrics = {**metrics, "epoch": epoch + 1}
        if self._history is None:  # a resumed / recovered run continues the history of its checkpoint
            previous = (load_checkpoint() if self.rank == 0 else None) or {}
            self._history = [h for h in previous.get("history", []) if h.get("epoch", 0) <= epoch]
            # the first epoch this fit() ran: kept when this worker restarts from a checkpoint of the same fit
            same_fit = previous.get("fit") == self._runner.get("fit_token")
            self._fit_first = int(previous.get("fit_first", epoch)) if same_fit else epoch
        self._history.append({k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))})
        with tempfile.TemporaryDirectory() as folder:
            checkpoint = None
            if self.rank == 0:
                torch.save({**state, "epoch": epoch + 1, "metrics": metrics, "history": self._history,
                            "fit": self._runner.get("fit_token"), "fit_first": self._fit_first},
                           Path(folder) / CHECKPOINT_FILE)
                checkpoint = ray.train.Checkpoint.from_directory(folder)
            ray.train.report(metrics, checkpoint=checkpoint)
        if self._logger is not None:
            self._logger.log(self._history)
        self._maybe_fail(epoch + 1)

    def _maybe_fail(self, epochs_done: int) -> None:
        """Fault injection for recovery tests (`train.fault_at_epoch`): the last worker raises
        once, after the checkpoint of that epoch, so FailureConfig must restart from it."""
        target, marker = self._runner.get("fault_at_epoch"), self._runner.get("fault_marker")
        if target is None or epochs_done != target or self.rank != self.world_size - 1 or not marker:
            return
        if read_text(marker) is not None:
            return
        write_text(marker, json.dumps({"epoch": epochs_done, "rank": self.rank}))
        raise RuntimeError(f"injected fault after epoch {epochs_done} (train.fault_at_epoch)")


def worker_context(config: dict[str, Any]) -> WorkerContext:
    """The WorkerContext of this training worker (call once at the top of the loop)."""
    return WorkerContext(config)
