"""Recommenders: metrics against hand-computed cases, the sampler, AMR's adversarial delta,
and one trainer for every model (DeepStyle's, ACF's and DVBPR's equations and effects:
test_visual_models.py)."""
import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from advrec_core.data import UNKNOWN
from advrec_core.recommenders import (
    AMR,
    RECOMMENDERS,
    VBPR,
    RankingData,
    RecConfig,
    adversarial_delta,
    bpr_loss,
    bpr_step,
    evaluate,
    fit_recommender,
    scale_features,
)
from advrec_core.recommenders.sampling import NegativeSampler


def tiny_data():
    """3 users, 5 items; categories: items 0,1 -> A, 2,3 -> B, 4 -> unknown."""
    train = pd.DataFrame({"user": [0, 1, 1, 2], "item": [0, 1, 2, 4]})
    test = pd.DataFrame({"user": [0, 1], "item": [3, 0]})
    return RankingData.from_frames(train, test, 3, 5, np.array([0, 0, 1, 1, -1]), ("A", "B"))


def scores_to_vectors(scores):
    """user vectors = identity rows, item vectors = scores^T: dot products give `scores`."""
    s = torch.tensor(scores, dtype=torch.float32)
    return torch.eye(len(s)), s.T.contiguous()


def inputs_for(name: str, base: np.ndarray, rng: np.random.Generator):
    """What recommender `name` reads, made from (N, D) `base` features: the features, (N, 2,
    2, D) feature maps (the features in every region, plus noise), or (N, 3, 32, 32) uint8
    images (each item one colour from its first three features); None for BPR-MF."""
    reads = RECOMMENDERS.get(name).reads
    if reads == "map":
        return base[:, None, None] + 0.1 * rng.normal(size=(len(base), 2, 2, base.shape[1]))
    if reads == "images":
        rgb = np.clip(127.5 + 100 * base[:, :3] / np.abs(base[:, :3]).max(), 0, 255)
        noise = rng.integers(0, 20, (len(base), 3, 32, 32))
        return np.clip(rgb[:, :, None, None] + noise, 0, 255).astype(np.uint8)
    return base if reads == "features" else None


def own_settings(name: str, **visual) -> dict:
    """The toy problems' settings of `name`'s own hyperparameters (VBPR's, AMR's visual
    factors and biases)."""
    return visual if name in ("vbpr", "amr") else {}


SCORES = [[9, 8, 7, 6, 5],  # user 0: train {0}; ranking 1,2,3,4 -> test item 3 at rank 3
          [1, 5, 9, 3, 4],  # user 1: train {1,2}; ranking 4,3,0 -> test item 0 at rank 3
          [5, 4, 3, 2, 1]]  # user 2: train {4}; no test item; ranking 0,1,2,3


def test_accuracy_metrics_by_hand():
    rep = evaluate(*scores_to_vectors(SCORES), tiny_data(), ks=(1, 2, 3))
    assert rep.n_test_users == 2 and rep.n_users == 3
    a = rep.accuracy
    assert a["HR@1"] == a["HR@2"] == 0 and a["HR@3"] == 1.0
    assert a["nDCG@3"] == pytest.approx(1 / math.log2(4))  # both test items at position 3
    assert a["Recall@3"] == 1.0 and a["Precision@3"] == pytest.approx(1 / 3)


