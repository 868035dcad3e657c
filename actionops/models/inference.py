"""Inference paths for a trained module (CPU or GPU), all with the same predictions as eager.

    eager          the module as trained, eval mode, no grad
    channels_last  channels-last memory format (2D or 3D), eager
    jit            TorchScript trace + freeze + optimize_for_inference (folds BatchNorm into
                   convolutions, pre-packs weights for oneDNN on CPU)
    compile        torch.compile (inductor; needs a C++ compiler on CPU, compiles on first call)

`optimized(model, example, path)` returns a callable clip -> logits. The latency benchmark measures
every path per model in one run; `classifier.inference` picks one for evaluate/predict.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch

PATHS = ("eager", "channels_last", "jit", "compile")


def _has_conv3d(model: torch.nn.Module) -> bool:
    return any(isinstance(m, torch.nn.Conv3d) for m in model.modules())


def optimized(model: torch.nn.Module, example: torch.Tensor, path: str = "eager") -> Callable[[torch.Tensor], torch.Tensor]:
    """A no-grad callable for `model` (put in eval mode) following inference `path`."""
    if path not in PATHS:
        raise ValueError(f"unknown inference path {path!r}; choose one of {', '.join(PATHS)}")
    model = model.eval()
    if path == "eager":
        return _no_grad(model)
    if path == "channels_last":
        fmt = torch.channels_last_3d if _has_conv3d(model) else torch.channels_last
        model = model.to(memory_format=fmt)
        return _no_grad(model)
    if path == "jit":
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TorchScript deprecation and tracer notices
            traced = torch.jit.trace(model, example, check_trace=False)
            frozen = torch.jit.optimize_for_inference(torch.jit.freeze(traced))
        return _no_grad(frozen)
    compiled = torch.compile(model, dynamic=False)
    return _no_grad(compiled)


def _no_grad(fn: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return fn(x)

    return run
