"""Shared Streamlit helpers for the pages: cached dataset loading with visible progress."""
from __future__ import annotations

import streamlit as st

from advrec_core.data import DataConfig, load_dataset
from advrec_core.data.demo import demo_folder, demo_is_cached
from advrec_core.errors import AdvRecError

DATASET_KEY = "dataset_spec"  # survives page switches: (spec, k_core, duplicates)


@st.cache_resource(show_spinner="Loading dataset...")
def _load(spec: str, k_core: int, duplicates: str):
    return load_dataset(spec, DataConfig(k_core=k_core, duplicates=duplicates))


def get_dataset(spec: str, k_core: int = 0, duplicates: str = "error"):
    """The Dataset for `spec`, generating the demo catalog first (with progress) if needed.
    A bad dataset stops the page with the loader's one-line error."""
    if spec == "demo" and not demo_is_cached():
        with st.status("Generating the demo catalog (first run only)...", expanded=True) as s:
            bar = st.progress(0.0)
            demo_folder(progress=lambda done, total, desc: bar.progress(
                done / max(total, 1), text=f"{desc}: {done}/{total}"))
            s.update(label="Demo catalog ready", state="complete", expanded=False)
    try:
        return _load(spec, k_core, duplicates)
    except AdvRecError as e:
        st.error(f"Cannot load this dataset. {e}")
        st.stop()
