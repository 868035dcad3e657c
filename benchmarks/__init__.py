"""Benchmarks: each compares against a baseline in the same process and writes results/<name>.json."""

from __future__ import annotations

import json
import os
import platform
from importlib.metadata import version
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def machine(packages: tuple[str, ...] = ("ray", "opencv-python-headless", "av", "numpy")) -> dict:
    """Where a benchmark ran: cores, Python, platform and the versions of `packages`."""
    return {"cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "versions": {p: version(p) for p in packages}}


def write_result(name: str, result: dict) -> Path:
    """Write `result` to benchmarks/results/<name> and say where."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / name
    path.write_text(json.dumps(result, indent=2))
    print(f"wrote {path}")
    return path
