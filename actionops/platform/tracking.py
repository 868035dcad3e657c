"""MLflow: the embedded store, runs with flattened params, models with signatures, the registry.

Store: `MLFLOW_TRACKING_URI` when set (e.g. an MLflow server for a cluster), else the embedded
`sqlite:///<ACTIONOPS_MLRUNS or ./mlruns>/mlflow.db` with artifacts under `<mlruns>/artifacts`.
Experiments are created once, on the driver (`ensure_experiment`), before any worker or trial
starts: concurrent creation races on SQLite. Registry promotion uses aliases (`candidate`,
`champion`), not the deprecated stages.

Models are logged as code (MLflow's models-from-code): the pyfunc wrapper is a source file logged
with the model and run on load, the weights a checkpoint artifact read with
`torch.load(weights_only=True)` (tensors and plain containers). Loading a registered model runs our
code and reads tensors; no pickled Python object is in the model directory.
"""

from __future__ import annotations

import os
import re
import subprocess
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from actionops.errors import ActionopsError

CANDIDATE, CHAMPION, PREVIOUS = "candidate", "champion", "previous-champion"
_REQUIREMENTS = None


def store_dir() -> Path:
    """Folder of the embedded store (`./mlruns` unless ACTIONOPS_MLRUNS says otherwise)."""
    return Path(os.environ.get("ACTIONOPS_MLRUNS", "mlruns")).resolve()


def tracking_uri() -> str:
    """The MLflow tracking URI in effect (server, or the embedded SQLite store)."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{store_dir() / 'mlflow.db'}"


def configure() -> str:
    """Point the `mlflow` module at our store (creating `mlruns/` when embedded); return the URI."""
    import mlflow

    _quiet_mlflow()
    uri = tracking_uri()
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def _artifact_root(uri: str) -> str | None:
    if uri.startswith("sqlite:///"):
        root = Path(uri.removeprefix("sqlite:///")).parent / "artifacts"
        root.mkdir(parents=True, exist_ok=True)
        return root.as_uri()
    return None  # a server decides where artifacts go


def ensure_experiment(name: str) -> str:
    """Create the experiment if needed and return its id. Call on the driver only."""
    import mlflow

    uri = configure()
    client = mlflow.MlflowClient()
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    try:
        return client.create_experiment(name, artifact_location=_artifact_root(uri))
    except Exception:  # another driver created it between our lookup and create
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def git_sha(path: str | Path = ".") -> str | None:
    """Commit of the code that runs, or None outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


@contextmanager
def start_run(
    experiment: str,
    *,
    run_name: str | None = None,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    dataset_version: str | None = None,
    parent_run_id: str | None = None,
    config_yaml: str | None = None,
    run_id: str | None = None,
) -> Iterator[Any]:
    """An MLflow run with flattened params and the standard tags (git SHA, dataset version).

    `params` is a flat dict (`Config.flat()`); `config_yaml`, when given, is logged as the
    `config.yaml` artifact. A child run of a campaign passes `parent_run_id`; `run_id` reopens
    an existing run (a resumed campaign or training) without logging its params again; when the
    store does not hold it, a new run starts.
    """
    import mlflow

    experiment_id = ensure_experiment(experiment)
    all_tags = {"actionops.version": _version()}
    sha = git_sha()
    if sha:
        all_tags["mlflow.source.git.commit"] = sha
    if dataset_version:
        all_tags["actionops.dataset_version"] = dataset_version
    if parent_run_id:
        all_tags["mlflow.parentRunId"] = parent_run_id
    all_tags.update(tags or {})
    if run_id and _run_exists(run_id):
        with mlflow.start_run(run_id=run_id) as run:
            yield run
        return
    with mlflow.start_run(
        experiment_id=experiment_id, run_name=run_name, tags=all_tags, nested=bool(parent_run_id)
    ) as run:
        if params:
            log_params(params)
        if config_yaml is not None:
            mlflow.log_text(redact_yaml(config_yaml), "config.yaml")
        yield run


