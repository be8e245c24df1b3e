"""An item's category for CHR@K and for choosing the attacked items.

As in the paper, the category is the extractor's own prediction on the clean image
("predicted"): that is why the no-attack CHR@20 differs between the Traditional, AT and
Free-AT extractors. "true" keeps the dataset's given category (items.csv / classes.csv)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import torch

from ..cache import Cache
from ..data.dataset import Dataset
from ..defenses import DEFENSES
from ..errors import AdvRecError
from ..extractors import ExtractorConfig
from ..progress import Progress
from .extract import ExtractJob, extract_features

CATEGORY_MODES = ("predicted", "true")  # the extractor's prediction | the dataset's category
MODE_NAMES = {"predicted": "predicted by the extractor", "true": "given by the dataset"}


def check_mode(mode: str) -> str:
    if mode not in CATEGORY_MODES:
        raise AdvRecError(f"categories must be 'predicted' (the extractor's prediction on the "
                          f"clean image) or 'true' (the dataset's given category), not {mode!r}")
    return mode


def describe(mode: str, extractor: ExtractorConfig) -> str:
    """"predicted by demo-cnn/traditional" | "given by the dataset"."""
    return f"predicted by {extractor.label}" if check_mode(mode) == "predicted" \
        else MODE_NAMES["true"]


def default_extractor(ds: Dataset, defense: str = "traditional") -> ExtractorConfig:
    """The extractor a page uses for `ds` unless told otherwise: the demo CNN where the dataset
    has the demo corpus to train it on, else ResNet50 (whose categories the authors' release
    ships per defense in classes.csv)."""
    return ExtractorConfig("demo-cnn" if ds.corpus is not None else "resnet50", defense)


def categorize(ds: Dataset, extractor: ExtractorConfig = ExtractorConfig(),
               mode: str = "predicted", cache: Cache | None = None,
               device: str | torch.device = "auto",
               progress: Progress | None = None) -> Dataset:
    """`ds` itself for "true"; for "predicted" a shallow copy whose `categories` are the
    extractor's classes that at least one item is predicted as (class-index order) and whose
    `item_category` (n_items,) indexes them. A ResNet50 whose classes the dataset ships (the
    authors' classes.csv for that defense) uses them; otherwise features are extracted (and
    cached) as needed; a read-only cache raises NotCached when they are not computed yet."""
    if check_mode(mode) == "true":
        return ds
    shipped = ds.given_predictions.get(extractor.defense) if extractor.arch == "resnet50" else None
    if shipped is not None:  # the authors' classes.csv of this ResNet50: the paper's own
        names, codes = shipped
        out = replace(ds, categories=names, item_category=codes,
                      notes=[*ds.notes, f"categories: each item's class as predicted by "
                                        f"{extractor.label}, read from the dataset's "
                                        f"{DEFENSES.get(extractor.defense).authors_folder}/"
                                        f"classes.csv ({len(names)} classes)"])
        out._images_fp, out._interactions_fp = ds.images_fingerprint(), ds.interactions_fingerprint()
        return out
    feats = extract_features(ds, ExtractJob(extractor), cache, device, progress)
    used = np.unique(feats.pred)  # sorted class indices
    out = replace(ds, categories=tuple(feats.class_names[i] for i in used),
                  item_category=np.searchsorted(used, feats.pred).astype(np.int64),
                  notes=[*ds.notes, f"categories: each item's class as predicted by "
                                    f"{extractor.label} on the clean image ({len(used)} classes)"])
    out._images_fp = ds.images_fingerprint()  # same images and interactions: no need to
    out._interactions_fp = ds.interactions_fingerprint()  # hash them again
    return out


def category_confusion(given: Dataset, predicted: Dataset) -> pd.DataFrame:
    """One row per (given, predicted) category pair that occurs: given, predicted, items;
    most items first. Both datasets hold the same items (one categorized from the other)."""
    df = pd.DataFrame({"given": given.category_names(), "predicted": predicted.category_names()})
    t = df.groupby(["given", "predicted"], sort=False).size().rename("items").reset_index()
    return t.sort_values(["items", "given"], ascending=[False, True], ignore_index=True)


def category_counts(given: Dataset, predicted: Dataset) -> pd.DataFrame:
    """Per category name (index): items `given` as it, `predicted` as it, and `both`;
    most predicted first."""
    c = category_confusion(given, predicted)
    both = c[c["given"] == c["predicted"]].set_index("given")["items"]
    t = pd.DataFrame({"given": c.groupby("given")["items"].sum(),
                      "predicted": c.groupby("predicted")["items"].sum(), "both": both})
    t = t.fillna(0).astype(int).rename_axis("category")
    return t.sort_values(["predicted", "given"], ascending=False)


def _code(ds: Dataset, category: str) -> int:
    code = ds.category_code(category)
    return -2 if code is None else code  # -2 matches no item (-1 is "no category")


def overlap(given: Dataset, categorized: Dataset, category: str) -> tuple[int, int, int]:
    """(items categorized as `category`, items given as it, items both); names compared by
    `class_key`."""
    a = categorized.item_category == _code(categorized, category)
    b = given.item_category == _code(given, category)
    return int(a.sum()), int(b.sum()), int((a & b).sum())
