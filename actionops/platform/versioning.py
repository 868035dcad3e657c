"""DVC: dataset versions. (The `data add/versions/checkout` commands and dvc.yaml stages are
issue #7; today this only reads the version of a dataset that DVC already tracks.)"""

from __future__ import annotations

from pathlib import Path


def dataset_version(dataset: str | Path) -> str | None:
    """The DVC hash of a dataset folder tracked as `<folder>.dvc`, or None when it is not tracked."""
    import yaml

    dataset = Path(dataset).resolve()
    dvc_file = dataset.with_name(dataset.name + ".dvc")
    if not dvc_file.is_file():
        return None
    outs = (yaml.safe_load(dvc_file.read_text()) or {}).get("outs") or []
    return str(outs[0].get("md5")) if outs and outs[0].get("md5") else None
