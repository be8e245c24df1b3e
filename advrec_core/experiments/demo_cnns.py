"""Retrain the demo's shipped CNNs (`advrec train-demo-cnns`): train each defense's demo CNN
at the default recipe (or take the one this cache trained), write it into the package's
`demo_weights` folder (fp16, with its key and sha256 in manifest.json), then measure the
regime on the written files exactly as every machine will load them (a fresh cache seeded
from them) and write regime.json with each anchor's range check.

The shipped CNNs are accepted when every anchor sits inside its range (`DEMO_RANGES`) by at
least `MIN_MARGIN` images of its sample: with the weights fixed, another CPU's rounding can
flip an image or two near the decision boundary, never retrain the CNN."""
from __future__ import annotations

import datetime
import json
import platform
import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from .. import demo_weights
from ..cache import Cache, atomic_write_bytes, atomic_write_text, sha256_file
from ..data.dataset import Dataset
from ..defenses import DEFENSES
from ..defenses.training import holdout_scores, split_holdout
from ..extractors import (
    ExtractorConfig,
    corpus_arrays,
    corpus_fingerprint,
    demo_cnn_entry,
    extractor_fingerprint,
)
from ..models import DemoCNN
from ..progress import Progress
from .regime import MIN_MARGIN, range_checks, regime


def _trained_here(cache: Cache, config: ExtractorConfig, corpus: Path, device,
                  progress: Progress | None) -> Path:
    """The cache entry of `config` trained on this machine (a seeded one is discarded)."""
    fingerprint, train = corpus_fingerprint(corpus), config.train.resolved()
    found = cache.lookup("extractor", train, fingerprint)
    if found is not None and "shipped" in json.loads((found / "report.json").read_text()):
        cache.discard("extractor", train, fingerprint)
    return demo_cnn_entry(config, corpus, cache, device, progress, shipped=False)


def _scored_as_shipped(path: Path, corpus: Path, train) -> dict:
    """The training report of the shipped file at `path` with its held-out clean and robust
    accuracy measured again on the weights as shipped (fp16-rounded, computed in fp32)."""
    state, report = demo_weights.read_shipped(path)
    images, labels, names, _ = corpus_arrays(corpus)
    _, held = split_holdout(len(images), train.holdout, train.seed)
    model = DemoCNN(names, train.width, report["input_size"], aux=report["aux"])
    model.load_state_dict(state)
    model.freeze()
    x = torch.from_numpy(images[held]).permute(0, 3, 1, 2).float().div(255)  # (N, 3, H, W)
    y = torch.from_numpy(labels[held].astype(np.int64))
    return {**report, **holdout_scores(model, x, y, train),
            "scored": "held-out accuracies measured on the shipped fp16 weights"}


def machine() -> str:
    """This machine's CPU and torch, as recorded beside what it trained or measured."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {torch.get_num_threads()} threads, torch {torch.__version__}"


def write_shipped(ds: Dataset, cache: Cache, defenses: tuple[str, ...] | None = None,
                  device="auto", progress: Progress | None = None) -> dict:
    """Train (or take from `cache`) and ship the demo CNNs of `defenses` (default: all) into
    `demo_weights.FOLDER`, then measure them; the regime.json written."""
    folder = demo_weights.FOLDER
    defenses = tuple(defenses or DEFENSES.available())
    old = demo_weights.manifest(folder).get("files", {})
    files = {d: e for d, e in old.items() if d not in defenses}
    for d in defenses:
        config = ExtractorConfig(defense=d)
        entry = _trained_here(cache, config, ds.corpus, device, progress)
        report = json.loads((entry / "report.json").read_text())
        state = torch.load(entry / "weights.pt", map_location="cpu", weights_only=True)
        key = extractor_fingerprint(config, ds.corpus)
        path = folder / f"{d}.pt"
        data = demo_weights.shipped_bytes(state, report, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, data)  # then scored again as shipped (fp16-rounded):
        atomic_write_bytes(path, demo_weights.shipped_bytes(
            state, _scored_as_shipped(path, ds.corpus, config.train.resolved()), key))
        files[d] = {"file": path.name, "sha256": sha256_file(path), "bytes": path.stat().st_size,
                    "key": key, "train": asdict(config.train.resolved()),
                    "train_seconds": report.get("train_seconds"), "trained_on": machine()}
    atomic_write_text(folder / demo_weights.MANIFEST, json.dumps(
        {"files": files, "stored": "fp16 (computed in fp32)",
         "written": datetime.date.today().isoformat()}, indent=1) + "\n")
    demo_weights.clear_memo()
    result = measure_shipped(ds, cache, tuple(files), device, progress)
    atomic_write_text(folder / demo_weights.REGIME, json.dumps(result, indent=1) + "\n")
    return result


def measure_shipped(ds: Dataset, cache: Cache, defenses: tuple[str, ...], device="auto",
                    progress: Progress | None = None) -> dict:
    """The regime of the shipped CNNs as a fresh machine sees them (a fresh cache holding only
    the dataset: every extractor seeded from the shipped files), with each anchor's range
    check."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Cache(Path(tmp)).link_entries(cache, ("demo",))
        result = regime(ds, defenses, cache=fresh, device=device, progress=progress)
    checks = range_checks(result)
    return {**result, "measured": datetime.date.today().isoformat(), "machine": machine(),
            "checks": checks, "min_margin": MIN_MARGIN,
            "accepted": all(c["inside"] and (c["margin_images"] is None
                                             or c["margin_images"] >= MIN_MARGIN - 1e-9)
                            for c in checks)}


__all__ = ["write_shipped", "measure_shipped", "machine"]
