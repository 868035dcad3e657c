"""Benchmarks: each compares against a baseline in the same process and writes results/<name>.json."""

from __future__ import annotations

import json
import os
import platform
from importlib.metadata import version
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def machine(packages: tuple[str, ...] = ("ray", "opencv-python-headless", "av", "numpy")) -> dict:
    """Where a benchmark ran: cores, the CPU and its widest vector unit, Python, platform and the
    versions of `packages`. The vector unit matters twice: speed (this VM's AVX-512 hosts ran a TSM
    step 5x faster than its AVX2 ones) and float rounding, so training paths differ between them."""
    return {"cores": os.cpu_count(), "cpu": cpu_model(), "vector_unit": vector_unit(),
            "python": platform.python_version(), "platform": platform.platform(),
            "versions": {p: version(p) for p in packages}}


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo; platform.processor() elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def vector_unit() -> str:
    """The widest vector instructions PyTorch's CPU kernels use here (e.g. AVX2, AVX512), or "unknown"."""
    try:
        import torch

        return str(torch.backends.cpu.get_cpu_capability())
    except Exception:  # torch missing or too old: the field is informative only
        return "unknown"


def write_result(name: str, result: dict) -> Path:
    """Write `result` to benchmarks/results/<name> and say where."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / name
    path.write_text(json.dumps(result, indent=2))
    print(f"wrote {path}")
    return path
