"""Visual recommenders (BPR-MF, VBPR, AMR, DeepStyle, ACF, DVBPR), one BPR trainer,
full-ranking evaluation.

``fit_recommender(config, data, features)`` builds the model from RECOMMENDERS, trains it
and returns it; ``fit_recommenders`` trains several runs (seeds, feature sets) as one
batched model; ``evaluate`` ranks every item for every user."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Sequence

import numpy as np
import torch

from ..errors import AdvRecError
from ..progress import Progress
from ..registry import Registry
from .acf import ACF
from .dvbpr import DVBPR
from .evaluation import KS, RankingData, RankingReport, evaluate
from .models import AMR, BPRMF, READS, VBPR, DeepStyle
from .trainer import RecConfig, RowOptimizer, adversarial_delta, bpr_loss, bpr_step, train_bpr

RECOMMENDERS: Registry = Registry("recommender")  # name -> model class (with its own `Params`)
RECOMMENDERS.register("bprmf")(BPRMF)
RECOMMENDERS.register("vbpr")(VBPR)
RECOMMENDERS.register("amr")(AMR)
RECOMMENDERS.register("deepstyle")(DeepStyle)
RECOMMENDERS.register("acf")(ACF)
RECOMMENDERS.register("dvbpr")(DVBPR)

INPUTS = {"features": "(n_items, D) pooled CNN features", "map": "(n_items, h, w, D) "
          "feature maps (the CNN's last convolutional layer)", "images": "(n_items, 3, S, S) "
          "uint8 images"}  # what a model that reads each kind is given


def all_params() -> dict:
    """{hyperparameter: (its field, the titles of the registered recommenders that have it)}:
    what the CLI and the pages offer."""
    out: dict = {}
    for name in RECOMMENDERS.available():
        model = RECOMMENDERS.get(name)
        for f in fields(model.Params):
            out.setdefault(f.name, (f, []))[1].append(model.title)
    return out


def model_params(model: str, values: dict):
    """`model`'s own hyperparameters (its `Params`) filled from `values`; a name it does not
    declare is refused in one line, naming the ones it does."""
    params = RECOMMENDERS.get(model).Params
    known = [f.name for f in fields(params)]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise AdvRecError(f"{model} has no hyperparameter {', '.join(map(repr, unknown))}; "
                          f"its own: {', '.join(known) or 'none'}")
    return params(**values)


def scale_features(features: np.ndarray, scale: float | None = None) -> torch.Tensor:
    """Divide by `scale`, by default the features' own global max absolute value (as the
    reference code does per file -> [-1, 1])."""
    f = torch.tensor(np.asarray(features), dtype=torch.float32)  # a copy: memory maps are read-only
    return f / (torch.tensor(scale, dtype=torch.float32) if scale else f.abs().max().clamp(min=1e-12))


@dataclass(frozen=True)
class Member:
    """One run of a batched fit: its seed and what its model reads of the images
    (`reads`: (N, D) features or (N, h, w, D) feature maps, divided by `scale`, default
    their own max |x|; (N, 3, S, S) uint8 images, as they are; None for a model without
    images)."""
    seed: int
    features: np.ndarray | None = None
    scale: float | None = None


def model_input(model: str, array: np.ndarray | None, scale: float | None = None) -> torch.Tensor:
    """`array` as recommender `model` reads it ((N, D) or (N, h * w, D) float32 scaled, or
    (N, 3, S, S) uint8); the wrong kind is refused in one line naming what it reads."""
    reads = RECOMMENDERS.get(model).reads
    shape = None if array is None else tuple(array.shape)
    ok = array is not None and (
        (reads == "features" and array.ndim == 2) or (reads == "map" and array.ndim == 4) or
        (reads == "images" and array.ndim == 4 and array.shape[1] == 3
         and array.dtype == np.uint8))
    if not ok:
        raise AdvRecError(f"{model} reads {INPUTS[reads]}; got "
                          f"{'none' if shape is None else f'{array.dtype} {shape}'}")
    if reads == "images":
        return torch.from_numpy(np.ascontiguousarray(array))
    f = scale_features(array, scale)
    return f.flatten(1, 2).half() if reads == "map" else f  # maps: in [-1, 1], float16 (ACF
    # computes in float32 on the rows a batch reads)


def fit_recommenders(config: RecConfig, data: RankingData, train_users: torch.Tensor,
                     train_items: torch.Tensor, members: Sequence[Member],
                     progress: Progress | None = None, device: str | torch.device = "cpu"):
    """Train every member as one batched model -> (model on `device`, history per member).
    Member m's numbers are those of fitting it alone (`config.seed` is replaced by its
    seed); members with the same input array share one input set."""
    cls = RECOMMENDERS.get(config.model)
    sets, feature_of = {}, []
    if cls.uses_images:
        for m in members:
            key = (id(m.features), m.scale)
            if key not in sets:
                sets[key] = model_input(config.model, m.features, m.scale)
            feature_of.append(list(sets).index(key))
    own = asdict(config.hyper())  # the model's own hyperparameters
    inputs = dict(features=list(sets.values()), feature_of=feature_of,
                  precision=config.precision) if cls.uses_images else {}
    if cls.uses_categories:
        inputs["categories"] = data.item_category
    if cls.uses_history:
        inputs["history"] = (train_users, train_items)
    model = cls(data.n_users, data.n_items, factors=config.factors,
                seeds=[m.seed for m in members], **inputs, **own).to(device)
    return model, train_bpr(model, train_users, train_items, config, progress, device)


def fit_recommender(config: RecConfig, data: RankingData, train_users: torch.Tensor,
                    train_items: torch.Tensor, features: np.ndarray | None = None,
                    progress: Progress | None = None, device: str | torch.device = "cpu",
                    scale: float | None = None):
    """One run (seed `config.seed`) -> (trained model on `device`, training history).
    Features are divided by `scale` (default: their own max |x|)."""
    model, history = fit_recommenders(config, data, train_users, train_items,
                                      [Member(config.seed, features, scale)], progress, device)
    return model, history[0]


__all__ = ["RECOMMENDERS", "RecConfig", "model_params", "all_params", "RankingData",
           "RankingReport", "evaluate", "KS",
           "fit_recommender", "fit_recommenders", "Member", "scale_features", "train_bpr",
           "bpr_step", "bpr_loss", "adversarial_delta", "RowOptimizer", "BPRMF", "VBPR", "AMR",
           "DeepStyle", "ACF", "DVBPR", "READS", "INPUTS", "model_input"]
