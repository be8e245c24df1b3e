"""A new attack with a setting no attack has, and a new recommender with a hyperparameter no
model has, each registered in one file (tests/toy_attack.py, tests/toy_recommender.py): the
CLI, the grid and the pages take them, their settings included, with no other edit."""
import runpy

import pytest
from helpers import ROOT

from advrec_core.cli import main

PAIR = ["--source", "Sandal", "--target", "Running shoe", "--categories", "true"]
SMALL = ["--epochs", "3", "--limit", "3"]


@pytest.fixture
def toys(monkeypatch, demo_dir):
    """The two files run (their registrations), the registries restored after the test."""
    from advrec_core.attacks import ATTACKS
    from advrec_core.recommenders import RECOMMENDERS

    for registry in (ATTACKS, RECOMMENDERS):
        monkeypatch.setattr(registry, "_entries", dict(registry._entries))
    for name in ("toy_attack.py", "toy_recommender.py"):
        runpy.run_path(str(ROOT / "tests" / name))


def run(capsys, argv):
    rc = main(["-q", *argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_the_cli_and_the_grid_take_a_new_attack_and_recommender(toys, capsys):
    rc, out, err = run(capsys, ["attack", "demo", *PAIR, *SMALL, "--attack", "toy", "--eps", "4",
                                "--attack-density", "0.5", "--lpips", ""])
    assert rc == 0, err
    assert "SparseSign(eps=0.0156" in out and "density=0.5" in out
    rc, _, err = run(capsys, ["attack", "demo", *PAIR, *SMALL, "--attack", "pgd",
                              "--attack-density", "0.5"])
    assert rc == 2 and err.count("\n") == 1 and "PGD has no such setting" in err
    rc, out, err = run(capsys, ["train-rec", "demo", "--model", "toymf", "--init-scale", "3",
                                "--rec-epochs", "3", "--epochs", "3", "--categories", "true"])
    assert rc == 0 and "model        toymf" in out, err
    rc, _, err = run(capsys, ["train-rec", "demo", "--model", "vbpr", "--init-scale", "3"])
    assert rc == 2 and "vbpr has no hyperparameter 'init_scale'" in err
    rc, out, err = run(capsys, ["grid", "demo", *PAIR, *SMALL, "--attacks", "toy-4", "pgd-4",
                                "--defenses", "traditional", "--models", "toymf", "vbpr",
                                "--attack-density", "0.5", "--init-scale", "3", "--seeds", "0",
                                "--rec-epochs", "3", "--run"])
    assert rc == 0 and "4/4 cells computed" in out, err
    assert "Toy MF" not in out and "toymf" in out and "toy-4" in out


def test_the_pages_take_them(toys, demo):
    """The Attack Lab offers the new attack and its setting; Recommendation Impact the new
    recommender and its hyperparameter; both run them."""
    from streamlit.testing.v1 import AppTest

    from advrec_core.jobs import runner

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.switch_page("app_pages/attack_lab.py").run()
    at.radio(key="lab_categories").set_value("true").run()  # outside the form: first
    at.radio(key="lab_attack").set_value("toy")
    at.number_input(key="lab_set_density").set_value(0.25)
    at.number_input(key="lab_limit").set_value(3)
    at.button(key="lab_run").click().run()  # the form's values go with its submit
    for job in runner().jobs():
        job.wait(600)
    at.run()
    assert not at.exception, at.exception
    assert any("Sparse sign" in s.value for s in at.subheader)
    job = at.session_state["attack_job"]
    assert dict(job.spec.settings) == {"density": 0.25}
    at.switch_page("app_pages/impact.py").run()
    at.selectbox(key="impact_model").set_value("toymf")
    at.number_input(key="impact_par_init_scale").set_value(2.0)
    at.number_input(key="impact_seeds").set_value(1)
    at.number_input(key="impact_epochs").set_value(5)
    at.button(key="impact_run").click().run()
    for job in runner().jobs():
        job.wait(600)
    at.run()
    assert not at.exception, at.exception
    assert "CHR@20 poisoned" in [m.label for m in at.metric]
    assert any(j.state == "done" and "Toy MF" in j.title for j in runner().jobs())
