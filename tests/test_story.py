"""The Story page and the report: sentences generated from the computed results (numbers
checked against the results themselves), what is missing and how long it would take here,
the self-contained HTML report, and the landing page in a real browser."""
import re
import threading

import numpy as np
import pytest
from browser import browser_page, streamlit_server, why_no_browser
from helpers import ROOT
from streamlit.testing.v1 import AppTest

from advrec_core.cli import main
from advrec_core.data import load_dataset
from advrec_core.experiments.attack import AttackJob, run_attack_job
from advrec_core.experiments.poison import run_poison
from advrec_core.experiments.story import STORY_CELLS, estimate, story_spec, tell, wilson
from advrec_core.jobs import job_key, runner
from advrec_core.report import report_html


def computed_story_cell(ds, quick):
    """The Traditional story cell, computed as a user would: an attack in the Attack Lab
    (4 images), then the story's clean-vs-poisoned VBPR cell on it."""
    run_attack_job(ds, AttackJob("Sandal", "Running shoe", extractor=quick, limit=4))
    spec = story_spec(ds).fitted(ds.n_items)
    a, d, m = STORY_CELLS[0]
    return spec, run_poison(ds, spec.cell(a, d, m))


def test_the_demo_story_starts_itself_with_an_honest_estimate(demo_dir, job_runner,
                                                               monkeypatch):
    """Nothing computed: the demo's story job starts on the first visit (no click) and the
    page gives a time for what is left, never "0 s"; the job itself is held here."""
    ds = load_dataset("demo")
    story = tell(ds)
    assert not story.findings and not story.complete
    seconds, how = estimate(ds)  # fresh cache: the reference run's times, shipped CNNs copied
    assert seconds > 10 and "reference" in how and "12 recommender runs" in how, how
    assert "shipped CNN" in how and "CNN training" not in how, how  # copied, never trained
    gate, submit = threading.Event(), job_runner.submit
    monkeypatch.setattr(job_runner, "submit", lambda key, fn, title, device: submit(
        key, lambda progress: gate.wait(120), title, device))
    try:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
        assert not at.exception and at.title[0].value.startswith("Poisoned product photos")
        job = job_runner.get(job_key("story", ds.spec))
        assert job is not None and job.active  # started by the visit itself
        assert "first finding appears here" in at.info[0].value
        left = [c.value for c in at.caption if c.value.startswith("About")]
        assert left and re.match(r"About \d+ (min|s) left", left[0]) and " 0 s" not in left[0]
    finally:
        gate.set()


def test_story_sentences_come_from_the_results(demo_dir, tmp_path, capsys, quick, job_runner,
                                               monkeypatch):
    ds = load_dataset("demo")
    spec, res = computed_story_cell(ds, quick)
    story = tell(ds)
    kinds = [f.kind for f in story.findings]
    assert kinds == ["attack", "perception", "impact"], kinds  # T only: AT is missing
    missing = [t for t, _ in story.missing]  # the AT cell, and the platform's JPEG check
    assert missing[0] == "VBPR · PGD (ε=8) · AT" and len(missing) == 3, missing
    assert missing[1].startswith("PGD (ε=8) through jpeg:75")
    assert missing[2].startswith("adaptive PGD (ε=8) through jpeg:75")
    avg = res.attack_summary["averages"]
    lo, hi = wilson(round(avg["SR"] * avg["n"]), avg["n"])
    attack = story.findings[0].text
    assert f"**{avg['SR']:.0%}** of 4 Sandal images (95% CI {lo:.0%}–{hi:.0%})" in attack
    ch = res.change.set_index("K").loc[20]
    impact = story.findings[2].text
    assert f"CHR@20 {ch['clean']:.4f} → {ch['poisoned']:.4f}" in impact
    assert f"**{ch['relative']:+.0%}**" in impact and "3 seeds" in impact
    assert ("not significant" in impact) == (not ch["p_value"] < 0.05)
    clean, adv = story.findings[0].pair
    assert clean.shape == adv.shape == (96, 96, 3) and np.abs(adv.astype(int) - clean).max() <= 8
    seconds, how = estimate(ds)  # timed from this cache's own builds
    assert seconds > 0 and "median" in how and "2 attacks" in how and "1 adaptive attack" in how
    page = report_html(ds)
    assert "<script" not in page and 'src="http' not in page  # offline, no code
    assert page.count("data:image/png;base64,") >= 3
    assert f"{ch['clean']:.4f}" in page and "Table 1" in page and "Table 2" in page
    out = tmp_path / "report.html"
    assert main(["--quiet", "report", "demo", "--out", str(out)]) == 0
    assert out.read_text().startswith("<!doctype html>") and "written" in capsys.readouterr().out
    gate, submit = threading.Event(), job_runner.submit
    monkeypatch.setattr(job_runner, "submit", lambda key, fn, title, device: submit(
        key, lambda progress: gate.wait(120), title, device))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    gate.set()
    assert not at.exception
    texts = " ".join(m.value for m in at.markdown)
    assert f"CHR@20 {ch['clean']:.4f} → {ch['poisoned']:.4f}" in texts
    assert at.get("download_button")
    job = runner().get(job_key("story", ds.spec))  # on the demo the rest computes itself
    assert job is not None  # (held here; the tour test lets the story finish)


