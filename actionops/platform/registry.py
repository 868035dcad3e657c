"""Model-registry lifecycle on MLflow aliases: show, promote, rollback, compare (knows no model).

Aliases: `candidate` (set by training and tuning), `champion` (what production loads:
`models:/NAME@champion`), `previous-champion` (kept by every promotion, used by rollback).
Evaluation results live on versions as tags `eval.<metric>` plus `eval.data` (the dataset
version or path they were computed on), written by `actionops evaluate ... --model models:/...`.
A promotion compares like with like: candidate and champion must have been evaluated on the same
data version (`eval.data`), the same split (`eval.split`) and have the same metric; the candidate
must beat the champion by MORE than `min_delta` (a tie is refused at the default 0; a negative
`min_delta` accepts ties and regressions up to its size). A refusal says which of these differs.
The metric defaults to the one the evaluation marked as primary (`eval.primary`: macro_f1 for
classifiers, roc_auc for anomaly detectors, ...). Who, when and why go into `promotion.*` tags.
"""

from __future__ import annotations

import getpass
import time
from typing import Any

from actionops.errors import ActionopsError
from actionops.platform.tracking import CANDIDATE, CHAMPION, PREVIOUS
# metrics where lower is better; everything else is "higher is better"
LOWER_IS_BETTER = ("loss", "latency", "error", "mse", "ms")


def _client():
    import mlflow

    from actionops.platform.tracking import configure

    configure()
    return mlflow.MlflowClient()


def _model(name: str) -> Any:
    from mlflow.exceptions import MlflowException

    client = _client()
    try:
        return client.get_registered_model(name)
    except MlflowException:
        known = [m.name for m in client.search_registered_models()]
        raise ActionopsError(f"no registered model named {name!r}",
                             f"registered models: {', '.join(known) or 'none yet (train one first)'}") from None


def _version(name: str, version: str | int) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return _client().get_model_version(name, str(version))
    except MlflowException:
        numbers = sorted(int(v.version) for v in _client().search_model_versions(f"name='{name}'"))
        raise ActionopsError(f"{name} has no version {version}",
                             f"versions: {', '.join(map(str, numbers)) or 'none'}") from None


def _alias_version(name: str, alias: str) -> str | None:
    model = _model(name)
    aliases = model.aliases or {}
    return str(aliases[alias]) if alias in aliases else None


def _metric_value(version: Any, metric: str) -> float | None:
    raw = version.tags.get(f"eval.{metric}")
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None


def show(name: str) -> dict[str, Any]:
    """Versions of `name` with aliases, eval metrics, source run, dataset version, run metrics."""
    client = _client()
    model = _model(name)
    by_version: dict[str, list[str]] = {}
    for alias, version in (model.aliases or {}).items():
        by_version.setdefault(str(version), []).append(alias)
    rows = []
    for v in sorted(client.search_model_versions(f"name='{name}'"), key=lambda v: int(v.version)):
        run_metrics: dict[str, float] = {}
        if v.run_id:
            try:
                run_metrics = dict(client.get_run(v.run_id).data.metrics)
            except Exception:  # a run deleted from the store: the version still shows
                run_metrics = {}
        rows.append({
            "version": str(v.version), "aliases": sorted(by_version.get(str(v.version), [])),
            "created": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(v.creation_timestamp / 1000)),
            "run_id": v.run_id, "dataset_version": v.tags.get("dataset_version"),
            "eval": {k[5:]: v.tags[k] for k in sorted(v.tags) if k.startswith("eval.")},
            "promotion": {k[10:]: v.tags[k] for k in sorted(v.tags) if k.startswith("promotion.")},
            "tags": {k: val for k, val in v.tags.items() if not k.startswith(("eval.", "promotion."))},
            "run_metrics": run_metrics,
        })
    return {"name": name, "aliases": {a: str(v) for a, v in (model.aliases or {}).items()}, "versions": rows}


def _improvement(new: float, old: float, metric: str) -> float:
    """How much better `new` is than `old` (positive: better), for higher- or lower-is-better metrics."""
    return old - new if any(word in metric for word in LOWER_IS_BETTER) else new - old


def _evaluations(version: Any) -> str:
    return ", ".join(k[5:] for k in sorted(version.tags) if k.startswith("eval.") and k not in ("eval.data", "eval.split",
                                                                                                "eval.primary")) or "none"


