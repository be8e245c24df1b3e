"""ACF: Chen, Zhang, He, Nie, Liu & Chua, "Attentive Collaborative Filtering: Multimedia
Recommendation with Item- and Component-Level Attention", SIGIR 2017.

The names are the paper's (eqs. 5-12), with i a user, l an item of the user's history R(i)
and m a region (component) of item l's last convolutional feature map x_l (h * w regions of
D features: the demo CNN's 6 x 6 x 256, ResNet50's 7 x 7 x 2048):

* component level: b(i, l, m) = w2 . relu(W2u u_i + W2x x_lm + b2); beta(i, l, .) =
  softmax over m; x_bar_l = sum_m beta(i, l, m) x_lm
* item level: a(i, l) = w1 . relu(W1u u_i + W1v v_l + W1p p_l + W1x x_bar_l + b1);
  alpha(i, .) = softmax over R(i)
* score: R_ij = (u_i + sum_l alpha(i, l) p_l) . v_j

The constants c1, c2 of eqs. 6 and 9 cancel in the softmax and are left out. As in Elliot's
implementation, R(i) is the user's whole training history (the positive item included) for
the positive and the negative item alike. An item's own image enters only through the users
who have it in their history: poisoning a category's images changes how their users are
represented, not the items' own vectors. Since W1x is linear, W1x x_bar_l =
sum_m beta W1x x_lm: x_bar is never formed, only the (regions, a) projections of each
history item."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
from torch import nn

from .autograd import AutogradModel, RowLeaves, check_fp32, member_init
from .models import member_randn, member_sets


@dataclass(frozen=True)
class ACFParams:
    """ACF's own hyperparameters."""
    attention: int = field(default=64, metadata={
        "help": "ACF: hidden units of each attention layer (Elliot's 64)"})


class Attention(nn.Module):
    """One member's two attention networks (W2*, w2 and W1*, w1 of eqs. 6 and 9)."""

    def __init__(self, k: int, D: int, a: int):
        super().__init__()
        self.W2u, self.W2x = nn.Linear(k, a), nn.Linear(D, a, bias=False)  # W2u's bias: b2
        self.w2 = nn.Linear(a, 1, bias=False)
        self.W1u, self.W1x = nn.Linear(k, a), nn.Linear(D, a, bias=False)  # W1u's bias: b1
        self.W1v, self.W1p = nn.Linear(k, a, bias=False), nn.Linear(k, a, bias=False)
        self.w1 = nn.Linear(a, 1, bias=False)