REASON = why_no_browser()


@pytest.mark.skipif(REASON is not None, reason=f"no browser: {REASON}")
def test_landing_page_and_report_in_a_browser(demo_dir, cache_dir, tmp_path, quick):
    import os
    from pathlib import Path

    ds = load_dataset("demo")
    _, res = computed_story_cell(ds, quick)
    ch = res.change.set_index("K").loc[20]
    shots = Path(os.environ.get("ADVREC_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    report = tmp_path / "report.html"
    report.write_text(report_html(ds))
    with streamlit_server(cache_dir) as url, browser_page() as page:
        page.goto(url)  # "/": the Story
        page.get_by_text("fooled the undefended CNN").wait_for(timeout=120_000)
        page.get_by_text("put Sandal items in top-20 lists").wait_for(timeout=60_000)
        pipeline = page.locator('img[alt^="The pipeline"]')  # the picture shows (decoded)
        assert pipeline.evaluate("i => i.complete && i.naturalWidth > 0")
        body = page.locator("body").inner_text()
        assert re.search(r"on \d+% of 4 Sandal images \(95% CI \d+%–\d+%\)", body), body[:2000]
        assert f"{ch['clean']:.4f} → {ch['poisoned']:.4f}" in body
        page.screenshot(path=str(shots / "story.png"), full_page=True)
        page.route("**/*", lambda r: r.abort() if r.request.url.startswith("http")
                   else r.continue_())  # offline: nothing may load from a network
        page.goto(report.as_uri())
        page.get_by_text("What we found").wait_for()
        assert page.locator("img").count() >= 3
        assert page.evaluate("[...document.images].every(i => i.complete && i.naturalWidth > 0)")
        page.screenshot(path=str(shots / "report.png"), full_page=True)


def test_the_platform_finding_is_told_from_its_three_attacks(demo_dir, quick):
    """JPEG q75 re-encoding, plain and planned for, with what the category check flags: told
    once all three attacks are computed, each number from its result."""
    from advrec_core.experiments.story import platform_jobs

    ds = load_dataset("demo")
    spec, _ = computed_story_cell(ds, quick)
    assert not [f for f in tell(ds).findings if f.kind == "platform"]  # not computed: not told
    plain, adaptive = (run_attack_job(ds, job) for job in platform_jobs(spec))
    story = tell(ds)
    [finding] = [f for f in story.findings if f.kind == "platform"]
    base = run_attack_job(ds, spec.cell(*STORY_CELLS[0]).attack)
    for res in (base, plain, adaptive):
        assert f"{res.summary['averages']['SR']:.0%}" in finding.text
    assert adaptive.summary["adaptive"] and adaptive.summary["channel"] == "jpeg:75"
    det = adaptive.summary["detection"]["category"]
    assert f"flagged **{det['flagged']:.0%}**" in finding.text
    assert [t for t, _ in story.missing] == ["VBPR · PGD (ε=8) · AT"]
