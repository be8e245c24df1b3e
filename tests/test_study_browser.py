"""The participant's page in headless Chromium (Debian's chromium + Playwright): timing where
the eyes are (exposure counted in display frames, the images gone from the page after it,
reaction times from the onset frame), two browsers with one participant id, and a reload."""
import statistics
import time

import pytest
from browser import browser_page, why_no_browser
from helpers import serve, stimuli

from advrec_core.study import StudyConfig, answers_frame, create_study, session_factory
from advrec_core.study.db import dispose
from advrec_core.study.web import participant_app

REASON = why_no_browser()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"no browser: {REASON}")


@pytest.fixture
def site(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.sqlite'}"
    db = session_factory(url)
    with serve(participant_app(url)) as base:
        yield db, base
    dispose(url)


def consent(page, base: str, query: str) -> None:
    page.goto(f"{base}/study?{query}")
    page.locator("#agree").check()
    page.locator("#start").click()
    page.wait_for_url("**/study/p/**", timeout=30_000)


def answered(page, n: int, total: int) -> None:
    page.get_by_text(f"{n} of {total} answered").wait_for(timeout=30_000)


def shown(page) -> None:
    """Wait for the pair's onset (the answer buttons come alive with it)."""
    page.locator("#answers button:not([disabled])").first.wait_for(timeout=30_000)


def test_timed_trials_are_timed_in_the_browser(site):
    """20 trials shown for 500 ms: each pair appears once decoded, is removed from the page
    after the frames 500 ms take (asserted: no canvas, image or blob left), and the stored
    answers carry the measured exposure (median within one frame of 500 ms) and reaction
    times measured in the browser from the onset. A 21st trial, answered while its pair is
    still shown, ends its exposure there (its exposure is its reaction time)."""
    db, base = site
    study = create_study(db, "timed", StudyConfig(
        trial_kinds=("2afc", "samediff"), trials_per_annotator=21, catch_trials=2,
        presentation="timed", exposure_ms=500), stimuli(n_cells=2, per_cell=11, size=16))
    with browser_page() as page:
        consent(page, base, f"study={study.id}")
        for k in range(21):
            answered(page, k, 21)
            canvas = page.locator("#stage canvas")
            canvas.wait_for(state="attached", timeout=30_000)
            question = page.locator(".question").inner_text()
            key = "d" if "exactly the same" in question else "ArrowLeft"
            if k == 0:  # at once, during the exposure
                shown(page)
                page.keyboard.press(key)
                continue
            canvas.wait_for(state="detached", timeout=5_000)  # the exposure ends
            html = page.content()
            assert page.locator("canvas, img").count() == 0
            assert "blob:" not in html and "data:image" not in html
            page.keyboard.press(key)
        page.get_by_text("All done, thank you!").wait_for(timeout=30_000)
    df = answers_frame(db, study.id)
    early, df = df.iloc[0], df.iloc[1:]
    frame = float(df["frame_ms"].median())
    median = statistics.median(df["exposure_ms"])
    print(f"exposure over 20 trials: median {median:.1f} ms, min {df['exposure_ms'].min():.1f}, "
          f"max {df['exposure_ms'].max():.1f}; frame {frame:.2f} ms; "
          f"RT median {df['rt_ms'].median():.0f} ms; answered during the exposure: "
          f"exposure {early['exposure_ms']:.1f} ms, RT {early['rt_ms']:.1f} ms")
    assert len(df) == 20 and (df["rt_source"] == "client").all()
    assert abs(median - 500) <= frame, (median, frame)
    assert (df["rt_ms"] > df["exposure_ms"]).all()  # answered after the pair was hidden
    assert df["frames"].between(25, 35).all() and 10 < frame < 40
    assert early["exposure_ms"] < 500 and abs(early["exposure_ms"] - early["rt_ms"]) < 1


def test_two_browsers_one_pid_and_a_reload(site):
    """The pid's owner consents and answers; a second browser opening the same pid's link
    is refused and the owner goes on; reloading the personal link resumes at once."""
    db, base = site
    study = create_study(db, "two", StudyConfig(trials_per_annotator=4, catch_trials=0),
                         stimuli(size=16))
    with browser_page() as owner:
        other = owner.context.browser.new_context().new_page()  # another browser's profile
        consent(owner, base, f"study={study.id}&pid=P-1")
        answered(owner, 0, 4)
        shown(owner)
        owner.keyboard.press("ArrowRight")
        answered(owner, 1, 4)
        other.goto(f"{base}/study?study={study.id}&pid=P-1")
        assert "already started" in other.locator(".message").inner_text()
        assert other.locator("#agree").count() == 0
        shown(owner)
        owner.keyboard.press("ArrowLeft")
        answered(owner, 2, 4)
        t0 = time.perf_counter()
        owner.reload()
        owner.locator("#stage canvas").wait_for(timeout=30_000)
        resumed = time.perf_counter() - t0
        answered(owner, 2, 4)
        print(f"reload to the trial's images: {resumed:.2f} s")
        assert resumed < 2.0
    df = answers_frame(db, study.id)
    assert len(df) == 2 and set(df["pid"]) == {"P-1"}