def _run_exists(run_id: str) -> bool:
    """Whether the store holds `run_id` (a resumed run whose store was moved starts a new one)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        mlflow.MlflowClient().get_run(run_id)
        return True
    except MlflowException:
        return False


def log_dataset_input(dataset: str | Path, version: str | None, *, context: str = "training") -> None:
    """Record the dataset a run used as an MLflow input (`mlflow.log_input`): its folder as the
    source and its DVC hash as the digest ("untracked" when DVC does not track it).

    Idempotent under concurrency: runs that log the same dataset at the same moment race to
    create its row in the store (SQLite: `UNIQUE constraint failed: datasets...`); the loser
    retries and finds the row the winner wrote."""
    import time

    import mlflow
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        source = resolve_dataset_source(Path(dataset).resolve().as_uri())
    digest = (version or "untracked")[:36]  # MLflow caps digests at 36 characters
    for attempt in range(5):
        try:
            mlflow.log_input(MetaDataset(source, name=Path(dataset).resolve().name, digest=digest), context=context)
            break
        except Exception as exc:  # MlflowException wrapping sqlalchemy's IntegrityError
            if "UNIQUE constraint" not in str(exc) and "IntegrityError" not in str(exc) or attempt == 4:
                raise
            time.sleep(0.05 * (attempt + 1))
    if version:
        mlflow.set_tag("actionops.dataset_version", version)


def log_dict(data: Any, artifact_file: str) -> None:
    """A dict/list as a JSON (or YAML by suffix) artifact of the active run."""
    import mlflow

    mlflow.log_dict(data, artifact_file)


def log_artifact(path: str | Path, folder: str | None = None) -> None:
    """A local file as an artifact of the active run."""
    import mlflow

    mlflow.log_artifact(str(path), folder)


class EpochLogger:
    """Per-epoch metrics of one run, written from a training worker (rank 0) with a client of its
    own. Steps are epochs done (1-based). A resumed run continues the same MLflow run: steps
    already in the store are not written again and steps of the checkpoint's history that never
    reached the store (a process killed between checkpoint and log) are written, so the run
    holds one continuous series."""

    def __init__(self, run_id: str, uri: str) -> None:
        import mlflow

        _quiet_mlflow()
        self.run_id, self.uri = run_id, uri
        self.client = mlflow.MlflowClient(uri)
        self._logged: set[int] | None = None
        self._warned = False

    def _steps(self, key: str) -> set[int]:
        if self._logged is None:
            self._logged = {int(m.step) for m in self.client.get_metric_history(self.run_id, key)}
        return self._logged

    def log(self, history: list[Mapping[str, float]], *, tolerate: bool = True) -> None:
        """Write every row of `history` (dicts with `epoch`) whose step is not in the store yet.

        A tracking server that cannot be reached (after MLflow's own retries) does not stop
        training when `tolerate`: the rows stay in the checkpoint's history and are written at the
        next call (the next epoch, or the driver's `sync_epochs` at the end); one warning names
        the server. Other errors, and any error without `tolerate`, are raised."""
        import time

        from mlflow.entities import Metric

        if not history:
            return
        first = next((k for k in history[-1] if k != "epoch"), None)
        if first is None:
            return
        try:
            done = set(self._steps(first))
            stamp = int(time.time() * 1000)
            batch, steps = [], []
            for row in history:
                step = int(row["epoch"])
                if step in done:
                    continue
                batch += [Metric(k, float(v), stamp, step) for k, v in row.items() if k != "epoch"]
                steps.append(step)
            for start in range(0, len(batch), 900):
                self.client.log_batch(self.run_id, metrics=batch[start:start + 900])
        except Exception as exc:
            if not tolerate or unreachable_server(exc) is None:
                raise
            self._logged = None  # re-read what the store holds next time: a batch may have landed in part
            if not self._warned:
                self._warned = True
                warnings.warn(f"MLflow tracking server {redact('', self.uri)} is unreachable; epoch metrics stay in "
                              f"the checkpoint and are written when it is back", RuntimeWarning, stacklevel=2)
            return
        self._logged.update(steps)


def unreachable_server(exc: BaseException) -> str | None:
    """When `exc` (or what caused it) is a failure to reach an HTTP tracking server, a one-line
    reason (e.g. "connection refused"); None for any other error."""
    seen = 0
    while exc is not None and seen < 8:
        text = str(exc)
        name = type(exc).__name__
        if name in {"ConnectionError", "ConnectionRefusedError", "NewConnectionError", "MaxRetryError"} \
                or "Max retries exceeded" in text or "Connection refused" in text or "Failed to establish" in text:
            if "Connection refused" in text:
                return "connection refused"
            match = re.search(r"Caused by (\w+)\(", text)
            return match.group(1) if match else name
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


def sync_epochs(run_id: str, history: list[Mapping[str, float]]) -> None:
    """On the driver after training: write the epochs of `history` the store still lacks (those
    whose worker-side write found the server down). Raises when the server is unreachable."""
    EpochLogger(run_id, tracking_uri()).log(history, tolerate=False)


def close_child_runs(parent_run_id: str, ok_names: set[str], prefix: str = "trial-") -> None:
    """Mark child runs of `parent_run_id` that were killed mid-run as KILLED: those still RUNNING,
    and FAILED ones whose name (minus `prefix`) is in `ok_names` (the stop reached them as an
    exception first, though the campaign counts them as done)."""
    import mlflow

    configure()
    client = mlflow.MlflowClient()
    parent = client.get_run(parent_run_id)
    for run in client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent_run_id}'"):
        name = (run.info.run_name or "").removeprefix(prefix)
        if run.info.status == "RUNNING" or (run.info.status == "FAILED" and name in ok_names):
            client.set_terminated(run.info.run_id, status="KILLED")


SECRET_KEY = re.compile(r"token|secret|passw(?:or)?d|api_?key|access_?key|private_?key|credential", re.I)
URL_USER = re.compile(r"([a-z][a-z0-9+.-]*://)[^/@\s]+@", re.I)
REDACTED = "[redacted]"


def redact(key: str, value: str) -> str:
    """`value` with nothing secret left: the whole value when `key` names a token, secret, password,
    API / access / private key or credential; else the user:password part of any URL in it."""
    if SECRET_KEY.search(str(key)):
        return REDACTED
    return URL_USER.sub(lambda m: m.group(1) + REDACTED + "@", str(value))


def redact_yaml(text: str) -> str:
    """A YAML text with the values of secret-named keys and URL credentials redacted (line by line)."""
    out = []
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        out.append(f"{key}{sep} {REDACTED}" if sep and value.strip() and SECRET_KEY.search(key) else redact("", line))
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


def log_params(params: Mapping[str, Any]) -> None:
    """Log a flat dict of params in batches (values stringified, None as 'null'; secrets redacted:
    `redact`)."""
    import mlflow

    items = [(k, "null" if v is None else redact(k, str(v))[:6000]) for k, v in params.items()]
    for start in range(0, len(items), 100):
        mlflow.log_params(dict(items[start : start + 100]))


def log_metrics(metrics: Mapping[str, float], step: int | None = None) -> None:
    """Log numeric metrics (non-numbers are skipped)."""
    import mlflow

    clean = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}
    if clean:
        mlflow.log_metrics(clean, step=step)


def log_figure(figure: Any, artifact_file: str) -> None:
    """Log a matplotlib figure as a PNG artifact and close it."""
    import matplotlib.pyplot as plt
    import mlflow

    mlflow.log_figure(figure, artifact_file)
    plt.close(figure)


def _pip_requirements() -> list[str]:
    global _REQUIREMENTS
    if _REQUIREMENTS is None:
        from importlib.metadata import version

        _REQUIREMENTS = [f"{pkg}=={version(pkg)}" for pkg in ("torch", "numpy", "mlflow")]
    return _REQUIREMENTS


def register_model(
    model_uri: str,
    name: str,
    *,
    alias: str | None = CANDIDATE,
    tags: Mapping[str, str] | None = None,
) -> str:
    """Register `model_uri` under `name`, tag the version, set `alias` on it; return the version."""
    import mlflow

    configure()
    version = mlflow.register_model(model_uri, name).version
    client = mlflow.MlflowClient()
    for key, value in (tags or {}).items():
        client.set_model_version_tag(name, version, key, str(value))
    if alias:
        client.set_registered_model_alias(name, alias, version)
    return str(version)


def set_alias(name: str, alias: str, version: str | int) -> None:
    """Point `name@alias` at `version` (moving it if it pointed elsewhere)."""
    import mlflow

    configure()
    mlflow.MlflowClient().set_registered_model_alias(name, alias, str(version))


def version_by_alias(name: str, alias: str) -> Any | None:
    """The ModelVersion behind `name@alias`, or None when the alias is not set."""
    import mlflow
    from mlflow.exceptions import MlflowException

    configure()
    try:
        return mlflow.MlflowClient().get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def resolve_model_version(model_uri: str) -> tuple[str, str] | None:
    """(name, version) behind `models:/NAME@ALIAS` or `models:/NAME/VERSION`; None for other URIs."""
    import mlflow
    from mlflow.exceptions import MlflowException

    if not model_uri.startswith("models:/"):
        return None
    ref = model_uri[len("models:/"):]
    configure()
    client = mlflow.MlflowClient()
    try:
        if "@" in ref:
            name, alias = ref.split("@", 1)
            return name, str(client.get_model_version_by_alias(name, alias).version)
        name, _, version = ref.rpartition("/")
        if name and version.isdigit():
            return name, str(client.get_model_version(name, version).version)
    except MlflowException as exc:
        raise _cannot_load(model_uri, exc) from None
    return None


def set_version_tags(name: str, version: str | int, tags: Mapping[str, Any]) -> None:
    import mlflow

    configure()
    client = mlflow.MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(name, str(version), key, str(value))


def _cannot_load(model_uri: str, exc: Exception) -> ActionopsError:
    return ActionopsError(f"cannot load model {model_uri}: {str(exc).splitlines()[0]}",
                          "list registered models with `actionops registry list`")


def load_model(model_uri: str) -> Any:
    """Load a PyTorch model from `models:/NAME@ALIAS`, `models:/NAME/VERSION` or `runs:/...`."""
    import mlflow
    from mlflow.exceptions import MlflowException

    configure()
    try:
        return mlflow.pytorch.load_model(model_uri, map_location="cpu")
    except MlflowException as exc:
        raise _cannot_load(model_uri, exc) from None


def list_registered_models() -> list[dict[str, Any]]:
    """Name, latest version, aliases and description of every registered model."""
    import mlflow

    configure()
    client = mlflow.MlflowClient()
    rows = []
    for model in client.search_registered_models():
        versions = [int(v.version) for v in client.search_model_versions(f"name='{model.name}'")]
        rows.append(
            {
                "name": model.name,
                "latest_version": max(versions) if versions else None,
                "versions": len(versions),
                "aliases": {alias: str(v) for alias, v in (model.aliases or {}).items()},
            }
        )
    return rows


def _version() -> str:
    from actionops import __version__

    return __version__


def _quiet_mlflow() -> None:
    import logging

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # with a server, MLflow writes "View run ... at: URL" to stdout, which breaks `--json` output;
    # our commands print the run id themselves
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    # our pyfunc wrapper has a signature from an input example; MLflow's type-hint probe still warns
    warnings.filterwarnings("ignore", message="Failed to infer signature from type hint")
    # Alembic's migration INFO lines on first use of a SQLite store are noise to a user.
    for name in ("alembic", "alembic.runtime.migration", "mlflow.store.db.utils"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in ("mlflow.pyfunc", "mlflow.models.model"):  # notices about our own pyfunc wrapper
        logging.getLogger(name).setLevel(logging.ERROR)


def log_python_model(
    python_model: str,
    artifacts: Mapping[str, str],
    input_example: Mapping[str, Any],
    output_example: Any,
    *,
    name: str = "model",
    registered_name: str | None = None,
    alias: str | None = CANDIDATE,
    version_tags: Mapping[str, str] | None = None,
    code_paths: list[str] | None = None,
) -> str | None:
    """Log a pyfunc model in the active run (signature from a dict of numpy inputs and their
    outputs, computed by the caller), optionally register it with `alias`; return the version.
    Tracking knows no model: `python_model` is the path of the source file that defines it
    (MLflow's models-from-code: the file is logged and run on load, nothing is pickled), `artifacts`
    its weights, `code_paths` the packages it imports."""
    import mlflow

    if not str(python_model).endswith(".py"):
        raise TypeError("log_python_model takes the path of a models-from-code .py file, not an object (it would be pickled)")
    with warnings.catch_warnings():  # type-hint notices about the wrapper class
        warnings.simplefilter("ignore")
        info = mlflow.pyfunc.log_model(
            name=name,
            python_model=str(python_model),
            artifacts=dict(artifacts),
            signature=mlflow.models.infer_signature(dict(input_example), output_example),
            code_paths=code_paths,
            pip_requirements=_pip_requirements(),
        )
    if registered_name is None:
        return None
    return register_model(info.model_uri, registered_name, alias=alias, tags=version_tags)


def load_checkpoint_state(model_uri: str) -> dict[str, Any]:
    """The checkpoint dict behind a model logged by `log_python_model` with a `checkpoint` artifact (e.g. models:/NAME@champion)."""
    import mlflow
    import torch
    from mlflow.exceptions import MlflowException

    configure()
    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri))
    except MlflowException as exc:
        raise _cannot_load(model_uri, exc) from None
    found = sorted(local.glob("artifacts/*.pt"))
    if not found:
        raise ActionopsError(f"{model_uri} holds no actionops checkpoint", "register checkpoints with a training stage")
    return torch.load(found[0], map_location="cpu", weights_only=True)
