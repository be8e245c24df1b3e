"""The demo catalog: deterministic, shaped like a shop, and carrying visual signal."""

import numpy as np
import pandas as pd
from helpers import digest
from PIL import Image

from advrec_core.data import load_dataset
from advrec_core.data.demo import DemoConfig, generate_demo
from advrec_core.data.demo.classes import CLASSES, GROUPS, SHOP

SMALL = DemoConfig(n_users=120, n_items=60, n_interactions=600, n_corpus=82)


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
    assert len(items) == 600 and items["category"].nunique() == len(SHOP) == 10
    assert inter["user"].nunique() == 2000 and abs(len(inter) - 7300) <= 150
    assert not inter.duplicated(["user", "item"]).any()
    assert inter.groupby("user").size().min() >= 2
    corpus = np.load(demo_dir / "corpus" / "images.npy")
    labels = np.load(demo_dir / "corpus" / "labels.npy")
    n = DemoConfig().n_corpus
    s = DemoConfig().image_size
    assert corpus.shape == (n, s, s, 3) and corpus.dtype == np.uint8
    counts = np.bincount(labels, minlength=len(CLASSES))
    assert len(counts) == len(CLASSES) >= 40 and counts.max() - counts.min() <= 1


def test_the_shop_sells_a_subset_of_the_worlds_classes_with_look_alikes(demo_dir):
    """As Amazon's categories are a subset of ImageNet's classes: every shop category is a
    class of the world, and each sits in a group with look-alikes the shop does not sell."""
    import json

    classes = json.loads((demo_dir / "categories.json").read_text())
    assert [c["name"] for c in classes] == [c.name for c in CLASSES]
    shop = {c["name"] for c in classes if c["shop"]}
    assert shop == set(pd.read_csv(demo_dir / "items.csv")["category"]) == {c.name for c in SHOP}
    from advrec_core.data.demo.canvas import MATERIALS

    assert all(c.material in MATERIALS for c in CLASSES)
    for group in GROUPS:
        members = [c for c in classes if c["group"] == group]
        assert len(members) >= 3 and sum(c["shop"] for c in members) >= 1, group


def test_the_corpus_is_photographed_in_the_wild_the_catalog_in_a_studio(demo_dir):
    """Catalog photos are mostly plain light studio shots; the classifier's corpus varies
    backgrounds, framing and quality (so classifying it is hard, as ImageNet is)."""
    catalog = np.stack([np.asarray(Image.open(p)) for p in sorted((demo_dir / "images").glob("*.png"))[:300]])
    corpus = np.load(demo_dir / "corpus" / "images.npy")[:300]

    def studio_share(imgs):
        corners = imgs[:, [0, 0, -1, -1], [0, -1, 0, -1]].astype(int)  # (N, 4, 3)
        return ((corners.min(axis=(1, 2)) >= 200) & (np.ptp(corners, axis=1).max(axis=1) < 12)).mean()

    assert studio_share(catalog) > 0.7
    assert studio_share(corpus) < 0.45


def test_popularity_skew_has_clear_head_and_tail(demo_dir):
    ds = load_dataset("demo")
    table = ds.category_table()
    assert table["category"].iloc[0] == "Running shoe"
    assert table["category"].iloc[-1] == "Sandal"
    assert table["share"].iloc[0] > 8 * table["share"].iloc[-1]


def test_each_item_has_its_own_product_image(demo_dir):
    paths = sorted((demo_dir / "images").glob("*.png"))
    assert len(paths) == 600
    imgs = np.stack([np.asarray(Image.open(p)) for p in paths])  # (600, S, S, 3)
    s = DemoConfig().image_size
    assert imgs.shape == (600, s, s, 3)
    assert len({im.tobytes() for im in imgs}) == 600  # no two items share an image
    corners = imgs[:, [0, 0, -1], [0, -1, 0]].reshape(600, -1)
    assert (corners.min(axis=1) >= 200).mean() > 0.7  # mostly light studio backgrounds
    diff = np.abs(imgs.astype(int) - imgs[:, :1, :1].astype(int)).max(axis=3)  # (600, S, S)
    # a product is drawn (white ones too, flattened by high-key lighting)
    assert ((diff > 15).mean(axis=(1, 2)) > 0.04).all()
    c = slice(s * 3 // 8, s * 5 // 8)
    assert ((diff[:, c, c] > 15).mean(axis=(1, 2)) > 0.2).mean() > 0.85  # mostly central
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
