import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from advrec_core.cache import Cache, atomic_write_bytes
from advrec_core.config import stable_hash
from advrec_core.errors import UnknownNameError
from advrec_core.registry import Registry


@dataclass(frozen=True)
class Cfg:
    seed: int = 0
    eps: float = 4 / 255
    name: str = "pgd"


def test_stable_hash_is_stable_and_sensitive():
    assert stable_hash(Cfg()) == stable_hash(Cfg())
    assert stable_hash(Cfg()) != stable_hash(Cfg(seed=1))
    assert stable_hash(Cfg()) != stable_hash(Cfg(), {"data": "x"})
    assert stable_hash(np.arange(3)) != stable_hash(np.arange(3.0))  # dtype counts


def test_stable_hash_known_value():
    # pinned: a change here silently orphans every existing cache entry
    assert stable_hash({"a": 1, "b": [1, 2]}) == stable_hash({"b": [1, 2], "a": 1})
    assert stable_hash({"a": 1}) == "b713f6d2a989e907"


def build_ok(folder):
    (folder / "x.npy").write_bytes(np.arange(10).tobytes())
    (folder / "sub").mkdir()
    (folder / "sub" / "y.txt").write_text("hello")


def test_entry_builds_once_and_is_reused(tmp_path):
    cache, calls = Cache(tmp_path), []
    def build(f):
        calls.append(1)
        build_ok(f)
    a = cache.entry("step", Cfg(), build)
    b = cache.entry("step", Cfg(), build)
    assert a == b and len(calls) == 1
    assert json.loads((a / "manifest.json").read_text())["meta"]["config"]["seed"] == 0
    assert [p.name for p in (tmp_path / "step").iterdir()] == [a.name]  # no temp left


@pytest.mark.parametrize("damage", ["flip", "truncate", "manifest", "delete"])
def test_corrupt_entry_is_rebuilt_not_loaded(tmp_path, damage):
    cache, calls = Cache(tmp_path), []
    def build(f):
        calls.append(1)
        build_ok(f)
    entry = cache.entry("step", Cfg(), build)
    target = entry / "x.npy"
    if damage == "flip":
        data = bytearray(target.read_bytes())
        data[3] ^= 0xFF
        target.write_bytes(bytes(data))
    elif damage == "truncate":
        target.write_bytes(target.read_bytes()[:5])
    elif damage == "manifest":
        (entry / "manifest.json").unlink()
    else:
        (entry / "sub" / "y.txt").unlink()
    assert cache.lookup("step", Cfg()) is None
    again = cache.entry("step", Cfg(), build)
    assert len(calls) == 2 and (again / "x.npy").read_bytes() == np.arange(10).tobytes()


def test_failed_build_leaves_nothing(tmp_path):
    cache = Cache(tmp_path)
    def build(f):
        (f / "half.bin").write_bytes(b"123")
        raise RuntimeError("boom")
    with pytest.raises(RuntimeError):
        cache.entry("step", Cfg(), build)
    assert list((tmp_path / "step").iterdir()) == []


def test_atomic_write_failure_keeps_old_file(tmp_path, monkeypatch):
    p = tmp_path / "f.txt"
    atomic_write_bytes(p, b"old")
    import os
    def bad_replace(*a):
        raise OSError("disk full")
    monkeypatch.setattr(os, "replace", bad_replace)
    with pytest.raises(OSError):
        atomic_write_bytes(p, b"new")
    assert p.read_bytes() == b"old" and [x.name for x in tmp_path.iterdir()] == ["f.txt"]


def test_registry_unknown_name_lists_known():
    reg = Registry("attack")
    reg.register("fgsm")(object)
    reg.register("pgd")(object)
    with pytest.raises(UnknownNameError, match="unknown attack 'cw'; known: fgsm, pgd"):
        reg.get("cw")
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("pgd")(object)
    assert reg.available() == ["fgsm", "pgd"]


