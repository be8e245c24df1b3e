"""The trainer's step for models whose gradients come from autograd (ACF, DVBPR).

BPR-MF, VBPR, AMR and DeepStyle have a hand-derived step (`models.BPRMF.pair_grads`); a model
with attention over regions and histories (ACF) or a CNN trained end to end (DVBPR) is
differentiated by autograd instead, with the same contract: the member axis, lazily updated
table rows, eq. 1's loss, and each member's numbers bitwise those of fitting it alone. For
that, each member's loss is computed and differentiated on its own (a loop over the M
members: a few per cell), from the table rows it gathers (`RowLeaves`: leaves whose
gradients are the rows' updates) and its own network (`nets[m]`, dense updates)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .models import BPRMF


class RowLeaves:
    """The table rows one member's loss reads, each gathered as a leaf tensor, so that
    autograd gives their gradients as (flat rows, gradient rows): what the row optimizer
    updates. Every row read is in eq. 1's ||theta||^2 (per occurrence, as BPR-MF's)."""

    def __init__(self, model: BPRMF, member: int):
        self.model, self.member = model, member
        self.taken: list[tuple[str, torch.Tensor, torch.Tensor]] = []

    def __call__(self, table: str, rows: torch.Tensor) -> torch.Tensor:
        """(n, width) leaf: rows `rows` (n,) of member's `table` (a (M, rows, width) parameter)."""
        t = getattr(self.model, table)
        flat = rows + self.member * t.shape[1]
        leaf = t.detach().view(-1, t.shape[-1]).index_select(0, flat).requires_grad_(True)
        self.taken.append((table, flat, leaf))
        return leaf

    def penalty(self) -> torch.Tensor:
        return sum(leaf.square().sum() for _, _, leaf in self.taken)


def logsigmoid_lanes(x: torch.Tensor) -> torch.Tensor:
    """ln sigma of (B,) x with the row padded as the closed-form step pads it (`rowwise`):
    the same vectorised path whatever B is."""
    from .trainer import rowwise

    return rowwise(F.logsigmoid, x[None])[0]


class AutogradModel(BPRMF):
    """A BPR model trained through autograd: `member_scores` is its whole forward for one
    member; `nets` (one module per member) are its dense parameters."""

    closed_form = False
    nets: nn.ModuleList

    def member_scores(self, m: int, rows: RowLeaves, users: torch.Tensor, pos: torch.Tensor,
                      neg: torch.Tensor) -> torch.Tensor:
        """(B,) s_ui - s_uj of member m for (B,) triplet indices, differentiable in the rows
        it takes through `rows` and in `nets[m]`."""
        raise NotImplementedError

    def net_penalty(self, m: int, reg: float) -> torch.Tensor:
        """Member m's network's term of eq. 1's lambda ||theta||^2 per triplet: reg ||W||^2."""
        return reg * sum(p.square().sum() for p in self.nets[m].parameters())

    def autograd_step(self, u: torch.Tensor, i: torch.Tensor, j: torch.Tensor, reg: float):
        """One batch of (M, B) triplets -> ((M,) loss per member, {parameter: (flat rows or
        None, gradient)}), as `trainer.bpr_step`."""
        M, B = u.shape
        losses, grads = [], {}
        table_grads: dict[str, list] = {}
        for m in range(M):
            rows = RowLeaves(self, m)
            net = list(self.nets[m].named_parameters())
            with torch.enable_grad():
                x = self.member_scores(m, rows, u[m], i[m], j[m])
                loss = -logsigmoid_lanes(x).mean() + (reg * rows.penalty() +
                                                       self.net_penalty(m, reg)) / B
                leaves = [leaf for _, _, leaf in rows.taken]
                got = torch.autograd.grad(loss, leaves + [p for _, p in net])
            for (table, flat, _), g in zip(rows.taken, got):
                table_grads.setdefault(table, []).append((flat, g))
            for (name, _), g in zip(net, got[len(leaves):]):
                grads[f"nets.{m}.{name}"] = (None, g)
            losses.append(loss.detach())
        for table, parts in table_grads.items():
            grads[table] = (torch.cat([r for r, _ in parts]), torch.cat([g for _, g in parts]))
        return torch.stack(losses), grads

    def _pairs(self, users, pos, neg):
        raise TypeError(f"{type(self).__name__} trains through autograd_step")


def member_init(net: nn.Module, generator: torch.Generator) -> nn.Module:
    """Draw `net`'s weights from `generator` (the member's own stream): Xavier-normal for
    every weight of 2 or more dimensions (as the papers' code initialises them), zero
    biases; its numbers then do not depend on the members built beside it."""
    with torch.no_grad():
        for p in net.parameters():
            if p.ndim >= 2:
                fan_out, fan_in = p.shape[0] * p[0, 0].numel(), p[0].numel()
                p.copy_(torch.randn(p.shape, generator=generator) * (2.0 / (fan_in + fan_out)) ** 0.5)
            else:
                p.zero_()
    return net


def check_fp32(model: str, precision: str) -> None:
    if precision != "fp32":
        raise ValueError(f"{model} computes in fp32 (precision bf16 is the feature arithmetic "
                         f"of VBPR, AMR and DeepStyle), not {precision!r}")


__all__ = ["AutogradModel", "RowLeaves", "member_init", "check_fp32"]
