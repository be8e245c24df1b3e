"""Full-ranking evaluation (every item scored for every user, the user's training items
masked), vectorised in torch: one matmul + top-K per batch of users. A user's list holds
only non-training items, best score first, ties broken by the lower item index; when a user
has fewer than K such items the list is short (-1 marks the empty positions).

Every metric is a small object (name, k, `per_user(lists)`) that one loop asks in turn.
Accuracy metrics (test users): HR@K, nDCG@K, Recall@K, Precision@K. Category metrics (all
users):

* CHR@K, the category hit ratio of Di Noia et al. (TAaMR, 2020): the number of items of a
  category in a user's top-K list, averaged over users. As in the authors' code (and the
  paper's Table 1) it is divided by the number of users only, not by K; `share` = CHR / K.
* nCDCG@K for one category c, as the authors' evaluation code defines it: DCG = sum over
  the top-K positions k (0-based) of [cat(top_k) = c] / log2(k + 2), divided by the ideal
  DCG of min(|items of c|, K) leading positions, averaged over all users.

Per-item rank statistics (mean 0-based rank among the user's non-training items in the same
order as the lists, share of users with the item in the top-K) show how the attacked items
moved."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
import torch

from ..data.dataset import UNKNOWN, Dataset
from ..errors import AdvRecError
from ..registry import Registry

KS = (10, 20, 50, 100)


def _discount(k: int, device=None) -> torch.Tensor:
    return 1.0 / torch.log2(torch.arange(k, device=device, dtype=torch.float32) + 2)


@dataclass
class Lists:
    """One batch of B users' top-K lists and what every metric reads from them."""

    top: torch.Tensor  # (B, kmax) item indices, best first; -1 where the list is short
    valid: torch.Tensor  # (B, kmax) bool: a real (non-training) item at that position
    cats: torch.Tensor  # (B, kmax) category index; n_cat = unknown, n_cat + 1 = no item
    n_cat: int
    hits: torch.Tensor | None = None  # (T, kmax) bool, test users only: relevant item there
    n_rel: torch.Tensor | None = None  # (T,) test items per test user


@dataclass(frozen=True)
class ListMetric:
    """A metric of a top-K list, averaged over users. `users` = "test": over users with
    test items (accuracy); "all": over every user (category metrics)."""

    k: int
    name: ClassVar[str] = ""
    users: ClassVar[str] = "test"
    higher_is_better: ClassVar[bool] = True

    @property
    def label(self) -> str:
        return f"{self.name}@{self.k}"

    def per_user(self, lists: Lists) -> torch.Tensor:
        """-> (B,) per user, or (B, C) per user and category."""
        raise NotImplementedError


class RankingMetric(ListMetric):
    """Accuracy against the held-out items: per_user reads `hits` and `n_rel`."""


class HR(RankingMetric):
    name = "HR"

    def per_user(self, lists):
        return lists.hits[:, :self.k].any(1).float()


class NDCG(RankingMetric):
    name = "nDCG"

    def per_user(self, lists):
        disc = _discount(self.k, lists.hits.device)
        dcg = (lists.hits[:, :self.k].float() * disc).sum(1)
        ideal = torch.cumsum(disc, 0)[(lists.n_rel.clamp(max=self.k) - 1).clamp(min=0)]
        return dcg / ideal


class Recall(RankingMetric):
    name = "Recall"

    def per_user(self, lists):
        return lists.hits[:, :self.k].sum(1).float() / lists.n_rel.clamp(min=1)


class Precision(RankingMetric):
    name = "Precision"

    def per_user(self, lists):
        return lists.hits[:, :self.k].sum(1).float() / self.k


class CHR(ListMetric):
    """Items of each category in the top-K list (not divided by K): (B, n_cat + 1), the
    last column the items of unknown category."""

    name = "CHR"
    users = "all"

    def per_user(self, lists):
        c = lists.cats[:, :self.k]
        counts = torch.zeros(len(c), lists.n_cat + 2, dtype=torch.float32, device=c.device)
        counts.scatter_add_(1, c, torch.ones_like(c, dtype=torch.float32))
        return counts[:, :lists.n_cat + 1]  # the last bucket (no item) is not counted


@dataclass(frozen=True)
class NCDCG(ListMetric):
    """nCDCG@K of one category (the authors' definition, module docstring): (B,)."""

    category: int = 0
    n_in_category: int = 0  # items of the category in the catalog (the ideal list's length)
    name: ClassVar[str] = "nCDCG"
    users: ClassVar[str] = "all"

    def per_user(self, lists):
        disc = _discount(self.k, lists.cats.device)
        ideal = disc[:max(1, min(self.n_in_category, self.k))].sum()
        return ((lists.cats[:, :self.k] == self.category).float() * disc).sum(1) / ideal


