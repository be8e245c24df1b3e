"""End to end in headless Chromium: open the Attack Lab, run a small attack on the demo
catalog, wait for the result, check the perturbed image is a PNG, save a screenshot."""
import os
from pathlib import Path

import pytest
from browser import browser_page, streamlit_server, why_no_browser

REASON = why_no_browser()


@pytest.mark.skipif(REASON is not None, reason=f"no browser for the end-to-end test: {REASON}")
def test_attack_lab_in_a_browser(demo_dir, cache_dir, tmp_path):
    shots = Path(os.environ.get("ADVREC_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    with streamlit_server(cache_dir) as url, browser_page() as page:
        page.goto(f"{url}/attack_lab")
        page.get_by_role("heading", name="Attack Lab").wait_for(timeout=120_000)
        # app.py ran (its navigation and sidebar), not the page file on its own
        page.get_by_role("link", name="Recommendation Impact").wait_for(timeout=30_000)
        limit = page.get_by_label("Images to attack (first N of the source category; 0 = all)")
        limit.fill("3")
        page.get_by_role("button", name="Run attack").click()
        # job done, result shown; a first run in a session also trains the extractor (minutes)
        page.get_by_text("Image by image").wait_for(timeout=900_000)
        page.get_by_text("Success rate").wait_for()
        images = page.locator('[data-testid="stImage"] img')
        images.nth(2).wait_for()  # clean, perturbed, perturbation (the maps follow in HTML)
        perturbed = images.nth(1)
        page.wait_for_function("(img) => img.complete && img.naturalWidth > 0",
                               arg=perturbed.element_handle())
        src = perturbed.get_attribute("src")
        assert src.split("?")[0].endswith(".png"), src
        body = page.request.get(src if src.startswith("http") else url + src).body()
        assert body[:8] == b"\x89PNG\r\n\x1a\n"  # lossless PNG, not JPEG
        natural, shown = perturbed.evaluate("(img) => [img.naturalWidth, img.clientWidth]")
        assert natural == shown  # drawn at its own pixel size, no smoothing resample
        assert page.get_by_text("3 images").count() >= 1  # the small attack, not all sandals
        perturbed.scroll_into_view_if_needed()
        page.screenshot(path=str(shots / "attack_lab.png"))
        # the heatmaps: each person map (chosen in the selector) beside the FL map, drawn
        # over the image as lossless PNG at 4 x 96 px with a colour bar and the value
        heat = page.get_by_text("What a person would see")
        heat.scroll_into_view_if_needed()
        shown = {"FLIP": "FLIP (flicker difference)",
                 "DeltaE2000": "ΔE2000 (CIEDE2000 colour difference)", "SSIM": "1 − SSIM",
                 "Linf": "|δ| (L-inf norm of the perturbation)"}
        for name, title in shown.items():
            if not title.startswith("FLIP"):
                page.get_by_label("Heatmap").click()
                page.get_by_role("option", name=title.replace("1 − ", "")).click()
            for alt in (title, "FL map (squared change of the last conv feature map)"):
                overlay = page.locator(f'img[alt="{alt}"]').first
                overlay.wait_for(timeout=60_000)
                page.wait_for_function("(img) => img.complete && img.naturalWidth > 0",
                                       arg=overlay.element_handle())
                assert overlay.get_attribute("src").startswith("data:image/png;base64,")
                natural, shown = overlay.evaluate("(i) => [i.naturalWidth, i.clientWidth]")
                assert natural == shown == 96 * 4, (alt, natural, shown)
            assert page.locator('img[alt="colour bar"]').count() == 2
            page.get_by_text("of this image:").first.wait_for()
            page.locator('img[alt="colour bar"]').first.scroll_into_view_if_needed()
            page.screenshot(path=str(shots / f"attack_lab_heat_{name}.png"))
    assert (shots / "attack_lab.png").stat().st_size > 10_000
    print(f"screenshots: {shots}")


@pytest.mark.skipif(REASON is not None, reason=f"no browser for the end-to-end test: {REASON}")
def test_study_answered_by_keyboard_on_the_study_server(tmp_path):
    """`advrec serve-study`, as deployed: a participant consents, is moved to their personal
    link, sees both images at the same integer zoom, answers with the keyboard and undoes."""
    from browser import study_server
    from helpers import stimuli

    from advrec_core.study import StudyConfig, answers_frame, create_study, session_factory
    from advrec_core.study.db import dispose

    url = f"sqlite:///{tmp_path / 'study.sqlite'}"
    db = session_factory(url)
    study = create_study(db, "keys", StudyConfig(trials_per_annotator=4, catch_trials=1,
                                                 zoom=4), stimuli())
    shots = Path(os.environ.get("ADVREC_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    with study_server(tmp_path) as (base, _), browser_page() as page:
        page.goto(f"{base}/study?study={study.id}")
        page.get_by_text("I have read the above").click()
        page.get_by_role("button", name="Start").click()
        progress = page.get_by_text("answered")
        progress.filter(has_text="0 of 4").wait_for(timeout=60_000)
        assert "/study/p/" in page.url  # the personal link: a closed tab resumes
        canvas = page.locator("#stage canvas")
        canvas.wait_for(timeout=30_000)
        size = canvas.evaluate("(c) => [c.width, c.height, devicePixelRatio]")
        assert size[:2] == [2 * 8 * 4 * size[2] + 48 * size[2], 8 * 4 * size[2]]  # 8 px x 4
        page.screenshot(path=str(shots / "study_trial.png"))

        def press(key: str, answered: int) -> None:
            page.locator("#answers button:not([disabled])").first.wait_for(timeout=30_000)
            page.keyboard.press(key)
            progress.filter(has_text=f"{answered} of 4").wait_for(timeout=30_000)

        for n, key in enumerate(["ArrowLeft", "ArrowRight", "ArrowLeft"], 1):
            press(key, n)
        press("u", 2)  # undo the last answer
        press("ArrowRight", 3)
    answers = answers_frame(db, study.id)
    dispose(url)
    assert len(answers) == 3 and answers["trial_id"].is_unique
    assert list(answers["response"])[:2] == ["left", "right"] and answers["rt_ms"].gt(0).all()


@pytest.mark.skipif(REASON is not None, reason=f"no browser for the end-to-end test: {REASON}")
def test_the_app_stops_on_sigterm_while_a_job_runs(demo_dir, isolated_cache, tmp_path):
    """A job builds in the app (the Attack Lab's first run on an empty cache: the extractor
    seeded from the shipped file in well under a second, then the catalog's features and the
    attack, which take seconds); SIGTERM to the server while the attack's folder builds: it exits
    within 10 s, and the half-built folder goes at the next gc (its builder has ended)."""
    import signal
    import sys
    import time

    from browser import server

    from advrec_core.cache import Cache

    cache = Cache(tmp_path / "cache").link_entries(Cache(isolated_cache), ("demo",))
    with server([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless",
                 "true", "--server.fileWatcherType", "none"],
                {"ADVREC_CACHE": str(cache.root)}, tmp_path) as app, browser_page() as page:
        page.goto(f"{app.url}/attack_lab")
        page.get_by_role("button", name="Run attack").click(timeout=120_000)
        deadline = time.time() + 240
        while not list(Path(cache.root).glob("attack/.tmp-*")) and time.time() < deadline:
            time.sleep(0.2)
        assert list(Path(cache.root).glob("attack/.tmp-*")), app.log.read_text()[-1000:]
        t0 = time.perf_counter()
        app.proc.send_signal(signal.SIGTERM)
        app.proc.wait(30)
        stopped = time.perf_counter() - t0
    assert stopped < 10, stopped
    assert cache.gc() and not list(Path(cache.root).glob("*/.tmp-*"))
