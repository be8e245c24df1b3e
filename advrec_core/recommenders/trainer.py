"""One BPR trainer for BPR-MF, VBPR and AMR.

An epoch is one pass over the training (user, item) pairs in random order, each with a
uniformly sampled negative; the loss is eq. 1 of the paper,
-ln sigma(s_ui - s_uj) + lambda ||theta||^2, plus, for AMR once `adv_start` of the epochs
have passed (the reference code warms up as VBPR), lambda_adv * L_BPR(f + delta).

Gradients are the closed form of that loss (`bpr_step`, through the models' `pair_grads`),
not autograd: a BPR step is a few gathers and two thin matmuls, and on CPU autograd's
bookkeeping and sparse-gradient coalescing cost more than the arithmetic. The tests check
every gradient against autograd."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..device import seed_everything
from ..progress import Progress
from .models import BPRMF, PRECISIONS
from .sampling import NegativeSampler


@dataclass(frozen=True)
class RecConfig:
    model: str = "vbpr"  # registry name: bprmf | vbpr | amr
    factors: int = 64  # p_u, q_i size (the reference code's default)
    visual_factors: int = 64  # rho_u size, rows of E
    epochs: int = 60  # tuned on the demo catalog (see the issue note)
    batch_size: int = 512  # the reference code's default
    optimizer: str = "adam"  # "adam" (lazy on embedding rows) | "adagrad" (reference)
    lr: float = 1e-3
    reg: float = 1e-2  # lambda of eq. 1, on the parameters a batch touches (per triplet)
    biases: bool = False  # VBPR/AMR: add beta_i + beta' f_i (not in eq. 2; benchmark parity)
    precision: str = "fp32"  # "bf16": features and their projections in bfloat16 (fast on
    #                          CPUs with AVX512-BF16/AMX); parameters and updates stay fp32
    adv_eps: float = 1.0  # AMR: ||delta|| per item (reference default)
    adv_reg: float = 0.1  # AMR: lambda of the adversarial term (reference default)
    adv_start: float = 0.5  # AMR: share of epochs trained as plain VBPR first
    seed: int = 0

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}, not {self.optimizer!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, not {self.precision!r}")


OPTIMIZERS = ("adam", "adagrad")


class RowOptimizer:
    """Adam or Adagrad that updates only the rows a batch touched ("lazy"): the other rows,
    and their moments, stay as they are. Rows=None updates the whole tensor, which is then
    torch.optim.Adam / Adagrad (no weight decay); with rows it is that update on those rows,
    as torch's sparse Adagrad and SparseAdam do (SparseAdam adds eps before, not after, the
    bias correction: a difference at the scale of eps). Duplicate rows are summed first, as
    a sparse gradient's coalesce() does. Both moments of a row sit side by side in one state
    tensor, so a step gathers and scatters them once."""

    def __init__(self, params: dict[str, torch.Tensor], rule: str = "adam", lr: float = 1e-3,
                 betas=(0.9, 0.999), eps: float | None = None):
        if rule not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}, not {rule!r}")
        self.params, self.rule, self.lr, self.betas = params, rule, lr, betas
        self.eps = eps if eps is not None else (1e-8 if rule == "adam" else 1e-10)  # torch's
        self.steps = dict.fromkeys(params, 0)
        # (n, 2, ...): Adam's first and second moments; Adagrad's sum of squares in [:, 1]
        self.state = {n: p.new_zeros((len(p), 2) + p.shape[1:]) for n, p in params.items()}

    @torch.no_grad()
    def step(self, grads: dict[str, tuple[torch.Tensor | None, torch.Tensor]]) -> None:
        """grads: {name: (rows or None, gradient rows)}; rows (R,) may repeat."""
        for name, (rows, g) in grads.items():
            p, st = self.params[name], self.state[name]
            self.steps[name] += 1
            if rows is None:
                self._update(p, st, g, self.steps[name])
                continue
            rows, inv = torch.unique(rows, return_inverse=True)
            g = g.new_zeros((len(rows),) + g.shape[1:]).index_add_(0, inv, g)
            w, s = p.index_select(0, rows), st.index_select(0, rows)
            self._update(w, s, g, self.steps[name])
            p.index_copy_(0, rows, w)
            st.index_copy_(0, rows, s)

    def _update(self, w, state, g, step: int) -> None:
        """In place on w (parameter rows) and state (rows, 2, ...)."""
        m, v = state[:, 0], state[:, 1]
        if self.rule == "adagrad":
            v.addcmul_(g, g)
            w.addcdiv_(g, v.sqrt().add_(self.eps), value=-self.lr)
            return
        b1, b2 = self.betas
        m.lerp_(g, 1 - b1)
        v.mul_(b2).addcmul_(g, g, value=1 - b2)
        c2 = math.sqrt(1 - b2 ** step)  # torch's m_hat / (sqrt(v_hat) + eps), times c2 / c2
        w.addcdiv_(m, v.sqrt().add_(self.eps * c2), value=-self.lr * c2 / (1 - b1 ** step))


def bpr_loss(model: BPRMF, u, i, j, diff=None) -> torch.Tensor:
    """Mean -ln sigma(s_ui - s_uj) over the batch (autograd; `diff` overrides f_i - f_j)."""
    return -F.logsigmoid(model(u, i, j, diff)[0]).mean()


def adversarial_delta(model: BPRMF, ctx, g: torch.Tensor, eps: float):
    """AMR's perturbations of the positive and negative items' features, (B, D) each: per
    item, delta = eps * G / ||G||, with G the gradient of the BPR loss w.r.t. that item's
    feature row (summed over the item's occurrences in the batch, as the gradient w.r.t. the
    feature matrix is), which increases the loss most to first order. `ctx`, `g` (B,): a
    batch's `pair_scores` context and dL/dx; no gradient flows through delta."""
    a = model.feature_grads(ctx, g)  # (B, D) dL/df_i; dL/df_j = -a
    items, inv = torch.unique(ctx.items, return_inverse=True)
    G = a.new_zeros(len(items), a.shape[1]).index_add_(0, inv, torch.cat([a, -a]))
    delta = F.normalize(G, dim=1).mul_(eps)[inv]  # (2B, D), ||row|| = eps
    return delta[:len(g)], delta[len(g):]


