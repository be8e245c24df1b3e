"""A study server on the internet, its admin side: every page and every job needs the admin
login, which throttles and locks out guessers; dataset folders only under the configured
roots; completion codes that cannot be computed from this code; too-fast answers flagged;
the study server refuses to start without its secrets, and Streamlit's own surface (uploads,
metrics, git info, cache clearing) is closed. The participants' side: test_study_web.py."""
import hashlib
import time

import pytest
from browser import STUDY_PASSWORD, browser_page, streamlit_server, study_server, why_no_browser
from helpers import ROOT, Http, make_generic, stimuli
from streamlit.testing.v1 import AppTest

from advrec_core.data.roots import allowed_folder
from advrec_core.errors import DataError
from advrec_core.study import (
    StudyConfig,
    answers_frame,
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
from advrec_core.study.access import AdminGuard, completion_code, server_problems
from advrec_core.study.db import dispose

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
    monkeypatch.setenv("ADVREC_ADMIN_PASSWORD", "too-short")  # 9 characters: still off
    at = app("grid").run()
    assert "at least 12" in at.error[0].value and not at.text_input


def test_a_participant_link_on_the_admin_app_shows_only_the_login(server_env):
    study = create_study(server_env, "s", StudyConfig(trials_per_annotator=3, catch_trials=0),
                         stimuli())
    at = app("attack_lab", study=str(study.id), pid="p1").run()
    assert at.text_input(key="admin_password") is not None and not at.get("dataframe")



class FakeClock:
    def __init__(self):
        self.t, self.slept = 1000.0, []

    def __call__(self):
        return self.t

    def sleep(self, s):
        self.slept.append(s)
        self.t += s


def test_a_hundred_wrong_passwords_lock_the_client_out(server_env, caplog):
    """The guard: the first failures are delayed more and more, the 5th locks the client
    out for 15 minutes, during which every attempt is refused at once (the right password
    too) and logged; another client is not affected; after the lockout the password works."""
    clock = FakeClock()
    guard = AdminGuard(clock=clock, sleep=clock.sleep)
    with caplog.at_level("WARNING", logger="advrec.security"):
        results = [guard.attempt("203.0.113.9", f"guess-{k:03d}-xxxxx") for k in range(100)]
    assert not any(results)
    assert clock.slept[:5] == [0.0, 0.5, 1.0, 2.0, 4.0]  # delays before the lockout
    assert guard.locked_for("203.0.113.9") > 0 and len(clock.slept) == 5  # then no checks
    failures = [r.getMessage() for r in caplog.records]
    assert len(failures) == 100 and "locked out for 900 s" in failures[4]
    assert all("203.0.113.9" in f for f in failures) and "refused" in failures[-1]
    assert not guard.attempt("203.0.113.9", STUDY_PASSWORD.replace(" staple", ""))  # locked
    assert not guard.attempt("203.0.113.9", "correct horse battery")  # the right one: locked
    assert guard.attempt("198.51.100.1", "correct horse battery")  # another client
    clock.t += 901
    assert guard.attempt("203.0.113.9", "correct horse battery")


def test_the_login_page_locks_out_and_sessions_end(server_env, monkeypatch):
    import time as _time

    from advrec_core.study import access

    clock = FakeClock()
    monkeypatch.setattr(access, "_GUARD", AdminGuard(clock=clock, sleep=clock.sleep))
    at = app("grid").run()
    for k in range(5):
        at.text_input(key="admin_password").input(f"wrong-guess-{k}").run()
    assert "locked for 15 more minutes" in at.error[0].value and not at.get("plotly_chart")
    at.text_input(key="admin_password").input(PASSWORD).run()  # right, but locked out
    assert "locked" in at.error[0].value and not at.get("plotly_chart")
    clock.t += 901
    at.text_input(key="admin_password").input(PASSWORD).run()
    assert not at.exception and at.title[0].value == "Grid"
    at.session_state["admin_session"]["seen"] = _time.time() - 31 * 60  # idle half an hour
    at.run()
    assert at.text_input(key="admin_password") is not None and at.title[0].value != "Grid"
    at.text_input(key="admin_password").input(PASSWORD).run()
    at.button(key="admin_logout").click().run()
    assert at.text_input(key="admin_password") is not None


def test_the_study_server_refuses_to_start_without_its_secrets(tmp_path):
    """`advrec serve-study` fails closed: without the admin password (or a short one) or the
    study secret it prints one line per problem and exits 2, having served nothing."""
    import os
    import subprocess
    import sys

    assert server_problems({"ADVREC_ADMIN_PASSWORD": "x" * 12, "ADVREC_STUDY_SECRET": "s" * 32}) == []
    for env, said in [({}, ["ADVREC_ADMIN_PASSWORD", "ADVREC_STUDY_SECRET"]),
                      ({"ADVREC_ADMIN_PASSWORD": "choose-one", "ADVREC_STUDY_SECRET": "s" * 64},
                       ["at least 12 characters (it has 10)"]),
                      ({"ADVREC_ADMIN_PASSWORD": "x" * 20, "ADVREC_STUDY_SECRET": "short"},
                       ["ADVREC_STUDY_SECRET must be set"])]:
        clean = {k: v for k, v in os.environ.items()
                 if k not in ("ADVREC_ADMIN_PASSWORD", "ADVREC_STUDY_SECRET", "ADVREC_MODE")}
        out = subprocess.run([sys.executable, "-m", "advrec_core", "--cache", str(tmp_path),
                              "serve-study", "--port", "1"], cwd=ROOT, env={**clean, **env},
                             capture_output=True, text=True, timeout=120)
        lines = out.stderr.strip().splitlines()
        assert out.returncode == 2 and len(lines) == len(said), out.stderr
        assert all(want in line for want, line in zip(said, lines)), lines


def test_the_study_server_closes_streamlits_own_surface(tmp_path):
    """On a real study server: uploads and metrics answer 404; every response carries the
    security headers; the websocket drops load_git_info, clear_cache and file URL requests
    (logged), so a visitor can neither read the repository's state nor clear every
    session's caches; a 2-hour-old build folder of a live process survives; the
    participants' pages are served by the same server."""
    import os
    import urllib.request

    from streamlit.proto.BackMsg_pb2 import BackMsg
    from websockets.sync.client import connect

    db = session_factory(f"sqlite:///{tmp_path / 'study.sqlite'}")
    study = create_study(db, "s", StudyConfig(trials_per_annotator=3, catch_trials=0), stimuli())
    with study_server(tmp_path) as (url, log):
        http = Http(url)
        for method, path in [("PUT", "/_stcore/upload_file/s/f"), ("POST", "/_stcore/upload_file"),
                             ("GET", "/_stcore/metrics")]:
            req = urllib.request.Request(url + path, b"x" * 1024, method=method)
            try:
                status = urllib.request.urlopen(req, timeout=10).status
            except urllib.error.HTTPError as e:
                status = e.code
            assert status == 404, (method, path, status)
        status, page, headers = http.get("/")
        assert status == 200 and headers["content-security-policy"] == "frame-ancestors 'none'"
        assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff"
        status, page, headers = http.get(f"/study?study={study.id}")
        assert status == 200 and b'id="agree"' in page
        assert "script-src 'self'" in headers["content-security-policy"]
        ws_url = url.replace("http", "ws") + "/_stcore/stream"
        rerun = BackMsg()
        rerun.rerun_script.query_string = ""

        def page(ws) -> bytes:
            """Ask for a run of the page; what came back until the login was drawn."""
            ws.send(rerun.SerializeToString())
            got, deadline = [], time.time() + 30
            while time.time() < deadline and b"Admin password" not in b"".join(got):
                try:
                    got.append(ws.recv(timeout=2))
                except TimeoutError:
                    pass
            return b"".join(got)

        with connect(ws_url, subprotocols=["streamlit"], open_timeout=30) as ws:
            assert b"Admin password" in page(ws)  # the first run (and the server's one gc)
            build = tmp_path / "cache" / "extractor" / f".tmp-0123456789abcdef-{os.getpid()}-ab12"
            build.mkdir(parents=True)  # a live builder's folder, 2 h old
            os.utime(build, (time.time() - 7200, time.time() - 7200))
            for kind in ("load_git_info", "clear_cache", "set_run_on_save"):
                msg = BackMsg()
                setattr(msg, kind, True)
                ws.send(msg.SerializeToString())
            got = page(ws)  # a rerun still works
        assert b"Admin password" in got
        assert b"git_info" not in got and b".git" not in got
        assert log.read_text().count("dropped a websocket message") == 3
        assert build.is_dir()  # no second cache gc

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


def test_a_schema_2_study_keeps_its_answers_and_gets_personal_links(tmp_path):
    """A database of schema 2 (before personal links and measured timing), with a study
    that has no key yet and a participant half-way: upgraded in place, the study gets its
    key, the participant a uid, the admin finds their personal link, and they go on."""
    import sqlite3

    from advrec_core.study import personal_token
    from advrec_core.study.db import SCHEMA_VERSION
    from advrec_core.study.participation import resolve

    path = tmp_path / "v2.sqlite"
    url = f"sqlite:///{path}"
    db = session_factory(url)
    study = create_study(db, "v2", StudyConfig(trials_per_annotator=3, catch_trials=0),
                         stimuli())
    ann = get_annotator(db, study, "P1")
    submit_answer(db, ann.id, next_trial(db, ann).trial_id, "left", rt_ms=700.0)
    dispose(url)
    con = sqlite3.connect(path)  # back to schema 2: its columns, no keys made yet
    con.execute("DROP INDEX uq_annotator_uid")
    for table, col in [("annotators", "uid"), ("assignments", "render"),
                       ("assignments", "exposed_at"), ("assignments", "exposure_ms"),
                       ("assignments", "frames"), ("assignments", "frame_ms"),
                       ("answers", "rt_source"), ("answers", "exposure_ms")]:
        con.execute(f'ALTER TABLE {table} DROP COLUMN "{col}"')
    con.execute("UPDATE studies SET secret = NULL")
    con.execute("DELETE FROM schema_version")
    con.execute("INSERT INTO schema_version (version, applied_at) VALUES (2, '2026-06-01')")
    con.commit()
    con.close()
    db = session_factory(url)
    with db.begin() as s:
        from sqlalchemy import func, select

        from advrec_core.study.db import SchemaVersion

        assert s.scalar(select(func.max(SchemaVersion.version))) == SCHEMA_VERSION == 3
    token = personal_token(db, study.id, "P1")
    found_study, found = resolve(db, token)
    assert found.pid == "P1" and found_study.secret and len(answers_frame(db, study.id)) == 1
    assert answers_frame(db, study.id)["rt_source"].isna().all()  # timed on the server then
    finish(db, study, "P1")
    assert complete(db, found) and len(answers_frame(db, study.id)) == 3
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

