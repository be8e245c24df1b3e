"""Visual recommenders (BPR-MF, VBPR, AMR), one BPR trainer, full-ranking evaluation.

``fit_recommender(config, data, features)`` builds the model from RECOMMENDERS, trains it
and returns it; ``evaluate`` ranks every item for every user."""
from __future__ import annotations

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


def fit_recommender(config: RecConfig, data: RankingData, train_users: torch.Tensor,
                    train_items: torch.Tensor, features: np.ndarray | None = None,
                    progress: Progress | None = None, device: str | torch.device = "cpu",
                    scale: float | None = None):
    """-> (trained model on `device`, training history). Features are divided by `scale`
    (default: their own max |x|)."""
    torch.manual_seed(config.seed)
    feats = scale_features(features, scale) if features is not None else None
    model = RECOMMENDERS.get(config.model)(data.n_users, data.n_items, factors=config.factors,
                                           visual_factors=config.visual_factors,
                                           features=feats, biases=config.biases,
                                           precision=config.precision).to(device)
    history = train_bpr(model, train_users, train_items, config, progress, device)
    return model, history


__all__ = ["RECOMMENDERS", "RecConfig", "RankingData", "RankingReport", "evaluate", "KS",
           "fit_recommender", "scale_features", "train_bpr", "bpr_step", "bpr_loss",
           "adversarial_delta", "RowOptimizer", "BPRMF", "VBPR", "AMR"]
