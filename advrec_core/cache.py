"""Content-addressed cache of pipeline results under ``cache/``.

An entry is a folder ``<root>/<step>/<key>/`` holding the step's files and a
``manifest.json`` (size and sha256 of every file, the config that made it). It is built in
a temporary sibling folder and renamed into place in one step, so a reader sees either no
entry or a complete one. An entry whose manifest is missing or disagrees with its files
(a crash, a disk error, a hand edit) is moved aside and rebuilt, never loaded.

A build folder is named by its builder: ``.tmp-<key>-<host>-<pid>-<start>-<id>`` (a hash of
the host's name, the process id and the process's start time), and its builder touches it
every `HEARTBEAT_S` seconds while it builds. `Cache.gc` removes one only when its builder is
provably gone: on this host, its process is not running (or the pid now belongs to a later
process); on another host (a cache shared by several machines), its heartbeat stopped
`STALE_S` seconds ago. Never for its age alone: a long build (an extractor trained on real
data, a long C&W) keeps its folder however long it takes."""
from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import socket
import tarfile
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .config import stable_hash, to_jsonable

log = logging.getLogger(__name__)
MANIFEST = "manifest.json"
PROJECT_ROOT = Path(__file__).resolve().parents[1]


HEARTBEAT_S = 30.0  # a builder touches its build folder this often ...
STALE_S = 600.0  # ... and another host's folder untouched this long has lost its builder


def _host_tag(host: str | None = None) -> str:
    """12 hex characters naming a host (its name's hash: no '-' to confuse a folder name)."""
    return hashlib.sha256((host or socket.gethostname()).encode()).hexdigest()[:12]


