"""Full-ranking evaluation (every item scored for every user, the user's training items
masked), vectorised in torch: one matmul + top-K per batch of users.

Accuracy metrics (test users): HR@K, nDCG@K, Recall@K, Precision@K — small metric objects
with a name, k and `per_user(hits, n_relevant)`. Category metrics (all users):

* CHR@K, the category hit ratio of Di Noia et al. (TAaMR, 2020): the number of items of a
  category in a user's top-K list, averaged over users. As in the authors' code (and the
  paper's Table 1) it is divided by the number of users only, not by K; `share` = CHR / K.
* nCDCG@K for one category c, as the authors' evaluation code defines it: DCG = sum over
  the top-K positions k (0-based) of [cat(top_k) = c] / log2(k + 2), divided by the ideal
  DCG of min(|items of c|, K) leading positions, averaged over all users.

Per-item rank statistics (mean 0-based rank among the user's non-training items, share of
users with the item in the top-K) show how the attacked items moved."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
import torch

from ..data.dataset import Dataset
from ..errors import AdvRecError

KS = (10, 20, 50, 100)


def _discount(k: int, device=None) -> torch.Tensor:
    return 1.0 / torch.log2(torch.arange(k, device=device, dtype=torch.float32) + 2)


@dataclass(frozen=True)
class RankingMetric:
    k: int
    name: ClassVar[str] = ""
    higher_is_better: ClassVar[bool] = True

    @property
    def label(self) -> str:
        return f"{self.name}@{self.k}"

    def per_user(self, hits: torch.Tensor, n_rel: torch.Tensor) -> torch.Tensor:
        """hits (B, >=k) bool: is the item at each rank relevant; n_rel (B,) -> (B,)."""
        raise NotImplementedError


class HR(RankingMetric):
    name = "HR"

    def per_user(self, hits, n_rel):
        return hits[:, :self.k].any(1).float()


class NDCG(RankingMetric):
    name = "nDCG"

    def per_user(self, hits, n_rel):
        disc = _discount(self.k, hits.device)
        dcg = (hits[:, :self.k].float() * disc).sum(1)
        ideal = torch.cumsum(disc, 0)[(n_rel.clamp(max=self.k) - 1).clamp(min=0)]
        return dcg / ideal


class Recall(RankingMetric):
    name = "Recall"

    def per_user(self, hits, n_rel):
        return hits[:, :self.k].sum(1).float() / n_rel.clamp(min=1)


class Precision(RankingMetric):
    name = "Precision"

    def per_user(self, hits, n_rel):
        return hits[:, :self.k].sum(1).float() / self.k


ACCURACY = (HR, NDCG, Recall, Precision)


@dataclass
class RankingData:
    """What evaluation needs from a dataset, as tensors."""

    n_users: int
    n_items: int
    train_indptr: torch.Tensor  # (n_users + 1,) CSR over users of training items
    train_items: torch.Tensor
    test_indptr: torch.Tensor
    test_items: torch.Tensor
    item_category: torch.Tensor  # (n_items,) int64, -1 unknown
    categories: tuple[str, ...]

    @staticmethod
    def _csr(users: np.ndarray, items: np.ndarray, n_users: int):
        order = np.lexsort((items, users))
        indptr = np.r_[0, np.cumsum(np.bincount(users, minlength=n_users))]
        return torch.from_numpy(indptr), torch.from_numpy(items[order].astype(np.int64))

    @classmethod
    def from_frames(cls, train: pd.DataFrame, test: pd.DataFrame, n_users: int, n_items: int,
                    item_category: np.ndarray, categories: tuple[str, ...]) -> "RankingData":
        tr = cls._csr(train["user"].to_numpy(), train["item"].to_numpy(), n_users)
        te = cls._csr(test["user"].to_numpy(), test["item"].to_numpy(), n_users)
        return cls(n_users, n_items, *tr, *te, torch.as_tensor(item_category, dtype=torch.long),
                   tuple(categories))

    @classmethod
    def from_dataset(cls, ds: Dataset) -> "RankingData":
        return cls.from_frames(ds.train, ds.test, ds.n_users, ds.n_items, ds.item_category,
                               ds.categories)

    def rows(self, indptr: torch.Tensor, idx: torch.Tensor, users: torch.Tensor):
        """(row in batch, item) pairs of the given users from a CSR."""
        starts, ends = indptr[users], indptr[users + 1]
        counts = ends - starts
        row = torch.repeat_interleave(torch.arange(len(users)), counts)
        offs = torch.arange(int(counts.sum())) - torch.repeat_interleave(
            torch.cumsum(counts, 0) - counts, counts)
        return row, idx[torch.repeat_interleave(starts, counts) + offs]


@dataclass
class RankingReport:
    accuracy: dict[str, float]  # "HR@10" -> value, over test users
    chr: pd.DataFrame  # index category, columns CHR@K and share@K
    ncdcg: dict[str, float]  # "nCDCG@K" for `ncdcg_category`
    item_ranks: pd.DataFrame  # per focus item: mean_rank, in_top@K shares, users
    n_users: int
    n_test_users: int
    topk: np.ndarray | None = None  # (n_users, max K) item indices, if asked for


@torch.no_grad()
def evaluate(user_vecs: torch.Tensor, item_vecs: torch.Tensor, data: RankingData,
             ks: tuple[int, ...] = KS, focus_items: np.ndarray | None = None,
             ncdcg_category: int | None = None, batch_users: int = 2048,
             return_topk: bool = False) -> RankingReport:
    """user_vecs (n_users, d), item_vecs (n_items, d): scores are their dot products.
    Computed on the CPU (batched; the matmul dominates and fits any machine)."""
    kmax = max(ks)
    if kmax > data.n_items:
        raise AdvRecError(f"cut-off K={kmax} exceeds the {data.n_items} items; use smaller K")
    user_vecs, item_vecs = user_vecs.detach().float().cpu(), item_vecs.detach().float().cpu()
    metrics = [m(k) for m in ACCURACY for k in ks]
    acc_sum = torch.zeros(len(metrics), dtype=torch.float64)
    n_cat = len(data.categories)
    chr_counts = torch.zeros(len(ks), n_cat + 1, dtype=torch.float64)  # last: unknown
    ncdcg_sum = torch.zeros(len(ks), dtype=torch.float64)
    focus = torch.as_tensor(focus_items if focus_items is not None else [], dtype=torch.long)
    rank_sum = torch.zeros(len(focus), dtype=torch.float64)
    rank_n = torch.zeros(len(focus), dtype=torch.float64)
    top_n = torch.zeros(len(ks), len(focus), dtype=torch.float64)
    n_test = 0
    lists = []
    cat_of = torch.where(data.item_category < 0, n_cat, data.item_category)
    n_in_cat = int((data.item_category == ncdcg_category).sum()) if ncdcg_category is not None else 0
    item_t = item_vecs.T.contiguous()
    for start in range(0, data.n_users, batch_users):
        users = torch.arange(start, min(start + batch_users, data.n_users))
        scores = user_vecs[users] @ item_t  # (B, n_items)
        r, c = data.rows(data.train_indptr, data.train_items, users)
        scores[r, c] = float("-inf")  # never recommend what the user already has
        top = scores.topk(kmax, dim=1).indices  # (B, kmax)
        if return_topk:
            lists.append(top.to(torch.int32))
        cats = cat_of[top]  # (B, kmax)
        for a, k in enumerate(ks):
            chr_counts[a] += torch.bincount(cats[:, :k].flatten(), minlength=n_cat + 1).double()
            if ncdcg_category is not None:
                disc = _discount(k)
                ideal = disc[:max(1, min(n_in_cat, k))].sum()
                ncdcg_sum[a] += ((cats[:, :k] == ncdcg_category).float() * disc).sum() / ideal
        r, c = data.rows(data.test_indptr, data.test_items, users)
        if len(r):
            relevant = torch.zeros_like(scores, dtype=torch.bool)
            relevant[r, c] = True
            n_rel = relevant.sum(1)
            has = n_rel > 0
            hits = relevant.gather(1, top)[has]
            n_test += int(has.sum())
            for m_i, m in enumerate(metrics):
                acc_sum[m_i] += m.per_user(hits, n_rel[has]).double().sum()
        if len(focus):
            s = scores[:, focus]  # (B, F)
            ranked = scores.sort(dim=1).values  # ascending; masked items (-inf) first
            rank = data.n_items - torch.searchsorted(ranked, s.contiguous(), right=True)
            valid = torch.isfinite(s)  # the item is not in the user's training set
            rank_sum += (rank * valid).sum(0).double()
            rank_n += valid.sum(0).double()
            for a, k in enumerate(ks):
                top_n[a] += ((rank < k) & valid).sum(0).double()
    accuracy = {m.label: float(acc_sum[i] / max(n_test, 1)) for i, m in enumerate(metrics)}
    names = list(data.categories) + ["(unknown)"]
    chr_df = pd.DataFrame({f"CHR@{k}": (chr_counts[a] / data.n_users).numpy()
                           for a, k in enumerate(ks)}, index=pd.Index(names, name="category"))
    for k in ks:
        chr_df[f"share@{k}"] = chr_df[f"CHR@{k}"] / k
    if not (data.item_category < 0).any():
        chr_df = chr_df.drop(index="(unknown)")
    ncdcg = ({f"nCDCG@{k}": float(ncdcg_sum[a] / data.n_users) for a, k in enumerate(ks)}
             if ncdcg_category is not None else {})
    ranks = pd.DataFrame({"item_index": focus.numpy(),
                          "mean_rank": torch.where(rank_n > 0, rank_sum / rank_n.clamp(min=1),
                                                   float("nan")).numpy(),
                          "users": rank_n.numpy().astype(int)})
    for a, k in enumerate(ks):
        ranks[f"in_top@{k}"] = torch.where(rank_n > 0, top_n[a] / rank_n.clamp(min=1),
                                           float("nan")).numpy()
    return RankingReport(accuracy, chr_df, ncdcg, ranks, data.n_users, n_test,
                         torch.cat(lists).numpy() if return_topk else None)
