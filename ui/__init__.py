"""Shared Streamlit helpers for the pages: cached dataset loading with visible progress, and
long work through the core's job runner (submit, watch live, show the error)."""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from advrec_core.cache import Cache, NotCached
from advrec_core.data import DatasetSpec
from advrec_core.data.demo import demo_folder, demo_is_cached
from advrec_core.data.roots import allowed_folder
from advrec_core.defenses import DEFENSES
from advrec_core.device import resolve_device
from advrec_core.errors import AdvRecError
from advrec_core.experiments.categories import CATEGORY_MODES, MODE_NAMES
from advrec_core.experiments.grid import PAPER_ATTACKS, attack_title
from advrec_core.jobs import DONE, FAILED, QUEUED, runner
from advrec_core.recommenders import RECOMMENDERS
from advrec_core.study.access import admin_guard, password_problem, study_mode

DATASET_KEY = "dataset_spec"  # survives page switches: a DatasetSpec
ATTACK_JOB_KEY = "attack_job"  # the Attack Lab's AttackJob, read by Recommendation Impact


_GC_DONE: list[int] = []  # process-wide, not a Streamlit cache: clearing the caches (any
# visitor can ask) must not run it again


def startup_gc() -> int:
    """Once per server process: remove the cache build folders killed runs left behind."""
    if not _GC_DONE:
        _GC_DONE.append(len(Cache.default().gc()))
    return _GC_DONE[0]


@st.cache_resource(show_spinner="Loading dataset...")
def _load(spec: DatasetSpec):
    return spec.load()


def get_dataset(spec: DatasetSpec):
    """The Dataset for `spec`, generating the demo catalog first (with progress) if needed.
    A bad dataset stops the page with the loader's one-line error."""
    if spec.is_demo and not demo_is_cached():
        with st.status("Generating the demo catalog (first run only)...", expanded=True) as s:
            bar = st.progress(0.0)
            demo_folder(progress=lambda done, total, desc: bar.progress(
                done / max(total, 1), text=f"{desc}: {done}/{total}"))
            s.update(label="Demo catalog ready", state="complete", expanded=False)
    try:
        if not spec.is_demo:
            allowed_folder(spec.source)  # only under $ADVREC_DATA_ROOTS
        return _load(spec)
    except AdvRecError as e:
        st.error(f"Cannot load this dataset. {e}")
        st.stop()


# --- jobs: submit long work to the core's runner, watch it, show errors -----------------

def current_spec() -> DatasetSpec:
    """The dataset the user picked on the Data page (the demo catalog by default)."""
    return st.session_state.get(DATASET_KEY, DatasetSpec())


def current_dataset():
    """(DatasetSpec, Dataset) the user picked on the Data page."""
    spec = current_spec()
    return spec, get_dataset(spec)


def attack_choices(ds) -> list:
    """AttackJobs to pick from: this session's Attack Lab attack, then every attack computed
    on `ds` (any session, the CLI, the grid), newest first."""
    from advrec_core.experiments.attack import computed_attacks

    mine = st.session_state.get(ATTACK_JOB_KEY)
    found = [job for job, _ in computed_attacks(ds)]
    return ([mine] if mine is not None else []) + [j for j in found if j != mine]


def attack_label(job) -> str:
    """"PGD (ε=8) · Sandal → Running shoe · demo-cnn/traditional · 4 images"."""
    return (f"{job.spec.title} · {job.source} → {job.target} · {job.extractor.label} · "
            f"{job.limit or 'all'} images" + (f" · {job.upload.label}" if job.upload.label else ""))


def category_mode(prefix: str, index: int = 0, help: str = "") -> str:
    """The "Categories" radio (predicted | given); changing it resets the page's pair."""
    return st.radio("Categories", CATEGORY_MODES, format_func=MODE_NAMES.get, index=index,
                    horizontal=True, key=f"{prefix}_categories", on_change=reset_pair,
                    args=(prefix,), help=help or "An item's category (source items, CHR@K): "
                    "the extractor's prediction on the clean image, as in the paper, or the "
                    "dataset's own")


def reset_pair(prefix: str) -> None:
    """Forget a page's source/target choice (`<prefix>_source`, `<prefix>_target`), e.g. when
    the category mode changes, so the lists start again from the proposed pair."""
    for name in ("source", "target"):
        st.session_state.pop(f"{prefix}_{name}", None)


def cached(fn, *args, **kwargs):
    """`fn(*args, cache=<read-only>, **kwargs)`, or None while any step is not computed."""
    try:
        return fn(*args, cache=Cache.default().read_only(), **kwargs)
    except NotCached:
        return None


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


def job_panel(key: str, title: str, fn, label: str | None = "Run", autostart: bool = False,
              button_key: str | None = None) -> None:
    """The state of job `key` (not computed yet): a Run button (none if `label` is None),
    live progress while it runs (any tab, any page visit), or its error with a Retry button.
    `fn(progress)` is the work; `autostart` submits it now."""
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
        submit(key, title, fn)
        st.rerun()


def submit(key: str, title: str, fn):
    """Queue `fn(progress)` on this machine's device worker (see advrec_core.jobs); on a
    study server only an admin session may."""
    if not is_admin():
        st.error("Only an administrator can start work on this server.")
        st.stop()
    return runner().submit(key, fn, title, str(resolve_device("auto")))


def show_pngs(images: list, captions: list[str] | None = None) -> None:
    """Images (uint8 (H, W, 3)) as lossless PNG at exactly their pixel width: a
    caption wider than its image would otherwise stretch it (smoothed, non-integer zoom)."""
    if not images:
        return
    captions = captions or [""] * len(images)
    widths = {im.shape[1] for im in images}
    if len(widths) == 1:
        st.image(images, caption=captions, output_format="PNG", width=widths.pop())
        return
    cols = st.columns(min(len(images), 6))  # mixed sizes: one call per image
    for n, (im, cap) in enumerate(zip(images, captions)):
        with cols[n % len(cols)]:
            st.image(im, caption=cap, output_format="PNG", width=im.shape[1])


