"""One job runner for long work (extractor training, attacks, recommender runs).

A job is a function ``fn(progress) -> result`` with a key naming what it computes (the same
key for the same dataset and config). The runner keeps one worker thread per device, so two
jobs never compete for one GPU (or the CPU's cores); submitting a key that is already queued,
running or done returns that job instead of starting it again (two browser tabs, one job).
Results land in the cache through the pipeline functions themselves (pages read them from
there); the runner also keeps the returned object for callers that wait on a job. A failed
job keeps a one-line error (and the traceback, for a "details" view) and can be submitted again.

The app's jobs are plans (`experiments.steps.run_plan`): with ADVREC_RAY_ADDRESS set (an
address `connect_ray` takes), a plan's steps run as Ray tasks that ship their cache entries
back to this process (no shared storage), and up to RAY_JOBS such jobs run at a time.

The runner is a process-wide singleton (`runner()`): a Streamlit server is one process whose
sessions are threads, so every tab sees the same jobs. It never imports a UI."""
from __future__ import annotations

import os
import queue
import threading
import time
import traceback
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable

from .cache import PROJECT_ROOT
from .config import stable_hash
from .errors import AdvRecError

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
RAY_ADDRESS_ENV = "ADVREC_RAY_ADDRESS"  # set: jobs (and `grid --run`) run on this Ray cluster
RAY_JOBS = 8  # jobs the app keeps on Ray at once (Ray places them by their resources)


def connect_ray(address: str = "auto", num_cpus: int | None = None,
                env: dict[str, str] | None = None):
    """Connect to Ray -> the ray module: "local" starts one on this machine (`num_cpus`,
    default all), "auto" joins the cluster this machine belongs to (`ray start --head` /
    `ray start --address`), "ray://host:port" joins through Ray Client. Already connected:
    kept as it is. Workers find advrec_core through PYTHONPATH (this checkout) unless it
    is installed there, and get `env` (e.g. their own ADVREC_CACHE) added."""
    try:
        import ray
    except ImportError:
        raise AdvRecError("the Ray backend needs ray: pip install 'ray==2.60.0'") from None
    if not ray.is_initialized():
        path = os.pathsep.join(p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH")) if p)
        try:
            ray.init(address=None if address == "local" else address,
                     num_cpus=num_cpus if address == "local" else None, log_to_driver=False,
                     runtime_env={"env_vars": {"PYTHONPATH": path, **(env or {})}})
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise AdvRecError(f"could not connect to Ray at {address!r}: "
                              f"{str(e).splitlines()[0]}; expected local, auto (after "
                              f"`ray start`) or ray://host:port") from None
    return ray


def job_key(kind: str, *parts: Any) -> str:
    """A stable key for `kind` of work on `parts` (dataset spec, configs...)."""
    return f"{kind}-{stable_hash(kind, parts)[:16]}"


@dataclass
class Job:
    key: str
    title: str
    device: str
    state: str = QUEUED
    done: int = 0  # progress of the current step
    total: int = 0
    step: str = ""  # what the job is doing now, e.g. "training demo-cnn/at"
    result: Any = None
    error: str | None = None  # one line for the user
    details: str | None = None  # traceback, for a collapsed "details" view
    submitted: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    _future: Future | None = field(default=None, repr=False)

    def progress(self, done: int, total: int, desc: str) -> None:
        """The job's `Progress` callback (called from the worker thread)."""
        self.done, self.total, self.step = done, total, desc

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 0.0

    @property
    def seconds(self) -> float:
        """Time spent running so far (or in all, once finished)."""
        if self.started is None:
            return 0.0
        return (self.finished or time.time()) - self.started

    @property
    def active(self) -> bool:
        return self.state in (QUEUED, RUNNING)

    def wait(self, timeout: float | None = None) -> "Job":
        """Block until the job ends (tests, CLI); returns self."""
        if self._future is not None:
            try:
                self._future.result(timeout)
            except Exception:  # the error is recorded on the job
                pass
        return self


class _Worker:
    """`threads` daemon threads running what is submitted, in order. Daemon threads: a
    process told to stop (SIGTERM to the server) exits without waiting for a running job
    (a ThreadPoolExecutor's threads are joined at exit, so the job would hold the server
    until it ends); the job's half-built cache folder goes at the next gc (its process has
    ended)."""

    def __init__(self, name: str, threads: int):
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        for n in range(threads):
            threading.Thread(target=self._loop, daemon=True, name=f"{name}-{n}").start()

    def submit(self, fn: Callable, *args) -> Future:
        future: Future = Future()
        self._queue.put((future, fn, args))
        return future

    def _loop(self) -> None:
        while True:
            future, fn, args = self._queue.get()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args))
            except BaseException as e:  # noqa: BLE001 - handed to whoever waits
                future.set_exception(e)


class JobRunner:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self._workers: dict[str, _Worker] = {}

    def submit(self, key: str, fn: Callable[[Callable[[int, int, str], None]], Any],
               title: str, device: str = "cpu") -> Job:
        """Queue `fn(progress)` on `device`'s worker, unless `key` is queued, running or done
        already (then that job is returned). A failed job with this key is replaced."""
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and job.state != FAILED:
                return job
            address = os.environ.get(RAY_ADDRESS_ENV) or None
            job = Job(key, title, f"ray {address}" if address else str(device))
            self._jobs[key] = job
            worker = self._workers.get(job.device)
            if worker is None:
                worker = self._workers[job.device] = _Worker(f"advrec-{job.device}",
                                                             RAY_JOBS if address else 1)
            job._future = worker.submit(self._run, job, fn)
            return job

    @staticmethod
    def _run(job: Job, fn: Callable) -> None:
        job.state, job.started = RUNNING, time.time()
        try:
            job.result = fn(job.progress)
            job.state = DONE
        except Exception as e:  # noqa: BLE001 - every failure is shown to the user
            cause = getattr(e, "cause", None) or e  # a Ray task's error: the job's own
            job.error = str(cause) if isinstance(cause, (AdvRecError, ValueError)) else \
                f"{type(cause).__name__}: {cause}"
            job.details = traceback.format_exc()
            job.state = FAILED
        finally:
            job.finished = time.time()

    def get(self, key: str) -> Job | None:
        return self._jobs.get(key)

    def jobs(self) -> list[Job]:
        """Every job this process knows, newest first."""
        return sorted(self._jobs.values(), key=lambda j: -j.submitted)

    def forget(self, key: str) -> None:
        """Drop a finished job (e.g. after its cache entry was removed)."""
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and not job.active:
                del self._jobs[key]


_RUNNER: JobRunner | None = None
_RUNNER_LOCK = threading.Lock()


def runner() -> JobRunner:
    """The process-wide job runner."""
    global _RUNNER
    with _RUNNER_LOCK:
        if _RUNNER is None:
            _RUNNER = JobRunner()
        return _RUNNER
