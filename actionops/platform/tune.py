"""Hyperparameter-search campaigns on Ray Tune (knows no model).

A campaign is one `Tuner` whose function trainable runs a pipeline's training through the
shared Ray Train runner (Tune calls Train, the Ray 2.60 pattern; `TuneReportCallback` forwards
every epoch's report to Tune, so ASHA can stop weak trials early). The search space is a
mapping of dotted `params.yaml` keys to distribution strings:

    classifier.lr: loguniform(1e-5, 1e-2)
    classifier.batch_size: choice([4, 8])
    clustering.n_clusters: choice([4, 6, 8])
    optim.lr_cm: uniform(1e-4, 1e-2)

Distributions: uniform, loguniform, quniform(a, b, q), randint(a, b), choice([...]), grid([...]).
`RunConfig(name, storage_path)` uses a deterministic campaign name so `--resume` continues an
interrupted campaign with `Tuner.restore` (finished trials are not run again).
"""

from __future__ import annotations

import ast
import difflib
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from actionops.errors import ConfigError

TRIAL_HEAD_CPU = 0.01  # Tune needs a non-empty bundle for the trial actor; its Train workers get the rest
DISTRIBUTIONS = ("uniform", "loguniform", "quniform", "randint", "choice", "grid")
_CALL = re.compile(r"^\s*([a-z_]+)\s*\((.*)\)\s*$", re.S)


def parse_distribution(key: str, text: Any) -> Any:
    """One distribution string -> a Ray Tune search-space object (a plain value stays fixed)."""
    from ray import tune

    if not isinstance(text, str):
        return text
    match = _CALL.match(text)
    if not match:
        raise ConfigError(f"search space {key}: cannot read {text!r}",
                          f"write one of {', '.join(d + '(...)' for d in DISTRIBUTIONS)}, e.g. loguniform(1e-5, 1e-2)")
    name, raw = match.groups()
    if name not in DISTRIBUTIONS:
        close = difflib.get_close_matches(name, DISTRIBUTIONS, n=1)
        raise ConfigError(f"search space {key}: unknown distribution {name!r}",
                          (f"did you mean {close[0]}? " if close else "") + f"known: {', '.join(DISTRIBUTIONS)}")
    try:
        args = ast.literal_eval(f"({raw},)") if raw.strip() else ()
    except (ValueError, SyntaxError):
        raise ConfigError(f"search space {key}: bad arguments in {text!r}", "use numbers or a [list] of values") from None
    try:
        if name in ("choice", "grid"):
            if len(args) != 1 or not isinstance(args[0], (list, tuple)) or not args[0]:
                raise ValueError("takes one non-empty [list]")
            return (tune.choice if name == "choice" else tune.grid_search)(list(args[0]))
        if not all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in args):
            raise ValueError("takes numbers")
        if name == "quniform":
            if len(args) != 3:
                raise ValueError("takes (low, high, q)")
            return tune.quniform(*args)
        if len(args) != 2 or not args[0] < args[1]:
            raise ValueError("takes (low, high) with low < high")
        if name == "loguniform" and args[0] <= 0:
            raise ValueError("needs low > 0")
        return {"uniform": tune.uniform, "loguniform": tune.loguniform, "randint": tune.randint}[name](*args)
    except ValueError as exc:
        raise ConfigError(f"search space {key}: {name}{text[text.index('('):]} {exc}") from None


def parse_space(space: Mapping[str, Any], known_keys: set[str]) -> dict[str, Any]:
    """Validate keys against the config's dotted keys and parse every distribution."""
    out = {}
    for key, text in space.items():
        if key not in known_keys:
            close = difflib.get_close_matches(key, sorted(known_keys), n=3)
            raise ConfigError(f"search space: unknown key {key}",
                              ("did you mean " + " or ".join(close) + "?") if close else "keys are dotted params.yaml keys")
        out[key] = parse_distribution(key, text)
    if not out:
        raise ConfigError("the search space is empty", "set tune.space.<pipeline> in params.yaml or pass --space FILE")
    return out


def trial_dirname(trial: Any) -> str:
    """Trial folders are `trial_<trial id>` (the trial's own outputs use the same name)."""
    return f"trial_{trial.trial_id}"


def campaign_path(storage: str, name: str) -> str:
    return f"{storage.rstrip('/')}/{name}"


def run_campaign(
    trainable: Callable[[dict], None],
    space: dict[str, Any],
    *,
    name: str,
    storage: str,
    metric: str,
    mode: str,
    samples: int,
    scheduler: str,
    max_concurrent: int,
    max_t: int,
    grace_period: int = 1,
    reduction_factor: float = 2,
    resume: bool = False,
) -> Any:
    """Fit (or restore and continue) the campaign; returns Tune's ResultGrid."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    path = campaign_path(storage, name)
    trainable = tune.with_resources(trainable, {"cpu": TRIAL_HEAD_CPU})  # the trial only drives its TorchTrainer
    if resume:
        if not tune.Tuner.can_restore(path):
            raise ConfigError(f"no campaign to resume at {path}", "run it once without --resume")
        tuner = tune.Tuner.restore(path, trainable=trainable, resume_unfinished=True, resume_errored=True,
                                   param_space=space)
        return tuner.fit()
    if "://" not in path and Path(path).exists():
        raise ConfigError(f"campaign {name} already exists at {path}",
                          "continue it with --resume, or start over with --fresh")
    sched = (ASHAScheduler(time_attr="epoch", max_t=max_t, grace_period=grace_period, reduction_factor=reduction_factor)
             if scheduler == "asha" else FIFOScheduler())
    tuner = tune.Tuner(
        trainable,
        param_space=space,
        tune_config=tune.TuneConfig(metric=metric, mode=mode, num_samples=samples, scheduler=sched,
                                    max_concurrent_trials=max_concurrent, trial_dirname_creator=trial_dirname),
        run_config=tune.RunConfig(name=name, storage_path=storage, verbose=0,
                                  failure_config=tune.FailureConfig(max_failures=0)),
    )
    return tuner.fit()


def trial_table(results: Any, metric: str, mode: str, keys: list[str]) -> list[dict[str, Any]]:
    """One row per trial (id, status, params, best metric, epochs), best first."""
    rows = []
    for result in results:
        frame = result.metrics_dataframe
        best = None
        if frame is not None and metric in frame:
            series = frame[metric].dropna()
            if len(series):
                best = float(series.max() if mode == "max" else series.min())
        rows.append({"trial": Path(result.path).name.removeprefix("trial_") if result.path else "?", "path": result.path,
                     "status": "error" if result.error else "done",
                     "params": {k: result.config.get(k) for k in keys}, metric: best,
                     "epochs": int(result.metrics.get("epoch", 0)) if result.metrics else 0,
                     "trial_id": (result.metrics or {}).get("trial_id")})
    rows.sort(key=lambda r: (r[metric] is None, -(r[metric] or 0) if mode == "max" else (r[metric] or 0)))
    return rows
