"""Full-ranking evaluation against a brute-force reference written one user at a time, on
random catalogs with ties, users without test items, short lists and K = number of items."""
import math

import numpy as np
import pandas as pd
import pytest
import torch

from advrec_core.data import UNKNOWN
from advrec_core.recommenders import RankingData, evaluate


def vectors(scores: np.ndarray):
    """user vectors = identity rows, item vectors = scores^T: dot products give `scores`."""
    s = torch.tensor(scores, dtype=torch.float32)
    return torch.eye(len(s)), s.T.contiguous()


def reference(scores, train, test, cats, n_cat, ks, focus, ncdcg_cat):
    """The metrics by their definitions, one user at a time: the list is the user's
    non-training items by score descending, ties by the lower item index."""
    n_users, n_items = scores.shape
    acc = {f"{m}@{k}": [] for m in ("HR", "nDCG", "Recall", "Precision") for k in ks}
    chr_ = {k: np.zeros(n_cat + 1) for k in ks}
    ncdcg = {k: 0.0 for k in ks}
    n_in = sum(c == ncdcg_cat for c in cats)
    ranks = {i: [] for i in focus}
    lists = []
    for u in range(n_users):
        ranking = sorted((i for i in range(n_items) if i not in train[u]),
                         key=lambda i: (-scores[u, i], i))
        lists.append(ranking)
        for i in focus:
            if i in ranking:
                ranks[i].append(ranking.index(i))
        for k in ks:
            top = ranking[:k]
            for i in top:
                chr_[k][cats[i] if cats[i] >= 0 else n_cat] += 1
            ideal = sum(1 / math.log2(p + 2) for p in range(max(1, min(n_in, k))))
            ncdcg[k] += sum(1 / math.log2(p + 2) for p, i in enumerate(top)
                            if cats[i] == ncdcg_cat) / ideal
            rel = test[u]
            if not rel:
                continue
            hits = [i in rel for i in top]
            acc[f"HR@{k}"].append(float(any(hits)))
            idcg = sum(1 / math.log2(p + 2) for p in range(min(len(rel), k)))
            acc[f"nDCG@{k}"].append(sum(1 / math.log2(p + 2) for p, h in enumerate(hits) if h) / idcg)
            acc[f"Recall@{k}"].append(sum(hits) / len(rel))
            acc[f"Precision@{k}"].append(sum(hits) / k)
    return ({m: float(np.mean(v)) for m, v in acc.items()},
            {k: v / n_users for k, v in chr_.items()}, {k: v / n_users for k, v in ncdcg.items()},
            ranks, lists)


@pytest.mark.parametrize("seed", range(12))
def test_every_metric_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    n_users, n_items, n_cat = int(rng.integers(3, 12)), int(rng.integers(4, 15)), 3
    scores = rng.integers(0, 4, (n_users, n_items)).astype(np.float32)  # many ties
    cats = rng.integers(-1, n_cat, n_items)  # -1: unknown category
    train = [set(rng.choice(n_items, int(rng.integers(0, n_items - 1)), replace=False).tolist())
             for _ in range(n_users)]
    test = [set(i for i in rng.choice(n_items, int(rng.integers(0, 3)), replace=False).tolist()
                if i not in train[u]) for u in range(n_users)]  # some users have none
    rows = lambda sets: pd.DataFrame([(u, i) for u, s in enumerate(sets) for i in sorted(s)],
                                     columns=["user", "item"]).astype(np.int64)
    data = RankingData.from_frames(rows(train), rows(test), n_users, n_items, cats,
                                   tuple("abc"))
    ks = tuple(sorted({1, min(3, n_items), n_items}))  # K = the number of items included
    focus = np.array(sorted(rng.choice(n_items, 3, replace=False).tolist()))
    rep = evaluate(*vectors(scores), data, ks=ks, focus_items=focus, ncdcg_category=1,
                   batch_users=4, return_topk=True)  # several batches
    acc, chr_, ncdcg, ranks, lists = reference(scores, train, test, cats, n_cat, ks,
                                               focus.tolist(), 1)
    if any(test):
        assert rep.accuracy == pytest.approx(acc)
    assert rep.n_test_users == sum(bool(t) for t in test)
    for k in ks:
        got = rep.chr[f"CHR@{k}"].reindex(["a", "b", "c", UNKNOWN], fill_value=0.0)
        assert got.to_numpy() == pytest.approx(chr_[k])
        assert rep.ncdcg[f"nCDCG@{k}"] == pytest.approx(ncdcg[k])
    for u, ranking in enumerate(lists):
        want = ranking[:max(ks)] + [-1] * (max(ks) - len(ranking[:max(ks)]))
        assert rep.topk[u].tolist() == want
    r = rep.item_ranks.set_index("item_index")
    for i, pos in ranks.items():
        assert r.loc[i, "users"] == len(pos)
        if pos:
            assert r.loc[i, "mean_rank"] == pytest.approx(np.mean(pos))
            for k in ks:
                assert r.loc[i, f"in_top@{k}"] == pytest.approx(np.mean([p < k for p in pos]))
        else:
            assert np.isnan(r.loc[i, "mean_rank"])


def test_short_list_counts_no_training_item():
    """1 user, 3 items, train {0, 1} (A), test {2} (B), scores 3, 2, 1, K = 2: the list is
    [2, -1]; the training items must not fill the empty position."""
    data = RankingData.from_frames(pd.DataFrame({"user": [0, 0], "item": [0, 1]}),
                                   pd.DataFrame({"user": [0], "item": [2]}), 1, 3,
                                   np.array([0, 0, 1]), ("A", "B"))
    rep = evaluate(torch.ones(1, 1), torch.tensor([[3.0], [2.0], [1.0]]), data, ks=(2,),
                   ncdcg_category=0, return_topk=True)
    assert rep.chr.loc["A", "CHR@2"] == 0 and rep.chr.loc["B", "CHR@2"] == 1
    assert rep.ncdcg["nCDCG@2"] == 0
    assert rep.topk.tolist() == [[2, -1]]
    assert rep.accuracy["HR@2"] == 1 and rep.accuracy["Precision@2"] == 0.5