# --- the perceptibility study and the admin login -----------------------------------------

ADMIN_KEY = "admin_session"  # session state: {"since", "seen"} once the password was given
ADMIN_IDLE_S = 30 * 60  # an admin session ends after this long without a page run ...
ADMIN_MAX_S = 12 * 3600  # ... and this long after the login, whatever happens


@st.cache_resource(show_spinner=False)
def _study_db(url: str):
    from advrec_core.study import session_factory

    return session_factory(url)


def study_db():
    """The study database's session factory ($ADVREC_STUDY_DB or studydata/study.sqlite)."""
    from advrec_core.study import database_url

    return _study_db(database_url())


def client_address() -> str:
    """Who is asking, for the login's throttling: the websocket's peer, or, when it is this
    machine (a reverse proxy on it), the X-Real-IP the proxy set."""
    peer = st.context.ip_address
    if not isinstance(peer, str):  # localhost (None), or no browser at all (AppTest)
        return st.context.headers.get("X-Real-IP") or "localhost"
    return peer


def _logged_in() -> bool:
    """This browser session gave the admin password, and its login is still fresh
    (`ADMIN_IDLE_S` since its last page run, `ADMIN_MAX_S` since the login)."""
    session = st.session_state.get(ADMIN_KEY)
    now = time.time()
    if not session or now - session["seen"] > ADMIN_IDLE_S or now - session["since"] > ADMIN_MAX_S:
        st.session_state.pop(ADMIN_KEY, None)
        return False
    session["seen"] = now
    return True


def is_admin() -> bool:
    """This browser session may use everything: off a study server always; on one
    (`access.study_mode`) while its admin login is fresh."""
    return not study_mode() or _logged_in()


def admin_logout() -> None:
    st.session_state.pop(ADMIN_KEY, None)


def _try_login() -> None:
    """The password box's callback: one attempt per value typed (never on a mere rerun),
    through the process's `AdminGuard`; the value is not kept."""
    given = st.session_state.pop("admin_password", "")
    if not given:
        return
    guard, client = admin_guard(), client_address()
    if guard.attempt(client, given):
        st.session_state[ADMIN_KEY] = {"since": time.time(), "seen": time.time()}
        st.session_state.pop("admin_refused", None)
        return
    locked = guard.locked_for(client)
    st.session_state["admin_refused"] = (
        f"Too many wrong passwords: logins from here are locked for {locked / 60:.0f} more "
        f"minutes." if locked else "Wrong password.")


def admin_login(title: str = "AdvRec Lab") -> None:
    """The admin login form, in place of a page; the page stops here until the password
    ($ADVREC_ADMIN_PASSWORD, at least 12 characters) is given, once per browser session.
    Attempts go through the process's `AdminGuard`: a growing delay per client, a lockout
    after repeated failures, each failure logged. Without a usable password the admin
    side is off."""
    if _logged_in():
        return
    st.title(title)
    problem = password_problem()
    if problem:
        st.error(f"Administration is disabled: {problem}.")
        st.stop()
    st.caption("This server runs a study. Participants: please use the link you were given.")
    st.text_input("Admin password", type="password", key="admin_password", on_change=_try_login)
    if "admin_refused" in st.session_state:
        st.error(st.session_state["admin_refused"])
    st.stop()


def require_admin() -> None:
    """Stop the page unless this session is an admin: the study's design and results are
    never open to annotators, so these pages need the password on any server."""
    admin_login("Study administration")


def result_or_job(fn, ds, job, key: str, title: str, submitted: bool, idle_hint: str):
    """The cached result of `fn(ds, job)`; otherwise the job's state (submitted now if
    `submitted`, else `idle_hint` while nothing runs) and the page stops here. A job that
    cannot run (e.g. no item in its source category) stops the page with its error."""
    try:
        result = cached(fn, ds, job)
    except AdvRecError as e:
        st.error(str(e))
        st.stop()
    if result is not None:
        return result
    job_panel(key, title, lambda progress: fn(ds, job, progress=progress), label=None,
              autostart=submitted)
    if runner_idle(key):
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


def model_title(name: str) -> str:
    """"VBPR"; "BPR-MF (no images: a control)"."""
    m = RECOMMENDERS.get(name)
    return m.title if m.uses_images else f"{m.title} (no images: a control)"


def heatmap(values: pd.DataFrame, title: str, fmt: str, key: str, diverging: bool = False):
    """values: attack x defense; NaN cells are drawn grey and labelled "missing"."""
    v = values.reindex(index=list(PAPER_ATTACKS), columns=DEFENSES.available()).astype(float)
    z = v.to_numpy()
    text = [["missing" if not np.isfinite(x) else format(x, fmt) for x in r] for r in z]
    span = float(np.nanmax(np.abs(z))) if np.isfinite(z).any() else 1.0
    fig = go.Figure(go.Heatmap(
        z=z, x=[DEFENSES.get(d).short for d in v.columns], y=[attack_title(a) for a in v.index],
        text=text, texttemplate="%{text}", showscale=False, hoverongaps=False,
        colorscale="RdBu_r" if diverging else "Viridis",
        zmin=-span if diverging else None, zmax=span if diverging else None))
    fig.update_layout(title=title, height=320, margin=dict(l=10, r=10, t=40, b=10),
                      plot_bgcolor="#ddd", yaxis_autorange="reversed")
    st.plotly_chart(fig, key=key)
