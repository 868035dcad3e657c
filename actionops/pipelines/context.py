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

    def rows(self, verify: bool = True) -> tuple[str, list[dict]]:
        """(layout, manifest rows), indexing the dataset first when it has no manifest (needs Ray).
        With `verify`, a video changed since indexing is an error naming it (`load_manifest`)."""
        from actionops.platform.data import ensure_manifest, load_manifest

        ensure_manifest(Path(self.dataset), self.manifest_path, self.say)
        return load_manifest(self.dataset, self.manifest_path, verify=verify)

    def say(self, text: str) -> None:
        if self.console is not None:
            self.console.print(text)
