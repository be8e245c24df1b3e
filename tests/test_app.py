"""AppTest per page: no exception, and the real content is there."""
from dataclasses import replace

import pandas as pd
import pytest
from helpers import ROOT, make_authors, make_generic
from streamlit.testing.v1 import AppTest

GOOD = ["u1,A,1,5", "u1,B,2,4", "u2,A,3,3", "u2,C,4,4", "u3,B,5,2", "u3,A,6,5", "u4,C,7,1"]


@pytest.fixture
def app(demo_dir, monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("ADVREC_DATA_ROOTS", str(tmp_path))  # the tests' dataset folders
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    return at.switch_page("app_pages/data.py").run()  # (the landing page is the Story)


def gallery(at):
    imgs = at.get("image")
    assert len(imgs) == 1
    return list(imgs[0].proto.imgs)


def test_data_page_shows_demo_catalog(app):
    assert not app.exception
    assert app.title[0].value == "Data"
    assert [m.value for m in app.metric] == ["2,000", "576", "7,300", "1,993", "99.37%"]
    assert len(app.get("plotly_chart")) == 2
    table = app.dataframe[0].value
    assert table["category"].iloc[0] == "Running shoe" and len(table) == 10
    shown = gallery(app)
    assert len(shown) == 16
    assert all(im.url.endswith(".png") for im in shown)  # lossless, not JPEG
    first_cat = app.selectbox(key="data_gallery_cat").value
    assert first_cat == "Running shoe"


def test_gallery_follows_the_category(app):
    from advrec_core.data import load_dataset

    ds = load_dataset("demo")
    sandals = set(ds.item_ids[ds.category_names() == "Sandal"])
    app.selectbox(key="data_gallery_cat").select("Sandal").run()
    app.slider(key="data_gallery_n").set_value(8).run()
    shown = gallery(app)
    assert len(shown) == 8 and not app.exception
    assert {im.caption.split(" · ")[0] for im in shown} <= sandals


def test_data_page_loads_a_folder_and_reports_bad_ones(app, tmp_path):
    root = make_generic(tmp_path / "shop", GOOD, categories=["A,Shoe", "B,Bag", "C,Shoe"])
    app.radio(key="data_source").set_value("Dataset folder").run()
    assert app.info  # asks for a folder
    app.text_input(key="data_folder").input(str(root)).run()
    assert not app.exception
    assert [m.value for m in app.metric][:3] == ["4", "3", "7"]
    app.text_input(key="data_folder").input(str(tmp_path / "nope")).run()
    assert not app.exception
    assert "dataset folder not found" in app.error[0].value


def test_data_page_shows_the_authors_release_categories(app, tmp_path):
    """The authors' layout: categories from original/classes.csv; the AT extractor's own
    (madry_original/classes.csv) beside them."""
    train = [f"{u}\t{i}\t1\t{10 * u + i}" for u in range(4) for i in range(6) if (u + i) % 3]
    test = [f"{u}\t{(3 - u % 3) % 3}\t1\t{100 + u}" for u in range(4)]  # not in train
    rows = [f"{i}.jpg,{'sandal' if i < 2 else 'running_shoe'},{774 if i < 2 else 770},0.9"
            for i in range(6)]
    at = [r.replace("sandal", "clog") for r in rows]
    root = make_authors(tmp_path / "amazon_men", train, test, classes=rows,
                        classes_in="original", defense_classes={"madry_original": at})
    app.radio(key="data_source").set_value("Dataset folder").run()
    app.text_input(key="data_folder").input(str(root)).run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    assert set(app.dataframe[0].value["category"]) == {"sandal", "running_shoe"}
    assert any("original/classes.csv" in c.value for c in app.caption)
    app.radio(key="data_pred_defense").set_value("at").run()
    assert not app.exception
    counts = app.dataframe[1].value  # given vs predicted by the AT ResNet50
    assert counts.loc["clog", "predicted"] == 2 and counts.loc["sandal", "given"] == 2


# --- Attack Lab, Recommendation Impact, Grid --------------------------------------------

SMALL = 4  # images per attack in these tests


@pytest.fixture
def page(demo_dir, monkeypatch):
    monkeypatch.chdir(ROOT)

    def make(name: str, **state):
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
        for k, v in state.items():
            at.session_state[k] = v
        return at.switch_page(f"app_pages/{name}.py")
    return make


def finish_jobs():
    """Wait for every job the pages submitted (the runner is process-wide)."""
    from advrec_core.jobs import runner

    for job in runner().jobs():
        job.wait(600)
    return runner().jobs()


def small_attack():
    from advrec_core.experiments.attack import AttackJob

    return AttackJob("Sandal", "Running shoe", limit=SMALL)  # the paper's PGD-8


def test_attack_lab_runs_the_default_attack_and_shows_it_losslessly(page):
    at = page("attack_lab").run()
    assert not at.exception and at.title[0].value == "Attack Lab"
    assert at.selectbox(key="lab_source").value == "Sandal"  # the proposed pair
    assert at.selectbox(key="lab_target").value == "Running shoe"
    assert "Not computed yet" in at.info[0].value
    at.number_input(key="lab_limit").set_value(SMALL)
    at.button(key="lab_run").click().run()
    jobs = [j for j in finish_jobs() if j.key.startswith("plan-")]  # the attack's plan
    assert jobs and jobs[0].state == "done", jobs[0].error
    tab_b = page("attack_lab", attack_job=small_attack()).run()  # a second tab, same settings
    assert [j.key for j in finish_jobs() if j.key.startswith("plan-")] == [jobs[0].key]
    for view in (at.run(), tab_b):
        assert not view.exception
        metrics = {m.label: m.value for m in view.metric}
        assert metrics["Success rate"].endswith("%") and metrics["L-inf"] == "8.0/255"
        assert {"FLIP", "ΔE2000", "SSIM", "FL map"} <= set(metrics)
        assert "LPIPS (VGG)" not in metrics  # the test's torch hub folder is empty: one line
        lines = [c.value for c in view.caption if "unavailable" in c.value]
        assert len(lines) == 1 and lines[0].startswith("LPIPS-vgg, LPIPS-alex: unavailable")
        assert all(len(v) <= 9 for v in metrics.values())  # fits a tile, never "unavai…"
        shown = list(view.get("image")[0].proto.imgs)
        assert [im.caption for im in shown][:3] == ["clean", "perturbed", "perturbation x10"]
        assert all(im.url.endswith(".png") for im in shown)  # lossless, not JPEG
        table = view.dataframe[0].value
        assert len(table) == SMALL and {"SR", "FL", "SSIM", "PSNR", "Linf", "L2"} <= set(table)
        html = view.get("html")[0].proto.body
        assert html.count("data:image/png;base64,") == 3 and "<script" not in html
        person, cnn = (h.proto.body for h in view.get("html")[1:3])
        assert "FLIP (flicker difference)" in person and "colour bar" in person
        assert "FL map" in cnn and "map 6x6" in cnn
    at.selectbox(key="lab_item").select(2).run()
    assert not at.exception and at.markdown  # the prediction line follows the item


def test_a_second_tab_watches_a_running_job_instead_of_starting_it_again(page, job_runner):
    """While the attack runs (here: a stand-in blocked on an event), another tab pressing
    Run with the same settings watches that job: nothing is started a second time."""
    import threading

    from ui.jobs import plan_key

    key, release, calls = plan_key(load_demo(), [small_attack()]), threading.Event(), []

    def blocked(progress):
        calls.append(1)
        progress(1, 3, "attacking")
        release.wait(60)

    job_runner.submit(key, blocked, "first tab's attack")
    try:
        tab_b = page("attack_lab", attack_job=small_attack()).run()
        tab_b.button(key="lab_run").click().run()
        assert not tab_b.exception
        assert [j.key for j in job_runner.jobs()] == [key] and calls == [1]
        watching = [c.value for c in tab_b.main.caption if "the job keeps running" in c.value]
        assert watching, "the page does not watch the running job"  # (the sidebar lists it anyway)
        assert any("first tab's attack" in b.proto.text for b in tab_b.main.get("progress"))
        assert not [i for i in tab_b.info if "Not computed yet" in i.value]
    finally:
        release.set()
        job_runner.get(key).wait(10)


def test_attack_lab_failed_job_shows_its_error(page):
    at = page("attack_lab").run()
    at.selectbox(key="lab_arch").select("resnet50")
    at.number_input(key="lab_limit").set_value(SMALL)
    at.button(key="lab_run").click().run()
    failed = [j for j in finish_jobs() if j.state == "failed"]
    at.run()
    assert not at.exception and failed
    err = at.error[0].value
    assert "failed" in err and "\n" not in failed[0].error and "Traceback" not in err
    assert any(b.label == "Retry" for b in at.button)


def test_impact_page_needs_an_attack_first(page):
    at = page("impact").run()
    assert not at.exception and "No attack computed on this dataset yet" in at.info[0].value


def test_impact_page_in_a_fresh_session_offers_the_cached_attacks(page):
    """An attack computed elsewhere (the CLI here) is on the page without visiting the
    Attack Lab, newest first, and its cached clean-vs-poisoned result shows at once."""
    from advrec_core.experiments.attack import run_attack_job
    from advrec_core.experiments.poison import PoisonJob, run_poison
    from advrec_core.recommenders import RecConfig

    ds = load_demo()
    old = replace(small_attack(), limit=3)
    run_attack_job(ds, old)
    run_poison(ds, PoisonJob(small_attack(), RecConfig()))  # newer; the page's defaults
    at = page("impact").run()
    assert not at.exception
    options = at.selectbox(key="impact_attack").options
    assert len(options) == 2 and "4 images" in options[0] and "3 images" in options[1]
    assert not at.exception and "CHR@20 poisoned" in [m.label for m in at.metric], (
        [i.value for i in at.info], [e.value for e in at.error])


def test_impact_page_trains_clean_vs_poisoned(page):
    from advrec_core.experiments.poison import PoisonJob, run_poison
    from advrec_core.recommenders import RecConfig

    at = page("impact", attack_job=small_attack()).run()
    assert not at.exception
    at.number_input(key="impact_seeds").set_value(1)
    at.number_input(key="impact_epochs").set_value(10)
    at.button(key="impact_run").click().run()
    assert all(j.state == "done" for j in finish_jobs() if j.key.startswith("plan-"))
    at.run()
    assert not at.exception
    res = run_poison(load_demo(), PoisonJob(small_attack(), RecConfig(epochs=10), (0,)))
    ch = res.change.set_index("K").loc[20]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["CHR@20 of Sandal, clean"] == f"{ch['clean']:.4f}"
    assert metrics["CHR@20 poisoned"] == f"{ch['poisoned']:.4f}"
    assert len(at.get("plotly_chart")) == 2  # CHR bars, rank shift
    assert list(at.dataframe[0].value.index) == ["clean", "poisoned"]
    lists = at.get("image")
    assert len(lists) == 2 and all(len(el.proto.imgs) == 20 for el in lists)
    at.segmented_control(key="impact_k").set_value(10).run()
    assert not at.exception and "CHR@10 poisoned" in [m.label for m in at.metric]


def load_demo():
    from advrec_core.data import load_dataset

    return load_dataset("demo")


def test_grid_page_shows_missing_cells_and_runs_one(page):
    at = page("grid").run()
    assert not at.exception and at.title[0].value == "Grid"
    assert "0 of 30 cells computed" in at.caption[0].value
    # Table 1: 3 per recommender; Table 2: SR, FL and FLIP beside the paper's SR, FL and
    # LPIPS (no LPIPS weights here), then the FL map, ΔE2000, SSIM and |δ|
    assert len(at.get("plotly_chart")) == 6 + 6 + 4
    table = at.dataframe[0].value
    assert len(table) == 30 and not table["computed"].any()
    assert len(at.get("download_button")) == 2
    at.number_input(key="grid_seeds").set_value(1).run()
    at.button(key="grid_run").click().run()  # VBPR, FGSM (eps=4), Traditional
    assert all(j.state == "done" for j in finish_jobs() if j.key.startswith("plan-"))
    at.run()
    assert not at.exception and "1 of 30 cells computed" in at.caption[0].value
    row = at.dataframe[0].value.iloc[0]
    assert row["computed"] and row["CHR@20 clean"] > 0
    from advrec_core.cache import Cache
    from advrec_core.data import load_dataset
    from advrec_core.experiments.attack import run_attack_job
    from advrec_core.experiments.grid import GridSpec  # the table shows the attack's own SR

    spec = GridSpec.of("Sandal", "Running shoe", seeds=(0,))
    res = run_attack_job(load_dataset("demo"), spec.attack_job("fgsm-4", "traditional"),
                         Cache.default().read_only())
    assert row["SR"] == pytest.approx(res.metrics["success"].mean())
    for metric in ("FLIP", "DeltaE2000", "SSIM", "FLmap"):  # weight-free: in every cell
        assert row[metric] == pytest.approx(res.metrics[metric].mean()), metric
    assert pd.isna(row["LPIPS-vgg"])  # no VGG weights here: missing, not zero
