"""Errors a user can act on. The CLI prints them as one line with the hint; no traceback."""

from __future__ import annotations


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