def promote(name: str, *, version: str | int | None = None, metric: str | None = None, min_delta: float = 0.0,
            force: bool = False, reason: str | None = None) -> dict[str, Any]:
    """Move `champion` to `version` (default: the `candidate`) if it beats the champion on
    `eval.<metric>` (default: the candidate's primary metric) evaluated on the same data version and
    split, by more than `min_delta`; `force` skips the checks. The old champion becomes
    `previous-champion`. Raises ActionopsError, naming what differs, when refused."""
    client = _client()
    _model(name)
    target = str(version) if version is not None else _alias_version(name, CANDIDATE)
    if target is None:
        raise ActionopsError(f"{name} has no candidate", "pass --version V or train/tune to set a candidate")
    new = _version(name, target)
    champion_number = _alias_version(name, CHAMPION)
    if champion_number == target:
        raise ActionopsError(f"{name} v{target} is already the champion")
    decision = "first promotion: no champion yet"
    if champion_number is not None and not force:
        old = _version(name, champion_number)
        metric = metric or new.tags.get("eval.primary") or old.tags.get("eval.primary")
        if not metric:
            raise ActionopsError(f"{name} v{target} has no evaluation to compare",
                                 f"evaluate it first: actionops evaluate ... --model models:/{name}/{target}, or pass --metric")
        new_value, old_value = _metric_value(new, metric), _metric_value(old, metric)
        for number, value, mv in ((target, new_value, new), (champion_number, old_value, old)):
            if value is None:
                raise ActionopsError(f"refused: {name} v{number} has no evaluation of {metric!r} (it has: {_evaluations(mv)})",
                                     f"evaluate it first: actionops evaluate ... --model models:/{name}/{number}, "
                                     "or compare on a metric both have (--metric)")
        for key, what, hint in (("eval.data", "data versions", "evaluate both on the same dataset version"),
                                ("eval.split", "splits", "evaluate both on the same split (--split)")):
            a, b = new.tags.get(key), old.tags.get(key)
            if a != b:
                raise ActionopsError(f"refused: v{target} and champion v{champion_number} were evaluated on different "
                                     f"{what} ({a} vs {b}); scores are only compared like with like", f"{hint}, or --force")
        delta = _improvement(new_value, old_value, metric)
        if not delta > min_delta:
            verdict = "ties" if delta == 0 else ("is worse than" if delta < 0 else "does not beat")
            raise ActionopsError(f"refused: v{target} {metric}={new_value:.4f} {verdict} champion v{champion_number} "
                                 f"{metric}={old_value:.4f} (it must beat it by more than {min_delta:g})",
                                 "a negative --min-delta accepts ties, --force promotes anyway")
        decision = (f"{metric} {new_value:.4f} vs champion v{champion_number} {old_value:.4f} (min delta {min_delta:g}) "
                    f"on {new.tags.get('eval.data')} ({new.tags.get('eval.split')} split)")
    elif champion_number is not None:
        decision = "forced"
    if champion_number is not None:
        client.set_registered_model_alias(name, PREVIOUS, champion_number)
    client.set_registered_model_alias(name, CHAMPION, target)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    for key, value in {"by": _user(), "at": stamp, "reason": reason or decision, "replaced": champion_number or "none"}.items():
        client.set_model_version_tag(name, target, f"promotion.{key}", value)
    return {"name": name, "champion": target, "previous_champion": champion_number, "decision": decision}


def rollback(name: str, reason: str | None = None) -> dict[str, Any]:
    """Point `champion` back at `previous-champion` (the version it replaced)."""
    client = _client()
    previous = _alias_version(name, PREVIOUS)
    current = _alias_version(name, CHAMPION)
    if previous is None:
        raise ActionopsError(f"{name} has no previous champion to roll back to", "promote a version first")
    client.set_registered_model_alias(name, CHAMPION, previous)
    client.delete_registered_model_alias(name, PREVIOUS)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    for key, value in {"by": _user(), "at": stamp, "reason": reason or f"rollback from v{current}"}.items():
        client.set_model_version_tag(name, previous, f"rollback.{key}", value)
    if current is not None:
        client.set_model_version_tag(name, current, "rolled_back_at", stamp)
    return {"name": name, "champion": previous, "rolled_back": current}


def compare(name: str, v1: str | int, v2: str | int) -> dict[str, Any]:
    """Side by side: eval tags, run metrics and the params that differ between two versions."""
    client = _client()
    a, b = _version(name, v1), _version(name, v2)

    def run_data(v):
        if not v.run_id:
            return {}, {}
        run = client.get_run(v.run_id)
        return dict(run.data.metrics), dict(run.data.params)

    (ma, pa), (mb, pb) = run_data(a), run_data(b)
    evals = sorted({k for k in list(a.tags) + list(b.tags) if k.startswith("eval.")})
    metrics = sorted(set(ma) | set(mb))
    params = sorted(k for k in set(pa) | set(pb) if pa.get(k) != pb.get(k))
    return {"name": name, "versions": [str(v1), str(v2)],
            "eval": {k[5:]: [a.tags.get(k), b.tags.get(k)] for k in evals},
            "run_metrics": {k: [ma.get(k), mb.get(k)] for k in metrics},
            "params_that_differ": {k: [pa.get(k), pb.get(k)] for k in params},
            "dataset_version": [a.tags.get("dataset_version"), b.tags.get("dataset_version")]}


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return "unknown"
