"""Story (the landing page): the question, the pipeline, and what the computed results on the
selected dataset say, each sentence generated from measured numbers with its picture and the
page that shows it. Missing story cells can be queued in one click; a self-contained HTML
report downloads from here."""
from pathlib import Path

import streamlit as st

from advrec_core.cache import Cache
from advrec_core.experiments.poison import run_poison
from advrec_core.experiments.story import compute_story, estimate, tell
from advrec_core.jobs import job_key, runner
from advrec_core.report import report_html
from ui import current_dataset, job_panel, submit
from ui.results import story_finding

ROOT = Path(__file__).resolve().parents[1]

st.title("Poisoned product photos vs visual recommenders")
spec, ds = current_dataset()
st.markdown("If a seller uploads **adversarially perturbed** product photos, how much do a "
            "visual recommender's lists change, do **defenses** help, and would a **shopper "
            "notice**? Below: what the results computed on this machine say, for the "
            f"**{ds.name}** dataset (change it on the Data page).")
st.html((ROOT / "assets" / "pipeline.svg").read_text())


@st.cache_data(show_spinner="Reading the computed results...", max_entries=4)
def _story(_ds, spec_key, generation: tuple):
    return tell(_ds)


generation = Cache.default().generation()  # re-read when an entry is added (any process)
story = _story(ds, spec, generation)
st.subheader("What we found" + (f": {story.source} → {story.target}" if story.source else ""))
for finding in story.findings:
    story_finding(finding)
if not story.findings:
    st.info("None of the story's results is computed on this dataset yet.")

if story.missing or story.spec is None:
    seconds, how = estimate(None, story.missing, story.attacks_missing)
    todo = [t for t, _ in story.missing] or ["choose the pair, then PGD (ε=8) on T and AT"]
    st.markdown("**Still to compute:** " + "; ".join(todo))
    st.caption(("About " + (f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s")
                + f" ({how})") if seconds is not None else how.capitalize())
    keys = ([(job_key("poison", spec, job), title, job) for title, job in story.missing]
            if story.spec is not None else [(job_key("story", spec), "The demo story", None)])
    busy = [k for k, _, _ in keys if (j := runner().get(k)) is not None and j.active]
    if busy:
        job_panel(busy[0], "story cell", None, label=None)  # live; the page re-reads after
    elif st.button("Compute the demo story", type="primary", key="story_run"):
        for key, title, job in keys:
            submit(key, title, (lambda progress, job=job: run_poison(ds, job, progress=progress))
                   if job is not None else (lambda progress: compute_story(ds, progress=progress)))
        st.rerun()

st.download_button("Download the report (HTML, one page, works offline)",
                   lambda: report_html(ds), file_name=f"advrec-report-{ds.name}.html",
                   mime="text/html", key="story_report", on_click="ignore")
