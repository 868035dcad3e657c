"""The sequence every method's stages share, written once.

`train_stage`: MLflow run (params, config.yaml, tags; the same run again on `--resume`) ->
dataset input and version -> `run_training` on Ray Train -> checkpoint file -> per-epoch history
(JSON for `dvc plots`) -> curves -> the method's own logging -> register (alias candidate).
It returns the summary a CLI prints and a Tune trial reports.

`evaluate_stage`: write the metrics and files -> MLflow run with the headline metrics, figures
and the full metrics -> `eval.*` tags on the registry version that was evaluated (what
`registry promote` compares).

A method's stage builds its data, model arguments and loop config, then calls these; what is left
in its stages module is its own logic.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from actionops.pipelines.context import Context
from actionops.pipelines.method import Method


def dataset_version(ctx: Context) -> str | None:
    """The DVC version of the context's dataset (None when DVC does not track it)."""
    from actionops.platform import versioning

    return versioning.dataset_version(ctx.dataset)


def data_id(ctx: Context) -> str:
    """What an evaluation was computed on: the DVC version, else the dataset's absolute path with
    the digest of its manifest's content (video bytes, annotations, labels, splits), so that two
    evaluations of one folder whose content changed in between never compare as the same data."""
    version = dataset_version(ctx)
    if version:
        return version
    path = str(Path(ctx.dataset).resolve())
    try:
        from actionops.platform.data import data_digest, file_md5, load_manifest

        if Path(ctx.dataset).is_file():  # a data file (e.g. embeddings): its bytes
            return f"{path}#{file_md5(ctx.dataset)}"
        digest = data_digest(load_manifest(ctx.dataset, ctx.manifest_path, verify=False)[1])
    except Exception:  # no manifest (e.g. an embeddings file): the path is all we know
        digest = None
    return f"{path}#{digest}" if digest else path


def load_model_state(model: str | None, default: Path, hint: str, method: Method | None = None) -> tuple[dict, str]:
    """The checkpoint dict of `model` (models:/NAME@ALIAS, models:/NAME/V, runs:/..., a .pt file;
    None: `default`) and a printable source. With `method`, a checkpoint another method (or
    another stage) wrote is refused, naming what the file is and what is expected."""
    from actionops.models.checkpoint import load_checkpoint
    from actionops.platform.tracking import load_checkpoint_state

    if model and model.startswith(("models:/", "runs:/")):
        state, source = load_checkpoint_state(model), model
    else:
        path = Path(model) if model else Path(default)
        state, source = load_checkpoint(path, hint), str(path)
    if method is not None:
        check_checkpoint(state, source, method, hint)
    return state, source


def check_checkpoint(state: Mapping[str, Any], source: str, method: Method, hint: str) -> None:
    """Raise when `state` was written by another method's (or another stage's) training than
    `method`'s main one. Checkpoints record both (`method`, `stage`) since the lineage release;
    older ones, without them, pass unchecked."""
    from actionops.errors import ActionopsError

    found_method, found_stage = state.get("method"), state.get("stage")
    expected_stage = Path(method.checkpoint).stem
    if found_method is None or (found_method == method.id and found_stage in (None, expected_stage)):
        return
    what = f"a {found_method} checkpoint ({found_stage or 'model'}: {state.get('model_name', 'unknown model')})"
    raise ActionopsError(f"{source} is {what}, but this command expects a {method.id} checkpoint "
                         f"({method.checkpoint}, written by its training stage)", hint)


def write_history(path: Path, history: list[dict]) -> None:
    """Per-epoch metrics as a JSON list of {"epoch": n, metric: value} (what `dvc plots` reads)."""
    rows = [{"epoch": int(h.get("epoch", i + 1)),
             **{k: float(v) for k, v in h.items() if isinstance(v, (int, float)) and k != "epoch"}}
            for i, h in enumerate(history)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, indent=1))


