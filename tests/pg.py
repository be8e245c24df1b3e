"""A throw-away PostgreSQL server for the storage tests: $ADVREC_TEST_PG_URL if set, else a
cluster made with Debian's `initdb` in a temporary folder, listening on a unix socket only,
stopped at the end. `why_no_postgres()` says why none can run here."""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from browser import free_port


def _bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    cands = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return cands[-1] if cands else None


def why_no_postgres() -> str | None:
    if os.environ.get("ADVREC_TEST_PG_URL"):
        return None
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed"
    if not (_bin("initdb") and _bin("pg_ctl")):
        return "no PostgreSQL server binaries (apt-get install postgresql)"
    if os.geteuid() == 0 and not shutil.which("runuser"):
        return "running as root without runuser (initdb refuses root)"
    return None


@contextmanager
def postgres_url():
    """Yield a SQLAlchemy URL of an empty database."""
    env_url = os.environ.get("ADVREC_TEST_PG_URL")
    if env_url:
        yield env_url
        return
    root = Path(tempfile.mkdtemp(prefix="advrec-pg-"))
    data, port = root / "data", free_port()
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb and postgres refuse to run as root
        import pwd

        user = "postgres"
        pwd.getpwnam(user)
        shutil.chown(root, user)
        as_user = ["runuser", "-u", user, "--"]
    run = lambda *cmd: subprocess.run([*as_user, *cmd], check=True, capture_output=True)  # noqa: E731
    try:
        run(_bin("initdb"), "-D", str(data), "-U", "advrec", "--auth=trust", "-E", "UTF8")
        run(_bin("pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "-o",
            f"-p {port} -k {root} -c listen_addresses='' -c fsync=off", "start")
        deadline = time.time() + 30
        while not (root / f".s.PGSQL.{port}").exists():
            if time.time() > deadline:
                raise RuntimeError(f"postgres did not start; see {root / 'log'}")
            time.sleep(0.2)
        yield f"postgresql+psycopg://advrec@/postgres?host={root}&port={port}"
    finally:
        subprocess.run([*as_user, _bin("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
