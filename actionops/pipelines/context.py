"""The context every pipeline stage gets."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actionops.platform.config import Config


@dataclass(frozen=True)
class Context:
    """What every stage gets: the config, the dataset folder, the output folder, a console."""

    cfg: Config
    dataset: Path
    out: Path
    console: Any = None
    resume: bool = False

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