def test_chr_ncdcg_and_ranks_by_hand():
    rep = evaluate(*scores_to_vectors(SCORES), tiny_data(), ks=(1, 2, 3),
                   focus_items=np.array([3, 0]), ncdcg_category=1)
    # top-3 lists: u0 [1,2,3] -> A,B,B; u1 [4,3,0] -> ?,B,A; u2 [0,1,2] -> A,A,B
    chr3 = rep.chr["CHR@3"]
    assert chr3["A"] == pytest.approx(4 / 3) and chr3["B"] == pytest.approx(4 / 3)
    assert chr3[UNKNOWN] == pytest.approx(1 / 3)
    assert rep.chr["share@3"]["A"] == pytest.approx(4 / 9)
    assert rep.chr["CHR@1"].to_dict() == pytest.approx({"A": 2 / 3, "B": 0, UNKNOWN: 1 / 3})
    # nCDCG@2 of B (2 items, so the ideal is 2 positions): u0 [1,2] -> gain at position 2
    # = 1/log2(3); u1 [4,3] -> 1/log2(3); u2 [0,1] -> 0; ideal 1 + 1/log2(3)
    ideal = 1 + 1 / math.log2(3)
    assert rep.ncdcg["nCDCG@2"] == pytest.approx((2 / math.log2(3)) / ideal / 3)
    ranks = rep.item_ranks.set_index("item_index")
    # item 3: rank 2 (0-based) for u0, 1 for u1, 3 for u2 -> mean 2; in top-2 for u1 only
    assert ranks.loc[3, "mean_rank"] == pytest.approx(2.0) and ranks.loc[3, "users"] == 3
    assert ranks.loc[3, "in_top@2"] == pytest.approx(1 / 3)
    # item 0 is in u0's training set: ranked for u1 (2) and u2 (0) only
    assert ranks.loc[0, "users"] == 2 and ranks.loc[0, "mean_rank"] == pytest.approx(1.0)


def test_training_items_never_recommended():
    rep = evaluate(*scores_to_vectors(SCORES), tiny_data(), ks=(3,), return_topk=True)
    assert 0 not in rep.topk[0] and not ({1, 2} & set(rep.topk[1])) and 4 not in rep.topk[2]


def test_sampler_only_returns_unseen_items():
    g = torch.Generator().manual_seed(0)
    users = torch.randint(0, 50, (2000,), generator=g)
    items = torch.randint(0, 30, (2000,), generator=g)
    s = NegativeSampler(users, items, 30)
    q = torch.arange(50).repeat(40)
    neg = s.sample(q, g)
    assert not s.seen(q, neg).any()
    seen = set(zip(users.tolist(), items.tolist()))
    assert all((u, j) not in seen for u, j in zip(q.tolist(), neg.tolist()))


def test_amr_delta_has_norm_eps_and_increases_the_loss():
    torch.manual_seed(0)
    feats = scale_features(np.random.default_rng(0).normal(size=(20, 16)))
    model = AMR(10, 20, factors=8, visual_factors=8, features=feats, init_std=0.3)
    u, i, j = torch.tensor([[0, 1, 2, 3]]), torch.tensor([[4, 5, 5, 7]]), torch.tensor([[8, 9, 10, 4]])
    x, ctx = model.pair_scores(u, i, j)
    d_i, d_j = adversarial_delta(model, ctx, torch.sigmoid(-x) / -u.shape[1], eps=0.5)
    assert torch.allclose(d_i.norm(dim=-1), torch.full((1, 4), 0.5), atol=1e-6)
    assert torch.allclose(d_i[0, 1], d_i[0, 2]) and torch.equal(d_i[0, 0], d_j[0, 3])  # one per item
    diff = feats[i] - feats[j]
    with torch.no_grad():
        base = bpr_loss(model, u, i, j, diff)
        up = bpr_loss(model, u, i, j, diff + d_i - d_j)
        down = bpr_loss(model, u, i, j, diff - d_i + d_j)
    assert up > base > down  # it attacks the model (cornac's sign would help it)
    # the direction is autograd's gradient w.r.t. the feature matrix, row-normalised
    f = feats.clone().requires_grad_(True)
    (G,) = torch.autograd.grad(bpr_loss(model, u, i, j, f[i] - f[j]), f)
    assert torch.allclose(d_i, 0.5 * torch.nn.functional.normalize(G[i], dim=-1), atol=1e-6)


def test_scale_features_to_unit_max():
    f = scale_features(np.array([[2.0, -8.0], [4.0, 1.0]]))
    assert f.abs().max() == 1.0 and torch.allclose(f[0], torch.tensor([0.25, -1.0]))


