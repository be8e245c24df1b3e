"""The study's admin pages through AppTest (the password, study design from a computed
attack, personal links, the analysis page), with participants answering over HTTP on the
participants' endpoint in between."""
import pytest
from helpers import ROOT, Http, serve, stimuli
from streamlit.testing.v1 import AppTest

from advrec_core.study import StudyConfig, answers_frame, create_study, session_factory
from advrec_core.study.db import dispose
from advrec_core.study.web import participant_app

PASSWORD = "correct horse"


@pytest.fixture
def study_env(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'study.sqlite'}"
    monkeypatch.setenv("ADVREC_STUDY_DB", url)
    monkeypatch.setenv("ADVREC_ADMIN_PASSWORD", PASSWORD)
    monkeypatch.chdir(ROOT)
    db = session_factory(url)
    yield db
    dispose(url)


def app(**params):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    for k, v in params.items():
        at.query_params[k] = v
    return at


def take_part(base: str, study_id: int, pid: str, response: str = "left",
              confidence: int | None = None) -> dict:
    """A participant from a recruitment link: consent, then answer every showing."""
    http = Http(base)
    status, body, _ = http.post("/study/api/enrol", {"study": str(study_id), "agree": True,
                                                      "pid": pid})
    assert status == 200, body
    api = body["link"].replace("/study/p/", "/study/api/p/")
    v = http.get(api)[1]
    while not v["done"]:
        status, v, _ = http.post(f"{api}/answer", {"render": v["trial"]["render"],
                                                   "response": response, "rt_ms": 700.0,
                                                   "confidence": confidence})
        assert status == 200, v
    return v


def test_confidence_and_same_different(study_env, tmp_path):
    db = study_env
    study = create_study(db, "conf", StudyConfig(trial_kinds=("samediff",), confidence=True,
                                                 trials_per_annotator=3, catch_trials=0,
                                                 presentation="timed", exposure_ms=800),
                         stimuli())
    with serve(participant_app(f"sqlite:///{tmp_path / 'study.sqlite'}")) as base:
        http = Http(base)
        link = http.post("/study/api/enrol", {"study": str(study.id), "agree": True,
                                               "pid": "P-7"})[1]["link"]
        api = link.replace("/study/p/", "/study/api/p/")
        v = http.get(api)[1]
        assert v["confidence"] and v["exposure_ms"] == 800 and v["trial"]["question"] == "samediff"
        status, err, _ = http.post(f"{api}/answer", {"render": v["trial"]["render"],
                                                     "response": "different"})
        assert status == 409 and "confidence (1-5)" in err["error"]
        v = http.post(f"{api}/answer", {"render": v["trial"]["render"], "response": "different",
                                        "confidence": 4, "rt_ms": 950.0})[1]
        assert v["answered"] == 1
    row = answers_frame(db, study.id).iloc[0]
    assert row["response"] == "different" and row["confidence"] == 4 and row["kind"] == "samediff"


def test_admin_pages_need_the_password(study_env, monkeypatch):
    for page in ("study_design", "study_analysis"):
        at = app().switch_page(f"app_pages/{page}.py").run()
        assert not at.exception and not at.dataframe  # nothing shown before the password
        at.text_input(key="admin_password").input("wrong").run()
        assert "Wrong password" in at.error[0].value and not at.dataframe
    monkeypatch.delenv("ADVREC_ADMIN_PASSWORD")
    at = app().switch_page("app_pages/study_design.py").run()
    assert "disabled" in at.error[0].value and not at.text_input


def test_admin_builds_a_study_from_an_attack_and_analysis_reads_it(study_env, demo, quick):
    from advrec_core.experiments.attack import AttackJob, run_attack_job

    ds = demo
    run_attack_job(ds, AttackJob("Sandal", "Running shoe", extractor=quick, limit=6, lpips=()))
    at = app().switch_page("app_pages/study_design.py").run()
    at.text_input(key="admin_password").input(PASSWORD).run()
    assert not at.exception and "No study yet" in at.info[0].value
    at.text_input(key="admin_name").input("from-attack")
    at.number_input(key="admin_per_cell").set_value(6)
    at.number_input(key="admin_per_ann").set_value(6)
    at.number_input(key="admin_catch").set_value(1)
    at.button(key="admin_create").click().run()
    assert not at.exception, at.exception
    assert "Created 'from-attack' with 6 stimuli" in at.success[0].value
    table = at.dataframe[0].value
    assert table.iloc[0]["name"] == "from-attack" and table.iloc[0]["trials"] == 6 + 2
    sid = int(table.iloc[0]["id"])
    at.number_input(key="admin_invite_n").set_value(3)
    at.button(key="admin_invite").click().run()
    assert not at.exception and any("3 links" in c.value for c in at.caption)
    with serve(participant_app(str(study_env.kw["bind"].url))) as base:
        # a bot cannot tell a catch trial (nothing on the page gives it away), so each fails
        # its one catch trial half the time and is left out of detection: eight bots, half
        # always answering left and half right, so that some pass (all fail: 1 in 256)
        for n in range(8):
            assert take_part(base, sid, f"a{n}", "left" if n % 2 else "right")["code"]
    at.text_input(key="admin_lost_pid").input("a2").run()
    assert f"/study/p/{sid}-" in at.code[0].value
    an = app().switch_page("app_pages/study_analysis.py").run()
    an.text_input(key="admin_password").input(PASSWORD).run()
    assert not an.exception
    metrics = {m.label: m.value for m in an.metric}
    assert metrics["Annotators"] == "8"
    det = an.dataframe[0].value  # detection by cell
    assert det.iloc[0]["cell"] == "pgd-8/traditional" and det.iloc[0]["n"] >= 1
    assert len(an.get("download_button")) == 4
    tables = [d.value for d in an.dataframe]
    models = next(t for t in tables if "auc" in t)  # which metric predicts people best
    assert {"FLIP", "DeltaE2000", "SSIM", "FL"} <= set(models["model"])  # weight-free: here
    assert (models["answers"] == det["n"].sum()).all()  # every 2AFC answer used
    assert (models["images"] <= 6).all()  # grouped by image (6 stimuli in the study)
    predicted = [t for t in tables if "predicted_detection" in t]
    if predicted:  # a model fits only when the 12 answers are not all right (or all wrong)
        assert predicted[0].set_index("cell").loc["pgd-8/traditional", "in_study"]
