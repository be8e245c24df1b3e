"""Feature extraction and classification of every catalog item (cached).

As in the paper, an item's category can be the extractor's predicted class; its features
are the pooled layer before the classifier (2048-d for ResNet50, 256-d for demo-cnn)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..cache import Cache, atomic_write_text
from ..data.dataset import Dataset, class_key
from ..device import resolve_device
from ..extractors import ExtractorConfig, extractor_fingerprint, load_extractor
from ..progress import Progress
from .images import item_images


@dataclass(frozen=True)
class ExtractJob:
    extractor: ExtractorConfig = ExtractorConfig()
    batch_size: int = 128  # images per forward pass


@dataclass
class Features:
    features: np.ndarray  # (n_items, D) float32
    pred: np.ndarray  # (n_items,) int64 predicted class
    conf: np.ndarray  # (n_items,) float32 softmax probability of pred
    class_names: tuple[str, ...]
    folder: Path

    def accuracy(self, ds: Dataset) -> float | None:
        """Share of items whose predicted class name equals their dataset category
        (None when the dataset has no categories in the model's class names)."""
        names = ds.category_names()
        lookup = {class_key(n): i for i, n in enumerate(self.class_names)}
        truth = np.array([lookup.get(class_key(n), -1) for n in names])
        known = truth >= 0
        return float((self.pred[known] == truth[known]).mean()) if known.any() else None


def extract_features(ds: Dataset, job: ExtractJob = ExtractJob(), cache: Cache | None = None,
                     device: str | torch.device = "auto",
                     progress: Progress | None = None) -> Features:
    cache = cache or Cache.default()
    device = resolve_device(device)

    def build(folder: Path) -> None:
        model, info = load_extractor(job.extractor, ds.corpus, cache, device, progress)
        feats, preds, confs = [], [], []
        items = np.arange(ds.n_items)
        for start in range(0, ds.n_items, job.batch_size):
            x = item_images(ds, items[start:start + job.batch_size], model.input_size).to(device)
            f, pred, conf = model.classify(x)
            feats.append(f.float().cpu())
            preds.append(pred.cpu())
            confs.append(conf.float().cpu())
            if progress:
                progress(min(start + job.batch_size, ds.n_items), ds.n_items, "extracting features")
        np.save(folder / "features.npy", torch.cat(feats).numpy().astype(np.float32))
        np.save(folder / "pred.npy", torch.cat(preds).numpy().astype(np.int64))
        np.save(folder / "conf.npy", torch.cat(confs).numpy().astype(np.float32))
        atomic_write_text(folder / "info.json", json.dumps(
            {"classes": list(model.class_names), "extractor": job.extractor.label,
             "weights": info.get("weights")}, indent=1))

    folder = cache.entry("features", job, build, inputs={
        "images": ds.images_fingerprint(),
        "extractor": extractor_fingerprint(job.extractor, ds.corpus)})
    info = json.loads((folder / "info.json").read_text())
    return Features(np.load(folder / "features.npy"), np.load(folder / "pred.npy"),
                    np.load(folder / "conf.npy"), tuple(info["classes"]), folder)
