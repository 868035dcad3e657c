"""The method contract: every pipeline registers one `Method`, and everything outside its package
(the CLI's `pipeline`, `tune`, `train`, `evaluate`, `predict` commands, the Tune campaigns, the
contract tests) finds it here.

A method package `actionops/pipelines/<package>/` holds:
    config.py    its params.yaml sections (frozen dataclasses, `@config_section`)
    method.py    `register_method(Method(...))`: id, stages, training stage, Tune defaults, ...
    stages.py    its stages as plain functions (train / evaluate / predict ...)
    loops.py     its Ray Train loop(s)
    commands.py  its CLI commands (`@command("train", "classifier")` on Typer-annotated functions)
`list_methods()` imports every `actionops.pipelines.<package>.method` module it finds, so adding a
method touches no file outside its package. Method modules stay cheap to import (no torch, ray,
mlflow): they point at stage functions with `lazy("module:function")`.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import pkgutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from actionops.errors import ActionopsError

_METHODS: dict[str, Method] = {}


def lazy(ref: str) -> Callable[..., Any]:
    """A function that imports `module:function` on first call (keeps method modules light)."""
    module, _, name = ref.partition(":")

    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    call.__name__, call.__qualname__, call.__doc__ = name, name, f"lazy reference to {ref}"
    return call


@dataclass(frozen=True)
class Stage:
    """One step of `actionops pipeline run METHOD`: `run(ctx) -> result dict`; up to date when its
    outputs exist and its inputs and config sections did not change."""

    name: str
    description: str
    run: Callable[[Any], dict]
    inputs: Callable[[Any], Sequence[Path]]
    outputs: Callable[[Any], Sequence[Path]]
    sections: tuple[str, ...] = ()
    always: bool = False  # cheap stages that check their own work (e.g. resumable flow)


@dataclass(frozen=True)
class TuneDefaults:
    """What `actionops tune METHOD` optimises unless told otherwise."""

    metric: str
    mode: str  # "max" or "min"
    epochs_key: str  # dotted key of the epoch count (ASHA's max_t)
    space: Mapping[str, str] = field(default_factory=dict)  # dotted key -> distribution string


@dataclass(frozen=True)
class Method:
    """A registered method. `id` (kebab-case) is its MLflow experiment, its output folder
    (`outputs/<id>/<dataset>`) and the argument of `pipeline run` / `tune`.

    Callables take the stage `Context`:
        train(ctx, *, parent_run_id=None, register=True, callbacks=None, run_name=None) -> summary
            (`spine.train_stage`'s summary: epochs, history, last_epoch_metrics, reported_epochs, ...)
        evaluate(ctx, model, split) -> metrics with `score` among them
        predict(ctx, model) -> {"outputs": file} predictions on the dataset's test split
        register(ctx, checkpoint, tags) -> registered version (Tune registers its best trial with it)
        prepare_tune(ctx) -> files of earlier stages every trial needs (index first: trials run in parallel)
        sample(root, seed) -> a tiny labelled dataset under root (tests, demo)
    """

    id: str
    description: str
    package: str  # actionops.pipelines.<package>
    sections: tuple[str, ...]
    stages: tuple[Stage, ...]
    train: Callable[..., dict]
    evaluate: Callable[..., dict]
    predict: Callable[..., dict]
    register: Callable[..., str | None]
    prepare_tune: Callable[[Any], Sequence[Path]]
    sample: Callable[[Path, int], Path]
    reports: tuple[str, ...]  # metrics its training reports every epoch
    checkpoint: str  # file its training stage writes into the output folder
    registered_model_key: str  # dotted key of the registered model name, e.g. classifier.registered_model
    tune: TuneDefaults
    score: str  # headline key of evaluate's result (higher is better)
    loss: str  # training-loss key of the per-epoch history
    learning: tuple[tuple[str, str, float], ...] = ()  # (history file, key, fraction it must fall by) on the tiny run
    words: tuple[str, ...] = ()  # CLI stage words that name it (`train classifier`, `tune clustering`)
    tiny: tuple[str, ...] = ()  # --set overrides for a seconds-long CPU run (tests)
    commands: str | None = None  # module of its CLI commands

    @property
    def experiment(self) -> str:
        return self.id

    def registered_model(self, cfg: Any) -> str:
        section, _, key = self.registered_model_key.partition(".")
        return getattr(cfg.section(section), key)

    def default_out(self, dataset: Path) -> Path:
        return Path("outputs") / self.id / Path(dataset).resolve().name


def register_method(method: Method) -> Method:
    """Make `method` known to `get_method` / `list_methods` (called by its package's method.py)."""
    if method.id != method.id.lower() or "_" in method.id or " " in method.id:
        raise ValueError(f"method id {method.id!r} must be kebab-case")
    known = _METHODS.get(method.id)
    if known is not None and known.package != method.package:
        raise ValueError(f"method {method.id!r} registered twice ({known.package}, {method.package})")
    _METHODS[method.id] = method
    return method


def discover() -> None:
    """Import the `method` module of every package under actionops.pipelines (idempotent)."""
    import actionops.pipelines as root

    for info in pkgutil.iter_modules(root.__path__):
        if info.ispkg and importlib.util.find_spec(f"{root.__name__}.{info.name}.method") is not None:
            importlib.import_module(f"{root.__name__}.{info.name}.method")


def list_methods() -> list[Method]:
    """Every registered method, by id."""
    discover()
    return [_METHODS[name] for name in sorted(_METHODS)]


def get_method(name: str) -> Method:
    """The method whose id (or CLI stage word, e.g. `classifier`) is `name`; unknown names list the known ones."""
    methods = list_methods()
    for method in methods:
        if name == method.id or name in method.words or name == method.package:
            return method
    names = [m.id for m in methods] + [w for m in methods for w in m.words]
    close = difflib.get_close_matches(name, names, n=2)
    raise ActionopsError(f"unknown method {name!r}", ("did you mean " + " or ".join(close) + "? " if close else "")
                         + f"known: {', '.join(m.id for m in methods)}")


# ----------------------------------------------------------------------------- CLI commands
def command(group: str | None, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a function of a method's commands module as `actionops GROUP NAME` (`actionops NAME` when
    group is None; a Typer command:
    annotated parameters become options; the docstring is its --help)."""

    def mark(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn.__actionops_command__ = (group, name)  # type: ignore[attr-defined]
        return fn

    return mark


def method_commands() -> list[tuple[str, str, Callable[..., Any]]]:
    """(group, name, function) of every command that a method contributes, in definition order."""
    out = []
    for method in list_methods():
        if not method.commands:
            continue
        module = importlib.import_module(method.commands)
        for value in vars(module).values():
            mark = getattr(value, "__actionops_command__", None)
            if mark and getattr(value, "__module__", None) == module.__name__:
                out.append((*mark, value))
    return out
