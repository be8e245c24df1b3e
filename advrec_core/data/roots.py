"""Which dataset folders the app may open: only those under the configured roots.

``ADVREC_DATA_ROOTS`` lists the roots (separated by ``os.pathsep``, ``:`` on Linux); the
default is ``./data`` (the demo is always available by name). A folder is refused, in one
line, when its path contains ``..``, when it is not under a root, or when a symbolic link
makes it resolve outside every root. The CLI is not limited: it runs as its user."""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import DataError

ROOTS_ENV = "ADVREC_DATA_ROOTS"


def data_roots() -> list[Path]:
    """The roots, resolved (symbolic links followed), in the order given."""
    given = os.environ.get(ROOTS_ENV)
    parts = [p for p in given.split(os.pathsep) if p.strip()] if given else ["data"]
    return [Path(p).expanduser().resolve() for p in parts]


def allowed_folder(folder: str | Path) -> Path:
    """`folder` resolved, if it lies under one of `data_roots()`; DataError otherwise."""
    text = str(folder).strip()
    roots = data_roots()
    where = f"allowed: {', '.join(map(str, roots))} (set {ROOTS_ENV} to change)"
    if not text or "\x00" in text:
        raise DataError(text or "(empty)", f"not a folder path; {where}")
    path = Path(text).expanduser()
    if ".." in path.parts:
        raise DataError(text, f"'..' is not allowed in a dataset path; {where}")
    if not path.is_absolute():
        path = Path.cwd() / path
    resolved = path.resolve()
    if not any(resolved == r or resolved.is_relative_to(r) for r in roots):
        link = " (a symbolic link leads out of them)" if resolved != path.absolute() and any(
            path.absolute().is_relative_to(r) for r in roots) else ""
        raise DataError(text, f"dataset folder is outside the allowed roots{link}; {where}")
    return resolved


__all__ = ["ROOTS_ENV", "data_roots", "allowed_folder"]
