"""Errors raised for bad input: each names the file, row or id and what was expected."""
from __future__ import annotations

from pathlib import Path


class AdvRecError(Exception):
    """Base class of every error the engine raises on purpose."""


class DataError(AdvRecError, ValueError):
    """Bad dataset input.

    `where` is the file (and line or id) at fault, `what` says what is wrong and what was
    expected. `str(err)` reads ``"<where>: <what>"`` so the CLI and the app can show it as is.
    """

    def __init__(self, where: str | Path, what: str):
        self.where, self.what = str(where), what
        super().__init__(f"{where}: {what}")


class UnknownNameError(AdvRecError, KeyError):
    """A registry lookup with a name that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


class CategoryError(AdvRecError, ValueError):
    """A category the experiment needs is missing: no such source, or no source/target pair."""