def test_gc_removes_a_build_folder_only_when_its_builder_is_provably_gone(tmp_path, capsys):
    """A live build folder 2 h old by its clock stays; a builder killed with SIGKILL loses its
    folder at the next gc; a pid reused by a later process does not keep a dead builder's
    folder; older names (pid only) go when that pid is not running; entries stay."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from advrec_core.cache import _host_tag, builder_id
    from advrec_core.cli import main

    cache = Cache(tmp_path)
    entry = cache.entry("step", Cfg(), build_ok)
    live = entry.parent / f".tmp-{entry.name}-{builder_id()}-abcd1234"  # this process
    live.mkdir()
    os.utime(live, (time.time() - 7200, time.time() - 7200))  # its clock says 2 h
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    killed = entry.parent / f".tmp-{entry.name}-{builder_id(pid=child.pid)}-abcd1234"
    killed.mkdir()
    (killed / "half.npy").write_bytes(b"\0" * 10)
    reused = entry.parent / f".tmp-{entry.name}-{_host_tag()}-{os.getpid()}-1-abcd1234"
    reused.mkdir()  # this pid, but a process started at another time
    legacy = entry.parent / f".tmp-{entry.name}-{child.pid}-abcd1234"
    legacy.mkdir()
    assert cache.gc() == [reused]  # the killed builder still runs
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert sorted(cache.gc()) == sorted([killed, legacy])
    assert live.is_dir() and Cache(tmp_path).lookup("step", Cfg()) == entry
    killed.mkdir()
    assert main(["--cache", str(tmp_path), "cache", "gc"]) == 0
    assert not killed.exists() and live.exists() and "1 stale build folder" in capsys.readouterr().out


def test_two_hosts_on_one_cache_never_remove_each_others_live_builds(tmp_path, monkeypatch):
    """A cache two machines share: each host's gc keeps the other's build folder while its
    heartbeat goes on (whatever its pid means here), and removes it once the heartbeat has
    stopped for longer than the stale limit."""
    import os
    import time

    import advrec_core.cache as C

    cache = Cache(tmp_path)
    hosts = {"a": C.builder_id(host="node-a", pid=1), "b": C.builder_id(host="node-b", pid=1)}
    folders = {h: tmp_path / "attack" / f".tmp-0123456789abcdef-{b}-abcd1234"
               for h, b in hosts.items()}
    for f in folders.values():
        f.mkdir(parents=True)
    for here, there in (("a", "b"), ("b", "a")):
        monkeypatch.setattr(C.socket, "gethostname", lambda here=here: f"node-{here}")
        os.utime(folders[there])  # its builder's heartbeat
        removed = cache.gc()
        assert folders[there] not in removed and folders[there].is_dir(), (here, removed)
    monkeypatch.setattr(C.socket, "gethostname", lambda: "node-a")
    os.utime(folders["b"], (time.time() - C.STALE_S - 60,) * 2)  # node b died 11 min ago
    assert folders["b"] in cache.gc() and not folders["b"].exists()


def test_a_build_keeps_its_heartbeat(tmp_path, monkeypatch):
    """While `build` runs, its folder's modification time keeps moving (the heartbeat)."""
    import time

    import advrec_core.cache as C

    monkeypatch.setattr(C, "HEARTBEAT_S", 0.05)
    seen = []

    def slow(folder):
        import os

        os.utime(folder, (time.time() - 3600,) * 2)  # as if an hour had passed
        time.sleep(0.3)
        seen.append(time.time() - folder.stat().st_mtime)
        build_ok(folder)

    Cache(tmp_path).entry("step", Cfg(), slow)
    assert seen[0] < 1.0


def test_verify_reads_every_file_again(tmp_path, capsys, monkeypatch):
    import os
    import time

    import advrec_core.cache as C
    from advrec_core.cli import main

    cache = Cache(tmp_path)
    entry = cache.entry("step", Cfg(), build_ok)
    past = time.time() - 60
    for f in entry.rglob("*"):
        os.utime(f, (past, past))  # old enough to be memoised
    assert cache.lookup("step", Cfg()) == entry
    calls = []
    monkeypatch.setattr(C, "_hash_bytes", lambda p, *a: calls.append(p) or "0" * 64)
    assert cache.lookup("step", Cfg()) == entry and calls == []  # memoised: nothing read
    monkeypatch.undo()
    target = entry / "x.npy"
    data = bytearray(target.read_bytes())
    data[3] ^= 0xFF
    target.write_bytes(bytes(data))
    os.utime(target, (past, past))  # same size, same mtime: only a full read sees it
    assert main(["--cache", str(tmp_path), "cache", "verify"]) == 1
    assert "x.npy does not match its sha256" in capsys.readouterr().out


