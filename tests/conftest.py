"""Isolation: every test gets its own cache folder, job runner and torch hub folder, so
no test can pass (or fail) because of what another test left behind, in any order.

Only steps that are pure functions of their config (the demo catalog, trained extractors,
extracted features) are shared, read-only, through links to a session store: building them
again in every test would cost minutes and could not change any result."""
import os
import shutil
from pathlib import Path

import pytest

SHARED_STEPS = ("demo", "extractor", "features")


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    """The session's store of shared steps (never the repo's cache/)."""
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
    from advrec_core.cache import Cache
    from advrec_core.data.demo import demo_folder

    return demo_folder(cache=Cache(isolated_cache))


@pytest.fixture
def demo(demo_dir):
    """The demo catalog as a Dataset (its images and interactions; loaded from the
    session's store)."""
    from advrec_core.data import load_dataset

    return load_dataset("demo")


@pytest.fixture(scope="session")
def quick():
    """The quick demo CNN: 3 epochs (about 30 s on 2 cores, once per session: extractors
    are shared steps). Barely trained: tests that need the source category use the
    dataset's given categories."""
    from advrec_core.defenses import TrainConfig
    from advrec_core.extractors import ExtractorConfig

    return ExtractorConfig(train=TrainConfig(epochs=3))


@pytest.fixture(autouse=True)
def cache_dir(isolated_cache, tmp_path_factory, monkeypatch):
    """This test's own cache folder ($ADVREC_CACHE): links to the shared steps' entries;
    whatever else the test computes stays its own. Shared-step entries it builds are moved
    to the session store afterwards, for later tests."""
    from advrec_core.cache import Cache

    own = tmp_path_factory.mktemp("testcache")
    Cache(own).link_entries(Cache(isolated_cache), SHARED_STEPS)
    monkeypatch.setenv("ADVREC_CACHE", str(own))
    yield own
    for step in SHARED_STEPS:
        for entry in sorted((own / step).glob("[!.]*")):
            shared = isolated_cache / step / entry.name
            if entry.is_dir() and not entry.is_symlink() and not shared.exists():
                shared.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(entry), str(shared))


@pytest.fixture(autouse=True)
def torch_home(request, tmp_path_factory, monkeypatch):
    """An empty torch hub folder: no test depends on which weights this machine has.
    Tests marked `real_weights` see the machine's own (and skip without them)."""
    if request.node.get_closest_marker("real_weights"):
        return None
    path = Path(tmp_path_factory.mktemp("torch_home"))
    monkeypatch.setenv("TORCH_HOME", str(path))
    return path


@pytest.fixture(autouse=True)
def job_runner(monkeypatch):
    """Each test gets its own job runner, so a job one test left behind cannot satisfy (or
    break) another test's check, whatever the order."""
    from advrec_core import jobs

    fresh = jobs.JobRunner()
    monkeypatch.setattr(jobs, "_RUNNER", fresh)
    return fresh
