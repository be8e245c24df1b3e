"""One BPR trainer for every recommender (BPR-MF, VBPR, AMR, DeepStyle, ACF, DVBPR).

An epoch is one pass over the training (user, item) pairs in random order, each with a
uniformly sampled negative; the loss is eq. 1 of the paper,
-ln sigma(s_ui - s_uj) + lambda ||theta||^2, plus, for AMR once `adv_start` of the epochs
have passed (the reference code warms up as VBPR), lambda_adv * L_BPR(f + delta).

Gradients are the closed form of that loss (`bpr_step`, through the models' `pair_grads`)
where a model has one (BPR-MF, VBPR, AMR, DeepStyle): a BPR step is a few gathers and two
thin matmuls, and on CPU autograd's bookkeeping and sparse-gradient coalescing cost more
than the arithmetic; the tests check every such gradient against autograd. ACF's attention
and DVBPR's CNN go through autograd (`autograd.AutogradModel.autograd_step`)."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, fields, replace
from typing import Any

import torch
import torch.nn.functional as F

from ..progress import Progress
from .models import BPRMF, PRECISIONS
from .sampling import NegativeSampler


@dataclass(frozen=True)
class RecConfig:
    """How a recommender is trained: the trainer's settings here, the model's own
    hyperparameters (its `Params`: VBPR's visual_factors and biases, AMR's adversarial term)
    in `params`, by name, kept in one canonical form (sorted, defaults left out) so that
    one model's one setting has one cache key."""

    model: str = field(default="vbpr", metadata={"help": "the recommender",
                                                 "choices": "recommenders"})
    factors: int = field(default=64, metadata={"help": "latent factors (p_u, q_i size)"})
    epochs: int = field(default=60, metadata={"help": "recommender epochs", "flag": "rec-epochs"})
    batch_size: int = 512  # the reference code's default
    optimizer: str = "adam"  # "adam" (lazy on embedding rows) | "adagrad" (reference)
    lr: float = field(default=1e-3, metadata={"help": "recommender learning rate"})
    reg: float = field(default=1e-2, metadata={"help": "L2 regularisation (lambda of eq. 1)"})
    precision: str = field(default="fp32", metadata={
        "help": "VBPR/AMR feature arithmetic: fp32, or bf16 (1.6-1.8x faster training with "
                "2048-d features on a CPU with AVX512-BF16); parameters and updates stay fp32",
        "choices": "rec_precisions"})
    params: tuple[tuple[str, Any], ...] = ()  # the model's own hyperparameters, by name
    seed: int = 0

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}, not {self.optimizer!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, not {self.precision!r}")
        from . import model_params  # the registry: filled when the package is imported

        defaults = model_params(self.model, {})
        given = dict(self.params)
        values = model_params(self.model, given)  # unknown names: one clear error
        canonical = tuple(sorted((k, getattr(values, k)) for k in given
                                 if getattr(values, k) != getattr(defaults, k)))
        object.__setattr__(self, "params", canonical)

    @classmethod
    def of(cls, model: str = "vbpr", **settings) -> "RecConfig":
        """A RecConfig with each setting where its name is declared: the trainer's here, the
        model's own (VBPR's visual_factors, AMR's adv_eps ...) in `params`."""
        own = {f.name for f in fields(cls)} - {"params"}
        return cls(model=model, **{k: v for k, v in settings.items() if k in own},
                   params=tuple((k, v) for k, v in settings.items() if k not in own))

    def for_model(self, model: str) -> "RecConfig":
        """This config for `model`: the hyperparameters it declares, the others left out
        (a grid's template names those of every model it trains)."""
        from . import RECOMMENDERS

        names = {f.name for f in fields(RECOMMENDERS.get(model).Params)}
        return replace(self, model=model, params=tuple(p for p in self.params if p[0] in names))

    def hyper(self):
        """The model's own hyperparameters, its `Params` filled from `params`."""
        from . import model_params

        return model_params(self.model, dict(self.params))


OPTIMIZERS = ("adam", "adagrad")


def unique_rows(rows: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """torch.unique(rows, return_inverse=True) for row indices in [0, n), by counting:
    O(n + len(rows)). torch's sort-based unique slows down ~10x past 4,096 indices on CPU,
    which a batch of several members' rows passes."""
    uniq = torch.bincount(rows, minlength=n).nonzero().squeeze(1)
    slot = torch.empty(n, dtype=torch.long, device=rows.device)
    slot[uniq] = torch.arange(len(uniq), device=rows.device)
    return uniq, slot[rows]


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
            rows, inv = unique_rows(rows, len(p))
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
    """Mean -ln sigma(s_ui - s_uj) over the (M, B) batch (autograd; `diff` overrides f_i - f_j)."""
    return -F.logsigmoid(model(u, i, j, diff)[0]).mean()


def adversarial_delta(model: BPRMF, ctx, g: torch.Tensor, eps: float):
    """AMR's perturbations of the positive and negative items' features, (M, B, D) each: per
    member and item, delta = eps * G / ||G||, with G the gradient of the BPR loss w.r.t. that
    item's feature row (summed over the item's occurrences in the member's batch, as the
    gradient w.r.t. the feature matrix is), which increases the loss most to first order.
    `ctx`, `g` (M, B): a batch's `pair_scores` context and dL/dx; no gradient flows
    through delta."""
    a = model.feature_grads(ctx, g)  # (M, B, D) dL/df_i; dL/df_j = -a
    M, B, D = a.shape
    items, inv = unique_rows(ctx.items, model.item_table.shape[0] * model.item_table.shape[1])
    G = a.new_zeros(len(items), D).index_add_(0, inv, torch.cat([a, -a], 1).view(-1, D))
    delta = F.normalize(G, dim=1).mul_(eps)[inv].view(M, 2 * B, D)  # ||row|| = eps
    return delta[:, :B], delta[:, B:]


LANES = 64  # a multiple of every SIMD width torch vectorises float32 with (AVX-512: 16)


def rowwise(fn, x: torch.Tensor) -> torch.Tensor:
    """fn (an elementwise torch function) of (M, B) x with each row padded to a multiple of
    LANES elements: every element then takes the same vectorised path whatever M and B
    are. torch computes a tensor's tail with scalar code, whose exp rounds differently from
    its SIMD lanes in the last bit, which would make a member's numbers depend on the
    members trained beside it."""
    return fn(F.pad(x, (0, -x.shape[1] % LANES)))[:, :x.shape[1]]


def bpr_step(model: BPRMF, u, i, j, config: RecConfig, adversarial: bool = False):
    """One batch of (M, B) triplets: -> ((M,) loss per member, {parameter: (flat rows or
    None, gradient)}) of eq. 1 (+ AMR's term)."""
    B = u.shape[1]
    if not model.closed_form:  # ACF, DVBPR: autograd, member by member
        return model.autograd_step(u, i, j, config.reg)
    x, ctx = model.pair_scores(u, i, j)
    g = rowwise(torch.sigmoid, -x).div_(-B)  # dL/dx of mean -ln sigma(x)
    grads = model.pair_grads(ctx, g, config.reg / B)
    loss = -rowwise(F.logsigmoid, x).mean(1)
    if adversarial:
        d_i, d_j = adversarial_delta(model, ctx, g, model.adv_eps)
        diff = ctx.diff + (d_i - d_j).to(ctx.diff.dtype)  # (f_i + delta_i) - (f_j + delta_j)
        x_adv, ctx_adv = model.pair_scores(u, i, j, diff)
        g_adv = rowwise(torch.sigmoid, -x_adv).mul_(-model.adv_reg / B)
        for name, (_, grad) in model.pair_grads(ctx_adv, g_adv, 0.0).items():
            grads[name][1].add_(grad)
        loss = loss - model.adv_reg * rowwise(F.logsigmoid, x_adv).mean(1)
    return loss + config.reg / B * model.penalty(ctx), grads


def train_bpr(model: BPRMF, users: torch.Tensor, items: torch.Tensor, config: RecConfig,
              progress: Progress | None = None, device: str | torch.device = "cpu") -> list[dict]:
    """Fit every member of `model` on the training pairs (users[k], items[k]); member m
    follows the epoch order and negatives of its seed (`model.seeds[m]`; `config.seed` is
    not read), so members that share a seed share them. Returns a small history per member."""
    sampler = NegativeSampler(users, items, model.n_items)
    opt = RowOptimizer(model.flat_parameters(), config.optimizer, config.lr)
    n, bs, seeds = len(users), config.batch_size, model.seeds
    gens = {s: torch.Generator().manual_seed(s) for s in dict.fromkeys(seeds)}
    per_epoch = math.ceil(n / bs)
    adv_from = int(config.epochs * model.adv_start) if model.adversarial else config.epochs
    history, t0 = [], time.perf_counter()
    model.train()
    with torch.no_grad():
        for epoch in range(config.epochs):
            draws = {}  # seed -> (order, negatives): drawn once per seed, in seed order
            for s, gen in gens.items():
                order = torch.randperm(n, generator=gen)
                draws[s] = order, sampler.sample(users[order], gen)
            u_all = torch.stack([users[draws[s][0]] for s in seeds]).to(device)  # (M, n)
            i_all = torch.stack([items[draws[s][0]] for s in seeds]).to(device)
            j_all = torch.stack([draws[s][1] for s in seeds]).to(device)
            total = torch.zeros(len(seeds), device=device)
            for b in range(per_epoch):
                sl = slice(b * bs, (b + 1) * bs)
                u, i, j = u_all[:, sl], i_all[:, sl], j_all[:, sl]
                loss, grads = bpr_step(model, u, i, j, config, epoch >= adv_from)
                opt.step(grads)
                total += loss * u.shape[1]
            history.append((total / n).tolist())
            if progress:
                progress(epoch + 1, config.epochs, f"training {config.model}")
    model.eval()
    seconds = round(time.perf_counter() - t0, 3)
    return [{"loss_per_epoch": [h[m] for h in history], "train_seconds": seconds,
             "members_trained_together": len(seeds), "epochs": config.epochs,
             "adversarial_from_epoch": adv_from if model.adversarial else None}
            for m in range(len(seeds))]