def test_entries_ship_between_caches_whole(tmp_path):
    """export_entries / import_entries (how Ray workers and the driver exchange results):
    the receiving cache gets each entry verified and whole, keeps an intact copy it already
    has (another process may be reading it), and refuses a damaged one without a trace."""
    import io
    import tarfile

    src = Cache(tmp_path / "a")
    a = src.entry("s", {"n": 1}, lambda d: (d / "x.bin").write_bytes(b"abc"))
    b = src.entry("s", {"n": 2}, lambda d: (d / "sub").mkdir() or (d / "sub/y").write_text("y"))
    bundle = Cache.export_entries([a, b, a])
    dst = Cache(tmp_path / "b")
    assert sorted(p.name for p in dst.import_entries(bundle)) == sorted([a.name, b.name])
    assert dst.lookup("s", {"n": 1}) is not None and dst.verify() == []
    assert (Path(dst.root) / "s" / b.name / "sub" / "y").read_text() == "y"
    inode = (Path(dst.root) / "s" / a.name / "x.bin").stat().st_ino
    assert dst.import_entries(bundle) == []  # already there: kept as it is
    assert (Path(dst.root) / "s" / a.name / "x.bin").stat().st_ino == inode
    damaged = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(Cache.export_entries([a]))) as tin, \
            tarfile.open(fileobj=damaged, mode="w") as tout:
        for m in tin.getmembers():
            data = tin.extractfile(m).read() if m.isfile() else None
            if m.name.endswith("x.bin"):
                data = b"abd"
            tout.addfile(m, io.BytesIO(data) if data is not None else None)
    other = Cache(tmp_path / "c")
    with pytest.raises(ValueError, match="corrupt"):
        other.import_entries(damaged.getvalue())
    assert not list(Path(other.root).glob("s/*")) and not list(Path(other.root).glob("s/.*"))


_WRITER = r"""
import os, sys
from pathlib import Path
from advrec_core.cache import Cache

def pause(what):  # tell the test where the write is, and wait until it says go on
    print(what, flush=True)
    if sys.stdin.readline().strip() != "go":
        sys.exit(3)

rename = os.rename
def paused_rename(src, dst):  # the last moment before an entry would become visible
    pause("rename")
    rename(src, dst)
os.rename = paused_rename

def build(folder):
    for i in range(3):
        (folder / f"part{i}.bin").write_bytes(bytes([i]) * 4096)
        pause(f"part{i}")

Cache(Path(sys.argv[1])).entry("step", {"n": 1}, build)
print("done", flush=True)
"""


def _writer(root):
    import subprocess
    import sys

    return subprocess.Popen([sys.executable, "-c", _WRITER, str(root)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)


def test_an_entry_appears_whole_or_not_at_all_wherever_its_writer_is_killed(tmp_path):
    """A writer process is stopped at every point of an entry's write (after each file,
    and just before the entry would be renamed into place) and killed with SIGKILL there.
    Meanwhile, and after the kill, the entry's folder does not exist and a read finds
    nothing; the next gc removes the dead writer's build folder; a later build is whole."""
    import signal

    points = ["part0", "part1", "part2", "rename"]
    for kill_at in points:
        root = tmp_path / kill_at
        cache = Cache(root)
        final = cache.path("step", cache.key({"n": 1}))
        proc = _writer(root)
        try:
            for point in points[:points.index(kill_at) + 1]:
                assert proc.stdout.readline().strip() == point
                assert not final.exists(), f"a half-written entry is visible at {point}"
                assert Cache(root).lookup("step", {"n": 1}) is None
                if point != kill_at:
                    proc.stdin.write("go\n")
                    proc.stdin.flush()
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            proc.kill()
        assert not final.exists() and cache.lookup("step", {"n": 1}) is None, kill_at
        assert [p.name for p in cache.gc()] and not list((root / "step").iterdir()), kill_at
    proc = _writer(tmp_path / "whole")  # the same writer, never stopped: the entry is whole
    out, _ = proc.communicate("go\n" * len(points), timeout=60)
    assert out.split() == [*points, "done"]
    entry = Cache(tmp_path / "whole").lookup("step", {"n": 1})
    assert entry is not None and sorted(p.name for p in entry.iterdir()) == [
        "manifest.json", "part0.bin", "part1.bin", "part2.bin"]
