"""Typed configuration: `params.yaml` sections as frozen dataclasses, dotted overrides, flat dicts.

`params.yaml` is the single source of parameters (DVC reads it, the CLI reads it, Tune overrides
it with dotted keys such as `optim.lr`). Each top-level section maps to one frozen dataclass
registered with `@config_section("name")`; platform sections live here, pipeline sections in
`actionops/pipelines/<method>/config.py`. Loading validates every key and type: an unknown key or
a wrong type raises `ConfigError` naming the key, the expected type and the closest known keys;
a value outside its range (`Annotated[int, Range(1)]`, the aliases `Positive`, `NonNegative`,
`Fraction`, ...) raises one naming the key and the range.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml

from actionops.errors import ConfigError

SECTIONS: dict[str, type] = {}


@dataclass(frozen=True)
class Range:
    """Allowed interval of a numeric key (bounds None: unbounded; `*_open`: bound excluded)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value: float) -> bool:
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return not (self.high is not None and (value > self.high or (self.high_open and value == self.high)))

    def describe(self) -> str:
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.low_open else '>='} {self.low:g}")
        if self.high is not None:
            parts.append(f"{'<' if self.high_open else '<='} {self.high:g}")
        return " and ".join(parts)


Positive = Annotated[int, Range(1)]  # counts that must be at least one (workers, frames, batch size, epochs)
NonNegative = Annotated[int, Range(0)]  # counts where 0 means "none" or "off"
PositiveFloat = Annotated[float, Range(0, low_open=True)]  # learning rates, scales
NonNegativeFloat = Annotated[float, Range(0)]  # weight decay, noise, smoothing weights
Fraction = Annotated[float, Range(0, 1, low_open=True, high_open=True)]  # a share strictly between 0 and 1
Share = Annotated[float, Range(0, 1, high_open=True)]  # a held-out share: 0 (none) up to, not including, 1
DEFAULT_PARAMS_FILE = "params.yaml"


def config_section(name: str):
    """Class decorator: register a frozen dataclass as the schema of `params.yaml` section `name`."""

    def register(cls: type) -> type:
        if not (dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen):
            raise TypeError(f"config section {name!r} must be a frozen dataclass")
        SECTIONS[name] = cls
        return cls

    return register


# ----------------------------------------------------------------------------- platform sections
@config_section("ray")
@dataclass(frozen=True)
class RayConfig:
    """Where Ray runs. `address` None (and no RAY_ADDRESS) starts a local Ray on this machine."""

    address: str | None = None
    num_cpus: Positive | None = None
    num_gpus: NonNegative | None = None
    ship_code: bool = True  # send the actionops package to a remote cluster's workers


@config_section("synth")
@dataclass(frozen=True)
class SynthConfig:
    """Synthetic scene generator defaults (`actionops data synth`)."""

    kind: Literal["or-scene", "clips"] = "or-scene"
    videos: Positive = 6
    frames: Positive = 80
    width: Positive = 192
    height: Positive = 144
    fps: Positive = 10
    min_people: Positive = 3
    max_people: Positive = 6
    noise: NonNegativeFloat = 4.0
    test_fraction: Share = 0.34
    seed: int = 0


@config_section("data")
@dataclass(frozen=True)
class DataConfig:
    """The datasets dvc.yaml's pipelines read (`dvc repro`): your own folders (any path, inside the
    repository or not) in place of the generated samples. The `actionops` commands take their
    DATASET argument instead."""

    or_scenes: str = "data/or"  # individual clustering: an operating-room layout (README: Datasets)
    clips: str = "data/clips"  # classification and anomaly detection: class folders or CSVs
    normal: str = "work_at_table"  # anomaly stages: the action of `clips` treated as normal


@config_section("flow")
@dataclass(frozen=True)
class FlowConfig:
    """Optical flow (`actionops flow compute`)."""

    method: Literal["farneback", "dis"] = "farneback"
    dis_preset: Literal["ultrafast", "fast", "medium"] = "fast"
    comp: bool = False  # store float16 instead of float32
    size: str | None = None  # "WxH" to resize before flow; null keeps the video's size
    chunk_frames: Positive = 300  # frames per work item (long videos are split)


