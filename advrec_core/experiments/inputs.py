"""What a recommender reads of the catalog's images, clean and poisoned (`Recommender.reads`).

* "features": every item's pooled CNN features (the features step), the attacked items'
  replaced by their uploads' (the attack step's `features_adv`);
* "map": every item's last convolutional feature map (the features step with maps), the
  attacked items' by their uploads' (`feature_maps_adv`): ACF;
* "images": every item's image as the platform's CNN receives it (through the channel, at
  the model's size), the attacked items' by their uploads: DVBPR, which trains its own CNN.

Each is an array whose first axis is the catalog's items; the poisoned one differs from the
clean one in the attacked items' rows only."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..attacks.upload import Upload, platform_input
from ..cache import Cache
from ..data.dataset import Dataset
from ..errors import AdvRecError
from ..extractors import ExtractorConfig, input_size
from ..progress import Progress
from ..recommenders import RECOMMENDERS, RecConfig

IMAGE_BUDGET = 8 * 2**30  # bytes: DVBPR's catalog images held in memory, at most


def reads(rec: RecConfig | str) -> str:
    """What recommender `rec` (a config or a name) reads: none | features | map | images."""
    return RECOMMENDERS.get(rec if isinstance(rec, str) else rec.model).reads


def image_size(rec: RecConfig, extractor: ExtractorConfig, ds: Dataset) -> int:
    """The px size DVBPR's images take: its `image_size`, else the extractor's input size."""
    return getattr(rec.hyper(), "image_size", 0) or input_size(extractor, ds.corpus)


def check_inputs(ds: Dataset, rec: RecConfig, extractor: ExtractorConfig, cache: Cache) -> None:
    """What `rec` reads fits this machine (DVBPR's images in memory, ACF's feature maps on
    the cache's disk): one line before any work otherwise."""
    from .extract import check_maps_fit

    kind = reads(rec)
    if kind == "images":
        check_images_fit(ds.n_items, image_size(rec, extractor, ds))
    elif kind == "map":
        check_maps_fit(ds.n_items, extractor, cache)


def check_images_fit(n_items: int, size: int) -> None:
    """DVBPR holds the catalog's images in memory (N x 3 x S x S bytes, the clean and the
    poisoned set): refused in one line before any work when that passes IMAGE_BUDGET."""
    need = 2 * n_items * 3 * size * size
    if need > IMAGE_BUDGET:
        raise AdvRecError(f"dvbpr: {n_items} images at {size} px take {need / 2**30:.1f} GiB "
                          f"(clean and poisoned); at most {IMAGE_BUDGET / 2**30:.0f} GiB: set "
                          f"--image-size (e.g. {max(32, size // 2)})")


def catalog_images(ds: Dataset, size: int, upload: Upload | None = None,
                   batch: int = 256, progress: Progress | None = None) -> np.ndarray:
    """(N, 3, size, size) uint8: every item's image through `upload`'s channel (None: as
    it is) at `size` px, as the platform's CNN receives it."""
    check_images_fit(ds.n_items, size)
    out = np.empty((ds.n_items, 3, size, size), np.uint8)
    for lo in range(0, ds.n_items, batch):
        idx = np.arange(lo, min(lo + batch, ds.n_items))
        out[idx] = to_bytes(platform_input(ds.load_images(idx), size, upload))
        if progress:
            progress(idx[-1] + 1, ds.n_items, "images for dvbpr")
    return out


def to_bytes(x: torch.Tensor) -> np.ndarray:
    """(N, 3, S, S) in [0, 1] -> uint8, rounded (what a platform stores)."""
    return (x * 255).round().clamp(0, 255).to(torch.uint8).numpy()


def clean_inputs(ds: Dataset, recs: list[RecConfig], extractor: ExtractorConfig, cache: Cache,
                 device, progress: Progress | None = None) -> dict[str, np.ndarray]:
    """{reads: the clean catalog's input} for every kind `recs` read (features and feature
    maps from the features step, cached; images as they are), checked first."""
    from .extract import ExtractJob, extract_features

    kinds = {reads(r): r for r in recs}
    for r in kinds.values():
        check_inputs(ds, r, extractor, cache)
    out = {}
    if "features" in kinds or "map" in kinds:
        f = extract_features(ds, ExtractJob(extractor, maps="map" in kinds), cache, device,
                             progress)
        out |= {"features": f.features, "map": f.maps}
    if "images" in kinds:
        out["images"] = catalog_images(ds, image_size(kinds["images"], extractor, ds),
                                       progress=progress)
    return out


@dataclass
class ItemInputs:
    """A cell's recommender input, clean, and the rows its attack replaces."""
    reads: str  # none | features | map | images
    clean: np.ndarray | None  # (N, ...) per item; None for a model without images
    attacked: np.ndarray | None = None  # (n,) item indices the attack replaced
    replaced: np.ndarray | None = None  # (n, ...) those items' rows after the attack

    def poisoned(self) -> np.ndarray | None:
        """(N, ...) the clean input with the attacked items' rows replaced."""
        if self.clean is None:
            return None
        out = np.array(self.clean, copy=True)
        out[self.attacked] = self.replaced
        return out

    def scale(self) -> float | None:
        """The clean input's max |x| (features and maps are divided by it, clean and
        poisoned alike); None for images (DVBPR normalises its pixels itself)."""
        return None if self.reads in ("none", "images") else float(np.abs(self.clean).max())


__all__ = ["reads", "image_size", "check_inputs", "clean_inputs", "catalog_images",
           "check_images_fit", "ItemInputs", "IMAGE_BUDGET", "to_bytes"]
