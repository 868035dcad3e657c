"""Inference paths for a trained module (CPU or GPU), all with the same predictions as eager.

    eager          the module as trained, eval mode, no grad
    channels_last  channels-last memory format (2D or 3D), eager
    jit            TorchScript trace + freeze + optimize_for_inference (folds BatchNorm into
                   convolutions, pre-packs weights for oneDNN on CPU)
    compile        torch.compile (inductor) with freezing: weights become constants, BatchNorm
                   folds into convolutions and oneDNN weights are pre-packed (needs a C++
                   compiler on CPU; compiles on the first call of each input shape, 10-60 s)

`optimized(model, example, path)` returns a callable clip -> logits. The latency benchmark measures
every path per model in one run; `classifier.inference` picks one for evaluate/predict.
Inductor's freezing is a process-wide setting: it is switched on when the compile path is
first asked for (harmless to eager training in the same process, which does not compile).
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
    import torch._inductor.config as inductor_config

    inductor_config.freezing = True
    compiled = _no_grad(torch.compile(model, dynamic=False))
    compiled(example)  # compile now, not in the middle of the first timed / scored batch
    return compiled


def _no_grad(fn: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return fn(x)

    return run
