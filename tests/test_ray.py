"""The grid on a local Ray (2 CPUs, started here): the same table as the in-process runner,
nothing resubmitted once cached, and a worker killed mid-step retried with no partial entry.

The Ray workers keep their own cache folder (as on a cluster without shared storage): the
driver ships them the entries they read and adds back the entries they compute."""
import os
import signal
import threading
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from advrec_core.cache import Cache
from advrec_core.experiments.grid import GridSpec, grid_table
from advrec_core.experiments.steps import plan, run_plan
from advrec_core.jobs import connect_ray
from advrec_core.recommenders import RecConfig

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def spec(quick):
    return GridSpec.of("Sandal", "Running shoe", attacks=("fgsm-4", "pgd-4"),
                       defenses=("traditional",), models=("vbpr", "amr"), seeds=(0,),
                       ks=(10, 20), limit=6, extractor=quick, rec=RecConfig(epochs=40))


def start_ray(worker_cache: Path) -> None:
    ray.shutdown()
    connect_ray("local", 2, {"ADVREC_CACHE": str(worker_cache)})


def seeded_cache(folder: Path, source: Cache) -> Cache:
    """A driver cache holding the extractor and its features (as after `choose_pair`)."""
    return Cache(folder).link_entries(source, ("extractor", "features"))


@pytest.fixture(scope="module")
def world(demo_dir, tmp_path_factory, spec):
    """The dataset and the in-process runner's table (its own cache)."""
    from advrec_core.data import load_dataset

    ds = load_dataset("demo")
    base = Cache(tmp_path_factory.mktemp("inprocess"))
    out = run_plan(spec.jobs(), ds, base, "cpu")
    assert out.computed == len(plan(*spec.jobs())) and not out.skipped
    assert set(out.seconds_by_kind) == {"extractor", "features", "attack", "runs", "cell"}
    assert out.seconds >= sum(out.seconds_by_kind.values()) > 0
    table = grid_table(ds, spec, base)
    assert table["computed"].all()
    yield ds, base, table
    ray.shutdown()


def test_ray_grid_equals_the_in_process_one_and_resubmits_nothing(world, spec, tmp_path):
    ds, base, expected = world
    start_ray(tmp_path / "worker-cache")
    driver = seeded_cache(tmp_path / "driver", base)
    out = run_plan(spec.jobs(), ds, driver, ray="auto")
    assert out.cached == 2 and out.computed == len(plan(*spec.jobs())) - 2  # extractor, features
    got = grid_table(ds, spec, driver)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert (tmp_path / "worker-cache" / "attack").is_dir()  # computed there, shipped here
    again = run_plan(spec.jobs(), ds, driver, ray="auto")
    assert again.computed == 0 and again.cached == len(plan(*spec.jobs()))


def test_shared_cache_mode_writes_where_the_driver_reads(world, spec, tmp_path):
    """--ray-shared-cache: the workers' ADVREC_CACHE is the driver's folder; nothing is
    shipped, and the table is the in-process one."""
    ds, base, expected = world
    driver = seeded_cache(tmp_path / "shared", base)
    (tmp_path / "shared" / "demo").mkdir()  # the shared folder holds the catalog too
    (tmp_path / "shared" / "demo" / ds.root.name).symlink_to(ds.root, target_is_directory=True)
    start_ray(Path(driver.root))
    out = run_plan(spec.jobs(), ds, driver, ray="auto", shared=True)
    assert out.computed == len(plan(*spec.jobs())) - 2 and not out.skipped
    pd.testing.assert_frame_equal(grid_table(ds, spec, driver), expected, check_exact=True)


def ray_task_pids(prefix: str) -> list[int]:
    """Processes whose title (Ray sets it to "ray::<task name>" while it runs) starts so."""
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
        except OSError:
            continue
        if title.startswith(f"ray::advrec {prefix}"):
            pids.append(int(pid))
    return pids


def test_a_worker_killed_mid_step_is_retried_and_leaves_no_partial_entry(world, spec, tmp_path):
    ds, base, expected = world
    workers = tmp_path / "worker-cache"
    start_ray(workers)
    driver = seeded_cache(tmp_path / "driver", base)
    killed = []

    def kill_first_training_worker():
        deadline = time.time() + 300
        while time.time() < deadline and not killed:
            pids = ray_task_pids("poisoned runs")
            if pids:
                time.sleep(0.3)  # into its training
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
            time.sleep(0.05)

    killer = threading.Thread(target=kill_first_training_worker, daemon=True)
    killer.start()
    out = run_plan(spec.jobs(), ds, driver, ray="auto")
    killer.join(5)
    assert killed, "no training step was seen running"
    assert not out.skipped
    pd.testing.assert_frame_equal(grid_table(ds, spec, driver), expected, check_exact=True)
    assert driver.verify() == []  # every entry whole
    assert not list(Path(driver.root).glob("*/.tmp-*"))
    assert not list(workers.glob("*/.tmp-*"))  # the killed build's folder was cleaned


def test_app_jobs_run_on_ray_and_ship_their_results(world, spec, tmp_path, monkeypatch,
                                                    job_runner):
    """ADVREC_RAY_ADDRESS set: the app's jobs (plans, as the Grid page queues them) run on
    Ray workers with caches of their own; the results ship back, so the app's cache holds
    the same table as in process; the steps' progress reaches the job (the sidebar reads
    it) and a failure keeps its one line."""
    from advrec_core.experiments.steps import run_plan
    from advrec_core.jobs import DONE, FAILED, RAY_ADDRESS_ENV

    ds, base, expected = world
    start_ray(tmp_path / "worker-cache")
    driver = seeded_cache(tmp_path / "driver", base)
    monkeypatch.setenv(RAY_ADDRESS_ENV, "auto")
    seen = []
    job = job_runner.submit("grid", lambda progress: run_plan(spec.jobs(), ds, driver,
                                                              progress=progress), "the grid")
    while job.active:
        seen.append((job.done, job.total, job.step))
        time.sleep(0.05)
    job.wait()
    assert job.state == DONE and job.device == "ray auto", job.details
    assert job.result.computed == len(plan(*spec.jobs())) - 2
    pd.testing.assert_frame_equal(grid_table(ds, spec, driver), expected, check_exact=True)
    assert list((tmp_path / "worker-cache").glob("rec/*"))  # computed there, shipped here
    assert any("runs" in step and "/" in step for _, _, step in seen), seen[-5:]  # within steps
    bad = job_runner.submit("bad", lambda progress: run_plan(
        [replace(spec.cell("fgsm-4", "traditional", "vbpr"),
                 attack=replace(spec.attack_job("fgsm-4", "traditional"), target="Unicorn"))],
        ds, driver, progress=progress), "a failing job").wait()
    assert bad.state == FAILED and "'Unicorn' is not a class" in bad.error, bad.error
    assert "\n" not in bad.error