@pytest.mark.parametrize("name", RECOMMENDERS.available())
def test_every_recommender_trains_deterministically_and_learns(name):
    rng = np.random.default_rng(0)
    n_users, n_items = 60, 40
    cat = np.arange(n_items) % 4
    taste = rng.integers(0, 4, n_users)  # each user likes one category
    rows = [(u, i) for u in range(n_users)
            for i in rng.choice(np.flatnonzero(cat == taste[u]), 6, replace=False)]
    df = pd.DataFrame(rows, columns=["user", "item"])
    test = df.groupby("user").tail(1)
    train = df.drop(test.index)
    data = RankingData.from_frames(train, test, n_users, n_items, cat, ("a", "b", "c", "d"))
    feats = inputs_for(name, np.eye(4)[cat] + 0.1 * rng.normal(size=(n_items, 4)), rng)
    u, i = (torch.as_tensor(train[c].to_numpy().copy()) for c in ("user", "item"))
    cfg = RecConfig.of(name, epochs=30, lr=0.01, reg=1e-3, factors=8,
                       **own_settings(name, visual_factors=8))
    m1, h1 = fit_recommender(cfg, data, u, i, feats)
    m2, _ = fit_recommender(cfg, data, u, i, feats)
    assert torch.equal(m1.user_vectors(), m2.user_vectors())
    rep = evaluate(m1.user_vectors().detach(), m1.item_vectors().detach(), data, ks=(5,))
    assert rep.accuracy["HR@5"] > 0.4  # random: 5 of 35 unseen items -> ~0.14
    if name == "amr":
        assert h1["adversarial_from_epoch"] == 15


@pytest.mark.parametrize("name", RECOMMENDERS.available())
def test_members_trained_together_get_the_numbers_they_get_alone(name):
    """Seeds and feature sets of a cell trained as one batched model: every member's final
    tables and loss history are bitwise those of fitting it alone (odd batch size and a
    short last batch included)."""
    from advrec_core.recommenders import Member, fit_recommenders

    rng = np.random.default_rng(1)
    n_users, n_items = 50, 40
    train = pd.DataFrame({"user": rng.integers(0, n_users, 400), "item": rng.integers(0, n_items, 400)})
    train = train.drop_duplicates()
    data = RankingData.from_frames(train, train.iloc[:0], n_users, n_items, np.arange(n_items) % 4,
                                   ("a", "b", "c", "d"))
    u, i = (torch.as_tensor(train[c].to_numpy().copy()) for c in ("user", "item"))
    fa, fb = (inputs_for(name, rng.normal(size=(n_items, 64)), rng) for _ in range(2))
    members = [Member(0, fa), Member(0, fb, 2.0), Member(1, fa), Member(2, fb)]
    cfg = RecConfig.of(name, epochs=4, batch_size=37, lr=0.01, factors=8,
                       **own_settings(name, visual_factors=8, biases=name == "amr"))
    together, hist = fit_recommenders(cfg, data, u, i, members)
    for m, member in enumerate(members):
        alone, h = fit_recommender(replace(cfg, seed=member.seed), data, u, i, member.features,
                                   scale=member.scale)
        assert torch.equal(together.user_vectors(member=m), alone.user_vectors()), m
        assert torch.equal(together.item_vectors(member=m), alone.item_vectors()), m
        assert hist[m]["loss_per_epoch"] == h["loss_per_epoch"], m
    assert not torch.equal(together.user_vectors(member=0), together.user_vectors(member=2))


def test_vbpr_needs_features():
    with pytest.raises(ValueError, match="needs"):
        VBPR(3, 4, features=None)


def test_cut_off_larger_than_catalog_is_a_clear_error():
    from advrec_core.errors import AdvRecError

    with pytest.raises(AdvRecError, match="K=10 does not fit the 5 items; expected 1 <= K <= 5"):
        evaluate(*scores_to_vectors(SCORES), tiny_data(), ks=(10,))


def test_item_nobody_can_rank_has_no_rank():
    train = pd.DataFrame({"user": [0, 1], "item": [0, 0]})  # item 0 is in every user's train
    test = pd.DataFrame({"user": [0], "item": [1]})
    data = RankingData.from_frames(train, test, 2, 3, np.zeros(3, np.int64), ("a",))
    rep = evaluate(torch.eye(2), torch.rand(3, 2), data, ks=(1,), focus_items=np.array([0, 1]))
    r = rep.item_ranks.set_index("item_index")
    assert np.isnan(r.loc[0, "mean_rank"]) and r.loc[0, "users"] == 0
    assert not np.isnan(r.loc[1, "mean_rank"])


