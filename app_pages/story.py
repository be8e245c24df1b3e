"""Story (the landing page): the question, the pipeline, and what the computed results on the
selected dataset say, each sentence generated from measured numbers with its picture and the
page that shows it. On the demo the story computes itself on the first visit (one job that
every visitor watches; each finding appears as its result lands); elsewhere one click
queues it. A self-contained HTML report downloads from here."""
from pathlib import Path

import streamlit as st

from advrec_core.cache import Cache
from advrec_core.experiments.story import compute_story, estimate, tell
from advrec_core.jobs import job_key, runner
from advrec_core.report import report_html
from ui.data import current_dataset
from ui.jobs import job_panel
from ui.results import story_finding

ROOT = Path(__file__).resolve().parents[1]

st.title("Poisoned product photos vs visual recommenders")
spec, ds = current_dataset()
st.markdown("If a seller uploads **adversarially perturbed** product photos, how much do a "
            "visual recommender's lists change, do **defenses** help, and would a **shopper "
            "notice**? Below: what the results computed on this machine say, for the "
            f"**{ds.name}** dataset (change it on the Data page).")
st.image((ROOT / "assets" / "pipeline.svg").read_text(), width="stretch",
         alt="The pipeline: product photos, an adversary perturbs a low-popularity category "
             "towards a popular one, the CNN extracts features, the visual recommender is "
             "retrained, CHR@K and a perceptibility study measure the effect")

key = job_key("story", ds.spec)
job = runner().get(key)
running = job is not None and job.active
# on the demo the story computes itself (one job: a second visitor watches it); elsewhere
# it waits for the button
autostart = spec.is_demo and job is None


@st.cache_data(show_spinner=False, max_entries=4)
def _story(_ds, spec_key, generation: tuple):
    return tell(_ds), estimate(_ds)


@st.fragment(run_every=2.0)
def _follow(seen: tuple) -> None:
    """While the story computes: the whole page again as soon as a result lands (not on a
    timer: redrawing the findings every few seconds, for every visitor, would slow the job)."""
    if Cache.default().generation() != seen:
        st.rerun()


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{max(seconds, 1):.0f} s"


generation = Cache.default().generation()  # changes when an entry is added (any process)
story, (seconds, how) = _story(ds, spec, generation)
st.subheader("What we found" + (f": {story.source} → {story.target}" if story.source else ""))
for finding in story.findings:
    story_finding(finding)
if not story.findings:
    st.info("The story's first finding appears here as soon as its attack is computed."
            if running or autostart else
            "None of the story's results is computed on this dataset yet.")
if seconds:
    todo = [t for t, _ in story.missing] or ["choose the pair, then PGD (ε=8) on T and AT"]
    st.markdown("**Still to compute:** " + "; ".join(todo))
    st.caption(f"About {_duration(seconds)} left ({how})")
if not story.complete:
    job_panel(key, "The demo story", lambda progress: compute_story(ds, progress=progress),
              label="Compute the story", autostart=autostart, button_key="story_run")
    if running:
        _follow(generation)

st.download_button("Download the report (HTML, one page, works offline)",
                   lambda: report_html(ds), file_name=f"advrec-report-{ds.name}.html",
                   mime="text/html", key="story_report", on_click="ignore")