@config_section("train")
@dataclass(frozen=True)
class TrainConfig:
    """Ray Train runner (`platform/train.py`), shared by every pipeline's training command."""

    num_workers: Positive = 1
    use_gpu: Literal["auto"] | bool = "auto"  # auto: GPUs when the cluster has them
    amp: bool = True  # mixed precision on GPU (ignored on CPU)
    max_failures: Annotated[int, Range(-1)] = 1  # worker failures to recover from (FailureConfig)
    storage_path: str | None = None  # Ray Train runs/checkpoints; shared storage on a cluster
    torch_threads: Positive | None = None  # per worker; default: local cores / num_workers
    cpus_per_worker: PositiveFloat | None = None  # Ray CPUs a worker reserves; default 1, less when the
    # workers would otherwise hold every CPU while a streaming (re-executed) dataset needs some
    gpus_per_worker: PositiveFloat = 1.0  # fractions pack several workers (e.g. Tune trials) on one GPU
    placement_strategy: Literal["PACK", "SPREAD", "STRICT_SPREAD"] = "PACK"  # workers on few nodes | spread over nodes
    clip_feed: Literal["auto", "stream", "ahead"] = "auto"  # loops that draw their own clips: stream (Ray Data makes
    # them while the model trains) | ahead (Ray Data makes a part of the epoch first, with every CPU) | auto: ahead on CPU
    seed: int = 0
    fault_at_epoch: Positive | None = None  # testing: one worker raises once after this epoch


# ----------------------------------------------------------------------------- the config object
@dataclass(frozen=True)
class Config:
    """Every section of the resolved configuration; `cfg.ray`, `cfg.section("ray")`, `cfg.flat()`."""

    sections: Mapping[str, Any] = field(default_factory=dict)
    source: str = "<defaults>"

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["sections"][name]
        except KeyError:
            raise AttributeError(name) from None

    def section(self, name: str) -> Any:
        """The frozen dataclass of section `name`."""
        if name not in self.sections:
            raise ConfigError(f"unknown config section {name!r}", _suggest(name, self.sections))
        return self.sections[name]

    def to_dict(self) -> dict[str, Any]:
        """Nested plain dict (YAML-serialisable), e.g. for a `config.yaml` artifact."""
        return {name: _plain(dataclasses.asdict(sec)) for name, sec in self.sections.items()}

    def flat(self) -> dict[str, Any]:
        """Flat `{"section.key": value}` dict, e.g. for MLflow params."""
        out: dict[str, Any] = {}
        _flatten(self.to_dict(), "", out)
        return out

    def with_overrides(self, overrides: Mapping[str, Any], *, origin: str = "override") -> Config:
        """A new Config with dotted keys (`optim.lr`) replaced by already-parsed values."""
        data = self.to_dict()
        for key, value in overrides.items():
            _set_dotted(data, key, value, origin=origin)
        return dataclasses.replace(build_config(data, source=origin), source=self.source)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def load_config(
    params: str | Path | None = None,
    overrides: Sequence[str] = (),
) -> Config:
    """Load `params` (default `./params.yaml` when it exists, else built-in defaults) and apply
    `--set section.key=value` overrides (values parsed as YAML: `3`, `1e-4`, `true`, `[4,8]`)."""
    data: dict[str, Any] = {}
    source = "<defaults>"
    path = Path(params) if params else Path(DEFAULT_PARAMS_FILE)
    if params or path.exists():
        if not path.is_file():
            raise ConfigError(f"params file {path} not found", "pass an existing file to --params")
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path} is not valid YAML: {str(exc).splitlines()[0]}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path} must hold a mapping of sections, got {type(loaded).__name__}")
        data, source = loaded, str(path)
    cfg = build_config(data, source=source)
    if overrides:
        cfg = cfg.with_overrides(dict(parse_override(item) for item in overrides), origin="--set")
    return cfg


def parse_override(item: str) -> tuple[str, Any]:
    """`"optim.lr=1e-4"` -> `("optim.lr", 0.0001)`; the value is parsed as YAML."""
    key, sep, raw = item.partition("=")
    if not sep or "." not in key:
        raise ConfigError(
            f"--set {item!r} is not section.key=value", "example: --set clustering.n_clusters=6"
        )
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def build_config(data: Mapping[str, Any], *, source: str = "<dict>") -> Config:
    """Validate a nested dict against the registered sections; missing keys take defaults."""
    unknown = [name for name in data if name not in SECTIONS]
    if unknown:
        name = unknown[0]
        raise ConfigError(f"{source}: unknown section {name!r}", _suggest(name, SECTIONS))
    sections = {}
    for name, cls in SECTIONS.items():
        values = data.get(name) or {}
        sections[name] = _build_dataclass(cls, values, prefix=name, source=source)
    return Config(sections=sections, source=source)