class ACF(AutogradModel):
    title = "ACF"
    reads = "map"
    uses_history = True
    Params = ACFParams

    def __init__(self, n_users: int, n_items: int, factors: int = 64, attention: int = 64,
                 features: torch.Tensor | Sequence[torch.Tensor] | None = None,
                 history: tuple[torch.Tensor, torch.Tensor] | None = None,
                 init_std: float = 0.01, precision: str = "fp32", seeds: Sequence[int] = (0,),
                 feature_of: Sequence[int] | None = None):
        """features: (n_items, regions, D) feature maps (one set, or F with `feature_of`);
        history: the training pairs (users, items), each user's R(i)."""
        super().__init__(n_users, n_items, factors, init_std, seeds)  # u_i; v_j
        check_fp32("ACF", precision)
        sets, self.feature_of = member_sets(features, feature_of, self.members,
                                            f"(n_items={n_items}, regions, D) feature maps")
        if any(f.ndim != 3 or len(f) != n_items for f in sets):
            raise ValueError(f"ACF needs (n_items={n_items}, regions, D) feature maps, not "
                             f"{', '.join(str(tuple(f.shape)) for f in sets)}")
        if history is None:
            raise ValueError("ACF needs the training pairs (each user's history)")
        self.register_buffer("maps", torch.stack(sets))  # (F, N, R, D) x_lm, float16 from the
        # pipeline (ResNet50's 49 x 2048 per item: 200 KB, not 400), used in float32
        users, items = (torch.as_tensor(t, dtype=torch.long) for t in history)
        order = torch.argsort(users * n_items + items)
        counts = torch.bincount(users, minlength=n_users)
        self.register_buffer("indptr", torch.cat([counts.new_zeros(1), counts.cumsum(0)]))
        self.register_buffer("hist", items[order])  # R(i) = hist[indptr[i]:indptr[i + 1]]
        gens = self._generators
        with torch.no_grad():  # item table [v_j | p_l]
            p = member_randn(gens, n_items, factors) * init_std
            self.item_table = nn.Parameter(torch.cat([self.item_table, p], -1))
        D = self.maps.shape[-1]
        self.nets = nn.ModuleList(member_init(Attention(factors, D, attention), g) for g in gens)

    def histories(self, users: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The (user, history item) pairs of `users` (U,), flat: (P,) the position of each
        pair's user in `users` and (P,) its item, users in order."""
        lo, hi = self.indptr[users], self.indptr[users + 1]
        counts = hi - lo
        owner = torch.repeat_interleave(torch.arange(len(users), device=users.device), counts)
        start = torch.repeat_interleave(lo - torch.cumsum(counts, 0) + counts, counts)
        return owner, self.hist[start + torch.arange(len(owner), device=users.device)]

    def attention(self, m: int, u: torch.Tensor, owner: torch.Tensor, items: torch.Tensor,
                  vp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """alpha (P,) over each user's history and beta (P, R) over each history item's
        regions, for user vectors u (U, k), the pairs' users (`owner`, (P,) into u) and
        items (P,), and the items' [v_l | p_l] rows vp (P, 2k). alpha sums to 1 over each
        user's pairs."""
        net, k = self.nets[m], self.k
        x = self.maps[self.feature_of[m]]  # (N, R, D)
        uniq, inv = torch.unique(items, return_inverse=True)
        xs = x.index_select(0, uniq).float()  # (n, R, D) the history items' maps, once each
        # (P, R, a); index_select: its backward (index_add_) sums in a fixed order
        w2x, w1x = (f(xs).index_select(0, inv) for f in (net.W2x, net.W1x))
        b = net.w2(torch.relu(net.W2u(u).index_select(0, owner)[:, None] + w2x))[..., 0]
        beta = b.softmax(-1)  # (P, R)
        hidden = (net.W1u(u).index_select(0, owner) + net.W1v(vp[:, :k]) + net.W1p(vp[:, k:])
                  + (beta[..., None] * w1x).sum(1))  # W1x x_bar_l = sum_m beta W1x x_lm
        a = net.w1(torch.relu(hidden))[:, 0]  # (P,)
        top = torch.full((len(u),), float("-inf"), device=a.device).scatter_reduce(
            0, owner, a.detach(), "amax")  # softmax over each user's pairs: minus its max
        e = (a - top.index_select(0, owner)).exp()
        total = e.new_zeros(len(u)).index_add(0, owner, e)
        return e / total.index_select(0, owner), beta

    def _represent(self, m: int, u: torch.Tensor, owner, items, vp) -> torch.Tensor:
        """(U, k) u_i + sum_l alpha(i, l) p_l."""
        alpha, _ = self.attention(m, u, owner, items, vp)
        return u.index_add(0, owner, alpha[:, None] * vp[:, self.k:])

    def member_scores(self, m: int, rows: RowLeaves, users, pos, neg):
        uniq, inv = torch.unique(users, return_inverse=True)
        owner, items = self.histories(uniq)
        u = rows("user_table", uniq)  # (U, k) u_i, once per user of the batch
        vp = rows("item_table", items)  # (P, 2k) [v_l | p_l] of the history items
        rep = self._represent(m, u, owner, items, vp).index_select(0, inv)  # (B, k)
        v = rows("item_table", torch.cat([pos, neg]))[:, :self.k]
        B = len(users)
        return (rep * (v[:B] - v[B:])).sum(-1)

    @torch.no_grad()
    def user_vectors(self, users=None, member=0, chunk: int = 1024):
        """(U, k) u_i + sum_l alpha(i, l) p_l, every user's history through the attention."""
        users = torch.arange(self.n_users, device=self.indptr.device) if users is None else users
        out = []
        for lo in range(0, len(users), chunk):
            us = users[lo:lo + chunk]
            owner, items = self.histories(us)
            u = self.user_table[member].index_select(0, us)
            vp = self.item_table[member].index_select(0, items)
            out.append(self._represent(member, u, owner, items, vp))
        return torch.cat(out) if out else self.user_table.new_zeros(0, self.k)

    def item_vectors(self, items=None, features=None, member=0):
        """(N, k) v_j."""
        return super().item_vectors(items, member=member)[:, :self.k]

    @torch.no_grad()
    def region_attention(self, users: torch.Tensor, member: int = 0):
        """(alpha (P,), beta (P, R), owner (P,), items (P,)) of `users`' history pairs: what
        the model attends to (tests; a page could show it)."""
        owner, items = self.histories(users)
        u = self.user_table[member].index_select(0, users)
        vp = self.item_table[member].index_select(0, items)
        alpha, beta = self.attention(member, u, owner, items, vp)
        return alpha, beta, owner, items


__all__ = ["ACF", "ACFParams"]
