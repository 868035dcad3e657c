"""The model registry (as in timm / pytorchvideo): `@register_model("name")` on a builder."""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from typing import Any

from actionops.errors import ActionopsError

_BUILDERS: dict[str, Callable[..., Any]] = {}
# Family modules whose import registers builders (kept light: torch only).
_FAMILIES = ("actionops.models.autoencoder3d", "actionops.models.dec", "actionops.models.classifiers",
             "actionops.models.embedding", "actionops.models.seq2seq", "actionops.models.pretrain")


def register_model(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: make a keyword-only builder available as `create_model(name, **kw)`."""

    def add(builder: Callable[..., Any]) -> Callable[..., Any]:
        if name in _BUILDERS and _BUILDERS[name] is not builder:
            raise ValueError(f"model {name!r} registered twice")
        _BUILDERS[name] = builder
        return builder

    return add


def _load_families() -> None:
    for module in _FAMILIES:
        importlib.import_module(module)


def list_models() -> list[str]:
    """Names of every registered model."""
    _load_families()
    return sorted(_BUILDERS)


def model_spec(name: str) -> Callable[..., Any]:
    """The builder registered as `name`; unknown names list the known ones."""
    _load_families()
    if name not in _BUILDERS:
        close = difflib.get_close_matches(name, _BUILDERS, n=3)
        hint = ("did you mean " + " or ".join(close) + "? ") if close else ""
        raise ActionopsError(f"unknown model {name!r}", f"{hint}known models: {', '.join(sorted(_BUILDERS))}")
    return _BUILDERS[name]


def create_model(name: str, **kwargs: Any) -> Any:
    """Build model `name` with keyword arguments (see the builder's docstring)."""
    builder = model_spec(name)
    try:
        return builder(**kwargs)
    except TypeError as exc:
        raise ActionopsError(f"bad arguments for model {name!r}: {exc}") from None