@config_section("tune")
@dataclass(frozen=True)
class TuneConfig:
    """Ray Tune campaigns (`actionops tune METHOD DATASET`): one Tuner whose trials run the
    method's training stage through the shared Ray Train runner. Defaults of metric, mode and
    search space come from the method (its `TuneDefaults`)."""

    samples: Positive = 4
    scheduler: Literal["asha", "fifo"] = "asha"
    metric: str | None = None  # default: the method's (`actionops pipeline list` shows it)
    mode: Literal["max", "min"] | None = None
    max_concurrent: Positive = 2
    cpus_per_trial: PositiveFloat | None = None  # default: leave one CPU for Ray Data, share the rest
    gpus_per_trial: NonNegativeFloat = 0.0  # e.g. 0.5 packs two trials on one GPU (needs train.use_gpu)
    grace_period: Positive = 1  # ASHA: epochs before a trial can be stopped
    reduction_factor: Annotated[float, Range(1, low_open=True)] = 2.0
    storage_path: str | None = None  # default <train storage>/tune
    space: dict[str, dict[str, str]] = field(default_factory=dict)  # per method id: dotted key -> distribution


# ----------------------------------------------------------------------------- validation
def _build_dataclass(cls: type, values: Any, *, prefix: str, source: str) -> Any:
    if not isinstance(values, Mapping):
        raise ConfigError(f"{source}: {prefix} must be a mapping, got {_describe(values)}")
    hints = typing.get_type_hints(cls, include_extras=True)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in values.items():
        if key not in names:
            dotted = [f"{prefix}.{n}" for n in names]
            raise ConfigError(
                f"{source}: unknown key {prefix}.{key}", _suggest(f"{prefix}.{key}", dotted)
            )
        kwargs[key] = _coerce(value, hints[key], key=f"{prefix}.{key}", source=source)
    return cls(**kwargs)


def _coerce(value: Any, tp: Any, *, key: str, source: str) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if origin is Annotated:
        coerced = _coerce(value, args[0], key=key, source=source)
        for bound in (m for m in tp.__metadata__ if isinstance(m, Range)):
            if coerced is not None and coerced not in bound:
                raise ConfigError(f"{source}: {key} must be {bound.describe()}, got {coerced!r}",
                                  f"set a value {bound.describe()} in params.yaml or with --set {key}=...")
        return coerced
    if dataclasses.is_dataclass(tp):
        if dataclasses.is_dataclass(value):
            return value
        return _build_dataclass(tp, value, prefix=key, source=source)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key=key, source=source)
            except ConfigError:
                continue
        raise _type_error(key, tp, value, source)
    if origin is Literal:
        if value in args:
            return value
        raise ConfigError(
            f"{source}: {key} must be one of {', '.join(map(repr, args))}, got {value!r}",
            _suggest(str(value), [str(a) for a in args]),
        )
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _type_error(key, tp, value, source)
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _type_error(key, tp, value, source)
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise _type_error(key, tp, value, source)
    if tp is str:
        if isinstance(value, str):
            return value
        raise _type_error(key, tp, value, source)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise _type_error(key, tp, value, source)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise _type_error(key, tp, value, source)
            items = [_coerce(v, a, key=key, source=source) for v, a in zip(value, args)]
        else:
            item_tp = args[0] if args else Any
            items = [_coerce(v, item_tp, key=key, source=source) for v in value]
        return tuple(items)  # tuples keep the dataclass hashable and frozen
    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            raise _type_error(key, tp, value, source)
        val_tp = args[1] if len(args) == 2 else Any
        return {str(k): _coerce(v, val_tp, key=f"{key}.{k}", source=source) for k, v in value.items()}
    raise TypeError(f"config type {tp!r} of {key} is not supported")


def _type_error(key: str, tp: Any, value: Any, source: str) -> ConfigError:
    return ConfigError(f"{source}: {key} expects {_type_name(tp)}, got {_describe(value)}")


def _type_name(tp: Any) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Annotated:
        return _type_name(args[0])
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args)
    if origin is Literal:
        return "one of " + ", ".join(map(repr, args))
    if origin in (tuple, list):
        return f"a list of {_type_name(args[0]) if args else 'values'}"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) < 40 else text[:37] + '...'}"


def _suggest(name: str, known: Iterable[str]) -> str:
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.75)
    if close:
        return "did you mean " + " or ".join(close) + "?"
    return "known: " + ", ".join(known[:12]) + (" ..." if len(known) > 12 else "")


def _set_dotted(data: dict, key: str, value: Any, *, origin: str) -> None:
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"{origin} {key}: {part} is not a section")
        node = child
    node[parts[-1]] = value


def _flatten(node: Mapping[str, Any], prefix: str, out: dict[str, Any]) -> None:
    for key, value in node.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            _flatten(value, dotted + ".", out)
        else:
            out[dotted] = value


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
