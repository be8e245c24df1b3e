"""The dataset a page works on: the Data page's choice (a DatasetSpec kept across pages),
loaded once per server with visible progress, and what pages pick from it."""
from __future__ import annotations

import streamlit as st

from advrec_core.cache import Cache, NotCached
from advrec_core.data import DatasetSpec
from advrec_core.data.demo import demo_folder, demo_is_cached
from advrec_core.data.roots import allowed_folder
from advrec_core.errors import AdvRecError
from advrec_core.experiments.categories import CATEGORY_MODES, MODE_NAMES

DATASET_KEY = "dataset_spec"  # survives page switches: a DatasetSpec
ATTACK_JOB_KEY = "attack_job"  # the Attack Lab's AttackJob, read by Recommendation Impact


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
