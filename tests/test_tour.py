"""The five-minute tour in headless Chromium: `streamlit run app.py` on a cache holding only the
demo shop (the shipped CNNs are copied in by the story itself), the Story computes itself with
no click, then every page in explore mode shows real content: numbers, images, tables; the
study pages, the administrator's, on the study server (`advrec serve-study`) after the login.

With ADVREC_TOUR_SHOTS=<folder> each page's screenshot is written there, scaled to 900 px
wide and stored as a small palette PNG (the README's tour: `assets/tour`)."""
import os
import re
import time
from pathlib import Path

import pytest
from browser import STUDY_PASSWORD, browser_page, streamlit_server, study_server, why_no_browser
from helpers import stimuli

REASON = why_no_browser()
STORY_S = 900  # generous on a loaded 2-core CI machine; the measured times are printed


def shot(page, folder: Path | None, name: str) -> None:
    """The page's viewport as a small PNG in `folder` (nothing without one)."""
    if folder is None:
        return
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path))
    img = Image.open(path).convert("RGB")
    img = img.resize((900, round(img.height * 900 / img.width)), Image.LANCZOS)
    img.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


def numbers(text: str) -> int:
    """How many numbers `text` holds (a page with real content shows some)."""
    return len(re.findall(r"\d+(?:\.\d+)?%?", text))


@pytest.mark.skipif(REASON is not None, reason=f"no browser: {REASON}")
def test_the_tour(demo_dir, tmp_path):
    from advrec_core.cache import Cache
    from advrec_core.study import StudyConfig, create_study, session_factory
    from advrec_core.study.db import dispose
    from advrec_core.study.participation import get_annotator, next_trial, submit_answer

    cache = tmp_path / "cache"
    Cache(cache).link_entries(Cache(Path(os.environ["ADVREC_CACHE"])), ("demo",))
    db_url = f"sqlite:///{tmp_path / 'study.sqlite'}"
    db = session_factory(db_url)
    study = create_study(db, "tour", StudyConfig(trials_per_annotator=6, catch_trials=1),
                         stimuli())
    for pid in ("p1", "p2", "p3"):  # three people answered: the analysis has numbers
        ann = get_annotator(db, study, pid)
        while (t := next_trial(db, ann)) is not None:
            submit_answer(db, ann.id, t.trial_id, "left", rt_ms=900.0)
    dispose(db_url)
    shots = Path(os.environ["ADVREC_TOUR_SHOTS"]) if os.environ.get("ADVREC_TOUR_SHOTS") else None
    with streamlit_server(cache) as url, \
            browser_page(1280, 900) as page:
        t0 = time.perf_counter()
        page.goto(url)  # the Story: nothing computed, nothing clicked
        left = page.get_by_text(re.compile(r"About \d+ (s|min) left")).first
        left.wait_for(timeout=120_000)
        estimate = left.inner_text()
        page.get_by_text("fooled the undefended CNN").wait_for(timeout=STORY_S * 1000)
        first = time.perf_counter() - t0
        other = page.context.browser.new_page()  # a second visitor, arriving mid-way
        t1 = time.perf_counter()
        other.goto(url)
        other.get_by_text("fooled the undefended CNN").wait_for(timeout=STORY_S * 1000)
        other_first = time.perf_counter() - t1
        for p in (page, other):
            p.get_by_text("cut the success").wait_for(timeout=STORY_S * 1000)
            p.get_by_text("Still to compute").first.wait_for(state="detached", timeout=120_000)
        full, other_full = time.perf_counter() - t0, time.perf_counter() - t1
        print(f"tour: estimate shown first '{estimate}'; first finding after {first:.0f} s, "
              f"the whole story after {full:.0f} s; a second visitor arriving at "
              f"{t1 - t0:.0f} s saw the first finding after {other_first:.0f} s and the whole "
              f"story after {other_full:.0f} s")
        other.close()
        body = page.locator("body").inner_text()
        assert "put Sandal items in top-20 lists" in body and "CHR@20" in body, body[:3000]
        assert "Re-encoding every upload as JPEG q75" in body and "flagged" in body  # the platform
        assert page.locator('img[alt^="The pipeline"]').evaluate(
            "i => i.complete && i.naturalWidth > 0")  # the pipeline picture shows
        page.wait_for_timeout(3000)  # the sidebar's job list catches up
        shot(page, shots, "story")

        page.goto(f"{url}/data")
        page.get_by_text("Category popularity").wait_for(timeout=120_000)
        page.get_by_text("Gallery").wait_for()
        users = page.locator('[data-testid="stMetric"]').filter(has_text="Users").first
        assert users.inner_text().split()[-1] == "2,000"  # the demo's users
        page.locator('[data-testid="stImage"] img').nth(3).wait_for(timeout=60_000)  # gallery
        shot(page, shots, "data")

        page.goto(f"{url}/attack_lab")  # the story's attack, straight from the cache
        page.get_by_text("Success rate").wait_for(timeout=120_000)
        page.get_by_text("Image by image").wait_for()
        page.locator('[data-testid="stImage"] img').nth(2).wait_for(timeout=60_000)  # clean,
        shot(page, shots, "attack_lab")  # perturbed, the perturbation

        page.goto(f"{url}/impact")
        page.get_by_role("heading", name="Recommendation Impact").wait_for(timeout=120_000)
        page.get_by_text("CHR@20 per category").wait_for(timeout=120_000)
        poisoned = page.locator('[data-testid="stMetric"]').filter(has_text="CHR@20 poisoned")
        assert re.search(r"\d\.\d+", poisoned.first.inner_text())  # the story's cell, computed
        page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
        shot(page, shots, "impact")

        page.goto(f"{url}/grid")
        page.get_by_role("heading", name="Grid").wait_for(timeout=120_000)
        page.get_by_text("Tables").first.wait_for(timeout=60_000)
        page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
        shot(page, shots, "grid")

    # the study pages are the administrator's: on the study server, after the login
    with study_server(tmp_path) as (base, _), browser_page(1280, 900) as page:
        page.goto(f"{base}/study_design")
        page.get_by_label("Admin password").fill(STUDY_PASSWORD)
        page.get_by_label("Admin password").press("Enter")
        page.get_by_text(f"/study?study={study.id}").first.wait_for(timeout=120_000)  # listed
        page.get_by_text("New study").wait_for()
        shot(page, shots, "study_design")
        page.get_by_role("link", name="Study analysis").click()  # same session: logged in
        page.get_by_text("Detection (2AFC: which image was modified?)").wait_for(timeout=120_000)
        assert numbers(page.locator("body").inner_text()) > 10
        page.wait_for_timeout(3000)  # the detection chart draws (Plotly, asynchronously)
        shot(page, shots, "study_analysis")
