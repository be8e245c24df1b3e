"""A study server on the internet: participants see only their study; every other page and
every job needs the admin login; dataset folders only under the configured roots;
completion codes that cannot be computed from this code; one session per participant id;
too-fast answers flagged."""
import hashlib
import time

import pytest
from helpers import ROOT, make_generic, stimuli
from streamlit.testing.v1 import AppTest

from advrec_core.data.roots import allowed_folder
from advrec_core.errors import DataError
from advrec_core.study import (
    StudyConfig,
    answers_frame,
    claim_session,
    complete,
    create_study,
    get_annotator,
    next_trial,
    session_factory,
    submit_answer,
    undo_last,
    verify_completion,
)
from advrec_core.study import analysis as A
from advrec_core.study.access import completion_code, platform_params
from advrec_core.study.db import dispose
from ui.browser import browser_page, streamlit_server, why_no_browser

PASSWORD = "correct horse battery"
EXPLORE = ["data", "attack_lab", "impact", "grid", "study_design", "study_analysis"]
URLS = ["", "data", "attack_lab", "impact", "grid", "study_design", "study_analysis"]


@pytest.fixture
def server_env(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'study.sqlite'}"
    monkeypatch.setenv("ADVREC_STUDY_DB", url)
    monkeypatch.setenv("ADVREC_ADMIN_PASSWORD", PASSWORD)
    monkeypatch.delenv("ADVREC_STUDY_SECRET", raising=False)
    monkeypatch.chdir(ROOT)
    db = session_factory(url)
    yield db
    dispose(url)


def app(page: str | None = None, **params) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    for k, v in params.items():
        at.query_params[k] = v
    return at.switch_page(f"app_pages/{page}.py") if page else at


def finish(db, study, pid: str, rt_ms: float = 800.0):
    ann = get_annotator(db, study, pid)
    while (t := next_trial(db, ann)) is not None:
        submit_answer(db, ann.id, t.trial_id, "left", rt_ms=rt_ms)
    return ann


@pytest.mark.parametrize("page", [None, *EXPLORE])
def test_every_explore_page_shows_only_the_login(server_env, page):
    at = app(page).run()
    assert not at.exception
    assert at.text_input(key="admin_password") is not None
    assert [t.value for t in at.title] in (["AdvRec Lab"], ["Study administration"])
    for kind in ("dataframe", "metric", "plotly_chart", "image", "button", "selectbox"):
        assert not at.get(kind), (page, kind)  # no content, no job button
    assert not at.sidebar.get("progress") and not at.sidebar.get("caption")


def test_admin_logs_in_once_per_session(server_env, demo_dir):
    at = app("grid").run()
    at.text_input(key="admin_password").input("nope").run()
    assert "Wrong password" in at.error[0].value and not at.get("plotly_chart")
    at.text_input(key="admin_password").input(PASSWORD).run()
    assert not at.exception and at.title[0].value == "Grid"
    at.switch_page("app_pages/data.py").run()  # another page, no second login
    assert at.title[0].value == "Data" and at.metric


def test_study_mode_without_a_password_keeps_explore_closed(server_env, monkeypatch):
    monkeypatch.delenv("ADVREC_ADMIN_PASSWORD")
    monkeypatch.setenv("ADVREC_MODE", "study")
    at = app("attack_lab").run()
    assert "Administration is disabled" in at.error[0].value and not at.text_input
    create_study(server_env, "s", StudyConfig(trials_per_annotator=3, catch_trials=0),
                 stimuli())
    at = app(study="1").run()  # the participant's side works
    assert at.title[0].value == "Image study" and not at.exception


def test_a_participant_link_cannot_reach_another_page(server_env):
    study = create_study(server_env, "s", StudyConfig(trials_per_annotator=3, catch_trials=0),
                         stimuli())
    at = app("attack_lab", study=str(study.id)).run()
    assert at.title[0].value == "Image study" and not at.get("dataframe")


