"""Campaigns per method (`actionops tune METHOD DATASET`), generic over the method registry.

The driver writes the resolved config to the campaign folder, creates the MLflow experiment and
the campaign's parent run once (and logs the dataset input there, once: trials running at the
same moment must not race on it), then runs one Tuner. Each trial (a Ray actor) reloads that
config with its sampled dotted overrides, opens a child MLflow run (tag mlflow.parentRunId) and
runs the method's training stage through the shared Ray Train runner with Tune's
`TuneReportCallback`, writing its checkpoint to `<out>/tune/<campaign>/trial_<id>/`. At the end:
a table of trials sorted by the metric, a parallel-coordinates plot, and the best trial's model
registered with alias `candidate`.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from actionops.errors import ActionopsError, ConfigError
from actionops.pipelines.context import Context
from actionops.pipelines.method import Method, get_method


def make_trial(method_id: str, params_file: str, dataset: str, out_root: str, tracking_uri: str, parent_run_id: str,
               pretrained: list[str], manifest: str | None = None):
    """The function trainable of a campaign (everything it needs is plain strings)."""

    def trial(config: dict) -> None:
        import ray.tune
        from ray.tune.integration.ray_train import TuneReportCallback

        from actionops.pipelines import load_config

        os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
        method = get_method(method_id)
        trial_id = ray.tune.get_context().get_trial_id()
        cfg = load_config(params_file).with_overrides(dict(config), origin="tune")
        out = Path(out_root) / f"trial_{trial_id}"
        out.mkdir(parents=True, exist_ok=True)
        for name in pretrained:  # earlier stages' outputs (e.g. the autoencoders for clustering)
            link = out / Path(name).name
            if not link.exists():
                link.symlink_to(name)
        done = out / "trial_result.json"
        if done.is_file() and (out / method.checkpoint).is_file():
            # finished before the campaign was interrupted: report its result, train nothing again
            ray.tune.report(json.loads(done.read_text()))
            return
        ctx = Context(cfg=cfg, dataset=Path(dataset), out=out, resume="auto", manifest=Path(manifest) if manifest else None)  # a restored trial continues its Train run
        summary = method.train(ctx, parent_run_id=parent_run_id, register=False, callbacks=[TuneReportCallback()],
                               run_name=f"trial-{trial_id}")
        if not summary.get("reported_epochs"):  # the resumed Train run had no epoch left to report
            ray.tune.report(summary["last_epoch_metrics"])
        tmp = done.with_suffix(".tmp")
        tmp.write_text(json.dumps(summary.get("last_epoch_metrics", {})))
        tmp.replace(done)

    trial.__name__ = f"{method_id.replace('-', '_')}_trial"
    return trial


def tune_method(ctx: Context, method_id: str, *, space_file: Path | None = None, resume: bool = False,
                fresh: bool = False) -> dict:
    """Run (or resume) a campaign for the method `method_id` on ctx.dataset; returns the trial
    table and the registered best model."""
    import yaml

    from actionops.evaluation.plots import parallel_coordinates_figure
    from actionops.platform import tracking
    from actionops.platform.train import storage_root
    from actionops.platform.tune import campaign_path, parse_space, run_campaign, trial_table

    method = get_method(method_id)
    cfg, t = ctx.cfg, ctx.cfg.tune
    metric, mode = t.metric or method.tune.metric, t.mode or method.tune.mode
    if metric not in method.reports:
        raise ConfigError(f"tune.metric {metric!r} is not reported by {method.id} training",
                          f"choose one of: {', '.join(method.reports)}")
    if space_file is not None:
        if not Path(space_file).is_file():
            raise ConfigError(f"search-space file {space_file} not found")
        raw = yaml.safe_load(Path(space_file).read_text()) or {}
        raw = raw.get(method.id, raw) if isinstance(raw, dict) else raw
    else:
        raw = t.space.get(method.id) or dict(method.tune.space)
    if not isinstance(raw, dict):
        raise ConfigError(f"search space for {method.id} must be a mapping of dotted keys to distributions")
    known = {k for k in cfg.flat() if not k.startswith("tune.")}
    space = parse_space(raw, known)

    storage = storage_root(cfg.train.storage_path)
    tune_storage = t.storage_path if t.storage_path and "://" in t.storage_path else \
        str(Path(t.storage_path).resolve()) if t.storage_path else f"{storage}/tune"
    name = f"tune-{method.id}-{ctx.dataset.resolve().name}"
    path = campaign_path(tune_storage, name)
    out_root = (ctx.out / "tune" / name).resolve()
    if fresh and not resume:
        shutil.rmtree(path, ignore_errors=True)
        shutil.rmtree(out_root, ignore_errors=True)
    pretrained = [str(p) for p in method.prepare_tune(ctx)]  # index once here: parallel trials must not all write it

    # trial resources: the trial actor itself takes none; its Train workers share the CPUs,
    # leaving one for Ray Data when that is possible
    import ray

    from actionops.platform.tune import TRIAL_HEAD_CPU

    total = ray.cluster_resources().get("CPU", 1.0) - TRIAL_HEAD_CPU * t.max_concurrent
    # keep 1.5 CPUs free: one for Ray Data's tasks plus a margin for actors other work still holds
    per_trial = t.cpus_per_trial or max(0.1, (total - 1.5) / t.max_concurrent if total > 2 else total / (4 * t.max_concurrent))
    overrides: dict[str, Any] = {"train.storage_path": str(Path(storage) / "tune-trials") if "://" not in storage else storage,
                                 "train.cpus_per_worker": per_trial / cfg.train.num_workers}
    if t.gpus_per_trial:
        overrides["train.gpus_per_worker"] = t.gpus_per_trial / cfg.train.num_workers
    trial_cfg = cfg.with_overrides(overrides, origin="tune")
    out_root.mkdir(parents=True, exist_ok=True)
    params_file = out_root / "campaign.yaml"
    state_file = out_root / "campaign.json"
    if resume and state_file.is_file():
        parent_run_id = json.loads(state_file.read_text())["parent_run_id"]
    else:
        params_file.write_text(trial_cfg.to_yaml())
        parent_run_id = None
    tracking.ensure_experiment(method.experiment)  # once, on the driver: parallel trials would race on it
    # ASHA stops a trial that reaches max_t at once, before the trial writes its checkpoint:
    # one more than the epochs, so only weak trials are ever stopped
    max_t = int(trial_cfg.flat()[method.tune.epochs_key]) + 1
    keys = sorted(space)
    with tracking.start_run(method.experiment, run_name=name, params={**cfg.flat(), "tune.metric": metric, "tune.mode": mode},
                            tags={"actionops.stage": f"tune_{method.id}", "actionops.campaign": name},
                            run_id=parent_run_id) as parent:
        if parent_run_id is None:
            from actionops.pipelines.spine import dataset_version

            tracking.log_dataset_input(ctx.dataset, dataset_version(ctx), context="training")
        state_file.write_text(json.dumps({"parent_run_id": parent.info.run_id, "campaign": path}))
        tracking.log_dict({k: str(v) for k, v in raw.items()}, "search_space.json")
        trainable = make_trial(method.id, str(params_file), str(ctx.dataset.resolve()), str(out_root),
                               tracking.tracking_uri(), parent.info.run_id, pretrained, str(ctx.manifest_path.resolve()))
        results = run_campaign(trainable, space, name=name, storage=tune_storage, metric=metric, mode=mode,
                               samples=t.samples, scheduler=t.scheduler, max_concurrent=t.max_concurrent, max_t=max_t,
                               grace_period=t.grace_period, reduction_factor=t.reduction_factor, resume=resume)
        rows = trial_table(results, metric, mode, keys)
        tracking.close_child_runs(parent.info.run_id, {r["trial"] for r in rows if r["status"] == "done"})
        errors = [r for r in rows if r["status"] == "error"]
        for row in rows:  # trials stopped early by ASHA leave no final checkpoint
            row["completed"] = bool(row["path"]) and (out_root / Path(row["path"]).name / method.checkpoint).is_file()
        scored = [r for r in rows if r[metric] is not None and r["completed"]]
        if not scored:
            first = next((res.error for res in results if res.error), None)
            raise ActionopsError(f"campaign {name}: no completed trial reported {metric}",
                                 f"first trial error: {str(first).splitlines()[-1][:300] if first else 'none'}")
        best = scored[0]
        tracking.log_metrics({f"best_{metric}": best[metric], "trials": len(rows), "trials_failed": len(errors)})
        tracking.log_dict(rows, "trials.json")
        tracking.log_figure(parallel_coordinates_figure(scored, keys, metric), "figures/parallel_coordinates.png")
        best_dir = out_root / Path(best["path"]).name
        best_cfg = cfg.with_overrides({k: best["params"][k] for k in keys}, origin="tune best")
        version = _register_best(method, best_cfg, ctx, best_dir / method.checkpoint,
                                 {"campaign": name, "trial": best_dir.name, f"tune.{metric}": f"{best[metric]:.6f}"})
    return {"campaign": name, "storage": path, "metric": metric, "mode": mode, "trials": rows,
            "best": {"trial": best_dir.name, metric: best[metric], "params": best["params"]},
            "registered": version, "mlflow_parent_run_id": parent.info.run_id}


def _register_best(method: Method, cfg: Any, ctx: Context, checkpoint: Path, tags: dict) -> str | None:
    """Register the best trial's checkpoint (alias candidate) under the method's registered name."""
    import dataclasses

    from actionops.pipelines.spine import dataset_version

    tags = {**tags, "dataset": str(ctx.dataset.resolve()), "dataset_version": dataset_version(ctx) or "unknown"}
    version = method.register(dataclasses.replace(ctx, cfg=cfg), checkpoint, tags)
    return f"{method.registered_model(cfg)} v{version}"