def bpr_step(model: BPRMF, u, i, j, config: RecConfig, adversarial: bool = False):
    """One batch: -> (loss, {parameter: (rows or None, gradient)}) of eq. 1 (+ AMR's term)."""
    B = len(u)
    x, ctx = model.pair_scores(u, i, j)
    g = torch.sigmoid(-x).div_(-B)  # dL/dx of mean -ln sigma(x)
    grads = model.pair_grads(ctx, g, config.reg / B)
    loss = -F.logsigmoid(x).mean()
    if adversarial:
        d_i, d_j = adversarial_delta(model, ctx, g, config.adv_eps)
        diff = ctx.diff + (d_i - d_j).to(ctx.diff.dtype)  # (f_i + delta_i) - (f_j + delta_j)
        x_adv, ctx_adv = model.pair_scores(u, i, j, diff)
        g_adv = torch.sigmoid(-x_adv).mul_(-config.adv_reg / B)
        for name, (_, grad) in model.pair_grads(ctx_adv, g_adv, 0.0).items():
            grads[name][1].add_(grad)
        loss = loss - config.adv_reg * F.logsigmoid(x_adv).mean()
    return loss + config.reg / B * model.penalty(ctx), grads


def train_bpr(model: BPRMF, users: torch.Tensor, items: torch.Tensor, config: RecConfig,
              progress: Progress | None = None, device: str | torch.device = "cpu") -> dict:
    """Fit `model` on training pairs (users[k], items[k]); returns a small history."""
    gen = seed_everything(config.seed)
    sampler = NegativeSampler(users, items, model.item_table.shape[0])
    opt = RowOptimizer(dict(model.named_parameters()), config.optimizer, config.lr)
    n, bs = len(users), config.batch_size
    per_epoch = math.ceil(n / bs)
    adv_from = int(config.epochs * config.adv_start) if model.adversarial else config.epochs
    history, t0 = [], time.perf_counter()
    model.train()
    with torch.no_grad():
        for epoch in range(config.epochs):
            order = torch.randperm(n, generator=gen)
            u_all, i_all = users[order].to(device), items[order].to(device)
            j_all = sampler.sample(users[order], gen).to(device)  # (n,) negatives, at once
            total = torch.zeros((), device=device)
            for b in range(per_epoch):
                sl = slice(b * bs, (b + 1) * bs)
                u, i, j = u_all[sl], i_all[sl], j_all[sl]
                loss, grads = bpr_step(model, u, i, j, config, epoch >= adv_from)
                opt.step(grads)
                total += loss * len(u)
            history.append(total.item() / n)
            if progress:
                progress(epoch + 1, config.epochs, f"training {config.model}")
    model.eval()
    return {"loss_per_epoch": history, "train_seconds": round(time.perf_counter() - t0, 3),
            "epochs": config.epochs, "adversarial_from_epoch": adv_from if model.adversarial else None}
