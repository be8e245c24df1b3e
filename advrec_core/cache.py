"""Content-addressed cache of pipeline results under ``cache/``.

An entry is a folder ``<root>/<step>/<key>/`` holding the step's files and a
``manifest.json`` (size and sha256 of every file, the config that made it). It is built in
a temporary sibling folder and renamed into place in one step, so a reader sees either no
entry or a complete one. An entry whose manifest is missing or disagrees with its files
(a crash, a disk error, a hand edit) is moved aside and rebuilt, never loaded."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .config import stable_hash, to_jsonable

log = logging.getLogger(__name__)
MANIFEST = "manifest.json"
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def default_cache_root() -> Path:
    """``$ADVREC_CACHE`` if set, else ``cache/`` beside the package (not the cwd)."""
    return Path(os.environ.get("ADVREC_CACHE", PROJECT_ROOT / "cache"))


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` via a temp file in the same folder + rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a cache file is no secret
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_manifest(folder: Path, meta: dict[str, Any]) -> dict[str, Any]:
    files = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.name != MANIFEST:
            files[p.relative_to(folder).as_posix()] = {"size": p.stat().st_size,
                                                       "sha256": sha256_file(p)}
    manifest = {"meta": to_jsonable(meta), "files": files}
    atomic_write_text(folder / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True))
    return manifest


def verify_entry(folder: Path, check_hashes: bool = True) -> str | None:
    """None if `folder` is a complete entry, else the reason it is not."""
    mpath = folder / MANIFEST
    if not mpath.is_file():
        return "no manifest (incomplete write)"
    try:
        files = json.loads(mpath.read_text())["files"]
    except (ValueError, KeyError, TypeError) as e:
        return f"unreadable manifest ({e})"
    for rel, info in files.items():
        p = folder / rel
        if not p.is_file():
            return f"{rel} is missing"
        if p.stat().st_size != info["size"]:
            return f"{rel} has {p.stat().st_size} bytes, manifest says {info['size']}"
        if check_hashes and sha256_file(p) != info["sha256"]:
            return f"{rel} does not match its sha256"
    return None


class NotCached(LookupError):
    """Raised by a read-only cache instead of building a missing entry."""


@dataclass(frozen=True)
class Cache:
    """`Cache(root).entry(step, config, inputs, build)` -> path of a verified entry.
    A `read_only()` view of the same folder raises NotCached instead of building, so a
    pipeline run through it says "computed already?" without computing anything."""

    root: Path
    build: bool = True

    @classmethod
    def default(cls) -> "Cache":
        return cls(default_cache_root())

    def read_only(self) -> "Cache":
        return Cache(self.root, build=False)

    def key(self, config: Any, inputs: Any = None) -> str:
        return stable_hash(config, inputs)

    def path(self, step: str, key: str) -> Path:
        return Path(self.root) / step / key

    def lookup(self, step: str, config: Any, inputs: Any = None) -> Path | None:
        """The entry's folder if it exists and verifies, else None (a bad one is removed)."""
        folder = self.path(step, self.key(config, inputs))
        if not folder.exists():
            return None
        reason = verify_entry(folder)
        if reason is None:
            return folder
        log.warning("cache entry %s is corrupt (%s); rebuilding it", folder, reason)
        self._discard(folder)
        return None

    def entry(self, step: str, config: Any, build: Callable[[Path], None],
              inputs: Any = None) -> Path:
        """Return the verified entry for (config, inputs), calling ``build(tmp_folder)``
        to create it first if needed. `build` writes its files into the folder it gets."""
        found = self.lookup(step, config, inputs)
        if found is not None:
            return found
        if not self.build:
            raise NotCached(f"{step} entry not computed yet")
        final = self.path(step, self.key(config, inputs))
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.parent / f".tmp-{final.name}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            build(tmp)
            write_manifest(tmp, {"step": step, "config": config, "inputs": inputs})
            try:
                os.rename(tmp, final)
            except OSError:  # the folder appeared meanwhile: another process, or debris
                if verify_entry(final) is None:
                    shutil.rmtree(tmp, ignore_errors=True)
                else:
                    self._discard(final)
                    os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return final

    def discard(self, step: str, config: Any, inputs: Any = None) -> None:
        """Remove the entry for (config, inputs) if there is one."""
        folder = self.path(step, self.key(config, inputs))
        if folder.exists():
            self._discard(folder)

    def _discard(self, folder: Path) -> None:
        trash = folder.parent / f".corrupt-{folder.name}-{uuid.uuid4().hex[:8]}"
        try:
            os.rename(folder, trash)
        except OSError:
            return
        shutil.rmtree(trash, ignore_errors=True)
