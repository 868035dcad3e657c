"""The context every pipeline stage gets."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actionops.platform.config import Config


@dataclass(frozen=True)
class Context:
    """What every stage gets: the config, the dataset folder (and its manifest), the output folder, a console."""

    cfg: Config
    dataset: Path
    out: Path
    console: Any = None
    resume: bool = False
    manifest: Path | None = None  # default: dataset/manifest.parquet

    @property
    def manifest_path(self) -> Path:
        from actionops.platform.data import MANIFEST_NAME

        return Path(self.manifest) if self.manifest else Path(self.dataset) / MANIFEST_NAME

    def rows(self) -> tuple[str, list[dict]]:
        """(layout, manifest rows), indexing the dataset first when it has no manifest (needs Ray)."""
        from actionops.platform.data import ensure_manifest, load_manifest

        ensure_manifest(Path(self.dataset), self.manifest_path, self.say)
        return load_manifest(self.dataset, self.manifest_path)

    def say(self, text: str) -> None:
        if self.console is not None:
            self.console.print(text)


def save_state(path: Path, state: dict) -> None:
    """torch.save a checkpoint dict atomically (temp file, then rename): a killed stage leaves
    either the old file or the new one, never half of one."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def write_history(path: Path, history: list[dict]) -> None:
    """Per-epoch metrics as a JSON list of {"epoch": n, metric: value} (what `dvc plots` reads)."""
    import json

    rows = [{"epoch": int(h.get("epoch", i + 1)),
             **{k: float(v) for k, v in h.items() if isinstance(v, (int, float)) and k != "epoch"}}
            for i, h in enumerate(history)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, indent=1))
