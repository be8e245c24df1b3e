"""FGSM and PGD: one L-inf gradient loop (foolbox-style), targeted by default.

* FGSM, Goodfellow et al., "Explaining and Harnessing Adversarial Examples", ICLR 2015,
  https://arxiv.org/abs/1412.6572 : one step of size eps, no random start.
* PGD, Madry et al., "Towards Deep Learning Models Resistant to Adversarial Attacks",
  ICLR 2018, https://arxiv.org/abs/1706.06083 : `steps` steps of size `rel_step * eps`
  (optionally from a uniform random start in the eps-ball), projected back after every step.

Distance: L-inf. Inputs (B, C, H, W) in [0, 1], labels (B,) int64 (the *target* class when
targeted, the true class otherwise). Output: (B, C, H, W) in [0, 1] with
|x_adv - x| <= eps per pixel. Gradients come from `torch.autograd.grad` on the input only,
so the model's parameters and `.grad` are never touched.

`eps_space="normalized"` reproduces the authors' code, which added eps to inputs already
normalised by the ImageNet std: their eps = 4/255 is eps * std_c ~ 0.9/255 in pixels."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from .common import ATTACKS

EPS_SPACES = ("pixel", "normalized")


@dataclass(frozen=True)
class LinfGradientAttack:
    """The L-inf gradient loop shared by FGSM and PGD (use those)."""

    eps: float = 8 / 255  # L-inf radius, in [0, 1] pixel units
    steps: int = 10  # gradient steps
    rel_step: float = field(default=1 / 6, metadata={
        "help": "step size as a share of eps (the paper's PGD: 1/6)"})
    random_start: bool = False  # uniform start in the eps-ball (the paper's PGD: none)
    targeted: bool = field(default=True, metadata={
        "help": "move towards the target class (else away from the true one)"})
    eps_space: str = "pixel"  # "pixel" or "normalized" (the authors' convention)
    title: ClassVar[str] = "L-inf gradient"
    takes_eps: ClassVar[bool] = True  # AttackSpec: the attack has an L-inf radius
    takes_steps: ClassVar[bool] = True  # ... and a number of iterations
    head: ClassVar[str] = "logits"  # what the attacked network outputs (attacks.common.HEADS):
    # "logits" (a class), "features" (the pooled features), "score" (a recommender's score)

    def __post_init__(self):
        if self.eps_space not in EPS_SPACES:
            raise ValueError(f"eps_space must be one of {EPS_SPACES}, not {self.eps_space!r}")
        if self.eps < 0 or self.steps < 1:
            raise ValueError("eps must be >= 0 and steps >= 1")

    def radius(self, model: nn.Module, x: torch.Tensor) -> float | torch.Tensor:
        """eps in pixel units: a float, or (1, C, 1, 1) in the authors' convention."""
        return self.eps * model.std.to(x) if self.eps_space == "normalized" else self.eps

    def loss(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """What a step descends, summed over the batch: the cross-entropy towards the target
        class (targeted), or away from the true one."""
        ce = F.cross_entropy(out, target, reduction="sum")
        return ce if self.targeted else -ce

    def __call__(self, model: nn.Module, x: torch.Tensor, labels: torch.Tensor,
                 generator: torch.Generator | None = None,
                 judge: nn.Module | None = None) -> torch.Tensor:
        """`judge` is not used: a fixed-radius attack keeps its last step whatever it is."""
        x0 = x.detach()
        eps = self.radius(model, x0)
        alpha = eps * self.rel_step
        if self.random_start:
            noise = torch.rand(x0.shape, generator=generator, dtype=x0.dtype).to(x0.device)
            x_adv = (x0 + (2 * noise - 1) * eps).clamp(0, 1)
        else:
            x_adv = x0.clone()
        for _ in range(self.steps):
            x_adv.requires_grad_(True)
            (grad,) = torch.autograd.grad(self.loss(model(x_adv), labels), x_adv)
            x_adv = x_adv.detach() - alpha * grad.sign()
            x_adv = (x0 + (x_adv - x0).clamp(-eps, eps)).clamp(0, 1)
        return x_adv.detach()


@ATTACKS.register("fgsm")
@dataclass(frozen=True)
class FGSM(LinfGradientAttack):
    """The fast gradient sign method: the loop above with one step of size eps from the
    clean image."""

    eps: float = 4 / 255
    steps: int = 1
    rel_step: float = 1.0
    title: ClassVar[str] = "FGSM"
    takes_steps: ClassVar[bool] = False
    fixed: ClassVar[tuple[str, ...]] = ("steps", "rel_step", "random_start")  # not settings

    def __post_init__(self):
        super().__post_init__()
        if (self.steps, self.rel_step, self.random_start) != (1, 1.0, False):
            raise ValueError("FGSM is one step of eps from the clean image: steps, rel_step "
                             "and random_start cannot be set")


@ATTACKS.register("pgd")
@dataclass(frozen=True)
class PGD(LinfGradientAttack):
    """Projected gradient descent with the paper's settings by default: 10 steps of eps / 6
    from the clean image (the authors' code has no random start; Madry et al.'s PGD has one,
    `random_start=True`)."""

    title: ClassVar[str] = "PGD"
