"""Shared Streamlit helpers for the pages: cached dataset loading with visible progress, and
long work through the core's job runner (submit, watch live, show the error)."""
from __future__ import annotations

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
from advrec_core.study.access import ADMIN_ENV, admin_password, password_ok, study_mode

DATASET_KEY = "dataset_spec"  # survives page switches: a DatasetSpec
ATTACK_JOB_KEY = "attack_job"  # the Attack Lab's AttackJob, read by Recommendation Impact


@st.cache_resource(show_spinner=False)
def startup_gc() -> int:
    """Once per server process: remove the cache build folders killed runs left behind."""
    return len(Cache.default().gc())


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


# --- the perceptibility study -------------------------------------------------------------

ADMIN_KEY = "admin_ok"  # session state: this browser session gave the admin password


@st.cache_resource(show_spinner=False)
def _study_db(url: str):
    from advrec_core.study import session_factory

    return session_factory(url)


def study_db():
    """The study database's session factory ($ADVREC_STUDY_DB or studydata/study.sqlite)."""
    from advrec_core.study import database_url

    return _study_db(database_url())


def hold_participant(db, annotator) -> None:
    """Claim `annotator`'s participant id for this browser session, renewed every 20 s while
    the page is open; the page stops with one line when another session holds it."""
    import uuid

    from advrec_core.study import claim_session

    token = st.session_state.setdefault("study_session", uuid.uuid4().hex)
    if not claim_session(db, annotator, token):
        st.error("This participant id is in use in another window or device. Close it there, "
                 "or try again in a minute.")
        st.stop()

    @st.fragment(run_every=20.0)
    def _renew() -> None:
        claim_session(db, annotator, token)

    _renew()


def is_admin() -> bool:
    """This browser session may use everything: off a study server always; on one
    (`access.study_mode`) once it gave the admin password."""
    return not study_mode() or bool(st.session_state.get(ADMIN_KEY))


def admin_login(title: str = "AdvRec Lab") -> None:
    """The admin login form, in place of a page; the page stops here until the password
    ($ADVREC_ADMIN_PASSWORD) is given, once per browser session. Without a password set,
    the admin side is off."""
    if st.session_state.get(ADMIN_KEY) and admin_password():
        return
    st.title(title)
    if not admin_password():
        st.error(f"Administration is disabled: start the app with the environment variable "
                 f"{ADMIN_ENV} set to a password.")
        st.stop()
    st.caption("This server runs a study. Participants: please use the link you were given.")
    given = st.text_input("Admin password", type="password", key="admin_password")
    if given and password_ok(given):
        st.session_state[ADMIN_KEY] = True
        st.session_state.pop("admin_password", None)
        st.rerun()
    if given:
        st.error("Wrong password.")
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
