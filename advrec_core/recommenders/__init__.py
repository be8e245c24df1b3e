"""Visual recommenders (BPR-MF, VBPR, AMR), one BPR trainer, full-ranking evaluation.

``fit_recommender(config, data, features)`` builds the model from RECOMMENDERS, trains it
and returns it; ``fit_recommenders`` trains several runs (seeds, feature sets) as one
batched model; ``evaluate`` ranks every item for every user."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from ..progress import Progress
from ..registry import Registry
from .evaluation import KS, RankingData, RankingReport, evaluate
from .models import AMR, BPRMF, VBPR
from .trainer import RecConfig, RowOptimizer, adversarial_delta, bpr_loss, bpr_step, train_bpr

RECOMMENDERS: Registry = Registry("recommender")
RECOMMENDERS.register("bprmf")(BPRMF)
RECOMMENDERS.register("vbpr")(VBPR)
RECOMMENDERS.register("amr")(AMR)


def scale_features(features: np.ndarray, scale: float | None = None) -> torch.Tensor:
    """Divide by `scale`, by default the features' own global max absolute value (as the
    reference code does per file -> [-1, 1])."""
    f = torch.as_tensor(features, dtype=torch.float32)
    return f / (torch.tensor(scale, dtype=torch.float32) if scale else f.abs().max().clamp(min=1e-12))


@dataclass(frozen=True)
class Member:
    """One run of a batched fit: its seed and its image features ((N, D), divided by
    `scale`, default their own max |x|; None for a model without images)."""
    seed: int
    features: np.ndarray | None = None
    scale: float | None = None


def fit_recommenders(config: RecConfig, data: RankingData, train_users: torch.Tensor,
                     train_items: torch.Tensor, members: Sequence[Member],
                     progress: Progress | None = None, device: str | torch.device = "cpu"):
    """Train every member as one batched model -> (model on `device`, history per member).
    Member m's numbers are those of fitting it alone (`config.seed` is replaced by its
    seed); members with the same features array share one feature set."""
    cls = RECOMMENDERS.get(config.model)
    sets, feature_of = {}, []
    if cls.uses_images:
        for m in members:
            key = (id(m.features), m.scale)
            if key not in sets:
                sets[key] = scale_features(m.features, m.scale)
            feature_of.append(list(sets).index(key))
    model = cls(data.n_users, data.n_items, factors=config.factors,
                visual_factors=config.visual_factors, features=list(sets.values()),
                feature_of=feature_of, biases=config.biases, precision=config.precision,
                seeds=[m.seed for m in members]).to(device)
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


__all__ = ["RECOMMENDERS", "RecConfig", "RankingData", "RankingReport", "evaluate", "KS",
           "fit_recommender", "fit_recommenders", "Member", "scale_features", "train_bpr",
           "bpr_step", "bpr_loss", "adversarial_delta", "RowOptimizer", "BPRMF", "VBPR", "AMR"]
