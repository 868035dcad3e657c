"""Checkpoints in one place: save (atomic), load (weights only), rebuild a module through the
registry, and the MLflow pyfunc wrapper that serves one.

A checkpoint is a plain dict: `model_name`, `model_args` (the builder's keyword arguments),
`model` (state dict) and whatever the method adds (labels, epoch, input kind, ...). Nothing in
it is a pickled module: `torch.load(..., weights_only=True)` reads it and the registry
(`create_model`) rebuilds the module.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from actionops.errors import ActionopsError, whole_or_nothing

CORE_KEYS = ("model_name", "model_args", "model")


def save_checkpoint(path: str | Path, state: Mapping[str, Any]) -> Path:
    """torch.save `state` atomically (temp file, then rename): a killed process leaves either the
    old file or the new one, never half of one."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with whole_or_nothing(path, tmp):
        with open(tmp, "wb") as fh:  # through a Python file: a full disk is an OSError (ENOSPC), named
            torch.save(dict(state), fh)
        tmp.replace(path)
    return path


def load_checkpoint(path: str | Path, hint: str = "run the earlier stage first (see `actionops pipeline list`)") -> dict:
    """The checkpoint dict at `path` (tensors only are unpickled); a missing file is a clear error."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise ActionopsError(f"missing {path}", hint)
    return torch.load(path, map_location="cpu", weights_only=True)


def build_from_checkpoint(state: Mapping[str, Any], *, eval_mode: bool = True) -> Any:
    """The module a checkpoint describes, rebuilt through the model registry with its weights."""
    from actionops.models.registry import create_model

    missing = [k for k in CORE_KEYS if k not in state]
    if missing:
        raise ActionopsError(f"not an actionops checkpoint (no {', '.join(missing)})",
                             "pass a file written by an actionops training stage")
    module = create_model(state["model_name"], **state["model_args"])
    module.load_state_dict(state["model"])
    return module.eval() if eval_mode else module


def infer_numpy(module: Any, inputs: Mapping[str, Any]) -> Any:
    """`module.infer` on a dict of numpy arrays, as numpy (no grad)."""
    import numpy as np
    import torch

    with torch.no_grad():
        return module.infer({k: torch.as_tensor(np.asarray(v)) for k, v in inputs.items()}).numpy()


class CheckpointModel:
    """MLflow pyfunc model around a checkpoint file (artifact `checkpoint`). Loading rebuilds the
    module through the registry (nothing is unpickled but tensors); `predict` calls the module's
    `infer(dict of tensors)`. Logged as code (`pyfunc_model.py`), never pickled."""

    def load_context(self, context: Any) -> None:
        self.model = build_from_checkpoint(load_checkpoint(context.artifacts["checkpoint"]))

    def predict(self, context, model_input, params=None):  # no type hints: MLflow would probe them
        return infer_numpy(self.model, dict(model_input))


def pyfunc_model_code() -> str:
    """Path of the source file MLflow logs as the pyfunc model (models-from-code: no pickled wrapper)."""
    return str(Path(__file__).with_name("pyfunc_model.py"))
