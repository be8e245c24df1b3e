"""Carlini & Wagner L2, "Towards Evaluating the Robustness of Neural Networks", IEEE S&P
2017, https://arxiv.org/abs/1608.04644 .

Minimises ||x' - x||_2^2 + c * f(x') with x' = (tanh(w) + 1) / 2 (the box constraint for
free), f(x') = max(max_{j != t} Z_j - Z_t, -kappa) for target t, by Adam on w; a binary
search over c per sample; the smallest successful perturbation of every sample is kept,
judged on the 8-bit image a seller would upload when `quantize` is set. Samples never
successful come back unchanged. Batched: every sample has its own c, search bounds, Adam
state and early abort (a sample whose loss stopped falling leaves the batch until the next
search step, so it costs nothing more).

Inputs (B, C, H, W) in [0, 1], labels (B,) int64 targets. Output (B, C, H, W) in [0, 1]."""
from __future__ import annotations

from dataclasses import dataclass, field
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
    binary_search_steps: int = field(default=5, metadata={"help": "binary-search steps over c"})
    initial_const: float = field(default=1e-2, metadata={"help": "c at the start of the search"})
    confidence: float = field(default=0.0, metadata={"help": "kappa: the required logit margin"})
    lr: float = field(default=5e-3, metadata={"help": "Adam's learning rate"})
    abort_early: bool = field(default=True, metadata={
        "help": "stop a search step when its loss stops falling"})
    quantize: bool = field(default=True, metadata={
        "help": "judge success (and keep the best) on the 8-bit image"})
    title: ClassVar[str] = "C&W"
    takes_eps: ClassVar[bool] = False  # minimises L2; no radius
    takes_steps: ClassVar[bool] = True

    def __call__(self, model: nn.Module, x: torch.Tensor, labels: torch.Tensor,
                 generator: torch.Generator | None = None,
                 judge: nn.Module | None = None) -> torch.Tensor:
        """`judge`: where the search runs on a reduced-precision copy (`search_model`), the
        fp32 model that confirms each success (outside autocast); only confirmed ones count."""
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
        strict = judge is not None
        judge = judge or model
        b1, b2, adam_eps = 0.9, 0.999, 1e-8  # torch.optim.Adam's defaults
        for _ in range(self.binary_search_steps):
            # the samples still improving, kept contiguous: their ids, w, Adam's moments,
            # clean images, targets and c (compacted only when some stop, every check)
            idx = torch.arange(B, device=dev)
            wa, xa, la, ca = w0.clone(), x0, labels, const
            m, v = torch.zeros_like(wa), torch.zeros_like(wa)
            prev = torch.full((B,), float("inf"), device=dev)
            found = torch.zeros(B, dtype=torch.bool, device=dev)
            for it in range(self.steps):
                if idx.numel() == 0:
                    break
                wa.requires_grad_(True)
                adv = (torch.tanh(wa) + 1) / 2  # (A, C, H, W) in [0, 1]
                logits = model(adv)
                l2 = (adv - xa).pow(2).flatten(1).sum(1)
                f = (self.confidence - _margin(logits, la)).clamp(min=0)
                loss = l2 + ca * f  # (A,)
                (g,) = torch.autograd.grad(loss.sum(), wa)  # the model's .grad untouched
                with torch.no_grad():
                    wa = wa.detach()  # Adam, as torch.optim.Adam computes it
                    step = it + 1  # every active sample has been active since step 1
                    m.mul_(b1).add_(g, alpha=1 - b1)
                    v.mul_(b2).addcmul_(g, g, value=1 - b2)
                    denom = (v.sqrt() / (1 - b2 ** step) ** 0.5).add_(adam_eps)
                    wa.addcdiv_(m, denom, value=-self.lr / (1 - b1 ** step))
                    # judge the 8-bit image where the float one succeeds and the step has no
                    # success yet (without a judge, the float success is one), or where it is
                    # closer than the best so far (each judgement is an fp32 forward; rounding
                    # rarely makes a farther float image the closer 8-bit one)
                    cand, cand_l2 = adv.detach(), l2.detach().clone()  # (A, C, H, W), (A,)
                    ok = _margin(logits.detach().float(), la) >= self.confidence
                    if not strict:
                        found[idx] |= ok
                    ok &= ~found[idx] | (cand_l2 < best_l2[idx])
                    if (self.quantize or strict) and ok.any():
                        rows = ok.nonzero().squeeze(1)  # cand and cand_l2 are this step's own
                        q = quantize(cand[rows]) if self.quantize else cand[rows]
                        q_l2 = (q - xa[rows]).pow(2).flatten(1).sum(1)
                        # once the step has a confirmed success, an 8-bit image no closer
                        # than the best can change nothing: it is not judged
                        need = ~found[idx[rows]] | (q_l2 < best_l2[idx[rows]])
                        good = torch.zeros_like(need)
                        if need.any():
                            with torch.autocast(dev.type, enabled=False):
                                margin = _margin(judge(q[need]).float(), la[rows[need]])
                            good[need] = margin >= self.confidence
                        cand_l2[rows] = q_l2
                        ok[rows] = good
                        cand[rows] = q
                        if strict:
                            found[idx[rows[good]]] = True
                    better = ok & (cand_l2 < best_l2[idx])
                    best_l2[idx[better]] = cand_l2[better]
                    best[idx[better]] = cand[better]
                    if self.abort_early and it % check_every == 0:
                        # each sample stops when its own loss stopped falling (the original
                        # C&W stops a batch on its total: one straggler holds them all)
                        keep = loss.detach() <= prev * 0.9999
                        prev = loss.detach()
                        if not keep.all():
                            idx, wa, xa, la, ca = idx[keep], wa[keep], xa[keep], la[keep], ca[keep]
                            m, v, prev = m[keep], v[keep], prev[keep]
            upper = torch.where(found, torch.minimum(upper, const), upper)
            lower = torch.where(found, lower, torch.maximum(lower, const))
            const = torch.where(upper < 1e9, (lower + upper) / 2, const * 10)
        return best
