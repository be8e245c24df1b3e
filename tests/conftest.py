import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    """Every test session gets its own cache folder (never the repo's cache/)."""
    path = tmp_path_factory.mktemp("cache")
    old = os.environ.get("ADVREC_CACHE")
    os.environ["ADVREC_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("ADVREC_CACHE", None)
    else:
        os.environ["ADVREC_CACHE"] = old


@pytest.fixture(scope="session")
def demo_dir(isolated_cache):
    """The default demo catalog, generated once per session (~30 s on 2 cores)."""
    from advrec_core.data.demo import demo_folder

    return demo_folder()


@pytest.fixture(autouse=True)
def job_runner(monkeypatch):
    """Each test gets its own job runner, so a job one test left behind cannot satisfy (or
    break) another test's check, whatever the order."""
    from advrec_core import jobs

    fresh = jobs.JobRunner()
    monkeypatch.setattr(jobs, "_RUNNER", fresh)
    return fresh