def dense_grads(model, grads):
    """{name: (rows, grad)} -> {name: gradient the shape of the parameter}, rows summed."""
    out = {}
    for name, (rows, g) in grads.items():
        p = dict(model.named_parameters())[name]
        flat = torch.zeros_like(p).view(-1, p.shape[-1])
        out[name] = g if rows is None else flat.index_add_(0, rows, g).view(p.shape)
    return out


@pytest.mark.parametrize("name,biases,adversarial", [
    ("bprmf", False, False), ("vbpr", False, False), ("vbpr", True, False), ("amr", True, True),
    ("deepstyle", False, False)])
def test_closed_form_gradients_equal_autograd(name, biases, adversarial):
    """bpr_step's hand-derived gradients of eq. 1 (+ AMR's term, delta held fixed) are
    autograd's, with repeated users and items in the batch, for two members (seeds) with
    different feature sets trained as one model."""
    torch.manual_seed(0)
    features = [torch.randn(9, 6), torch.randn(9, 6)]
    own = {} if name == "bprmf" else dict(features=features, feature_of=[1, 0]) | (
        dict(categories=torch.tensor([0, 1, 1, -1, 2, 0, 2, 1, -1])) if name == "deepstyle"
        else dict(visual_factors=3, biases=biases))
    own |= dict(adv_eps=0.7, adv_reg=0.4) if name == "amr" else {}
    model = RECOMMENDERS.get(name)(7, 9, factors=4, init_std=0.5, seeds=[3, 4], **own)
    if biases:
        with torch.no_grad():
            model.item_table[..., -1].normal_()
            model.E[:, -1].normal_()
    u = torch.tensor([[0, 1, 1, 6, 0], [2, 2, 5, 6, 3]])
    i = torch.tensor([[2, 3, 3, 8, 0], [1, 1, 7, 8, 8]])
    j = torch.tensor([[5, 2, 4, 0, 7], [0, 4, 4, 3, 2]])
    B = u.shape[1]
    cfg = RecConfig(model=name, reg=0.3)
    loss, grads = bpr_step(model, u, i, j, cfg, adversarial)
    x, reg = model(u, i, j)
    ref = -torch.nn.functional.logsigmoid(x).mean(1) + cfg.reg / B * reg  # (M,)
    if adversarial:
        with torch.no_grad():
            xd, ctx = model.pair_scores(u, i, j)
            d_i, d_j = adversarial_delta(model, ctx, torch.sigmoid(-xd) / -B, model.adv_eps)
        x_adv, _ = model(u, i, j, ctx.diff + d_i - d_j)
        ref = ref - model.adv_reg * torch.nn.functional.logsigmoid(x_adv).mean(1)
    model.zero_grad()
    ref.sum().backward()  # members share no parameter row: each gets its own loss's gradient
    assert torch.allclose(loss, ref.detach(), rtol=1e-5)
    ours = dense_grads(model, grads)
    assert set(ours) == {n for n, _ in model.named_parameters()}
    for n, p in model.named_parameters():
        assert torch.allclose(ours[n], p.grad, atol=1e-6), n


def test_bf16_precision_keeps_features_in_bf16_and_gradients_close():
    torch.manual_seed(0)
    f = scale_features(np.random.default_rng(0).normal(size=(9, 64)))
    m32 = AMR(7, 9, factors=4, visual_factors=3, features=f, init_std=0.5, biases=True)
    m16 = AMR(7, 9, factors=4, visual_factors=3, features=f, init_std=0.5, biases=True,
              precision="bf16")  # AMR: the adversarial term too
    m16.load_state_dict({k: v for k, v in m32.state_dict().items() if k != "features"}, strict=False)
    assert m16.features.dtype == torch.bfloat16 and m16.item_vectors().dtype == torch.float32
    u, i, j = torch.tensor([[0, 1, 6]]), torch.tensor([[2, 3, 8]]), torch.tensor([[5, 2, 0]])
    cfg = RecConfig(reg=0.1)
    (_, g32), (_, g16) = (bpr_step(m, u, i, j, cfg, True) for m in (m32, m16))
    for n in g32:  # bf16 keeps ~3 significant digits
        assert torch.allclose(g16[n][1], g32[n][1], rtol=0.05, atol=2e-3 * g32[n][1].abs().max().item()), n
    with pytest.raises(ValueError, match="precision"):
        RecConfig(precision="fp16")


