"""Errors a user can act on. The CLI prints them as one line with the hint; no traceback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class ActionopsError(Exception):
    """A problem with the user's input or environment, with a hint on how to fix it."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ConfigError(ActionopsError):
    """A params file or `--set` override that does not match the typed config."""


class DataError(ActionopsError):
    """A dataset, video or annotation file that cannot be used."""


class DiskFullError(ActionopsError):
    """An output device ran out of space (or quota) while we wrote to it."""


def disk_full(exc: BaseException, path: object) -> DiskFullError | None:
    """A one-line DiskFullError naming `path` when `exc` (or its cause) is ENOSPC, EDQUOT or EFBIG;
    None for any other error. Writers call it after removing their temporary file."""
    import errno
    import os

    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, DiskFullError):
            return exc
        if isinstance(exc, OSError) and exc.errno in {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}:
            return DiskFullError(f"no space left writing {path} ({os.strerror(exc.errno)})",
                                 "free space on that device (or write elsewhere: --out, --flow-dir, train.storage_path); "
                                 "nothing half-written was left in place: rerun the same command to continue")
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


@contextmanager
def whole_or_nothing(path: object, tmp: object) -> Iterator[None]:
    """Around writing `tmp` and renaming it onto `path`: on any error the temporary is removed, and
    a full device becomes a DiskFullError naming `path`."""
    from pathlib import Path

    try:
        yield
    except BaseException as exc:
        Path(str(tmp)).unlink(missing_ok=True)
        full = disk_full(exc, path)
        if full is not None:
            raise full from None
        raise
