"""Feature extractors (one registry): the image classifiers whose pooled features feed the
visual recommenders, with the paper's three training regimes (Traditional, AT, Free AT).

* ``demo-cnn``: a small CNN trained on the demo corpus (cached by config); the demo's own
  three ship with the package (`demo_weights`), any other config trains here.
* ``resnet50``: torchvision's ResNet50; Traditional = ImageNet weights, AT / Free AT = the
  robust checkpoints the paper used, read from local files.

``load_extractor(ExtractorConfig(...), corpus=...)`` -> (frozen Classifier, info dict)."""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from .cache import Cache, atomic_write_text, sha256_file
from .config import stable_hash
from .defenses.training import DEFENSES, TRADITIONAL, TrainConfig, train_classifier
from .demo_weights import read_shipped, shipped_for
from .device import resolve_device
from .errors import AdvRecError
from .models import Classifier, DemoCNN, WeightsUnavailable, load_resnet50
from .progress import Progress
from .registry import Registry

EXTRACTORS: Registry = Registry("extractor")


@dataclass(frozen=True)
class ExtractorConfig:
    arch: str = "demo-cnn"  # registry name: demo-cnn | resnet50
    defense: str = TRADITIONAL.name  # DEFENSES registry name
    weights: str | None = None  # resnet50: local checkpoint; None = torchvision ImageNet
    train: TrainConfig = field(default_factory=TrainConfig)  # demo-cnn training settings

    def __post_init__(self):
        DEFENSES.get(self.defense)  # unknown names list the known ones
        EXTRACTORS.get(self.arch)  # unknown names fail here, listing the known ones
        if self.train.defense != self.defense:  # one source of truth for the defense
            object.__setattr__(self, "train", replace(self.train, defense=self.defense))

    @property
    def label(self) -> str:
        return f"{self.arch}/{self.defense}"


DEMO_CNN_VERSION = 4  # bump when the architecture or training changes what a config trains
# (4: each defense's own recipe, Defense.epochs / augment)
AUX_LABELS = ("colours", "patterns")  # optional corpus attribute labels, trained as aux heads


def corpus_arrays(corpus: Path):
    """-> images (N, H, W, 3) uint8, labels (N,), class names, {aux name: (N,) labels}."""
    corpus = Path(corpus)
    names = tuple(c["name"] for c in json.loads((corpus.parent / "categories.json").read_text()))
    aux = {n: np.load(corpus / f"{n}.npy") for n in AUX_LABELS if (corpus / f"{n}.npy").is_file()}
    return np.load(corpus / "images.npy"), np.load(corpus / "labels.npy"), names, aux


def corpus_fingerprint(corpus: Path) -> dict:
    corpus = Path(corpus)
    files = sorted(corpus.glob("*.npy")) + [corpus.parent / "categories.json"]
    return {"version": DEMO_CNN_VERSION, **{p.name: sha256_file(p) for p in files}}


def extractor_fingerprint(config: ExtractorConfig, corpus: Path | None) -> str:
    """Names the extractor's weights without training or loading it: for demo-cnn the
    training config and corpus, for resnet50 the weights file's sha256 (or torchvision's
    ImageNet weights). Cache entries derived from an extractor include it."""
    if config.arch == "demo-cnn":
        return stable_hash(config.train.resolved(),
                           corpus_fingerprint(corpus) if corpus else None)
    return sha256_file(Path(config.weights)) if config.weights else "torchvision:IMAGENET1K_V1"


def demo_cnn_entry(config: ExtractorConfig, corpus: Path | None, cache: Cache,
                   device: torch.device, progress: Progress | None = None,
                   shipped: bool = True) -> Path:
    """The demo CNN's cache entry (weights.pt, report.json): seeded from the shipped file
    trained as this very entry (`demo_weights`) where there is one and `shipped`, else
    trained here (checkpointed every epoch, resumed after a kill)."""
    if corpus is None:
        raise AdvRecError("demo-cnn trains on the demo corpus, which this dataset does not "
                          "have; use the demo dataset or --extractor resnet50")
    fingerprint = corpus_fingerprint(corpus)
    train = config.train.resolved()
    key = cache.key(train, fingerprint)  # = extractor_fingerprint(config, corpus)
    # the training's per-epoch checkpoint, outside the build folder: it outlives a kill
    resume = Path(cache.root) / "extractor" / f".ckpt-{key}"
    from_file = shipped_for(key) if shipped else None

    def build(folder: Path) -> None:
        if from_file is not None:
            state, report = read_shipped(from_file)
            torch.save(state, folder / "weights.pt")
            atomic_write_text(folder / "report.json", json.dumps(
                {**report, "shipped": from_file.name}, indent=1))
            return
        images, labels, names, aux = corpus_arrays(corpus)
        resume.mkdir(parents=True, exist_ok=True)
        model, report = train_classifier(images, labels, names, train, device, progress,
                                         aux, checkpoint=resume / "last.pt")
        torch.save(model.state_dict(), folder / "weights.pt")
        atomic_write_text(folder / "report.json", json.dumps(
            {**report, "classes": names, "input_size": int(images.shape[1])}, indent=1))

    folder = cache.entry("extractor", train, build, inputs=fingerprint)
    shutil.rmtree(resume, ignore_errors=True)  # the entry is whole: its checkpoint is done
    return folder


