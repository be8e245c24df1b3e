"""BPR-MF, VBPR and AMR: one base class, each model adds only what differs.

* BPR-MF, Rendle et al., UAI 2009: s(u, i) = p_u . q_i
* VBPR, He & McAuley, AAAI 2016, as in the paper's eq. 2: s(u, i) = p_u . q_i + rho_u . (E f_i)
  With `biases=True`, also an item bias beta_i and a visual bias beta' . f_i as in He &
  McAuley's full VBPR (not in eq. 2; used for like-for-like benchmarks against libraries
  that include them). A user's bias cancels in s_ui - s_uj, so none is kept.
* AMR, Tang et al., TKDE 2020: VBPR trained with an adversarial term on the image features
  (APR, He et al., SIGIR 2018): L = L_BPR(f) + lambda * L_BPR(f + delta), where delta = eps *
  the l2-normalised gradient of L_BPR w.r.t. each item's features (no gradient through
  delta). The trainer applies it; the model only says it wants it (`adversarial = True`).

Every model scores by a dot product of a user vector and an item vector, so full ranking is
one matmul: `user_vectors() @ item_vectors().T`."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def rows(table: torch.Tensor, idx: torch.Tensor | None) -> torch.Tensor:
    """table[idx] with a sparse gradient (only the touched rows), or the whole table."""
    return table if idx is None else F.embedding(idx, table, sparse=True)


class BPRMF(nn.Module):
    adversarial = False  # AMR sets True: the trainer adds the adversarial feature term

    def __init__(self, n_users: int, n_items: int, factors: int = 64, init_std: float = 0.01,
                 **_: object):
        super().__init__()
        self.p = nn.Parameter(torch.randn(n_users, factors) * init_std)  # user factors p_u
        self.q = nn.Parameter(torch.randn(n_items, factors) * init_std)  # item factors q_i

    def user_vectors(self, users: torch.Tensor | None = None) -> torch.Tensor:
        """(B, d) user side of the dot product (all users if `users` is None)."""
        return rows(self.p, users)

    def item_vectors(self, items: torch.Tensor | None = None,
                     features: torch.Tensor | None = None) -> torch.Tensor:
        """(N, d) item side; `features` (N, D) overrides the stored image features (AMR)."""
        return rows(self.q, items)

    def score(self, users: torch.Tensor, items: torch.Tensor,
              features: torch.Tensor | None = None) -> torch.Tensor:
        """(B,) s(u, i) for paired users and items."""
        return (self.user_vectors(users) * self.item_vectors(items, features)).sum(1)

    def forward(self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor,
                f_pos: torch.Tensor | None = None, f_neg: torch.Tensor | None = None):
        """A BPR batch -> ((B,) s_ui - s_uj, squared L2 norm of the parameters it touches,
        the ||theta||^2 of eq. 1). One lookup per table: this is the training hot path."""
        p = rows(self.p, users)  # (B, k)
        qi, qj = rows(self.q, torch.cat([pos, neg])).split(len(pos))  # (B, k) each
        return (p * (qi - qj)).sum(1), p.pow(2).sum() + qi.pow(2).sum() + qj.pow(2).sum()


class VBPR(BPRMF):
    def __init__(self, n_users: int, n_items: int, factors: int = 64, visual_factors: int = 64,
                 features: torch.Tensor | None = None, init_std: float = 0.01,
                 biases: bool = False, **_: object):
        super().__init__(n_users, n_items, factors, init_std)
        if features is None or len(features) != n_items:
            raise ValueError(f"VBPR needs (n_items={n_items}, D) image features")
        self.register_buffer("features", features.float())  # f_i, scaled to [-1, 1]
        self.rho = nn.Parameter(torch.randn(n_users, visual_factors) * init_std)  # rho_u
        self.E = nn.Parameter(torch.randn(visual_factors, features.shape[1]) * init_std)
        self.biases = biases
        if biases:  # beta_i and beta' (He & McAuley's eq. 2 has them; the paper's does not)
            self.beta = nn.Parameter(torch.zeros(n_items, 1))
            self.beta_visual = nn.Parameter(torch.zeros(features.shape[1]))

    def user_vectors(self, users=None):
        u = torch.cat([super().user_vectors(users), rows(self.rho, users)], dim=1)
        return torch.cat([u, u.new_ones(len(u), 1)], dim=1) if self.biases else u

    def item_vectors(self, items=None, features=None):
        if features is None:
            features = self.features if items is None else self.features.index_select(0, items)
        v = torch.cat([super().item_vectors(items), features @ self.E.T], dim=1)  # E f_i
        if self.biases:  # a constant-1 user column times the item's bias
            v = torch.cat([v, rows(self.beta, items) + (features @ self.beta_visual)[:, None]], 1)
        return v

    def forward(self, users, pos, neg, f_pos=None, f_neg=None):
        """As BPRMF.forward; the visual part of s_ui - s_uj is rho_u . E (f_i - f_j), one
        projection of B feature differences instead of 2B features."""
        both = torch.cat([pos, neg])
        if f_pos is None:  # index_select: several times faster than features[idx] on CPU
            f_pos, f_neg = self.features.index_select(0, both).split(len(pos))
        p, rho = rows(self.p, users), rows(self.rho, users)  # (B, k), (B, k')
        qi, qj = rows(self.q, both).split(len(pos))
        diff = f_pos - f_neg  # (B, D)
        x = (p * (qi - qj)).sum(1) + (rho * (diff @ self.E.T)).sum(1)
        reg = (p.pow(2).sum() + rho.pow(2).sum() + qi.pow(2).sum() + qj.pow(2).sum()
               + self.E.pow(2).sum())
        if self.biases:
            bi, bj = rows(self.beta, both).split(len(pos))
            x = x + (bi - bj).squeeze(1) + diff @ self.beta_visual
            reg = reg + bi.pow(2).sum() + bj.pow(2).sum() + self.beta_visual.pow(2).sum()
        return x, reg


class AMR(VBPR):
    adversarial = True
