"""One BPR trainer for BPR-MF, VBPR and AMR.

An epoch is one pass over the training (user, item) pairs in random order, each with a
uniformly sampled negative; the loss is eq. 1 of the paper,
-ln sigma(s_ui - s_uj) + lambda ||theta||^2, plus, for AMR once `adv_start` of the epochs
have passed (the reference code warms up as VBPR), lambda_adv * L_BPR(f + delta)."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..device import seed_everything
from ..progress import Progress
from .models import BPRMF
from .sampling import NegativeSampler


@dataclass(frozen=True)
class RecConfig:
    model: str = "vbpr"  # registry name: bprmf | vbpr | amr
    factors: int = 64  # p_u, q_i size (the reference code's default)
    visual_factors: int = 64  # rho_u size, rows of E
    epochs: int = 60  # tuned on the demo catalog (see the issue note)
    batch_size: int = 512  # the reference code's default
    optimizer: str = "adam"  # "adam" (sparse/lazy on embedding rows) | "adagrad" (reference)
    lr: float = 1e-3
    reg: float = 1e-2  # lambda of eq. 1, on the parameters a batch touches (per triplet)
    biases: bool = False  # VBPR/AMR: add beta_i + beta' f_i (not in eq. 2; benchmark parity)
    adv_eps: float = 1.0  # AMR: ||delta|| per item (reference default)
    adv_reg: float = 0.1  # AMR: lambda of the adversarial term (reference default)
    adv_start: float = 0.5  # AMR: share of epochs trained as plain VBPR first
    seed: int = 0

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}, not {self.optimizer!r}")


OPTIMIZERS = ("adam", "adagrad")


TABLES = ("p", "q", "rho", "beta")  # embedding tables: a batch touches few of their rows


class LazyAdam(torch.optim.Optimizer):
    """Adam for sparse row gradients, updating only the rows a batch touched (the moments of
    the other rows stay as they are): the math of torch.optim.SparseAdam, written as a few
    fused row ops (index_select / lerp / index_copy) per table, which is ~4x less overhead per
    step on CPU than SparseAdam's sparse-tensor arithmetic."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps))

    @torch.no_grad()
    def step(self) -> None:
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad.coalesce()  # duplicate rows summed
                idx, gv = g.indices()[0], g.values()  # (R,), (R, ...)
                st = self.state[p]
                if not st:
                    st["step"], st["m"], st["v"] = 0, torch.zeros_like(p), torch.zeros_like(p)
                st["step"] += 1
                m = st["m"].index_select(0, idx).lerp_(gv, 1 - b1)
                v = st["v"].index_select(0, idx).mul_(b2).addcmul_(gv, gv, value=1 - b2)
                st["m"].index_copy_(0, idx, m)
                st["v"].index_copy_(0, idx, v)
                step_size = group["lr"] * math.sqrt(1 - b2 ** st["step"]) / (1 - b1 ** st["step"])
                rows = p.index_select(0, idx).add_(m.div_(v.sqrt_().add_(group["eps"])),
                                                   alpha=-step_size)
                p.index_copy_(0, idx, rows)  # idx is unique after coalesce()


class _Optimizer:
    """Adam (lazy, row-wise for the embedding tables, dense for E and beta') or Adagrad
    (handles sparse gradients itself), stepped as one."""

    def __init__(self, model: BPRMF, name: str, lr: float):
        tables = [p for n, p in model.named_parameters() if n in TABLES]
        dense = [p for n, p in model.named_parameters() if n not in TABLES]
        if name == "adam":
            self.parts = [LazyAdam(tables, lr=lr)]
            if dense:
                self.parts.append(torch.optim.Adam(dense, lr=lr, fused=True))
        else:
            self.parts = [torch.optim.Adagrad(list(model.parameters()), lr=lr)]

    def zero_grad(self) -> None:
        for o in self.parts:
            o.zero_grad(set_to_none=True)

    def step(self) -> None:
        for o in self.parts:
            o.step()


def bpr_loss(model: BPRMF, u, i, j, f_i=None, f_j=None) -> torch.Tensor:
    """Mean -ln sigma(s_ui - s_uj) over the batch."""
    return -F.logsigmoid(model(u, i, j, f_i, f_j)[0]).mean()


def adversarial_delta(model: BPRMF, u, i, j, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, D) perturbations of the positive and negative items' features that increase the
    BPR loss most to first order: delta_item = eps * g / ||g|| with g the gradient w.r.t. that
    item's feature row (summed over the item's occurrences in the batch, as the gradient
    w.r.t. the feature matrix is), detached."""
    items, inv = torch.unique(torch.cat([i, j]), return_inverse=True)
    f = model.features[items].clone().requires_grad_(True)  # (U, D) rows of the batch items
    (g,) = torch.autograd.grad(bpr_loss(model, u, i, j, f[inv[:len(i)]], f[inv[len(i):]]), f)
    delta = eps * F.normalize(g, dim=1)  # (U, D), ||row|| = eps
    return delta[inv[:len(i)]], delta[inv[len(i):]]


def train_bpr(model: BPRMF, users: torch.Tensor, items: torch.Tensor, config: RecConfig,
              progress: Progress | None = None, device: str | torch.device = "cpu") -> dict:
    """Fit `model` on training pairs (users[k], items[k]); returns a small history."""
    gen = seed_everything(config.seed)
    n_items = model.q.shape[0]
    sampler = NegativeSampler(users, items, n_items)
    opt = _Optimizer(model, config.optimizer, config.lr)
    n, bs = len(users), config.batch_size
    per_epoch = math.ceil(n / bs)
    adv_from = int(config.epochs * config.adv_start) if model.adversarial else config.epochs
    history, t0 = [], time.perf_counter()
    model.train()
    for epoch in range(config.epochs):
        order = torch.randperm(n, generator=gen)
        u_all, i_all = users[order], items[order]
        j_all = sampler.sample(u_all, gen)  # (n,) negatives for the whole epoch at once
        total = 0.0
        for b in range(per_epoch):
            sl = slice(b * bs, (b + 1) * bs)
            u, i, j = (t[sl].to(device) for t in (u_all, i_all, j_all))
            x, reg = model(u, i, j)
            loss = -F.logsigmoid(x).mean() + config.reg * reg / len(u)
            if epoch >= adv_from:
                d_i, d_j = adversarial_delta(model, u, i, j, config.adv_eps)
                f_i, f_j = model.features[i] + d_i, model.features[j] + d_j
                loss = loss + config.adv_reg * bpr_loss(model, u, i, j, f_i, f_j)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(u)
        history.append(total / n)
        if progress:
            progress(epoch + 1, config.epochs, f"training {config.model}")
    model.eval()
    return {"loss_per_epoch": history, "train_seconds": round(time.perf_counter() - t0, 3),
            "epochs": config.epochs, "adversarial_from_epoch": adv_from if model.adversarial else None}