ACCURACY = (HR, NDCG, Recall, Precision)
LIST_METRICS: Registry = Registry("list metric")  # every metric of a top-K list, by name
for _m in (*ACCURACY, CHR, NCDCG):
    LIST_METRICS.register(_m.name)(_m)


def ranked_lists(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """scores (B, N), -inf = excluded -> (top (B, k) item indices, valid (B, k) bool): the k
    best items by score, ties broken by the lower item index (so the lists, and every
    metric, are deterministic); positions past the user's last finite score are -1.
    One top-k; only rows with a finite tie across the K-th position take an exact pass."""
    vals, idx = scores.topk(min(k + 1, scores.shape[1]), dim=1)
    if vals.shape[1] > k:
        cut = (vals[:, k - 1] == vals[:, k]) & torch.isfinite(vals[:, k])
        if cut.any():  # which of the tied items make the list: the lowest indices
            rows = cut.nonzero()[:, 0]
            s = scores[rows]
            kth = vals[rows, k - 1:k]
            tied = s == kth
            take = (s > kth) | (tied & (torch.cumsum(tied, 1) <= k - (s > kth).sum(1, keepdim=True)))
            idx[rows, :k] = take.nonzero()[:, 1].view(len(rows), k)
            vals[rows, :k] = s.gather(1, idx[rows, :k])
    vals, idx = vals[:, :k], idx[:, :k]
    by_item = idx.argsort(dim=1)  # then a stable sort by score keeps ties in item order
    idx, vals = idx.gather(1, by_item), vals.gather(1, by_item)
    order = torch.sort(vals, dim=1, descending=True, stable=True)
    top = idx.gather(1, order.indices)
    valid = torch.isfinite(order.values)
    return torch.where(valid, top, -1), valid


def _ranks(scores: torch.Tensor, focus: torch.Tensor) -> torch.Tensor:
    """(B, F) 0-based position of each focus item in the user's full ranking (score
    descending, ties by lower item index, as `ranked_lists`)."""
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices
    pos = torch.empty_like(order)
    pos.scatter_(1, order, torch.arange(scores.shape[1]).expand_as(order).contiguous())
    return pos[:, focus]


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
    topk: np.ndarray | None = None  # (n_users, max K) item indices (-1: no item), if asked


def check_cutoffs(ks: tuple[int, ...], n_items: int) -> None:
    """Refuse, before any work, cut-offs K that a list of `n_items` items cannot fill."""
    too_big = [k for k in ks if k > n_items]
    if too_big or not ks or min(ks) < 1:
        fits = [k for k in ks if 1 <= k <= n_items]
        raise AdvRecError(f"cut-off K={too_big[0] if too_big else min(ks, default=0)} does not "
                          f"fit the {n_items} items; expected 1 <= K <= {n_items}"
                          + (f" (e.g. --k {' '.join(map(str, fits))})" if fits else ""))


class FocusRanks:
    """The ranks of the `items` of interest (the attacked ones) summed over user batches:
    their mean rank and the share of users with them in the top K, among the users who do
    not have them in their training set."""

    def __init__(self, items: np.ndarray | None, ks: tuple[int, ...]):
        self.items = torch.as_tensor(items if items is not None else [], dtype=torch.long)
        self.ks = ks
        self.rank_sum = torch.zeros(len(self.items), dtype=torch.float64)
        self.n = torch.zeros(len(self.items), dtype=torch.float64)
        self.top = torch.zeros(len(ks), len(self.items), dtype=torch.float64)

    def add(self, scores: torch.Tensor) -> None:
        """scores (B, n_items), -inf on each user's training items."""
        if not len(self.items):
            return
        rank = _ranks(scores, self.items)  # (B, F)
        ok = torch.isfinite(scores[:, self.items])  # not in the user's training set
        self.rank_sum += (rank * ok).sum(0).double()
        self.n += ok.sum(0).double()
        for a, k in enumerate(self.ks):
            self.top[a] += ((rank < k) & ok).sum(0).double()

    def frame(self) -> pd.DataFrame:
        """item_index, mean_rank, users, in_top@K per K (NaN where no user could get it)."""
        def share(total: torch.Tensor) -> np.ndarray:
            return torch.where(self.n > 0, total / self.n.clamp(min=1), float("nan")).numpy()

        ranks = pd.DataFrame({"item_index": self.items.numpy(), "mean_rank": share(self.rank_sum),
                              "users": self.n.numpy().astype(int)})
        for a, k in enumerate(self.ks):
            ranks[f"in_top@{k}"] = share(self.top[a])
        return ranks


@torch.no_grad()
def evaluate(user_vecs: torch.Tensor, item_vecs: torch.Tensor, data: RankingData,
             ks: tuple[int, ...] = KS, focus_items: np.ndarray | None = None,
             ncdcg_category: int | None = None, batch_users: int = 512,
             return_topk: bool = False) -> RankingReport:
    """user_vecs (n_users, d), item_vecs (n_items, d): scores are their dot products.
    Computed on the CPU (batched; the matmul dominates and fits any machine). One loop asks
    every list metric (accuracy, CHR@K, nCDCG@K) for its per-user values."""
    check_cutoffs(ks, data.n_items)
    kmax = max(ks)
    user_vecs, item_vecs = user_vecs.detach().float().cpu(), item_vecs.detach().float().cpu()
    n_cat = len(data.categories)
    metrics: list[ListMetric] = [m(k) for m in ACCURACY for k in ks] + [CHR(k) for k in ks]
    if ncdcg_category is not None:
        n_in = int((data.item_category == ncdcg_category).sum())
        metrics += [NCDCG(k, ncdcg_category, n_in) for k in ks]
    sums: dict[str, torch.Tensor] = {}
    focus = FocusRanks(focus_items, ks)
    n_test = 0
    lists = []
    cat_of = torch.cat([torch.where(data.item_category < 0, n_cat, data.item_category),
                        torch.tensor([n_cat + 1])])  # index -1 (no item) -> n_cat + 1
    item_t = item_vecs.T.contiguous()
    # 512 users a batch, into one reused buffer: at Amazon-Men size the score matmuls take
    # half the time they take with 2,048 users in fresh buffers (cache misses, page faults)
    buf = torch.empty(min(batch_users, data.n_users), data.n_items)
    for start in range(0, data.n_users, batch_users):
        users = torch.arange(start, min(start + batch_users, data.n_users))
        scores = torch.mm(user_vecs[users], item_t, out=buf[:len(users)])  # (B, n_items)
        r, c = data.rows(data.train_indptr, data.train_items, users)
        scores[r, c] = float("-inf")  # never recommend what the user already has
        top, valid = ranked_lists(scores, kmax)  # (B, kmax)
        if return_topk:
            lists.append(top.to(torch.int32))
        batch = Lists(top, valid, cat_of[top], n_cat)
        r, c = data.rows(data.test_indptr, data.test_items, users)
        relevant = torch.zeros_like(scores, dtype=torch.bool)
        relevant[r, c] = True
        pairs = torch.unique(r * data.n_items + c)  # distinct (user, item): counted sparsely,
        n_rel = torch.bincount(pairs // data.n_items, minlength=len(users))  # not over (B, N)
        has = n_rel > 0
        batch.hits = (relevant.gather(1, top.clamp(min=0)) & valid)[has]
        batch.n_rel = n_rel[has]
        n_test += int(has.sum())
        for m in metrics:
            if m.users == "test" and not has.any():
                continue
            v = m.per_user(batch).double().sum(0)
            sums[m.label] = sums[m.label] + v if m.label in sums else v
        focus.add(scores)

    def mean(m: ListMetric) -> torch.Tensor:
        total = sums.get(m.label, torch.zeros((), dtype=torch.float64))
        return total / max(n_test if m.users == "test" else data.n_users, 1)

    accuracy = {m.label: float(mean(m)) for m in metrics if isinstance(m, RankingMetric)}
    names = list(data.categories) + [UNKNOWN]
    chr_df = pd.DataFrame({m.label: mean(m).numpy() for m in metrics if isinstance(m, CHR)},
                          index=pd.Index(names, name="category"))
    for k in ks:
        chr_df[f"share@{k}"] = chr_df[f"CHR@{k}"] / k
    if not (data.item_category < 0).any():
        chr_df = chr_df.drop(index=UNKNOWN)
    ncdcg = {m.label: float(mean(m)) for m in metrics if isinstance(m, NCDCG)}
    return RankingReport(accuracy, chr_df, ncdcg, focus.frame(), data.n_users, n_test,
                         torch.cat(lists).numpy() if return_topk else None)
