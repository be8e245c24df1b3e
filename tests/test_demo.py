"""The demo catalog: deterministic, shaped like a shop, and carrying visual signal."""
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from advrec_core.data import load_dataset
from advrec_core.data.demo import DemoConfig, generate_demo
from advrec_core.data.demo.render import CATEGORIES

SMALL = DemoConfig(n_users=120, n_items=60, n_interactions=600, n_corpus=30)


def digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_seed_is_byte_identical_whatever_the_workers(tmp_path):
    generate_demo(tmp_path / "a", SMALL, workers=1)
    generate_demo(tmp_path / "b", SMALL, workers=2)
    a, b = digest(tmp_path / "a"), digest(tmp_path / "b")
    assert len(a) == 60 + 7 and a == b
    generate_demo(tmp_path / "c", DemoConfig(**{**SMALL.__dict__, "seed": 1}), workers=1)
    assert digest(tmp_path / "c")["interactions.csv"] != a["interactions.csv"]


def test_default_demo_shape(demo_dir):
    items = pd.read_csv(demo_dir / "items.csv")
    inter = pd.read_csv(demo_dir / "interactions.csv")
    assert len(items) == 600 and items["category"].nunique() == len(CATEGORIES) >= 10
    assert inter["user"].nunique() == 2000 and abs(len(inter) - 15000) <= 150
    assert not inter.duplicated(["user", "item"]).any()
    assert inter.groupby("user").size().min() >= 2
    corpus = np.load(demo_dir / "corpus" / "images.npy")
    labels = np.load(demo_dir / "corpus" / "labels.npy")
    assert corpus.shape == (3000, 64, 64, 3) and corpus.dtype == np.uint8
    assert np.bincount(labels).min() == np.bincount(labels).max() == 300


def test_popularity_skew_has_clear_head_and_tail(demo_dir):
    ds = load_dataset("demo")
    table = ds.category_table()
    assert table["category"].iloc[0] == "Running shoe"
    assert table["category"].iloc[-1] == "Sandal"
    assert table["share"].iloc[0] > 8 * table["share"].iloc[-1]


def test_each_item_has_its_own_product_image(demo_dir):
    paths = sorted((demo_dir / "images").glob("*.png"))
    assert len(paths) == 600
    imgs = np.stack([np.asarray(Image.open(p)) for p in paths])  # (600, 64, 64, 3)
    assert imgs.shape == (600, 64, 64, 3)
    assert len({im.tobytes() for im in imgs}) == 600  # no two items share an image
    corners = imgs[:, [0, 0, -1], [0, -1, 0]].reshape(600, -1)
    assert corners.min() >= 200  # light studio background
    diff = np.abs(imgs.astype(int) - imgs[:, :1, :1].astype(int)).max(axis=3)  # (600, 64, 64)
    assert ((diff > 30).mean(axis=(1, 2)) > 0.04).all()  # a product is drawn (white ones too)
    assert ((diff[:, 24:40, 24:40] > 30).mean(axis=(1, 2)) > 0.2).mean() > 0.9  # mostly central
    # anti-aliased edges: many intermediate colours, not a handful of flat fills
    assert np.median([len(np.unique(im.reshape(-1, 3), axis=0)) for im in imgs[:50]]) > 150


def test_interactions_follow_visual_taste(demo_dir):
    """Users' items agree on colour and pattern far more than random item draws would."""
    ds = load_dataset("demo")
    inter = ds.interactions()
    attrs = ds.item_attributes
    rng = np.random.default_rng(0)

    def mean_top_share(item_idx):
        df = pd.DataFrame({"user": inter["user"].to_numpy(),
                           "colour": attrs["colour"].to_numpy()[item_idx]})
        counts = df.groupby(["user", "colour"]).size()
        top = counts.groupby(level=0).max() / counts.groupby(level=0).sum()
        return top[inter.groupby("user").size() >= 6].mean()

    real = mean_top_share(inter["item"].to_numpy())
    shuffled = mean_top_share(rng.permutation(inter["item"].to_numpy()))
    assert real > shuffled + 0.08, (real, shuffled)
