"""Test tooling: servers started the way users start them (`streamlit run app.py`, `advrec
serve-study`) on a free local port, and a real headless browser (Debian's chromium +
Playwright) to drive them. Used by the browser tests and by benchmarks/dashboard.py (which
puts tests/ on its path)."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]


def find_chromium() -> str | None:
    """Path of a chromium binary, or None."""
    env = os.environ.get("ADVREC_CHROMIUM")
    for cand in (env, shutil.which("chromium"), shutil.which("chromium-browser"),
                 "/usr/bin/chromium"):
        if cand and Path(cand).is_file():
            return cand
    return None


def why_no_browser() -> str | None:
    """A reason the browser tests cannot run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright)"
    if find_chromium() is None:
        return "no chromium binary (apt install chromium, or set ADVREC_CHROMIUM)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """A running server: its base URL, process and log file."""
    url: str
    proc: subprocess.Popen
    log: Path


@contextmanager
def server(command: list[str], env: dict[str, str], folder: Path, timeout: float = 120):
    """Run `command` (a server taking `--port`, run from the repository root with `env`
    added) on a free port until its /_stcore/health answers; yields a `Server`, terminated
    at the end."""
    port = free_port()
    log = Path(folder) / f"server-{port}.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([*command, "--port" if "serve-study" in command else
                                 "--server.port", str(port)], cwd=ROOT,
                                env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.time() + timeout
            while True:
                try:
                    if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                        break
                except OSError:
                    pass
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"the server did not start: {log.read_text()[-2000:]}")
                time.sleep(0.3)
            yield Server(url, proc, log)
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


@contextmanager
def streamlit_server(cache_dir: Path, timeout: float = 120, env: dict[str, str] | None = None):
    """Yield the base URL of `streamlit run app.py` using `cache_dir` as its cache, with
    `env` added to its environment (e.g. a study server's settings)."""
    with server([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless",
                 "true", "--browser.gatherUsageStats", "false", "--server.fileWatcherType",
                 "none"], {"ADVREC_CACHE": str(cache_dir), **(env or {})}, cache_dir,
                timeout) as running:
        yield running.url


STUDY_PASSWORD = "correct horse battery staple"
STUDY_SECRET = "0123456789abcdef" * 4


@contextmanager
def study_server(folder: Path, env: dict[str, str] | None = None, timeout: float = 120):
    """`advrec serve-study`, its database and cache in `folder`, with a usable password and
    secret unless `env` says otherwise: yields (base URL, path of its log)."""
    with server([sys.executable, "-m", "advrec_core", "serve-study"],
                {"ADVREC_CACHE": str(folder / "cache"),
                 "ADVREC_STUDY_DB": f"sqlite:///{folder / 'study.sqlite'}",
                 "ADVREC_ADMIN_PASSWORD": STUDY_PASSWORD, "ADVREC_STUDY_SECRET": STUDY_SECRET,
                 **(env or {})}, folder, timeout) as running:
        yield running.url, running.log


@contextmanager
def browser_page(width: int = 1400, height: int = 1000):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=find_chromium(), args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": width, "height": height})
        finally:
            browser.close()