def test_dataset_folders_only_under_the_roots(tmp_path, monkeypatch):
    root = tmp_path / "data"
    inside = make_generic(root / "shop", ["u1,A,1", "u1,B,2", "u2,A,3"])
    outside = make_generic(tmp_path / "private" / "shop", ["u1,A,1", "u1,B,2", "u2,A,3"])
    (root / "escape").symlink_to(outside, target_is_directory=True)
    monkeypatch.setenv("ADVREC_DATA_ROOTS", str(root))
    assert allowed_folder(inside) == inside.resolve()
    for bad, said in [(outside, "outside the allowed roots"),
                      (root / "shop" / ".." / ".." / "private" / "shop", "'..'"),
                      (root / "escape", "a symbolic link leads out"),
                      ("/etc", "outside the allowed roots"), ("", "not a folder path")]:
        with pytest.raises(DataError, match=said):
            allowed_folder(bad)
    monkeypatch.delenv("ADVREC_DATA_ROOTS")
    monkeypatch.chdir(tmp_path)  # default root: ./data
    assert allowed_folder("data/shop") == inside.resolve()
    with pytest.raises(DataError, match="ADVREC_DATA_ROOTS"):
        allowed_folder(outside)


def test_data_page_refuses_a_folder_outside_the_roots(tmp_path, monkeypatch, demo_dir):
    outside = make_generic(tmp_path / "elsewhere", ["u1,A,1", "u1,B,2", "u2,A,3"])
    monkeypatch.setenv("ADVREC_DATA_ROOTS", str(tmp_path / "data"))
    monkeypatch.chdir(ROOT)
    at = app("data").run()
    at.radio(key="data_source").set_value("Dataset folder").run()
    at.text_input(key="data_folder").input(str(outside)).run()
    assert "outside the allowed roots" in at.error[0].value and not at.metric


def test_completion_code_needs_the_secret_and_every_answer(server_env, monkeypatch):
    db = server_env
    study = create_study(db, "pay", StudyConfig(trials_per_annotator=3, catch_trials=1),
                         stimuli())
    ann = get_annotator(db, study, "P1")
    assert complete(db, ann) is None  # nothing answered: no code
    finish(db, study, "P1")
    code = complete(db, ann)
    assert code and len(code) == 10 and complete(db, ann) == code  # stable
    assert verify_completion(db, study.id, "P1", code)
    assert verify_completion(db, study.id, "P1", code.lower())
    public = hashlib.sha256(f"{study.id}:P1".encode()).hexdigest()[:8].upper()
    assert not verify_completion(db, study.id, "P1", public)  # the old, public recipe
    assert not verify_completion(db, study.id, "P2", code)  # another pid
    assert completion_code("guess", study.id, "P1") != code  # a key not the study's
    assert undo_last(db, ann.id) is None  # once the code is given, answers are final
    assert len(answers_frame(db, study.id)) == 3
    other = create_study(db, "pay2", StudyConfig(trials_per_annotator=3, catch_trials=1),
                         stimuli())
    finish(db, other, "P1")
    assert complete(db, get_annotator(db, other, "P1")) != code  # one secret per study
    assert not verify_completion(db, study.id, "P9", code)  # unknown participant
    monkeypatch.setenv("ADVREC_STUDY_SECRET", "from-the-environment")
    assert complete(db, ann) == completion_code("from-the-environment", study.id, "P1") != code


def test_one_active_session_per_participant_id(server_env):
    db = server_env
    study = create_study(db, "s", StudyConfig(trials_per_annotator=3, catch_trials=0),
                         stimuli())
    ann = get_annotator(db, study, "P1")
    assert claim_session(db, ann, "tab-a") and claim_session(db, ann, "tab-a")
    assert not claim_session(db, ann, "tab-b")  # the link opened elsewhere at once
    time.sleep(0.05)
    assert claim_session(db, ann, "tab-b", idle_s=0.01)  # the first went idle
    p = app(study=str(study.id), pid="P1").run()
    assert "in use in another window" in p.error[0].value and not p.get("html")


