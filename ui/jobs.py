"""Long work from the pages: plans of typed steps (`experiments.steps`) submitted to the
engine's job runner, one worker per device (or Ray, with ADVREC_RAY_ADDRESS), watched live
from any tab, with the error and a Retry button when one fails."""
from __future__ import annotations

import streamlit as st

from advrec_core.cache import Cache
from advrec_core.device import resolve_device
from advrec_core.errors import AdvRecError
from advrec_core.experiments.steps import run_plan
from advrec_core.jobs import DONE, FAILED, QUEUED, job_key, runner
from ui.admin import is_admin
from ui.data import cached

_GC_DONE: list[int] = []  # process-wide, not a Streamlit cache: clearing the caches (any
# visitor can ask) must not run it again


def startup_gc() -> int:
    """Once per server process: remove the cache build folders killed runs left behind."""
    if not _GC_DONE:
        _GC_DONE.append(len(Cache.default().gc()))
    return _GC_DONE[0]


def plan_key(ds, jobs: list) -> str:
    """The runner's key of the plan of `jobs` on `ds`: one job however many tabs ask."""
    return job_key("plan", ds.spec, *jobs)


@st.fragment(run_every=1.0)
def _watch(key: str) -> None:
    job = runner().get(key)
    if job is None or not job.active:
        st.rerun()  # the whole page: it now finds the result in the cache (or the error)
    where = "waiting for the worker" if job.state == QUEUED else job.step or "starting"
    st.progress(job.fraction, text=f"{job.title} · {where} · {job.done}/{job.total} · "
                                   f"{job.seconds:.0f} s")
    st.caption("You can leave this page; the job keeps running and its result is cached.")


def runner_idle(key: str) -> bool:
    """No job for `key` is queued, running or failed in this server."""
    job = runner().get(key)
    return job is None or job.state == DONE


def plan_panel(title: str, ds, jobs: list, label: str | None = "Run", autostart: bool = False,
               button_key: str | None = None) -> None:
    """The state of the plan of `jobs` (not computed yet): a Run button (none if `label` is
    None), live progress while it runs (any tab, any page visit), or its error with a Retry
    button. `autostart` submits it now."""
    job_panel(plan_key(ds, jobs), title, lambda progress: run_plan(jobs, ds, progress=progress),
              label, autostart, button_key)


def job_panel(key: str, title: str, work, label: str | None = "Run", autostart: bool = False,
              button_key: str | None = None) -> None:
    """`plan_panel` for work that makes its plan itself (`work(progress)`, keyed `key`: the
    story, which first chooses its pair)."""
    job = runner().get(key)
    if job is not None and job.active:
        _watch(key)
        return
    if job is not None and job.state == FAILED:
        st.error(f"{job.title} failed: {job.error}")
        with st.expander("Details"):
            st.code(job.details or "", language=None)
        label = "Retry"
    elif job is not None and job.state == DONE:  # done, but the cache no longer has it
        runner().forget(key)
    if autostart or (label and st.button(label, key=button_key or f"run_{key}", type="primary")):
        submit(key, title, work)
        st.rerun()


def submit_plan(title: str, ds, jobs: list):
    """Queue the plan of `jobs` (the runner's job keyed by the plan)."""
    return submit(plan_key(ds, jobs), title, lambda progress: run_plan(jobs, ds,
                                                                       progress=progress))


def submit(key: str, title: str, work):
    """Queue `work(progress)` on this machine's device worker; on a study server only an
    admin session may."""
    if not is_admin():
        st.error("Only an administrator can start work on this server.")
        st.stop()
    return runner().submit(key, work, title, str(resolve_device("auto")))


def result_or_plan(fn, ds, job, title: str, submitted: bool, idle_hint: str):
    """The cached result of `fn(ds, job)`; otherwise the state of the plan computing `job`
    (submitted now if `submitted`, else `idle_hint` while nothing runs) and the page stops
    here. A job that cannot run (e.g. no item in its source category) stops the page with
    its error."""
    try:
        result = cached(fn, ds, job)
    except AdvRecError as e:
        st.error(str(e))
        st.stop()
    if result is not None:
        return result
    plan_panel(title, ds, [job], label=None, autostart=submitted)
    if runner_idle(plan_key(ds, [job])):
        st.info(idle_hint)
    st.stop()


@st.fragment(run_every=2.0)
def jobs_sidebar() -> None:
    """Queued and running jobs of this server, on every page (redrawn every 2 s)."""
    active = [j for j in runner().jobs() if j.active]
    failed = [j for j in runner().jobs() if j.state == FAILED][:3]
    if not active and not failed:
        return
    st.caption("**Jobs**")
    for j in active:
        st.progress(j.fraction, text=f"{j.title}: {j.step or j.state}")
    for j in failed:
        st.caption(f":red[failed] {j.title}")
