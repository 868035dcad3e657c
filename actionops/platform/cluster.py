"""Ray session: start a local Ray or connect to a cluster, quietly, and always shut down.

    with ray_session(cfg.ray) as info:      # local Ray with this machine's CPUs/GPUs
        ...                                  # Ray Data / Train / Tune work
    # RAY_ADDRESS=ray://head:10001 or --address connects to a cluster instead

Token authentication (default on for local clusters since Ray 2.59) is left to Ray: a local
`ray.init()` generates its token; for a cluster, set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN (or
the default token file) as for any Ray client. Nothing here disables it.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from actionops.errors import ActionopsError

# Ray loggers whose INFO/WARNING chatter (start-up banners, auth notices, dedup hints) is not
# the user's business; real errors still surface as exceptions.
_NOISY_LOGGERS = ("ray", "ray.data", "ray.train", "ray.tune", "ray._private", "ray.util")


@dataclass(frozen=True)
class SessionInfo:
    """What the session is connected to."""

    address: str
    local: bool
    num_cpus: float
    num_gpus: float
    num_nodes: int


# Ray Train V2's controller polls its workers every 2 s by default, and every epoch's report
# waits for a poll: a 6-epoch tiny fit took 59-67 s with 2 s and 44-55 s with 0.2 s on 2 cores.
# 0.25 s costs the controller a few cheap actor calls per second; a user's setting wins.
TRAIN_POLL_ENV, TRAIN_POLL_S = "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.25"


def resolve_address(address: str | None) -> str | None:
    """`--address` wins, then RAY_ADDRESS; None means start a local Ray."""
    address = address or os.environ.get("RAY_ADDRESS") or None
    return None if address in (None, "", "local") else address


@contextmanager
def ray_session(
    ray_cfg: Any = None,
    *,
    address: str | None = None,
    num_cpus: int | None = None,
    num_gpus: int | None = None,
    runtime_env: dict | None = None,
) -> Iterator[SessionInfo]:
    """Start or join Ray for the duration of the block; nested use reuses the outer session.

    `ray_cfg` is the `ray` config section (address, num_cpus, num_gpus, ship_code); keyword
    arguments override it. On a remote cluster the `actionops` package is shipped to workers
    through `runtime_env.py_modules` unless `ship_code` is off (the image already has it).
    """
    import ray

    address = resolve_address(address or getattr(ray_cfg, "address", None))
    num_cpus = num_cpus if num_cpus is not None else getattr(ray_cfg, "num_cpus", None)
    num_gpus = num_gpus if num_gpus is not None else getattr(ray_cfg, "num_gpus", None)
    if address is not None:  # before anything else: one line instead of Ray's minutes of retries
        check_reachable(address)
    if ray.is_initialized():  # an outer session (or a test fixture) owns Ray
        yield _describe(ray)
        return

    _quiet_ray_logs()
    kwargs: dict[str, Any] = {
        "logging_level": logging.WARNING,
        "log_to_driver": os.environ.get("ACTIONOPS_RAY_LOGS", "0") == "1",
        "include_dashboard": False,
        "configure_logging": True,
    }
    env = dict(runtime_env or {})
    if address is None:
        kwargs.update(num_cpus=num_cpus, num_gpus=num_gpus)
        os.environ.setdefault(TRAIN_POLL_ENV, TRAIN_POLL_S)  # inherited by the local raylet and its workers
    else:
        kwargs["address"] = address
        if getattr(ray_cfg, "ship_code", True) and "py_modules" not in env:
            import actionops

            env["py_modules"] = [os.path.dirname(actionops.__file__)]
        env_vars = dict(env.get("env_vars") or {})
        env_vars.setdefault(TRAIN_POLL_ENV, os.environ.get(TRAIN_POLL_ENV, TRAIN_POLL_S))
        env["env_vars"] = env_vars
    if env:
        kwargs["runtime_env"] = env
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ray.init(**kwargs)
    except ConnectionError as exc:
        raise ActionopsError(
            f"cannot connect to Ray at {address}: {exc}",
            "check RAY_ADDRESS/--address, that the cluster is up, and RAY_AUTH_TOKEN if it uses "
            "token authentication",
        ) from None
    try:
        yield _describe(ray, local=address is None)
    finally:
        ray.shutdown()


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail in one line when nothing listens at a Ray address (`host:port`, `ray://host:port`),
    instead of Ray's own minutes of retries. `auto` / `local` and addresses without a port are left
    to Ray."""
    import socket

    target = address.split("://", 1)[-1].rsplit("@", 1)[-1].split("/", 1)[0]
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            return
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
    raise ActionopsError(f"cannot reach the Ray head at {address} ({reason})",
                         "start it (`ray start --head`), fix RAY_ADDRESS / --address, or unset both "
                         "for a local run on this machine")


def _describe(ray: Any, local: bool | None = None) -> SessionInfo:
    resources = ray.cluster_resources()
    context = ray.get_runtime_context()
    gcs = getattr(context, "gcs_address", "") or ""
    return SessionInfo(
        address=gcs,
        local=local if local is not None else True,
        num_cpus=float(resources.get("CPU", 0.0)),
        num_gpus=float(resources.get("GPU", 0.0)),
        num_nodes=sum(1 for node in ray.nodes() if node.get("Alive")),
    )


def _quiet_ray_logs() -> None:
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    os.environ.setdefault("RAY_TRAIN_ENABLE_V2_MIGRATION_WARNINGS", "0")
    if os.environ.get("ACTIONOPS_RAY_LOGS") == "1":
        return
    import ray.data  # configures its loggers on import: quieten them afterwards

    ray.data.DataContext.get_current().enable_progress_bars = False  # ours are rich bars
    for name in _NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
