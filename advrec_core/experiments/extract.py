"""Feature extraction and classification of every catalog item (cached).

As in the paper, an item's category can be the extractor's predicted class; its features
are the pooled layer before the classifier (2048-d for ResNet50, 256-d for demo-cnn), of every
image as the platform's channel leaves it (`ExtractJob.channel`; png: the image itself), and,
where asked (`ExtractJob.maps`: ACF reads them), the last convolutional feature maps."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..attacks.upload import Upload, platform_input
from ..cache import Cache, atomic_write_text
from ..data.dataset import Dataset, class_key
from ..device import resolve_device
from ..errors import AdvRecError
from ..extractors import ExtractorConfig, extractor_fingerprint, load_extractor
from ..progress import Progress
from .images import item_images


@dataclass(frozen=True)
class ExtractJob:
    extractor: ExtractorConfig = ExtractorConfig()
    batch_size: int = 128  # images per forward pass
    channel: str = "png"  # what the platform does to every image before its CNN (Upload's
    # channel: the clean catalog goes through the same jpeg:75, bits:5+median:2, denoise ...)
    maps: bool = False  # also store every item's last convolutional feature map (ACF reads
    # it): (N, h, w, D) float16, 18 KB an item for the demo CNN, 200 KB for ResNet50

    def __post_init__(self):
        Upload(channel=self.channel)  # one clear line for a bad channel, before any work


@dataclass
class Features:
    features: np.ndarray  # (n_items, D) float32
    pred: np.ndarray  # (n_items,) int64 predicted class
    conf: np.ndarray  # (n_items,) float32 softmax probability of pred
    class_names: tuple[str, ...]
    folder: Path
    maps: np.ndarray | None = None  # (n_items, h, w, D) float16, memory-mapped (ExtractJob.maps)

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

    from ..defenses.denoiser import bind, denoiser_key

    upload = Upload(channel=job.channel)
    inputs = {"images": ds.images_fingerprint(),
              "extractor": extractor_fingerprint(job.extractor, ds.corpus)}
    if upload.needs_denoiser:
        inputs["denoiser"] = denoiser_key(job.extractor, ds, cache)

    if job.maps:
        check_maps_fit(ds.n_items, job.extractor, cache)

    def build(folder: Path) -> None:
        model, info = load_extractor(job.extractor, ds.corpus, cache, device, progress)
        bound = bind(upload, job.extractor, ds, cache, device, progress)
        feats, preds, confs = [], [], []
        maps = None
        items = np.arange(ds.n_items)
        for start in range(0, ds.n_items, job.batch_size):
            idx = items[start:start + job.batch_size]
            x = (item_images(ds, idx, model.input_size) if upload.lossless else
                 platform_input(ds.load_images(idx), model.input_size, bound)).to(device)
            fmap, f, pred, conf = model.classify_map(x)
            if job.maps:  # written as it goes: a ResNet50 catalog's maps need not fit in memory
                if maps is None:
                    maps = np.lib.format.open_memmap(folder / "maps.npy", "w+", np.float16, (
                        ds.n_items, *fmap.shape[2:], fmap.shape[1]))
                maps[start:start + len(idx)] = fmap.permute(0, 2, 3, 1).clamp(
                    -F16_MAX, F16_MAX).half().cpu().numpy()
            feats.append(f.float().cpu())
            preds.append(pred.cpu())
            confs.append(conf.float().cpu())
            if progress:
                progress(min(start + job.batch_size, ds.n_items), ds.n_items, "extracting features")
        if maps is not None:
            maps.flush()
            del maps
        np.save(folder / "features.npy", torch.cat(feats).numpy().astype(np.float32))
        np.save(folder / "pred.npy", torch.cat(preds).numpy().astype(np.int64))
        np.save(folder / "conf.npy", torch.cat(confs).numpy().astype(np.float32))
        atomic_write_text(folder / "info.json", json.dumps(
            {"classes": list(model.class_names), "extractor": job.extractor.label,
             "weights": info.get("weights")}, indent=1))

    folder = cache.entry("features", job, build, inputs=inputs)
    info = json.loads((folder / "info.json").read_text())
    return Features(np.load(folder / "features.npy"), np.load(folder / "pred.npy"),
                    np.load(folder / "conf.npy"), tuple(info["classes"]), folder,
                    np.load(folder / "maps.npy", mmap_mode="r") if job.maps else None)


F16_MAX = float(torch.finfo(torch.float16).max)
MAP_SHAPES = {"demo-cnn": (6, 6, 256), "resnet50": (7, 7, 2048)}  # (h, w, D) at the input size


def check_maps_fit(n_items: int, extractor: ExtractorConfig, cache: Cache) -> None:
    """Refuse, in one line before any work, feature maps that the cache's disk cannot hold
    (N x h x w x D float16, with 10% to spare)."""
    import shutil

    h, w, D = MAP_SHAPES.get(extractor.arch, (7, 7, 2048))
    need = n_items * h * w * D * 2
    root = Path(cache.root)
    while not root.exists():
        root = root.parent
    free = shutil.disk_usage(root).free
    if need * 1.1 > free:
        raise AdvRecError(f"feature maps of {n_items} items ({h}x{w}x{D} float16) need "
                          f"{need / 2**30:.1f} GiB; {cache.root} has {free / 2**30:.1f} GiB free")
