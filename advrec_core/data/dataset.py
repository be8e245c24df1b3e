"""The in-memory dataset every later step consumes: integer-coded interactions split into
train/test, one image per item, and an optional category per item."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError
from ..progress import Progress, track
from .images import DEFAULT_MAX_PIXELS, load_image

UNKNOWN = "(unknown)"


def class_key(name: object) -> str:
    """How class and category names are compared: case, '_' and extra spaces ignored, so
    "Running shoe", "running_shoe" (the authors' classes.csv) and "running shoe"
    (torchvision's ImageNet names) are one class."""
    return " ".join(str(name).replace("_", " ").lower().split())


@dataclass
class Dataset:
    """Users and items are coded 0..n-1; `user_ids[u]` / `item_ids[i]` give the originals.

    `train` / `test`: DataFrames with int columns user, item, timestamp and float rating
    (NaN where the source has none). `item_category[i]` indexes `categories` (-1: unknown).
    """

    name: str
    layout: str
    root: Path
    user_ids: np.ndarray  # (n_users,)
    item_ids: np.ndarray  # (n_items,)
    train: pd.DataFrame
    test: pd.DataFrame
    image_paths: tuple[Path, ...]  # (n_items,)
    categories: tuple[str, ...] = ()
    item_category: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    item_attributes: pd.DataFrame | None = None  # extra per-item columns, row i = item i
    notes: list[str] = field(default_factory=list)  # what loading did: filtered, moved...
    corpus: Path | None = None  # labelled classifier-training images (demo only)
    given_predictions: dict = field(default_factory=dict)  # defense -> (class names,
    # (n_items,) codes): a ResNet50's classes of the clean images shipped with the data (the
    # authors' classes.csv per extractor), used as its predicted categories
    spec: Any = None  # the DatasetSpec that loads it again (a Ray worker does): set by
    # `load_dataset`; None for a dataset made otherwise (tests)

    def __post_init__(self):
        if len(self.item_category) == 0:
            self.item_category = np.full(self.n_items, -1, np.int64)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_interactions(self) -> int:
        return len(self.train) + len(self.test)

    @property
    def sparsity(self) -> float:
        return 1.0 - self.n_interactions / float(self.n_users * self.n_items)

    def interactions(self) -> pd.DataFrame:
        return pd.concat([self.train, self.test], ignore_index=True)

    def item_popularity(self) -> np.ndarray:
        """(n_items,) int: interactions per item, train and test."""
        items = np.r_[self.train["item"].to_numpy(), self.test["item"].to_numpy()]
        return np.bincount(items, minlength=self.n_items)

    def category_names(self) -> np.ndarray:
        """(n_items,) str: each item's category name, UNKNOWN where there is none."""
        names = np.array(list(self.categories) + [UNKNOWN], dtype=object)
        return names[self.item_category]  # -1 picks UNKNOWN

    def category_code(self, name: str) -> int | None:
        """Index of category `name` in `categories` (compared by `class_key`), or None."""
        lookup = {class_key(c): k for k, c in enumerate(self.categories)}
        return lookup.get(class_key(name))

    def category_table(self) -> pd.DataFrame:
        """Per category: items, interactions, share of interactions, interactions per item;
        most popular first."""
        pop = self.item_popularity()
        df = pd.DataFrame({"category": self.category_names(), "interactions": pop})
        t = df.groupby("category", sort=False).agg(items=("interactions", "size"),
                                                   interactions=("interactions", "sum"))
        t["share"] = t["interactions"] / max(1, int(pop.sum()))
        t["per_item"] = t["interactions"] / t["items"]
        return t.sort_values(["interactions", "items"], ascending=False).reset_index()

    def summary(self) -> dict[str, object]:
        return {"name": self.name, "layout": self.layout, "users": self.n_users,
                "items": self.n_items, "interactions": self.n_interactions,
                "train": len(self.train), "test users": len(self.test),
                "sparsity": self.sparsity, "categories": len(self.categories)}

    def images_fingerprint(self) -> str:
        """Hash of item ids and image bytes: names cache entries derived from the images."""
        if getattr(self, "_images_fp", None) is None:
            from ..cache import sha256_file
            from ..config import stable_hash

            self._images_fp = stable_hash([str(i) for i in self.item_ids],
                                          [sha256_file(p) for p in self.image_paths])
        return self._images_fp

    def interactions_fingerprint(self) -> str:
        """Hash of the train/test split: names cache entries trained on it (computed once)."""
        if getattr(self, "_interactions_fp", None) is None:
            from ..config import stable_hash

            self._interactions_fp = stable_hash(self.train.to_numpy(), self.test.to_numpy())
        return self._interactions_fp

    def load_images(self, items: np.ndarray | list[int],
                    max_pixels: int = DEFAULT_MAX_PIXELS) -> list[np.ndarray]:
        """Decode the images of `items` -> list of (H, W, 3) uint8 (sizes may differ)."""
        return [load_image(self.image_paths[int(i)], max_pixels)[0] for i in items]

    def check_images(self, progress: Progress | None = None,
                     max_pixels: int = DEFAULT_MAX_PIXELS) -> pd.DataFrame:
        """Decode every image. One row per item that needed a conversion or failed:
        item, path, status ("converted" | "error"), message."""
        rows = []
        for i in track(range(self.n_items), self.n_items, "checking images", progress, every=50):
            try:
                _, note = load_image(self.image_paths[i], max_pixels)
            except DataError as e:
                rows.append((self.item_ids[i], str(self.image_paths[i]), "error", e.what))
                continue
            if note:
                rows.append((self.item_ids[i], str(self.image_paths[i]), "converted", note))
        return pd.DataFrame(rows, columns=["item", "path", "status", "message"])
