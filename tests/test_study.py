"""The perceptibility study: storage (SQLite and, where a server can run, PostgreSQL),
design and assignment, the annotator's answers, and the analysis against hand-computed cases."""
import threading
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from helpers import stimuli
from pg import postgres_url, why_no_postgres
from sqlalchemy import func, select, text

from advrec_core.errors import AdvRecError
from advrec_core.study import (
    StudyConfig,
    answers_frame,
    create_study,
    get_annotator,
    next_trial,
    progress,
    session_factory,
    submit_answer,
    undo_last,
)
from advrec_core.study import analysis as A
from advrec_core.study.db import (
    SCHEMA_VERSION,
    Annotator,
    Answer,
    Assignment,
    SchemaVersion,
    dispose,
)

NO_PG = why_no_postgres()


@pytest.fixture(scope="session")
def pg_url():
    if NO_PG:
        pytest.skip(f"no PostgreSQL here: {NO_PG}")
    with postgres_url() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path):
    """A fresh, empty study database of each kind."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'study.sqlite'}"
    else:
        url = request.getfixturevalue("pg_url")
        from sqlalchemy import create_engine

        eng = create_engine(url)
        with eng.begin() as c:  # a clean schema for every test
            c.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        eng.dispose()
    yield session_factory(url)
    dispose(url)


def test_schema_is_created_once_with_a_version(db):
    with db.begin() as s:
        assert s.scalar(select(func.max(SchemaVersion.version))) == SCHEMA_VERSION
    url = str(db.kw["bind"].url.render_as_string(hide_password=False))
    dispose(url)
    again = session_factory(url)  # a restart: same database, no second version row
    with again.begin() as s:
        assert s.scalar(select(func.count()).select_from(SchemaVersion)) == 1


def test_study_trials_and_balanced_assignment(db):
    cfg = StudyConfig(trial_kinds=("2afc", "samediff"), trials_per_annotator=10, catch_trials=2,
                      judgments_per_trial=2)
    study = create_study(db, "s1", cfg, stimuli())
    with pytest.raises(AdvRecError, match="exists already"):
        create_study(db, "s1", cfg, stimuli())
    with db.begin() as s:
        kinds = Counter(k for (k,) in s.execute(text("SELECT kind FROM trials")))
        same = s.scalar(text("SELECT COUNT(*) FROM trials WHERE kind = 'samediff' AND identical"))
    assert kinds == {"2afc": 12, "samediff": 12, "catch": 4} and same == 6  # half identical
    seen = Counter()
    for p in ["a", "b", "c", "d", "e"]:
        ann = get_annotator(db, study, p)
        with db.begin() as s:
            rows = s.execute(select(Assignment.trial_id, Assignment.position,
                                    Assignment.modified_left)
                             .where(Assignment.annotator_id == ann.id)
                             .order_by(Assignment.position)).all()
            kinds_of = dict(s.execute(text("SELECT id, kind FROM trials")).all())
            cells_of = dict(s.execute(text("SELECT id, cell FROM trials")).all())
        ids = [r.trial_id for r in rows]
        assert len(ids) == 10 == len(set(ids))  # never the same trial twice
        assert sum(kinds_of[t] == "catch" for t in ids) == 2 and kinds_of[ids[0]] != "catch"
        per_cell = Counter(cells_of[t] for t in ids if kinds_of[t] != "catch")
        assert max(per_cell.values()) - min(per_cell.values()) <= 1  # balanced over cells
        assert sum(r.modified_left for r in rows) == 5  # modified image left half the time
        seen.update(t for t in ids if kinds_of[t] != "catch")
    # 5 annotators x 8 regular trials = 40 over 24 trials: least-assigned first -> 1 or 2 each
    assert set(seen.values()) <= {1, 2} and len(seen) == 24
    assert get_annotator(db, study, "a").id == get_annotator(db, study, "a").id
    with pytest.raises(AdvRecError, match="participant id"):
        get_annotator(db, study, "bad id!")


def test_answers_are_idempotent_correct_undoable_and_resumable(db):
    study = create_study(db, "s", StudyConfig(trials_per_annotator=6, catch_trials=1), stimuli())
    ann = get_annotator(db, study, "p1")
    first = next_trial(db, ann)
    right_answer = "left" if _modified_left(db, ann, first) else "right"  # the modified side
    assert submit_answer(db, ann.id, first.trial_id, right_answer, rt_ms=812.0) is True
    assert submit_answer(db, ann.id, first.trial_id, "left") is False  # resubmitted: ignored
    with db.begin() as s:
        rows = s.execute(select(Answer).where(Answer.annotator_id == ann.id)).scalars().all()
    assert len(rows) == 1 and rows[0].correct and rows[0].rt_ms == 812.0
    second = next_trial(db, ann)
    assert second.trial_id != first.trial_id and second.answered == 1 and second.total == 6
    with pytest.raises(AdvRecError, match="takes 'left' or 'right'"):
        submit_answer(db, ann.id, second.trial_id, "same")
    with pytest.raises(AdvRecError, match="not assigned"):
        submit_answer(db, ann.id, 10_000, "left")
    assert undo_last(db, ann.id) == first.trial_id
    assert next_trial(db, ann).trial_id == first.trial_id  # back to the undone trial
    url = db.kw["bind"].url.render_as_string(hide_password=False)
    dispose(url)  # "closed tab": a new process / session with the same pid resumes
    fresh = session_factory(url)
    again = get_annotator(fresh, study, "p1")
    assert again.id == ann.id and next_trial(fresh, again).trial_id == first.trial_id
    for _ in range(6):
        t = next_trial(fresh, again)
        submit_answer(fresh, again.id, t.trial_id, "left")
    assert next_trial(fresh, again) is None and progress(fresh, again) == (6, 6)
    df = answers_frame(fresh, study.id)
    assert len(df) == 6 and set(df["kind"]) <= {"2afc", "catch"} and "LPIPS-vgg" in df


def _modified_left(db, ann, presented) -> bool:
    with db.begin() as s:
        return s.scalar(select(Assignment.modified_left).where(
            Assignment.annotator_id == ann.id, Assignment.trial_id == presented.trial_id))


def test_twenty_concurrent_writers_lose_nothing(db):
    """20 annotators x 200 answers, written at once (plus a duplicate of every 10th answer
    from a second thread): exactly 4,000 rows."""
    cfg = StudyConfig(trials_per_annotator=200, catch_trials=0, images_per_cell=200)
    study = create_study(db, "load", cfg, stimuli(n_cells=1, per_cell=200, size=2))
    anns = [get_annotator(db, study, f"w{k}") for k in range(20)]
    with db.begin() as s:
        todo = {a.id: [t for (t,) in s.execute(select(Assignment.trial_id)
                                                .where(Assignment.annotator_id == a.id))]
                for a in anns}
    errors, start = [], threading.Barrier(20)

    def writer(a_id, trials, dup=False):
        try:
            if not dup:
                start.wait()
            for t in trials:
                submit_answer(db, a_id, t, "left", rt_ms=100.0)
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    threads = [threading.Thread(target=writer, args=(a, ts)) for a, ts in todo.items()]
    threads += [threading.Thread(target=writer, args=(a, ts[::10], True))
                for a, ts in list(todo.items())[:5]]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors[:3]
    with db.begin() as s:
        assert s.scalar(select(func.count()).select_from(Answer)) == 4000
        per = dict(s.execute(select(Answer.annotator_id, func.count()).group_by(Answer.annotator_id)).all())
    assert set(per.values()) == {200}



def test_twenty_participants_answer_fifty_each_through_the_endpoint_at_once(db):
    """20 participants consent and answer 50 showings each over HTTP at the same time (every
    5th answer sent twice, as a double click would): 1,000 rows, one per (participant,
    trial), nothing lost."""
    from helpers import Http, serve

    from advrec_core.study.web import RateLimit, participant_app

    cfg = StudyConfig(trials_per_annotator=50, catch_trials=0, images_per_cell=100)
    study = create_study(db, "http-load", cfg, stimuli(n_cells=1, per_cell=100, size=2))
    url = db.kw["bind"].url.render_as_string(hide_password=False)
    errors, start = [], threading.Barrier(20)
    with serve(participant_app(url, enrolments=RateLimit(100, 60))) as base:
        http = Http(base)

        def participant(k):
            try:
                start.wait()
                status, body, _ = http.post("/study/api/enrol", {"study": str(study.id),
                                                                  "agree": True, "pid": f"h{k}"})
                assert status == 200, body
                api = body["link"].replace("/study/p/", "/study/api/p/")
                v = http.get(api)[1]
                n = 0
                while not v["done"]:
                    answer = {"render": v["trial"]["render"], "response": "left", "rt_ms": 500.0}
                    status, nxt, _ = http.post(f"{api}/answer", answer)
                    assert status == 200, nxt
                    n += 1
                    if n % 5 == 0:
                        assert http.post(f"{api}/answer", answer)[0] == 200
                    v = nxt
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))

        threads = [threading.Thread(target=participant, args=(k,)) for k in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
    assert not errors, errors[:3]
    with db.begin() as s:
        assert s.scalar(select(func.count()).select_from(Answer)) == 1000
        per = Counter(dict(s.execute(select(Answer.annotator_id, func.count())
                                     .group_by(Answer.annotator_id)).all()).values())
    assert per == {50: 20}

# --- analysis against hand-computed cases ---------------------------------------------------

def test_wilson_and_binomial_by_hand():
    lo, hi = A.wilson(8, 10)  # the textbook example: 0.4902 .. 0.9433
    assert (round(lo, 4), round(hi, 4)) == (0.4902, 0.9433)
    assert A.wilson(0, 0) != A.wilson(0, 0)  # NaN for no data
    lo, hi = A.wilson(0, 5)
    assert lo == pytest.approx(0.0, abs=1e-12) and hi == pytest.approx(0.4345, abs=1e-4)
    answers = pd.DataFrame({"kind": "2afc", "cell": "pgd-8/t", "correct": [True] * 9 + [False]})
    row = A.detection_by_cell(answers).iloc[0]
    assert row["rate"] == 0.9 and row["p_value"] == pytest.approx(11 / 1024)  # P(X >= 9)


def test_krippendorff_alpha_known_values():
    # two coders, three units: (a,a), (a,b), (b,b): Do = 2/6, De = 18/30 -> alpha = 4/9
    assert A.krippendorff_alpha_nominal([["a", "a"], ["a", "b"], ["b", "b"]]) == pytest.approx(4 / 9)
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability", nominal example
    coders = [[1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
              [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
              [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
              [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None]]
    units = [[v for v in unit if v is not None] for unit in zip(*coders)]
    assert A.krippendorff_alpha_nominal(units) == pytest.approx(0.743, abs=5e-4)
    assert A.krippendorff_alpha_nominal([["x", "x"], ["x", "x"]]) == 1.0


def test_dprime_catch_and_agreement():
    assert A.dprime(8, 10, 2, 10) == pytest.approx(1.4958, abs=1e-3)  # z(8.5/11) - z(2.5/11)
    assert A.dprime(5, 10, 5, 10) == pytest.approx(0.0)
    answers = pd.DataFrame({
        "pid": ["a", "a", "b", "b", "a", "b"], "kind": ["catch", "catch", "catch", "catch", "2afc", "2afc"],
        "correct": [True, True, True, False, True, True], "trial_id": [1, 2, 1, 2, 3, 3],
        "cell": ["catch"] * 4 + ["c", "c"], "response": ["left"] * 6})
    f = A.catch_failures(answers).set_index("pid")
    assert not f.loc["a", "fails"] and f.loc["b", "fails"] and f.loc["b", "catch_rate"] == 0.5
    assert set(A.exclude(answers, f.reset_index())["pid"]) == {"a"}
    assert not A.catch_failures(answers, min_correct=0.5).set_index("pid").loc["b", "fails"]


def test_psychometric_fit_recovers_a_known_curve_and_correlations():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 0.6, 6000)
    p = 0.5 + 0.5 / (1 + np.exp(-(x - 0.3) / 0.05))
    fit = A.psychometric_fit(x, rng.random(len(x)) < p)
    assert fit["x75"] == pytest.approx(0.3, abs=0.02) and fit["scale"] == pytest.approx(0.05, rel=0.3)
    ssim = 1 - x  # a metric that falls as images differ more: negative slope, x75 = 0.7
    fit = A.psychometric_fit(ssim, rng.random(len(x)) < p)
    assert fit["x75"] == pytest.approx(0.7, abs=0.02) and fit["scale"] < 0
    chance = A.psychometric_fit(x, rng.random(len(x)) < 0.5)  # nobody sees anything
    assert np.isnan(chance["x75"]) and "not reached" in chance["note"]
    images = pd.DataFrame({"detection": [0.5, 0.6, 0.8, 0.9], "LPIPS-vgg": [0.1, 0.2, 0.3, 0.4],
                           "SSIM": [0.99, 0.98, 0.9, 0.8]})
    c = A.metric_correlations(images).set_index("metric")  # every registered metric
    assert c.loc["LPIPS-vgg", "spearman"] == pytest.approx(1.0)
    assert c.loc["SSIM", "kendall"] == pytest.approx(-1.0)
    assert np.isnan(c.loc["FL", "spearman"]) and "unavailable" in c.loc["FL", "note"]


def simulated_answers(seed=0, n_items=90, cells=("pgd-4/traditional", "fgsm-8/traditional"),
                      annotators=12, x75=0.06, scale=0.012):
    """2AFC answers of simulated people whose detection is a known 2AFC logistic of FLIP:
    P(correct) = 0.5 + 0.5 * sigmoid((FLIP - x75) / scale). The other metrics are noisier
    relatives (ΔE2000), unrelated (SSIM) or a constant (L-inf: every image at 8/255)."""
    rng = np.random.default_rng(seed)
    rows, trial = [], 0
    for cell in cells:  # the same items in two cells: one image, two stimuli
        for i in range(n_items):
            flip = rng.uniform(0.0, 0.15)
            metrics = {"FLIP": flip, "DeltaE2000": 20 * flip + rng.normal(0, 1.2),
                       "SSIM": rng.uniform(0.9, 1.0), "Linf": 8 / 255}
            p = 0.5 + 0.5 / (1 + np.exp(-(flip - x75) / scale))
            for a in range(annotators):
                rows.append({"pid": f"p{a}", "trial_id": trial, "kind": "2afc", "cell": cell,
                             "item": f"i{i}", "correct": bool(rng.random() < p), **metrics})
            trial += 1
    return pd.DataFrame(rows)


def test_perceptibility_model_finds_the_metric_people_follow():
    answers = simulated_answers()
    model = A.perceptibility_model(answers)
    table = model.table.set_index("model")
    singles = model.table[model.table["model"] != A.COMBINATION]
    assert singles["model"].iloc[0] == "FLIP"  # ranked first among the metrics
    assert table.loc["FLIP", "auc"] > table.loc["DeltaE2000", "auc"] > table.loc["SSIM", "auc"]
    assert table.loc["SSIM", "auc"] == pytest.approx(0.5, abs=0.06)  # unrelated: chance
    assert "Linf" not in table.index  # no spread: no model
    assert table.loc["FLIP", "x75"] == pytest.approx(0.06, rel=0.10)  # the 75% point
    assert table.loc["FLIP", "folds"] == 5 and table.loc["FLIP", "images"] == 90
    # the folds are by image: every answer about an item (in either cell) in one test fold
    assert (model.folds.groupby("item")["fold"].nunique() == 1).all()
    assert (model.folds["fold"] >= 0).all() and model.folds["fold"].nunique() == 5
    # predictions: higher FLIP, higher predicted detection, between chance and 1
    grid = pd.DataFrame({"FLIP": [0.0, 0.06, 0.15]})
    p = model.predict(grid, "FLIP")
    assert np.all(np.diff(p) > 0) and p[0] >= 0.5 and p[1] == pytest.approx(0.75, abs=0.05)


def test_predicted_detection_for_cells_not_yet_studied():
    from types import SimpleNamespace

    model = A.perceptibility_model(simulated_answers(seed=1))

    def found(label, flips):
        job = SimpleNamespace(label=label, spec=SimpleNamespace(title=label),
                              extractor=SimpleNamespace(defense="traditional"))
        metrics = pd.DataFrame({"FLIP": flips, "DeltaE2000": np.array(flips) * 20,
                                "SSIM": 0.95, "success": True})
        return job, SimpleNamespace(metrics=metrics)

    table = A.predicted_detection(model, [found("pgd-4/traditional", [0.01, 0.02]),
                                          found("fgsm-16/traditional", [0.12, 0.14])],
                                  studied={"pgd-4/traditional"}).set_index("cell")
    assert table.loc["fgsm-16/traditional", "predicted_detection"] > 0.9
    assert table.loc["pgd-4/traditional", "predicted_detection"] < 0.6
    assert table["in_study"].tolist() == [True, False]


def test_cli_lists_and_exports_a_study(tmp_path, capsys):
    from advrec_core.cli import main

    url = f"sqlite:///{tmp_path / 's.sqlite'}"
    db = session_factory(url)
    study = create_study(db, "cli", StudyConfig(trials_per_annotator=4, catch_trials=1), stimuli())
    ann = get_annotator(db, study, "c1")
    while (t := next_trial(db, ann)) is not None:
        submit_answer(db, ann.id, t.trial_id, "left")
    assert main(["study", "list", "--db", url]) == 0
    assert "cli" in capsys.readouterr().out
    assert main(["study", "export", str(study.id), "--db", url, "--out", str(tmp_path / "x")]) == 0
    exported = pd.read_csv(tmp_path / "x" / "answers.csv")
    assert len(exported) == 4 and set(exported["pid"]) == {"c1"}
    assert main(["study", "export", "99", "--db", url]) == 2
    assert "known: [1]" in capsys.readouterr().err
    assert main(["study", "invite", str(study.id), "--n", "3", "--db", url, "--base",
                 "https://study.example.org/"]) == 0
    links = capsys.readouterr().out.split()[-3:]
    assert len(set(links)) == 3 and all(
        link.startswith(f"https://study.example.org/study/p/{study.id}-") for link in links)
    with db.begin() as s:  # nobody is enrolled before consenting
        assert s.scalar(select(func.count()).select_from(Annotator)) == 1
    assert main(["study", "invite", "--db", url]) == 2
    assert "invite needs a study id" in capsys.readouterr().err
    dispose(url)
