"""The embedded demo catalog: a small fashion shop that stands in for Amazon Men/Women.

It is written in the generic dataset layout, so the same loader reads it as any user data:

    interactions.csv        user,item,timestamp,rating
    items.csv               item,category,colour,pattern
    images/<item>.png       96x96 RGB product photos, one per catalog item (mostly studio
                            shots, some with an earlier JPEG save)
    corpus/images.npy       (n_corpus, 96, 96, 3) uint8: the labelled "ImageNet" of this
    corpus/labels.npy       world (41 classes, photos in the wild), used to train the demo
                            classifier; (n_corpus,) int64 class indices
    corpus/colours.npy      (n_corpus,) int64 colour and pattern of each corpus image (indices
    corpus/patterns.npy     into COLOURS / PATTERNS): extra supervision, see defenses.training
    categories.json         class index -> {key, name, group, shop}: every class of the
                            world; the ten with shop=true are items.csv's categories

Same config -> byte-identical files (every image has its own seeded generator, so the
worker count does not change the output)."""
from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from ...cache import Cache
from ...progress import Progress
from .canvas import COLOURS, PATTERNS
from .classes import CLASSES, SHOP, Category, colour_prior
from .render import CATALOG_STYLE, CORPUS_STYLE, ShotStyle, render, sample_look, sample_shot
from .world import Taste, sample_interactions, user_item_utility

GENERATOR_VERSION = 3  # bump when the output for a given config changes
_INPUTS = {"generator": GENERATOR_VERSION}  # part of the cache key besides the config
_CATALOG, _CORPUS, _WORLD = 1, 2, 3  # independent random streams

# Shop-wide category popularity (normalised): Running shoe and Brassiere are the popular
# targets, Sandal and T-shirt the unpopular sources, as in the paper's two datasets.
DEFAULT_POPULARITY: tuple[tuple[str, float], ...] = (
    ("tshirt", 0.05), ("brassiere", 0.16), ("sandal", 0.02), ("running_shoe", 0.22),
    ("dress", 0.12), ("handbag", 0.10), ("sunglasses", 0.06), ("hat", 0.08),
    ("sock", 0.04), ("jeans", 0.13),
)


@dataclass(frozen=True)
class DemoConfig:
    seed: int = 0  # one seed drives everything
    n_users: int = 2000
    n_items: int = 600  # catalog items, spread evenly over the categories
    n_interactions: int = 7300  # about; every user gets >= 2. Amazon Men's density (24,379
    # users, 7,371 items, 89,020 ratings): 3.65 per user, 12.1 per item
    n_corpus: int = 6150  # labelled classifier-training images, balanced over all classes
    image_size: int = 96  # pixels, square
    popularity: tuple[tuple[str, float], ...] = field(default=DEFAULT_POPULARITY)
    taste: Taste = field(default_factory=Taste)  # the users' taste model
    catalog_style: ShotStyle = CATALOG_STYLE  # the shop's photos
    corpus_style: ShotStyle = CORPUS_STYLE  # the classifier's training photos

    def __post_init__(self):
        keys = {c.key for c in SHOP}
        if {k for k, _ in self.popularity} != keys:
            raise ValueError(f"popularity must give a weight to each of {sorted(keys)}")
        if min(self.n_users, self.n_items) < len(SHOP) or self.n_corpus < len(CLASSES):
            raise ValueError(f"n_users and n_items must be >= {len(SHOP)}, "
                             f"n_corpus >= {len(CLASSES)}")


_WORKER: dict = {"size": 96, "styles": {}}  # set in each worker process by its initializer


def photograph(rng: np.random.Generator, category: Category, colour: str, pattern: str,
               size: int, style: ShotStyle) -> Image.Image:
    """One product photo of `category` in `style`, all randomness from `rng`."""
    look = sample_look(rng, colour, pattern, style, category.material)
    return render(category, look, size, sample_shot(rng, look, style))


def _render_one(args: tuple[int, int, int, int, int, int, str | None]) -> np.ndarray | None:
    """Worker: render image `index` of `stream`; save it as PNG if a path is given."""
    seed, stream, index, cat, col, pat, path = args
    rng = np.random.default_rng([seed, stream, index])
    img = photograph(rng, CLASSES[cat], COLOURS[col], PATTERNS[pat], _WORKER["size"],
                     _WORKER["styles"][stream])
    if path is None:
        return np.asarray(img)
    img.save(path, format="PNG", compress_level=6)
    return None


def _init_worker(size: int, styles: dict[int, ShotStyle]) -> None:
    _WORKER.update(size=size, styles=styles)


def _attributes(rng: np.random.Generator, n: int,
                classes: tuple[Category, ...] = SHOP) -> tuple[np.ndarray, ...]:
    """Balanced classes (indices into CLASSES; `classes` is a prefix of it) with per-class
    colour priors and uniform patterns."""
    cat = np.arange(n) % len(classes)
    rng.shuffle(cat)
    u = rng.random(n)
    cdf = np.cumsum(np.stack([colour_prior(c) for c in classes]), axis=1)  # (n_cat, n_col)
    col = np.minimum((u[:, None] > cdf[cat]).sum(axis=1), len(COLOURS) - 1)
    pat = rng.integers(0, len(PATTERNS), size=n)
    return cat, col, pat


