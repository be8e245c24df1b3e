"""AppTest per page: no exception, and the real content is there."""
import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT, make_generic

GOOD = ["u1,A,1,5", "u1,B,2,4", "u2,A,3,3", "u2,C,4,4", "u3,B,5,2", "u3,A,6,5", "u4,C,7,1"]


@pytest.fixture
def app(demo_dir, monkeypatch):
    monkeypatch.chdir(ROOT)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    return at.run()


def gallery(at):
    imgs = at.get("image")
    assert len(imgs) == 1
    return list(imgs[0].proto.imgs)


def test_data_page_shows_demo_catalog(app):
    assert not app.exception
    assert app.title[0].value == "Data"
    assert [m.value for m in app.metric] == ["2,000", "600", "15,000", "1,998", "98.75%"]
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
