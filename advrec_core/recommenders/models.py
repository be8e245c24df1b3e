"""BPR-MF, VBPR and AMR: one base class, each model adds only what differs.

* BPR-MF, Rendle et al., UAI 2009: s(u, i) = p_u . q_i
* VBPR, He & McAuley, AAAI 2016, as in the paper's eq. 2: s(u, i) = p_u . q_i + rho_u . (E f_i)
  With `biases=True`, also an item bias beta_i and a visual bias beta' . f_i as in He &
  McAuley's full VBPR (not in eq. 2; used for like-for-like benchmarks against libraries
  that include them). A user's bias cancels in s_ui - s_uj, so none is kept.
* AMR, Tang et al., TKDE 2020: VBPR trained with an adversarial term on the image features
  (APR, He et al., SIGIR 2018). The trainer applies it; the model only says it wants it
  (`adversarial = True`).

Storage: one user table [p_u | rho_u], one item table [q_i | beta_i] and E with beta' as an
extra last row, so a training step gathers, and updates, one block of rows per side.

Every model scores by a dot product of a user vector and an item vector, so full ranking is
one matmul: `user_vectors() @ item_vectors().T`.

Training uses `pair_scores` (s_ui - s_uj for a batch of triplets) and its hand-derived
backward `pair_grads`; `forward` is the same computation for autograd, and the tests check
the two gradients agree."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

PRECISIONS = ("fp32", "bf16")  # bf16: features stored and projected in bfloat16, fp32 accumulate


@dataclass
class Pairs:
    """One batch of BPR triplets (u, i, j) and what the backward pass needs."""
    users: torch.Tensor  # (B,) user rows
    items: torch.Tensor  # (2B,) item rows: positives, then negatives
    u: torch.Tensor  # (B, k [+ k']) gathered user rows
    q: torch.Tensor  # (2B, k [+ 1]) gathered item rows
    dq: torch.Tensor  # (B, k [+ 1]) q_i - q_j
    diff: torch.Tensor | None = None  # (B, D) f_i - f_j, in the feature dtype
    proj: torch.Tensor | None = None  # (B, k' [+ 1]) E (f_i - f_j), fp32


class BPRMF(nn.Module):
    title = "BPR-MF"
    uses_images = False  # a control: the same lists whatever the images
    adversarial = False  # AMR sets True: the trainer adds the adversarial feature term

    def __init__(self, n_users: int, n_items: int, factors: int = 64, init_std: float = 0.01,
                 **_: object):
        super().__init__()
        self.k = factors
        self.user_table = nn.Parameter(torch.randn(n_users, factors) * init_std)  # p_u
        self.item_table = nn.Parameter(torch.randn(n_items, factors) * init_std)  # q_i

    @property
    def p(self) -> torch.Tensor:
        return self.user_table[:, :self.k]

    @property
    def q(self) -> torch.Tensor:
        return self.item_table[:, :self.k]

    def user_vectors(self, users: torch.Tensor | None = None) -> torch.Tensor:
        """(B, d) user side of the dot product (all users if `users` is None)."""
        return self.user_table if users is None else self.user_table.index_select(0, users)

    def item_vectors(self, items: torch.Tensor | None = None,
                     features: torch.Tensor | None = None) -> torch.Tensor:
        """(N, d) item side; `features` (N, D) overrides the stored image features (AMR)."""
        return self.item_table if items is None else self.item_table.index_select(0, items)

    def _pairs(self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> Pairs:
        """The batch's user and item rows: one gather per table."""
        items = torch.cat([pos, neg])
        q = self.item_table.index_select(0, items)
        return Pairs(users, items, self.user_table.index_select(0, users), q,
                     q[:len(pos)] - q[len(pos):])

    def pair_scores(self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor,
                    diff: torch.Tensor | None = None) -> tuple[torch.Tensor, Pairs]:
        """(B,) s_ui - s_uj for a batch, and the context `pair_grads` needs. `diff` (B, D)
        overrides f_i - f_j (AMR's perturbed features)."""
        ctx = self._pairs(users, pos, neg)
        return (ctx.u * ctx.dq).sum(1), ctx

    def penalty(self, ctx: Pairs) -> torch.Tensor:
        """eq. 1's ||theta||^2: squared L2 norm of the rows the batch touched (per occurrence)."""
        return sum(torch.dot(t.reshape(-1), t.reshape(-1)) for t in (ctx.u, ctx.q))

    def pair_grads(self, ctx: Pairs, g: torch.Tensor, reg: float) -> dict[str, tuple]:
        """Backward of `pair_scores` for a loss L with dL/dx = g (B,), plus reg * `penalty`:
        {parameter name: (rows or None for all, gradient)}, duplicate rows not yet summed."""
        g = g[:, None]
        gu = (ctx.dq * g).add_(ctx.u, alpha=2 * reg)
        gi = ctx.u * g
        return {"user_table": (ctx.users, gu),
                "item_table": (ctx.items, torch.cat([gi, -gi]).add_(ctx.q, alpha=2 * reg))}

    def feature_grads(self, ctx: Pairs, g: torch.Tensor) -> torch.Tensor:
        """(B, D) dL/df_i of each pair (dL/df_j is its negative); BPR-MF ignores features."""
        raise TypeError(f"{type(self).__name__} has no image features")

    def forward(self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor,
                diff: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Autograd view of `pair_scores`: ((B,) s_ui - s_uj, squared L2 norm of the
        parameters the batch touches)."""
        x, ctx = self.pair_scores(users, pos, neg, diff)
        return x, self.penalty(ctx)


class VBPR(BPRMF):
    title = "VBPR"
    uses_images = True

    def __init__(self, n_users: int, n_items: int, factors: int = 64, visual_factors: int = 64,
                 features: torch.Tensor | None = None, init_std: float = 0.01,
                 biases: bool = False, precision: str = "fp32", **_: object):
        super().__init__(n_users, n_items, factors, init_std)
        if features is None or len(features) != n_items:
            raise ValueError(f"VBPR needs (n_items={n_items}, D) image features")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
        dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        self.register_buffer("features", features.to(dtype))  # f_i, scaled to [-1, 1]
        self.biases, self.kv = biases, visual_factors
        with torch.no_grad():  # [p | rho]; [q | beta] and [E; beta'] with zero biases
            rho = torch.randn(n_users, visual_factors) * init_std
            self.user_table = nn.Parameter(torch.cat([self.user_table, rho], 1))
            E = torch.randn(visual_factors, features.shape[1]) * init_std
            if biases:
                self.item_table = nn.Parameter(torch.cat([self.item_table, torch.zeros(n_items, 1)], 1))
                E = torch.cat([E, torch.zeros(1, features.shape[1])])
            self.E = nn.Parameter(E)

    @property
    def rho(self) -> torch.Tensor:
        return self.user_table[:, self.k:]

    @property
    def beta(self) -> torch.Tensor | None:
        return self.item_table[:, self.k] if self.biases else None

    @property
    def beta_visual(self) -> torch.Tensor | None:
        return self.E[self.kv] if self.biases else None

    def _rho1(self, u: torch.Tensor) -> torch.Tensor:
        """(B, k' [+ 1]) rho_u, with a constant 1 for beta' when there are biases."""
        rho = u[:, self.k:]
        return torch.cat([rho, rho.new_ones(len(rho), 1)], 1) if self.biases else rho

    def user_vectors(self, users=None):
        u = super().user_vectors(users)
        return torch.cat([u, u.new_ones(len(u), 1)], dim=1) if self.biases else u

    def item_vectors(self, items=None, features=None):
        if features is None:
            features = self.features if items is None else self.features.index_select(0, items)
        proj = features.float() @ self.E.T  # (N, k' [+ 1]): E f_i [, beta' f_i]
        q = super().item_vectors(items)
        if not self.biases:
            return torch.cat([q, proj], dim=1)
        return torch.cat([q[:, :self.k], proj[:, :self.kv], q[:, self.k:] + proj[:, self.kv:]], 1)

    def pair_scores(self, users, pos, neg, diff=None):
        """As BPRMF's, plus rho_u . E (f_i - f_j) [+ beta_i - beta_j + beta' (f_i - f_j)]:
        one projection of B feature differences, in the feature dtype."""
        ctx = self._pairs(users, pos, neg)
        if diff is None:  # index_select: several times faster than features[idx] on CPU
            f = self.features.index_select(0, ctx.items)
            diff = torch.sub(f[:len(pos)], f[len(pos):])
        ctx.diff, ctx.proj = diff, (diff @ self.E.to(diff.dtype).T).float()  # (B, k' [+ 1])
        u, dq, proj = ctx.u, ctx.dq, ctx.proj
        x = (u[:, :self.k] * dq[:, :self.k]).sum(1) + (u[:, self.k:] * proj[:, :self.kv]).sum(1)
        if self.biases:
            x = x + dq[:, self.k] + proj[:, self.kv]
        return x, ctx

    def pair_grads(self, ctx, g, reg):
        g1 = g[:, None]
        gu = torch.cat([ctx.dq[:, :self.k], ctx.proj[:, :self.kv]], 1).mul_(g1)
        gu.add_(ctx.u, alpha=2 * reg)
        gi = ctx.u[:, :self.k] * g1
        if self.biases:
            gi = torch.cat([gi, g1], 1)
        w = self._rho1(ctx.u).mul(g1).to(ctx.diff.dtype)  # (B, k' [+ 1])
        gE = (w.T @ ctx.diff).float().add_(self.E, alpha=2 * reg)  # (k' [+ 1], D)
        return {"user_table": (ctx.users, gu),
                "item_table": (ctx.items, torch.cat([gi, -gi]).add_(ctx.q, alpha=2 * reg)),
                "E": (None, gE)}

    def feature_grads(self, ctx, g):
        w = self._rho1(ctx.u).mul(g[:, None]).to(ctx.diff.dtype)
        return (w @ self.E.to(w.dtype)).float()  # (B, D): g (E^T rho_u [+ beta'])

    def penalty(self, ctx):
        return super().penalty(ctx) + torch.dot(self.E.reshape(-1), self.E.reshape(-1))


class AMR(VBPR):
    title = "AMR"
    adversarial = True
