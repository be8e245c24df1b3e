"""The study pages through AppTest: the participant's whole flow (consent, answers, undo,
resume with the same pid, completion), the admin password, study design from a computed
attack, and the analysis page."""
import pytest
from helpers import ROOT, stimuli
from streamlit.testing.v1 import AppTest

from advrec_core.study import StudyConfig, answers_frame, create_study, session_factory
from advrec_core.study.db import dispose

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


def idle(db, pid: str) -> None:
    """Age the participant's last activity past the session claim's idle limit."""
    from datetime import timedelta

    from advrec_core.study.db import Annotator, now
    from advrec_core.study.design import SESSION_IDLE_S

    with db.begin() as s:
        for a in s.query(Annotator).filter(Annotator.pid == pid):
            a.last_seen = now() - timedelta(seconds=SESSION_IDLE_S + 1)


def answered(at) -> str:
    return at.get("progress")[0].proto.text


def test_participant_flow_with_undo_and_resume(study_env):
    db = study_env
    study = create_study(db, "flow", StudyConfig(trials_per_annotator=5, catch_trials=1,
                                                 zoom=3), stimuli())
    at = app(study=str(study.id)).run()
    assert not at.exception and at.title[0].value == "Image study"
    assert at.button(key="study_start").disabled  # consent first
    at.checkbox(key="study_consent").check().run()
    at.button(key="study_start").click().run()
    pid = at.query_params["pid"][0] if isinstance(at.query_params["pid"], list) else at.query_params["pid"]
    assert pid and not at.exception
    assert answered(at) == "0 of 5 answered"
    html = at.get("html")[0].proto.body
    assert html.count("data:image/png;base64,") == 2 and 'width="24"' in html  # 8 px x 3
    at.button(key="answer_left").click().run()
    at.button(key="answer_right").click().run()
    assert answered(at) == "2 of 5 answered"
    at.button(key="study_undo").click().run()
    assert answered(at) == "1 of 5 answered"
    position = at.caption[-1].value
    # the tab is closed; a minute later (its claim on the pid lapsed) the same link opens
    # a fresh session
    idle(db, pid)
    again = app(study=str(study.id), pid=pid).run()
    assert not again.exception and answered(again) == "1 of 5 answered"
    assert again.caption[-1].value == position  # the same trial as before the tab closed
    for _ in range(4):
        again.button(key="answer_left").click().run()
    assert not again.exception and "completion code" in again.success[0].value
    df = answers_frame(db, study.id)
    assert len(df) == 5 and df["pid"].eq(pid).all() and df["rt_ms"].notna().all()
    assert df["trial_id"].is_unique


def test_confidence_and_same_different(study_env):
    db = study_env
    study = create_study(db, "conf", StudyConfig(trial_kinds=("samediff",), confidence=True,
                                                 trials_per_annotator=3, catch_trials=0,
                                                 presentation="timed", exposure_ms=800),
                         stimuli())
    at = app(study=str(study.id), pid="P-7").run()  # a pid from a recruitment link
    assert not at.get("html")  # no trial before consent
    at.checkbox(key="study_consent_pid").check().run()
    assert "hidden" in at.get("html")[0].proto.body and "800ms" in at.get("html")[0].proto.body
    at.button(key="answer_different").click().run()
    assert "How sure" in at.markdown[0].value and answered(at) == "0 of 3 answered"
    at.button(key="conf_4").click().run()
    assert answered(at) == "1 of 3 answered"
    row = answers_frame(db, study.id).iloc[0]
    assert row["response"] == "different" and row["confidence"] == 4 and row["kind"] == "samediff"


def test_no_open_study_and_bad_pid(study_env):
    at = app(pid="someone").run()
    assert not at.exception and "No study is open" in at.info[0].value
    create_study(study_env, "x", StudyConfig(trials_per_annotator=3, catch_trials=0), stimuli())
    at = app(pid="bad id!").run()
    assert not at.exception and "participant id" in at.error[0].value


def test_admin_pages_need_the_password(study_env, monkeypatch):
    for page in ("study_design", "study_analysis"):
        at = app().switch_page(f"app_pages/{page}.py").run()
        assert not at.exception and not at.dataframe  # nothing shown before the password
        at.text_input(key="admin_password").input("wrong").run()
        assert "Wrong password" in at.error[0].value and not at.dataframe
    monkeypatch.delenv("ADVREC_ADMIN_PASSWORD")
    at = app().switch_page("app_pages/study_design.py").run()
    assert "disabled" in at.error[0].value and not at.text_input


def test_admin_builds_a_study_from_an_attack_and_analysis_reads_it(study_env, demo_dir):
    from advrec_core.data import load_dataset
    from advrec_core.defenses import TrainConfig
    from advrec_core.experiments.attack import AttackJob, run_attack_job
    from advrec_core.extractors import ExtractorConfig

    ds = load_dataset("demo")
    quick = ExtractorConfig(train=TrainConfig(epochs=3))
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
    for pid in ("a1", "a2"):
        p = app(study=str(sid), pid=pid).run()
        p.checkbox(key="study_consent_pid").check().run()
        for _ in range(6):
            p.button(key="answer_left").click().run()
        assert "completion code" in p.success[0].value
    an = app().switch_page("app_pages/study_analysis.py").run()
    an.text_input(key="admin_password").input(PASSWORD).run()
    assert not an.exception
    metrics = {m.label: m.value for m in an.metric}
    assert metrics["Annotators"] == "2"
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
