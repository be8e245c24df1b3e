"""Item-promotion attacks that aim at the recommender's input, not at a class (Liu & Larson,
"Adversarial Item Promotion: Vulnerabilities at the Core of Top-N Recommenders that Use
Images to Address Cold Start", WWW 2021, https://arxiv.org/abs/2006.01888; code liuzrcc/AIP).
Both are the L-inf gradient loop of `gradient.py` with another objective:

* EXPA, the expert attack: descend ||phi(x) - phi*||^2, phi* the mean features of the target
  category's most popular items (`top` of them, by training interactions): the item is made to
  look, to the recommender, like what users already buy. No class is involved.
* INSA, the insider attack: ascend s(phi(x)), the item's predicted score averaged over every
  user of a recommender trained on the clean features (white-box: the insider knows the
  recommender). VBPR and AMR score an item linearly in its features, s(f) = w . f / scale +
  const (w = E^T mean_u rho_u [+ beta']), so the objective is one direction in feature space.

The driver builds what they differentiate (`attacks.common.HEADS`): the extractor's pooled
features for EXPA, and its features dotted with w for INSA, and the per-item targets (phi*, or
nothing); `experiments.attack` computes phi* and w from the dataset. Their success rate is
still the share classified as the target category, a side measurement: neither aims at it."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch

from .common import ATTACKS
from .gradient import LinfGradientAttack


@ATTACKS.register("expa")
@dataclass(frozen=True)
class EXPA(LinfGradientAttack):
    """The expert attack: PGD's loop (10 steps of eps / 6) on the squared feature distance to
    the mean features of the target category's `top` most popular items."""

    top: int = field(default=10, metadata={
        "help": "EXPA: how many of the target category's most popular items set its goal"})
    title: ClassVar[str] = "EXPA"
    head: ClassVar[str] = "features"
    fixed: ClassVar[tuple[str, ...]] = ("targeted",)

    def __post_init__(self):
        super().__post_init__()
        if self.top < 1:
            raise ValueError(f"top must be >= 1, not {self.top}")

    def loss(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """(B, D) features, (B, D) goal -> sum of squared distances (descended)."""
        return (out - target).square().sum()


@ATTACKS.register("insa")
@dataclass(frozen=True)
class INSA(LinfGradientAttack):
    """The insider attack: PGD's loop on minus the item's mean predicted score under a
    recommender (`recommender`) trained on the clean features."""

    recommender: str = field(default="vbpr", metadata={
        "help": "INSA: the visual recommender (trained on clean features) whose score it raises",
        "choices": "insiders"})
    title: ClassVar[str] = "INSA"
    head: ClassVar[str] = "score"
    fixed: ClassVar[tuple[str, ...]] = ("targeted",)

    def __post_init__(self):
        super().__post_init__()
        from ..recommenders import RECOMMENDERS  # a registry lookup: unknown names listed

        model = RECOMMENDERS.get(self.recommender)
        if model.reads != "features":
            why = "does not use images" if not model.uses_images else \
                f"reads {'feature maps' if model.reads == 'map' else 'the images themselves'}"
            raise ValueError(f"INSA follows a visual recommender's score in the item's "
                             f"features; {self.recommender} {why} (those that score features: "
                             + ", ".join(n for n, m in RECOMMENDERS.items()
                                         if m.reads == "features") + ")")

    def loss(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """(B,) scores -> minus their sum (descended: the score rises)."""
        return -out.sum()


__all__ = ["EXPA", "INSA"]