@EXTRACTORS.register("demo-cnn")
def _build_demo_cnn(config: ExtractorConfig, corpus: Path | None, cache: Cache,
                    device: torch.device, progress: Progress | None) -> tuple[Classifier, dict]:
    folder = demo_cnn_entry(config, corpus, cache, device, progress)
    report = json.loads((folder / "report.json").read_text())
    model = DemoCNN(tuple(report["classes"]), config.train.width, report["input_size"],
                    aux=report["aux"])
    model.load_state_dict(torch.load(folder / "weights.pt", map_location="cpu", weights_only=True))
    return model, {**report, "weights": str(folder / "weights.pt")}


@EXTRACTORS.register("resnet50")
def _build_resnet50(config: ExtractorConfig, corpus: Path | None, cache: Cache,
                    device: torch.device, progress: Progress | None) -> tuple[Classifier, dict]:
    ckpt = DEFENSES.get(config.defense).checkpoint
    if ckpt and config.weights is None:
        raise WeightsUnavailable(f"the {config.defense} ResNet50 needs a robust checkpoint file, "
                                 f"e.g. {ckpt}; pass it as weights")
    model, source = load_resnet50(config.weights)
    return model, {"weights": source}


def preflight(config: ExtractorConfig) -> None:
    """Fail now, with one line, if the extractor's weights cannot be had (a missing or
    unreadable checkpoint, a robust defense without one, ImageNet weights not in the hub
    cache offline); the demo CNN trains itself, so nothing to check."""
    if config.arch == "resnet50":
        _build_resnet50(config, None, None, torch.device("cpu"), None)


def class_names(config: ExtractorConfig, corpus: Path | None = None) -> tuple[str, ...]:
    """The extractor's classes in index order, read without loading or training it (ResNet50:
    torchvision's ImageNet names; demo-cnn: the corpus's categories)."""
    if config.arch == "resnet50":
        from torchvision.models import ResNet50_Weights

        return tuple(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])
    if corpus is None:
        return ()
    return tuple(c["name"] for c in json.loads((Path(corpus).parent / "categories.json").read_text()))


def input_size(config: ExtractorConfig, corpus: Path | None = None) -> int:
    """The px size the extractor's images are resized to, read without loading or training
    it (ResNet50: 224; demo-cnn: its corpus's image size, as `_build_demo_cnn` takes it)."""
    if config.arch == "resnet50" or corpus is None:
        return 224
    return int(np.load(Path(corpus) / "images.npy", mmap_mode="r").shape[1])


def resolve_class(ref: str | None, names: tuple[str, ...]) -> str | None:
    """A class given by name or by index ("774" -> "sandal" for an ImageNet extractor) -> its
    name; a name is returned as given (checked where it is used)."""
    if ref is None or not ref.strip().isdigit():
        return ref
    index = int(ref)
    if not names:
        raise AdvRecError(f"class index {index} given, but this extractor's classes are not "
                          f"known here; give the class by name")
    if index >= len(names):
        raise AdvRecError(f"class index {index} is out of range: this extractor has "
                          f"{len(names)} classes (0-{len(names) - 1})")
    return names[index]


def load_extractor(config: ExtractorConfig = ExtractorConfig(), corpus: Path | None = None,
                   cache: Cache | None = None, device: str | torch.device = "auto",
                   progress: Progress | None = None) -> tuple[Classifier, dict]:
    """Build (training or loading as needed) the extractor; frozen, eval mode, on `device`."""
    device = resolve_device(device)
    model, info = EXTRACTORS.get(config.arch)(config, corpus, cache or Cache.default(), device,
                                              progress)
    return model.to(device).freeze(), info


__all__ = ["EXTRACTORS", "ExtractorConfig", "load_extractor", "demo_cnn_entry",
           "corpus_fingerprint", "extractor_fingerprint", "class_names", "resolve_class", "preflight"]