def train_stage(
    ctx: Context,
    method: Method,
    *,
    loop: Callable[[dict], None],
    loop_config: Mapping[str, Any],
    name: str,
    run_name: str,
    checkpoint_file: str,
    checkpoint: Callable[[dict], dict],
    history_file: str,
    curves: Mapping[str, tuple[str, tuple[str, ...]]],
    tags: Mapping[str, str] | None = None,
    params: Mapping[str, Any] | None = None,
    datasets: Mapping[str, Any] | None = None,
    datasets_to_split: list[str] | None = None,
    streams_data: bool = False,
    finish: Callable[[Any, dict], dict] | None = None,
    register: Callable[[Path, dict], str | None] | None = None,
    version_tags: Mapping[str, str] | None = None,
    parent_run_id: str | None = None,
    callbacks: list | None = None,
) -> dict:
    """Train through the shared Ray Train runner inside the method's MLflow run; see the module doc.

    `name` keys resumption (the Ray Train run and the MLflow run continue on `--resume`);
    `checkpoint(state)` picks what the checkpoint file keeps from the final training state;
    `curves` maps an artifact name to (title, history keys); `finish(result, state)` does the
    method's own logging inside the run and returns extra summary fields; `register(path, tags)`
    registers the checkpoint (skipped inside a Tune trial, which passes `parent_run_id`)."""
    from actionops.evaluation.plots import loss_curves_figure
    from actionops.models.checkpoint import save_checkpoint
    from actionops.platform import tracking
    from actionops.platform.train import last_metrics, previous_mlflow_run, run_training

    cfg = ctx.cfg
    version = dataset_version(ctx)
    resume_run = previous_mlflow_run(name, cfg.train, ctx.resume)
    with tracking.start_run(method.experiment, run_name=run_name, params=cfg.flat(), config_yaml=cfg.to_yaml(),
                            tags=dict(tags or {}), dataset_version=version, parent_run_id=parent_run_id,
                            run_id=resume_run) as run:
        if run.info.run_id != resume_run:  # a new run (not a resumed one): log what it starts from
            if params:
                tracking.log_params(params)
            if parent_run_id is None:  # a campaign logs its dataset once, on the driver's parent run
                tracking.log_dataset_input(ctx.dataset, version, context="training")
        result = run_training(loop, dict(loop_config), train_cfg=cfg.train, name=name, resume=ctx.resume,
                              datasets=dict(datasets or {}), mlflow_run_id=run.info.run_id,
                              datasets_to_split=datasets_to_split, callbacks=callbacks, streams_data=streams_data)
        tracking.sync_epochs(run.info.run_id, result.history)  # epochs a worker could not write (server down)
        state = result.checkpoint_state
        # what wrote it travels with it: loaders refuse another method's file by name (check_checkpoint)
        kept = {**checkpoint(state), "method": method.id, "stage": Path(checkpoint_file).stem}
        path = save_checkpoint(Path(ctx.out) / checkpoint_file, kept)
        write_history(Path(ctx.out) / history_file, result.history)
        for artifact, (title, keys) in curves.items():
            series = {k: [h[k] for h in result.history if k in h] for k in keys}
            series = {k: v for k, v in series.items() if v}
            if series:
                tracking.log_figure(loss_curves_figure(series, title), f"figures/{artifact}")
        extra = finish(result, state) if finish else {}
        registered = None
        if register is not None and parent_run_id is None:
            tags_out = {"dataset": str(Path(ctx.dataset).resolve()), "dataset_version": version or "unknown",
                        **dict(version_tags or {})}
            number = register(path, tags_out)
            registered = f"{method.registered_model(cfg)} v{number}" if number else None
    losses = [h[method.loss] for h in result.history if method.loss in h]
    return {"epochs": int(state["epoch"]), "final_loss": losses[-1] if losses else None, **extra,
            "registered": registered, "checkpoint": str(path), "run_name": result.run_name,
            "mlflow_run_id": run.info.run_id, "last_epoch_metrics": last_metrics(result.history, state),
            "reported_epochs": result.reported, "workers": _workers(result)}


def _workers(result: Any) -> list[dict]:
    """Where the run's training workers ran (rank, node IP, node id), from the run's storage."""
    from actionops.platform.train import workers_of

    return [{k: w[k] for k in ("rank", "node_ip", "node_id", "device")} for w in workers_of(result.storage, result.run_name)]


def evaluate_stage(
    ctx: Context,
    method: Method,
    *,
    split: str,
    metrics: dict,
    headline: Mapping[str, float],
    source: str,
    metrics_file: str,
    figures: Mapping[str, Any] | None = None,
    files: Mapping[str, str] | None = None,
    eval_tags: Mapping[str, float] | None = None,
    primary: str | None = None,
) -> dict:
    """Write `metrics` (JSON) and `files` (name -> text) under the output folder, save `figures`
    (artifact path -> matplotlib figure; also as PNG beside the metrics), log one MLflow run, and
    tag the registry version behind `source` (models:/...) with `eval.*` (`eval_tags`, plus the
    split, the data version it was computed on and `eval.primary`: the metric `registry promote`
    compares by default, `primary` or else the method's score). Returns `metrics`."""
    from actionops.platform import tracking

    out = Path(ctx.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / metrics_file).write_text(json.dumps(metrics, indent=2))
    for name, text in (files or {}).items():
        (out / name).write_text(text)
    with tracking.start_run(method.experiment, run_name=f"evaluate-{split}", params=ctx.cfg.flat(),
                            tags={"actionops.stage": f"evaluate_{split}", "actionops.model_source": source},
                            dataset_version=dataset_version(ctx)):
        tracking.log_metrics(headline)
        for artifact, figure in (figures or {}).items():
            figure.savefig(out / Path(artifact).name, dpi=100, bbox_inches="tight")
            tracking.log_figure(figure, artifact)
        tracking.log_dict(metrics, metrics_file)
    if source.startswith("models:/"):
        version = tracking.resolve_model_version(source)
        if version is not None:
            tags = {"eval.split": split, "eval.data": data_id(ctx), "eval.primary": primary or method.score,
                    **{f"eval.{k}": f"{float(v):.6f}" for k, v in (eval_tags or {}).items()}}
            tracking.set_version_tags(*version, tags)
    return metrics


def register_checkpoint(checkpoint: Path, example: Mapping[str, Any], registered_name: str,
                        tags: Mapping[str, str]) -> str | None:
    """Log a checkpoint as an MLflow pyfunc model in the active run (signature from `example`, a
    dict of numpy arrays, and the module's `infer` output) and register it as `registered_name`
    with alias candidate; returns the version."""
    import actionops
    from actionops.models.checkpoint import build_from_checkpoint, infer_numpy, load_checkpoint, pyfunc_model_code
    from actionops.platform import tracking

    module = build_from_checkpoint(load_checkpoint(checkpoint))
    return tracking.log_python_model(pyfunc_model_code(), {"checkpoint": str(checkpoint)}, example, infer_numpy(module, example),
                                     registered_name=registered_name, version_tags=tags,
                                     code_paths=[str(Path(actionops.__file__).parent)])
