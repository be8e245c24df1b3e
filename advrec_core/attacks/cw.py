"""Carlini & Wagner L2, "Towards Evaluating the Robustness of Neural Networks", IEEE S&P
2017, https://arxiv.org/abs/1608.04644 .

Minimises ||x' - x||_2^2 + c * f(x') with x' = (tanh(w) + 1) / 2 (the box constraint for
free), f(x') = max(max_{j != t} Z_j - Z_t, -kappa) for target t, by Adam on w; a binary
search over c per sample; the smallest successful perturbation of every sample is kept,
judged on the 8-bit image a seller would upload when `quantize` is set. Samples never
successful come back unchanged. Batched: every sample has its own c and search bounds.

Inputs (B, C, H, W) in [0, 1], labels (B,) int64 targets. Output (B, C, H, W) in [0, 1]."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from .common import ATTACKS, quantize


def _margin(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(B,) Z_t - max_{j != t} Z_j: >= 0 iff the target is the top class."""
    onehot = torch.nn.functional.one_hot(labels, logits.shape[1]).bool()
    real = logits[onehot]
    other = logits.masked_fill(onehot, float("-inf")).amax(dim=1)
    return real - other


@ATTACKS.register("cw")
@dataclass(frozen=True)
class CarliniWagnerL2:
    steps: int = 1000  # Adam iterations per binary-search step
    binary_search_steps: int = 5
    initial_const: float = 1e-2  # c at the start of the search
    confidence: float = 0.0  # kappa: required logit margin
    lr: float = 5e-3  # Adam learning rate
    abort_early: bool = True  # stop a search step when the loss stops falling
    quantize: bool = True  # judge success (and keep the best) on the 8-bit image
    title: ClassVar[str] = "C&W"
    takes_eps: ClassVar[bool] = False  # minimises L2; no radius
    takes_steps: ClassVar[bool] = True

    def __call__(self, model: nn.Module, x: torch.Tensor, labels: torch.Tensor,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        x0 = x.detach()
        B = x0.shape[0]
        dev = x0.device
        lower = torch.zeros(B, device=dev)
        upper = torch.full((B,), 1e10, device=dev)
        const = torch.full((B,), self.initial_const, device=dev)
        best_l2 = torch.full((B,), float("inf"), device=dev)
        best = x0.clone()
        w0 = torch.atanh((2 * x0 - 1).clamp(-1 + 1e-6, 1 - 1e-6))
        check_every = max(1, self.steps // 10)
        for _ in range(self.binary_search_steps):
            w = w0.clone().requires_grad_(True)
            opt = torch.optim.Adam([w], lr=self.lr)
            found = torch.zeros(B, dtype=torch.bool, device=dev)
            prev = float("inf")
            for it in range(self.steps):
                adv = (torch.tanh(w) + 1) / 2  # (B, C, H, W) in [0, 1]
                logits = model(adv)
                l2 = (adv - x0).pow(2).flatten(1).sum(1)
                f = (self.confidence - _margin(logits, labels)).clamp(min=0)
                loss = (l2 + const * f).sum()
                (w.grad,) = torch.autograd.grad(loss, w)  # the model's .grad stays untouched
                opt.step()
                with torch.no_grad():
                    # judge the 8-bit image, but only where the float one already succeeds
                    # (quantising rarely creates success), saving most extra forwards
                    ok = _margin(logits.detach(), labels) >= self.confidence
                    cand = adv.detach()
                    if self.quantize and ok.any():
                        cand = quantize(cand)
                        ok[ok.clone()] = _margin(model(cand[ok]), labels[ok]) >= self.confidence
                    cand_l2 = (cand - x0).pow(2).flatten(1).sum(1)
                    better = ok & (cand_l2 < best_l2)
                    best_l2 = torch.where(better, cand_l2, best_l2)
                    best[better] = cand[better]
                    found |= ok
                if self.abort_early and it % check_every == 0:
                    if loss.item() > prev * 0.9999:
                        break
                    prev = loss.item()
            upper = torch.where(found, torch.minimum(upper, const), upper)
            lower = torch.where(found, lower, torch.maximum(lower, const))
            const = torch.where(upper < 1e9, (lower + upper) / 2, const * 10)
        return best