def _start_time(pid: int) -> int | None:
    """When process `pid` started, in clock ticks since boot (Linux /proc), or None where
    that cannot be read (another system, or no such process)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])  # field 22; the name may hold spaces


def builder_id(host: str | None = None, pid: int | None = None) -> str:
    """"<host>-<pid>-<start>" of this process (or `pid` on this host): what build folders
    are named by."""
    pid = os.getpid() if pid is None else pid
    return f"{_host_tag(host)}-{pid}-{_start_time(pid) or 0}"


class _Heartbeat:
    """Touches `folder` every `HEARTBEAT_S` seconds until stopped (a daemon thread)."""

    def __init__(self, folder: Path):
        self.folder, self.stop = folder, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="cache heartbeat")
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.wait(HEARTBEAT_S):
            try:
                os.utime(self.folder)
            except OSError:
                return

    def close(self) -> None:
        self.stop.set()


def default_cache_root() -> Path:
    """``$ADVREC_CACHE`` if set, else ``cache/`` beside the package (not the cwd)."""
    return Path(os.environ.get("ADVREC_CACHE", PROJECT_ROOT / "cache"))


RACY_SECONDS = 2.0  # a file modified this recently is hashed every time (git's "racy" rule:
# a change within the file system's timestamp granularity could leave size and mtime as they were)
_DIGESTS: dict[tuple[str, int, int, int], str] = {}  # (path, inode, size, mtime_ns) -> sha256


def _hash_bytes(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_file(path: Path, memo: bool = True) -> str:
    """sha256 hex digest of a file's bytes. Memoised per process on (path, inode, size,
    mtime): a weight, corpus or cache file is read again only when it changes (or was
    changed in the last RACY_SECONDS). `memo=False` always reads it (`cache verify`)."""
    st = os.stat(path)
    key = (os.path.realpath(path), st.st_ino, st.st_size, st.st_mtime_ns)
    if memo and key in _DIGESTS:
        return _DIGESTS[key]
    digest = _hash_bytes(Path(path))
    if time.time() - st.st_mtime > RACY_SECONDS:
        _DIGESTS[key] = digest
    return digest


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


def verify_entry(folder: Path, check_hashes: bool = True, memo: bool = True) -> str | None:
    """None if `folder` is a complete entry, else the reason it is not. Sizes always; the
    sha256 of every file too with `check_hashes` (memoised unless `memo=False`)."""
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
        if check_hashes and sha256_file(p, memo) != info["sha256"]:
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
    seen: list[Path] | None = field(default=None, compare=False)  # `recording()`: entries found

    @classmethod
    def default(cls) -> "Cache":
        return cls(default_cache_root())

    def read_only(self) -> "Cache":
        return Cache(self.root, build=False, seen=self.seen)

    def recording(self) -> "Cache":
        """A read-only view that lists, in `seen`, every entry it finds: running a pipeline
        step through it names the entries that step's result is made of (to ship them)."""
        return Cache(self.root, build=False, seen=[])

    def link_entries(self, source: "Cache", steps: tuple[str, ...]) -> "Cache":
        """Link every entry of `steps` in `source` into this cache (read-only sharing, e.g.
        trained extractors for a benchmark or test that must start cold otherwise); self."""
        for step in steps:
            for entry in sorted(Path(source.root, step).glob("[!.]*")):
                link = self.path(step, entry.name)
                if not link.exists():
                    link.parent.mkdir(parents=True, exist_ok=True)
                    link.symlink_to(entry.resolve(), target_is_directory=True)
        return self

    @staticmethod
    def export_entries(folders: list[Path]) -> bytes:
        """Entry folders (`<root>/<step>/<key>`, of any cache) as one uncompressed tar of
        `step/key/...`, links followed (a test cache links shared entries)."""
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", dereference=True) as tar:
            for folder in dict.fromkeys(Path(f) for f in folders):
                tar.add(folder, arcname=f"{folder.parent.name}/{folder.name}")
        return buf.getvalue()

    def import_entries(self, data: bytes) -> list[Path]:
        """Add the entries of an `export_entries` tar that this cache lacks, each verified
        against its manifest and renamed into place whole (never half-written). Returns
        the entries added."""
        added = []
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            groups: dict[tuple[str, str], list[tarfile.TarInfo]] = {}
            for m in tar.getmembers():
                parts = Path(m.name).parts
                if len(parts) >= 2 and not parts[1].startswith("."):
                    groups.setdefault(parts[:2], []).append(m)
            for (step, key), members in groups.items():
                final = self.path(step, key)
                if final.exists() and verify_entry(final) is None:
                    continue
                final.parent.mkdir(parents=True, exist_ok=True)
                staging = final.parent / f".tmp-{key}-{builder_id()}-{uuid.uuid4().hex[:8]}"
                try:
                    tar.extractall(staging, members, filter="data")
                    reason = verify_entry(staging / step / key)
                    if reason is not None:
                        raise ValueError(f"shipped cache entry {step}/{key} is corrupt ({reason})")
                    try:
                        os.rename(staging / step / key, final)
                    except OSError:  # it appeared meanwhile (another importer: keep its
                        if verify_entry(final) is None:  # copy, which may be in use), or
                            continue  # debris
                        self._discard(final)
                        os.rename(staging / step / key, final)
                    added.append(final)
                finally:
                    shutil.rmtree(staging, ignore_errors=True)
        return added

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
            if self.seen is not None:
                self.seen.append(folder)
            return folder
        log.warning("cache entry %s is corrupt (%s); rebuilding it", folder, reason)
        self._discard(folder)
        return None

    def entry(self, step: str, config: Any, build: Callable[[Path], None],
              inputs: Any = None, seconds_before: float = 0.0) -> Path:
        """Return the verified entry for (config, inputs), calling ``build(tmp_folder)``
        to create it first if needed. `build` writes its files into the folder it gets.
        `seconds_before`: time already spent on this entry's behalf (its share of work done
        for several entries at once), added to the build time the manifest records."""
        found = self.lookup(step, config, inputs)
        if found is not None:
            return found
        if not self.build:
            raise NotCached(f"{step} entry not computed yet")
        final = self.path(step, self.key(config, inputs))
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.parent / f".tmp-{final.name}-{builder_id()}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        heartbeat = _Heartbeat(tmp)
        try:
            t0 = time.perf_counter()
            build(tmp)
            write_manifest(tmp, {"step": step, "config": config, "inputs": inputs,
                                 "seconds": round(time.perf_counter() - t0 + seconds_before, 3)})
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
        finally:
            heartbeat.close()
        return final

    def generation(self) -> tuple:
        """Changes whenever an entry is added or removed in any step (the cache's folder and
        its step folders' modification times): a cheap key for "re-read what is computed"."""
        root = Path(self.root)
        return (str(root), *(p.stat().st_mtime_ns for p in sorted(root.glob("*")) if p.is_dir()))

    def build_seconds(self, step: str) -> list[float]:
        """How long each stored entry of `step` took to build on this machine (seconds,
        nested steps included), from the manifests; entries made before this was recorded
        are left out. What the app's time estimates are made of."""
        out = []
        for manifest in Path(self.root).glob(f"{step}/[!.]*/{MANIFEST}"):
            try:
                seconds = json.loads(manifest.read_text())["meta"].get("seconds")
            except (OSError, ValueError, KeyError):
                continue
            if isinstance(seconds, (int, float)):
                out.append(float(seconds))
        return out

    def gc(self, stale_s: float | None = None) -> list[Path]:
        """Remove the build folders whose builder is provably gone (`builder_gone`; another
        host's after `stale_s` seconds without a heartbeat, default `STALE_S`) and the
        `.corrupt-*` folders a failed removal left. Entries are never touched. Returns what
        was removed."""
        removed = []
        root = Path(self.root)
        for folder in sorted(root.glob("*/.tmp-*")) + sorted(root.glob("*/.corrupt-*")):
            if folder.is_dir() and (folder.name.startswith(".corrupt-")
                                    or builder_gone(folder, stale_s)):
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
        return removed

    def verify(self) -> list[tuple[Path, str]]:
        """Every entry read again in full (no memo): [(folder, why it is corrupt)]."""
        bad = []
        for folder in sorted(Path(self.root).glob("*/*")):
            if folder.is_dir() and not folder.name.startswith("."):
                reason = verify_entry(folder, check_hashes=True, memo=False)
                if reason is not None:
                    bad.append((folder, reason))
        return bad

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


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # someone else's process, or not a pid
        return True
    return True


def builder_gone(folder: Path, stale_s: float | None = None) -> bool:
    """Is the builder of build folder `folder` provably gone? Named by this host: its
    process is not running, or its pid belongs to a process started at another time. Named
    by another host: its heartbeat (the folder's modification time) is older than
    `stale_s` (default `STALE_S`). A folder of the older naming (`.tmp-<key>-<pid>-<id>`):
    its pid is not running here. Unreadable names are kept."""
    parts = folder.name.split("-")
    stale_s = STALE_S if stale_s is None else stale_s
    if len(parts) == 4 and parts[2].isdigit():  # .tmp-<key>-<pid>-<id>: before hosts
        return not _running(int(parts[2]))
    if len(parts) != 6 or not (parts[3].isdigit() and parts[4].isdigit()):
        return False
    host, pid, start = parts[2], int(parts[3]), int(parts[4])
    if host == _host_tag():
        now = _start_time(pid)
        return not _running(pid) or (start != 0 and now is not None and now != start)
    try:
        return time.time() - folder.stat().st_mtime > stale_s
    except OSError:
        return False