@pytest.mark.filterwarnings("ignore:Sparse invariant checks")  # torch's sparse Adagrad
def test_row_optimizer_matches_torch_optimizers():
    """Whole-tensor steps are torch.optim.Adam / Adagrad; row steps are SparseAdam / sparse
    Adagrad (repeated rows summed), and rows no batch touched never move."""
    import torch.nn.functional as F

    from advrec_core.recommenders import RowOptimizer

    torch.manual_seed(0)
    for rule, dense_ref, sparse_ref in (("adam", torch.optim.Adam, torch.optim.SparseAdam),
                                        ("adagrad", torch.optim.Adagrad, torch.optim.Adagrad)):
        start = torch.randn(50, 8)
        ours_d, ours_s = start.clone(), start.clone()
        ref_d, ref_s = (torch.nn.Parameter(start.clone()) for _ in range(2))
        opt_d, opt_s = RowOptimizer({"w": ours_d}, rule, lr=0.01), RowOptimizer({"w": ours_s}, rule, lr=0.01)
        torch_d, torch_s = dense_ref([ref_d], lr=0.01), sparse_ref([ref_s], lr=0.01)
        for _ in range(20):
            g = torch.randn(50, 8) * 1e-8  # tiny, so that where eps enters matters
            opt_d.step({"w": (None, g)})
            ref_d.grad = g.clone()
            torch_d.step()
            idx, w = torch.randint(40, (30,)), torch.randn(30, 8)  # repeats; rows 40+ never
            opt_s.step({"w": (idx, w)})
            torch_s.zero_grad()
            (F.embedding(idx, ref_s, sparse=True) * w).sum().backward()
            torch_s.step()
        assert torch.allclose(ours_d, ref_d.detach(), atol=1e-6), rule
        assert torch.allclose(ours_s, ref_s.detach(), atol=1e-5), rule
        assert torch.equal(ours_s[40:], start[40:]), rule


def test_vbpr_biases_score_and_rank_consistently():
    """With biases, forward's s_ui - s_uj equals the difference of the full-ranking scores."""
    torch.manual_seed(0)
    m = VBPR(4, 6, factors=3, visual_factors=2, features=torch.randn(6, 5), biases=True)
    with torch.no_grad():
        m.beta.normal_()
        m.beta_visual.normal_()
    assert m.item_table[..., -1].abs().sum() > 0 and m.E[:, -1].abs().sum() > 0  # views
    u, i, j = torch.tensor([0, 1, 3]), torch.tensor([0, 2, 5]), torch.tensor([1, 4, 4])
    x, _ = m(u[None], i[None], j[None])
    full = m.user_vectors() @ m.item_vectors().T  # (4, 6)
    assert torch.allclose(x[0], full[u, i] - full[u, j], atol=1e-5)
    plain = VBPR(4, 6, factors=3, visual_factors=2, features=torch.randn(6, 5))
    assert plain.beta is None and plain.item_vectors().shape == (6, 5)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_feature_differences_are_each_members_own_f_i_minus_f_j(precision):
    """pair_scores' f_i - f_j (an embedding bag in fp32, gather-then-subtract in bf16) is,
    bitwise, each member's own feature set's rows subtracted."""
    g = torch.Generator().manual_seed(0)
    sets = [torch.rand(7, 5, generator=g), torch.rand(7, 5, generator=g)]
    m = VBPR(3, 7, factors=2, visual_factors=2, features=sets, feature_of=[1, 0, 1],
             seeds=[0, 1, 2], precision=precision)
    u = torch.randint(0, 3, (3, 4), generator=g)
    i, j = torch.randint(0, 7, (3, 4), generator=g), torch.randint(0, 7, (3, 4), generator=g)
    _, ctx = m.pair_scores(u, i, j)
    for member, s in enumerate(m.feature_of):
        f = m.features[s]
        assert torch.equal(ctx.diff[member], f[i[member]] - f[j[member]]), member