def test_prolific_link_records_the_platform_and_shows_its_code(server_env):
    db = server_env
    cfg = StudyConfig(trials_per_annotator=3, catch_trials=0, platform_code="C1X2Y3",
                      platform_redirect="https://app.prolific.com/submissions/complete?cc=C1X2Y3")
    study = create_study(db, "prolific", cfg, stimuli())
    params = {"study": str(study.id), "PROLIFIC_PID": "5f3a9c", "STUDY_ID": "st1",
              "SESSION_ID": "se1"}
    assert platform_params(params | {"SESSION_ID": "x y"}) == {"PROLIFIC_PID": "5f3a9c",
                                                               "STUDY_ID": "st1"}
    p = app(**params).run()
    p.checkbox(key="study_consent_pid").check().run()
    for _ in range(3):
        p.button(key="answer_left").click().run()
    assert not p.exception and "C1X2Y3" in p.success[0].value
    assert p.get("link_button")[0].proto.url.startswith("https://app.prolific.com/")
    ann = get_annotator(db, study, "5f3a9c", create=False)
    assert ann.platform == {"PROLIFIC_PID": "5f3a9c", "STUDY_ID": "st1", "SESSION_ID": "se1"}
    assert ann.completed_at is not None


def test_too_fast_answers_are_flagged_not_dropped(server_env):
    db = server_env
    study = create_study(db, "rt", StudyConfig(trials_per_annotator=4, catch_trials=1),
                         stimuli())
    finish(db, study, "slow", rt_ms=900)
    finish(db, study, "fast", rt_ms=120)
    res = A.analyse(answers_frame(db, study.id), exclude_failing=False, min_rt_ms=300)
    fast = res.fast.set_index("pid")
    assert fast.loc["fast", "fast"] == 4 and fast.loc["slow", "fast"] == 0
    assert len(res.used) == 8 and res.to_dict()["too_fast"]["answers"] == 4


def test_schema_1_database_is_migrated(tmp_path):
    import sqlite3

    path = tmp_path / "old.sqlite"
    url = f"sqlite:///{path}"
    session_factory(url)
    dispose(url)
    con = sqlite3.connect(path)  # make it look like a version-1 database
    for table, col in [("studies", "secret"), ("annotators", "platform"),
                       ("annotators", "session"), ("annotators", "last_seen"),
                       ("annotators", "completed_at")]:
        con.execute(f'ALTER TABLE {table} DROP COLUMN "{col}"')
    con.execute("DELETE FROM schema_version")
    con.execute("INSERT INTO schema_version (version, applied_at) VALUES (1, '2026-01-01')")
    con.commit()
    con.close()
    db = session_factory(url)
    study = create_study(db, "old", StudyConfig(trials_per_annotator=3, catch_trials=0),
                         stimuli())
    finish(db, study, "P1")
    assert complete(db, get_annotator(db, study, "P1"))
    dispose(url)


REASON = why_no_browser()


@pytest.mark.skipif(REASON is not None, reason=f"no browser: {REASON}")
def test_a_participants_browser_gets_no_explore_content(cache_dir, tmp_path):
    env = {"ADVREC_ADMIN_PASSWORD": PASSWORD,
           "ADVREC_STUDY_DB": f"sqlite:///{tmp_path / 'study.sqlite'}",
           # the README's study-server settings, given from the start (as on the command line)
           "STREAMLIT_CLIENT_TOOLBAR_MODE": "minimal", "STREAMLIT_CLIENT_SHOW_ERROR_DETAILS": "none"}
    with streamlit_server(cache_dir, env=env) as url, browser_page() as page:
        for path in URLS:
            page.goto(f"{url}/{path}")
            page.get_by_label("Admin password").wait_for(timeout=60_000)
            text = page.locator("body").inner_text()
            for leak in ("Category popularity", "Run attack", "Queue", "Studies",
                         "Recommendation Impact", "Explore", "Deploy"):
                assert leak not in text, (path, leak)
            assert page.locator('[data-testid="stMainMenu"]').count() == 0  # no toolbar menu
        page.get_by_label("Admin password").fill(PASSWORD)
        page.get_by_label("Admin password").press("Enter")
        page.get_by_role("link", name="Attack Lab").wait_for(timeout=60_000)  # the menu

