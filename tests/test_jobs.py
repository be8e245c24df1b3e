"""The job runner: one worker per device, one job per key, errors kept as one line."""
import threading
import time

import pytest

from advrec_core.cache import Cache, NotCached
from advrec_core.errors import AdvRecError
from advrec_core.jobs import DONE, FAILED, JobRunner, job_key


def test_same_key_runs_once_and_reports_progress():
    runner, calls, release = JobRunner(), [], threading.Event()

    def work(progress):
        calls.append(1)
        progress(1, 4, "step")
        release.wait(5)
        progress(4, 4, "step")
        return "result"

    a = runner.submit("k", work, "job")
    time.sleep(0.05)
    b = runner.submit("k", work, "job")  # a second tab asks for the same work
    assert a is b and a.state == "running" and a.fraction == 0.25 and a.step == "step"
    release.set()
    a.wait(5)
    assert a.state == DONE and a.result == "result" and calls == [1]
    assert runner.submit("k", work, "job") is a  # done: not started again
    assert len(runner.jobs()) == 1 and a.seconds > 0


def test_one_worker_per_device_runs_jobs_in_order():
    runner, order = JobRunner(), []

    def work(name, pause):
        def fn(progress):
            order.append(f"{name} start")
            time.sleep(pause)
            order.append(f"{name} end")
        return fn

    first = runner.submit("a", work("a", 0.2), "a", "cpu")
    second = runner.submit("b", work("b", 0.0), "b", "cpu")
    assert second.state == "queued"
    second.wait(5)
    assert order == ["a start", "a end", "b start", "b end"] and first.state == DONE


def test_failure_is_one_line_and_can_be_retried():
    runner, attempts = JobRunner(), []

    def flaky(progress):
        attempts.append(1)
        if len(attempts) == 1:
            raise AdvRecError("resnet50 weights not found at /x.pth")
        if len(attempts) == 2:
            raise RuntimeError("CUDA out of memory")
        return 42

    job = runner.submit("k", flaky, "flaky").wait(5)
    assert job.state == FAILED and job.error == "resnet50 weights not found at /x.pth"
    assert "Traceback" in job.details
    job = runner.submit("k", flaky, "flaky").wait(5)  # a failed job is replaced
    assert job.state == FAILED and job.error == "RuntimeError: CUDA out of memory"
    job = runner.submit("k", flaky, "flaky").wait(5)
    assert job.state == DONE and job.result == 42 and len(attempts) == 3


def test_job_key_is_stable_and_distinguishes_configs():
    assert job_key("attack", ("demo", 0), {"eps": 8}) == job_key("attack", ("demo", 0), {"eps": 8})
    assert job_key("attack", ("demo", 0), {"eps": 8}) != job_key("attack", ("demo", 0), {"eps": 4})


def test_read_only_cache_never_builds(tmp_path):
    cache, built = Cache(tmp_path), []
    with pytest.raises(NotCached):
        cache.read_only().entry("step", {"a": 1}, lambda f: built.append(f))
    assert built == [] and not list(tmp_path.rglob("*"))  # nothing written, not even a folder
    folder = cache.entry("step", {"a": 1}, lambda f: (f / "x.txt").write_text("x"))
    assert cache.read_only().entry("step", {"a": 1}, lambda f: built.append(f)) == folder
    assert built == []
