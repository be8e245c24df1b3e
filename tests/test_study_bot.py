"""A bot that sees only what a participant's browser receives plays a study built from real
attack output and answers at chance: nothing on the page gives the answer away.

The bot reads the views (JSON) and the image payloads as bytes: their lengths and whether two
are byte-identical, never the pixel values. (A program that decodes the pixels and compares
the two images is an automated detector of the perturbation itself, which the page must
show; what it must not carry is any other sign of the answer.) The same rules, on the same
kind of study, got 440 of 440 non-catch trials right on the Streamlit participant page this
endpoint replaced, where each image was its own data URI: the modified PNG's was the longer
one, and identical pairs were byte-identical URIs. Here: 222 of 440 (p = 0.89)."""
import json
import secrets

import numpy as np
import pytest
from helpers import Http, serve
from scipy.stats import binomtest
from sqlalchemy import select

from advrec_core.study import (
    StudyConfig,
    answers_frame,
    create_study,
    session_factory,
    stimuli_from_attacks,
)
from advrec_core.study.db import Annotator, Assignment, Trial, dispose
from advrec_core.study.web import RateLimit, participant_app


def bot(question: str, payloads: list[bytes], median_length: float) -> str:
    """The answer a script reading only the page's payloads gives."""
    if len(payloads) == 2:  # one encoding per image
        left, right = payloads
        if question == "samediff":
            return "same" if left == right else "different"
        return "left" if len(left) > len(right) else "right"  # noise compresses worse
    length = len(payloads[0])  # one image of the pair: only its length to read
    if question == "samediff":  # identical halves compress better
        return "same" if length < median_length else "different"
    return "left" if length % 2 else "right"


@pytest.fixture
def attack_results(demo, quick):
    """PGD (eps 2 and 8) and FGSM (eps 4) on up to 40 sandals each, against the quick demo
    CNN: real attack output for the study's three cells."""
    from advrec_core.attacks import AttackSpec
    from advrec_core.experiments.attack import AttackJob, run_attack_job

    ds = demo
    jobs = [AttackJob("Sandal", "Running shoe", AttackSpec(name, eps), quick, limit=40,
                      lpips=(), categories="true")
            for name, eps in (("pgd", 2), ("pgd", 8), ("fgsm", 4))]
    return ds, [(job, run_attack_job(ds, job)) for job in jobs]


def test_a_bot_reading_only_the_page_answers_at_chance(attack_results, tmp_path, monkeypatch):
    ds, found = attack_results
    rng = np.random.default_rng(2026)  # the participants' uids and the render ids: fixed, so
    monkeypatch.setattr(secrets, "token_hex",  # the experiment is the same every run
                        lambda n=32: rng.bytes(n).hex())
    monkeypatch.setenv("ADVREC_STUDY_SECRET", "f" * 64)
    url = f"sqlite:///{tmp_path / 'study.sqlite'}"
    db = session_factory(url)
    cfg = StudyConfig(trial_kinds=("2afc", "samediff"), images_per_cell=40,
                      trials_per_annotator=25, catch_trials=3, judgments_per_trial=2)
    study = create_study(db, "bot", cfg, stimuli_from_attacks(ds, found, 40))
    played = []  # (annotator uid, render, the bot's answer)
    with serve(participant_app(url, enrolments=RateLimit(100, 60))) as base:
        http = Http(base)
        for _ in range(20):
            link = http.post("/study/api/enrol", {"study": str(study.id), "agree": True})[1]["link"]
            api = link.replace("/study/p/", "/study/api/p/")
            v = http.get(api)[1]
            lengths = []
            while not v["done"]:
                t = v["trial"]
                assert set(v) >= {"trial", "answered", "total"} and "kind" not in json.dumps(v)
                png = http.get(f"{api}/image/{t['render']}")[1]
                lengths.append(len(png))
                answer = bot(t["question"], [png], float(np.median(lengths)))
                played.append((link.split("-")[1], t["render"], answer))
                v = http.post(f"{api}/answer", {"render": t["render"], "response": answer})[1]
    with db.begin() as s:
        truth = {(uid, render): (kind, cell) for uid, render, kind, cell in s.execute(
            select(Annotator.uid, Assignment.render, Trial.kind, Trial.cell)
            .join(Assignment, Assignment.annotator_id == Annotator.id)
            .join(Trial, Trial.id == Assignment.trial_id))}
    answers = answers_frame(db, study.id)
    dispose(url)
    assert len(played) == 500 and len(answers) == 500
    kinds = {truth[(uid, r)][0] for uid, r, _ in played}
    cells = {truth[(uid, r)][1] for uid, r, _ in played}
    assert kinds == {"2afc", "samediff", "catch"}
    assert cells >= {"pgd-2/traditional/given", "pgd-8/traditional/given",
                     "fgsm-4/traditional/given"}
    judged = answers[answers["kind"] != "catch"]
    hits, n = int(judged["correct"].sum()), len(judged)
    p = binomtest(hits, n, 0.5).pvalue
    print(f"bot: {hits} of {n} non-catch trials right ({hits / n:.1%}), two-sided binomial "
          f"p = {p:.3f}")
    assert n >= 400 and p > 0.01, (hits, n, p)