def generate_demo(out: Path, config: DemoConfig = DemoConfig(), workers: int | None = None,
                  progress: Progress | None = None) -> None:
    """Write the demo catalog described by `config` into the folder `out`."""
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "corpus").mkdir(exist_ok=True)
    rng = np.random.default_rng([config.seed, _WORLD])
    cat, col, pat = _attributes(rng, config.n_items)
    item_ids = [f"P{i:05d}" for i in range(config.n_items)]
    popularity = dict(config.popularity)
    pop = np.array([popularity[c.key] for c in SHOP], dtype=float)
    utility = user_item_utility(rng, config.n_users, cat, col, pat, pop / pop.sum(),
                                len(COLOURS), len(PATTERNS), config.taste)
    inter = sample_interactions(rng, utility, config.n_interactions)

    c_cat, c_col, c_pat = _attributes(np.random.default_rng([config.seed, _CORPUS]),
                                      config.n_corpus, CLASSES)
    jobs = [(config.seed, _CATALOG, i, int(cat[i]), int(col[i]), int(pat[i]),
             str(out / "images" / f"{item_ids[i]}.png")) for i in range(config.n_items)]
    jobs += [(config.seed, _CORPUS, i, int(c_cat[i]), int(c_col[i]), int(c_pat[i]), None)
             for i in range(config.n_corpus)]
    corpus = np.empty((config.n_corpus, config.image_size, config.image_size, 3), np.uint8)
    workers = workers or min(2, os.cpu_count() or 1)
    styles = {_CATALOG: config.catalog_style, _CORPUS: config.corpus_style}
    total, done = len(jobs), 0
    if progress:
        progress(0, total, "rendering demo images")
    # fork where the OS has it: workers only use numpy and PIL, and unlike spawn it does
    # not re-import the caller's __main__ (scripts without a main guard keep working)
    method = "fork" if "fork" in get_all_start_methods() else "spawn"
    with ExitStack() as stack:
        if workers > 1:
            pool = stack.enter_context(ProcessPoolExecutor(
                workers, mp_context=get_context(method), initializer=_init_worker,
                initargs=(config.image_size, styles)))
            results = pool.map(_render_one, jobs, chunksize=50)
        else:
            _init_worker(config.image_size, styles)
            results = map(_render_one, jobs)
        for job, arr in zip(jobs, results):
            if arr is not None:
                corpus[job[2]] = arr
            done += 1
            if progress and (done % 100 == 0 or done == total):
                progress(done, total, "rendering demo images")

    np.save(out / "corpus" / "images.npy", corpus)
    np.save(out / "corpus" / "labels.npy", c_cat.astype(np.int64))
    np.save(out / "corpus" / "colours.npy", c_col.astype(np.int64))
    np.save(out / "corpus" / "patterns.npy", c_pat.astype(np.int64))
    (out / "categories.json").write_text(json.dumps(
        [{"index": i, "key": c.key, "name": c.name, "group": c.group, "shop": i < len(SHOP)}
         for i, c in enumerate(CLASSES)], indent=1) + "\n")
    names = np.array([c.name for c in SHOP])
    items = {"item": item_ids, "category": names[cat], "colour": np.array(COLOURS)[col],
             "pattern": np.array(PATTERNS)[pat]}
    pd.DataFrame(items).to_csv(out / "items.csv", index=False, lineterminator="\n")
    inter = inter.assign(user=[f"U{u:05d}" for u in inter["user"]],
                         item=np.array(item_ids)[inter["item"].to_numpy()])
    inter.to_csv(out / "interactions.csv", index=False, lineterminator="\n")


def demo_folder(config: DemoConfig = DemoConfig(), cache: Cache | None = None,
                progress: Progress | None = None, workers: int | None = None,
                force: bool = False) -> Path:
    """The cached demo catalog for `config`, generated on first use (or again if `force`)."""
    cache = cache or Cache.default()
    if force:
        cache.discard("demo", config, _INPUTS)
    return cache.entry("demo", config, lambda tmp: generate_demo(tmp, config, workers, progress),
                       inputs=_INPUTS)


def demo_is_cached(config: DemoConfig = DemoConfig(), cache: Cache | None = None) -> bool:
    """True if the demo catalog for `config` is in the cache and intact."""
    return (cache or Cache.default()).lookup("demo", config, _INPUTS) is not None


LOOK_ALIKES = ("sneaker", "flipflop", "slipper", "boot", "polo", "tank_top", "bikini",
               "sports_bra", "gown", "backpack")  # the contact sheet's second row


def contact_sheet(folder: Path, scale: int = 2, seed: int = 0) -> Image.Image:
    """Three rows, nearest-neighbour upscaled by `scale`: one catalog item per shop
    category; look-alike classes the shop does not sell (catalog-style photos drawn for the
    sheet with `seed`); the first corpus photo of each shop category (photos in the wild)."""
    folder = Path(folder)
    items = pd.read_csv(folder / "items.csv")
    first = items.drop_duplicates("category")
    order = {c.name: i for i, c in enumerate(SHOP)}
    first = first.iloc[np.argsort([order.get(c, 99) for c in first["category"]])]
    shop = [np.asarray(Image.open(folder / "images" / f"{i}.png").convert("RGB"))
            for i in first["item"]]
    size = shop[0].shape[0]
    keys = {c.key: i for i, c in enumerate(CLASSES)}
    alike = [np.asarray(photograph(np.random.default_rng([seed, 9, n]), CLASSES[keys[k]],
                                   COLOURS[(3 * n) % len(COLOURS)], PATTERNS[n % len(PATTERNS)],
                                   size, CATALOG_STYLE)) for n, k in enumerate(LOOK_ALIKES)]
    corpus = np.load(folder / "corpus" / "images.npy")
    labels = np.load(folder / "corpus" / "labels.npy")
    wild = [corpus[np.flatnonzero(labels == c)[0]] for c in range(len(SHOP))
            if (labels == c).any()]
    rows = [np.concatenate(r, axis=1) for r in (shop, alike, wild) if len(r) == len(shop)]
    sheet = Image.fromarray(np.concatenate(rows, axis=0))
    return sheet.resize((sheet.width * scale, sheet.height * scale), Image.Resampling.NEAREST)
