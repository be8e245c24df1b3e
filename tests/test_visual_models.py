"""DeepStyle, ACF and DVBPR against their papers' equations (references written here, one
user and item at a time), their effects in worlds built so, and the inputs each refuses."""
import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from advrec_core.errors import AdvRecError
from advrec_core.recommenders import (
    ACF,
    DVBPR,
    DeepStyle,
    RankingData,
    RecConfig,
    bpr_step,
    fit_recommender,
    model_input,
)


def dense(model, grads):
    """{name: (rows, grad)} -> {name: gradient the shape of the parameter}, rows summed."""
    params = dict(model.named_parameters())
    out = {}
    for name, (rows, g) in grads.items():
        p = params[name]
        out[name] = g if rows is None else torch.zeros_like(p).view(-1, p.shape[-1]).index_add_(
            0, rows, g).view(p.shape)
    return out


def test_deepstyle_scores_are_the_papers_and_a_category_shift_is_absorbed():
    """x_ui = p_u . (E f_i - l_{c_i} + q_i), item by item; shifting every item of one category
    by delta and its l_c by E delta leaves every score as it was (the style is what is left
    of the features once the category's part is taken out)."""
    torch.manual_seed(0)
    f = torch.randn(6, 4)
    cats = torch.tensor([0, 0, 1, 1, -1, 2])
    m = DeepStyle(3, 6, factors=3, features=f, categories=cats, init_std=0.5)
    P, Q, E, L = (t[0].detach().double() for t in (m.user_table, m.item_table, m.E,
                                                    m.category_table))
    ref = torch.tensor([[float(P[u] @ (E @ f[i].double() - L[cats[i] if cats[i] >= 0 else 3]
                                       + Q[i])) for i in range(6)] for u in range(3)],
                       dtype=torch.float64)
    got = (m.user_vectors() @ m.item_vectors().T).double()
    assert torch.allclose(got, ref, atol=1e-6)
    delta = torch.randn(4) * 3
    shifted = DeepStyle(3, 6, factors=3, features=f + delta * (cats == 1)[:, None].float(),
                        categories=cats, init_std=0.5)
    shifted.load_state_dict({k: v for k, v in m.state_dict().items() if k != "features"},
                            strict=False)
    unabsorbed = shifted.user_vectors() @ shifted.item_vectors().T
    assert not torch.allclose(unabsorbed, got.float(), atol=1e-3)  # the shift alone moves them
    with torch.no_grad():
        shifted.category_table[0, 1] += m.E[0] @ delta
    moved = shifted.user_vectors() @ shifted.item_vectors().T
    assert torch.allclose(moved, got.float(), atol=1e-5)


def acf_problem(seed: int = 0):
    """4 users (user 3 without history), 6 items with 3 regions of 5 features each."""
    g = torch.Generator().manual_seed(seed)
    maps = torch.randn(6, 3, 5, generator=g)
    users, items = torch.tensor([0, 0, 0, 1, 2, 2]), torch.tensor([1, 2, 4, 0, 3, 5])
    m = ACF(4, 6, factors=3, attention=4, features=maps, history=(users, items), init_std=0.5,
            seeds=[seed])
    return m, maps, users, items


def acf_reference(m: ACF, maps: torch.Tensor, history: dict[int, list[int]]):
    """User representations from eqs. 5-12, one user, item and region at a time (float64)."""
    net = m.nets[0].double()
    k = m.k
    U, V, Pt = m.user_table[0].double(), m.item_table[0, :, :k].double(), m.item_table[0, :, k:].double()
    x = maps.double()
    reps = []
    for i in range(m.n_users):
        u = U[i]
        a = []
        for item in history.get(i, []):
            b = torch.stack([net.w2(torch.relu(net.W2u(u) + net.W2x(x[item, r])))[0]
                             for r in range(x.shape[1])])
            beta = torch.exp(b) / torch.exp(b).sum()
            xb = (beta[:, None] * x[item]).sum(0)  # x_bar_l
            a.append(net.w1(torch.relu(net.W1u(u) + net.W1v(V[item]) + net.W1p(Pt[item])
                                       + net.W1x(xb)))[0])
        if a:
            a = torch.stack(a)
            alpha = torch.exp(a) / torch.exp(a).sum()
            u = u + sum(alpha[n] * Pt[item] for n, item in enumerate(history[i]))
        reps.append(u)
    m.nets[0].float()
    return torch.stack(reps)


def test_acf_scores_equal_the_papers_equations_and_attention_sums_to_one():
    m, maps, users, items = acf_problem()
    history = {}
    for u, i in zip(users.tolist(), items.tolist()):
        history.setdefault(u, []).append(i)
    ref = acf_reference(m, maps, history)
    got = m.user_vectors()
    assert torch.allclose(got.double(), ref, atol=1e-6)
    assert torch.equal(got[3], m.user_table[0, 3])  # no history: u_i alone
    scores = got @ m.item_vectors().T
    assert torch.allclose(scores.double(), ref @ m.item_table[0, :, :3].double().T, atol=1e-6)
    alpha, beta, owner, _ = m.region_attention(torch.arange(4))
    assert torch.allclose(torch.zeros(4).index_add(0, owner, alpha)[:3], torch.ones(3))
    assert torch.allclose(beta.sum(1), torch.ones(len(beta)))


@pytest.mark.parametrize("name", ["acf", "dvbpr"])
def test_autograd_step_is_eq1_on_the_rows_and_networks_it_reads(name):
    """The autograd step's loss and its row/dense gradients are those of eq. 1 written
    directly on the full parameters (-ln sigma(x_ui - x_uj) from the paper's scores, plus
    lambda ||.||^2 of every row the batch reads, per read, and of the network), for two
    members trained as one model."""
    g = torch.Generator().manual_seed(1)
    if name == "acf":
        maps = [torch.randn(6, 3, 5, generator=g), torch.randn(6, 3, 5, generator=g)]
        hist = (torch.tensor([0, 0, 1, 2, 2]), torch.tensor([1, 2, 0, 3, 5]))
        model = ACF(4, 6, factors=3, attention=4, features=maps, feature_of=[1, 0],
                    history=hist, init_std=0.5, seeds=[3, 4])
    else:
        imgs = [torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8, generator=g)
                for _ in range(2)]
        model = DVBPR(4, 6, factors=3, cnn="small", cnn_reg=0.2, features=imgs,
                      feature_of=[1, 0], init_std=0.5, seeds=[3, 4])
    u = torch.tensor([[0, 1, 0], [2, 2, 1]])
    i = torch.tensor([[1, 0, 2], [3, 5, 0]])
    j = torch.tensor([[4, 4, 3], [0, 1, 2]])
    reg, B = 0.3, 3
    cfg = RecConfig(model=name, reg=reg)
    loss, grads = bpr_step(model, u, i, j, cfg)
    model.zero_grad()
    refs = []
    for m in range(2):
        if name == "acf":
            uu = torch.unique(u[m])
            owner, items = model.histories(uu)
            U, T = model.user_table[m], model.item_table[m]
            urows, vp = U[uu], T[items]
            with torch.enable_grad():
                r = model._represent(m, urows, owner, items, vp)
            x = (r[torch.searchsorted(uu, u[m])] * (T[i[m], :3] - T[j[m], :3])).sum(-1)
            pen = reg * (urows.square().sum() + vp.square().sum() + T[i[m]].square().sum()
                         + T[j[m]].square().sum() + sum(p.square().sum() for p in model.nets[m].parameters()))
        else:
            phi = torch.cat([model.nets[m](model.images[model.feature_of[m], [n]].float()
                                           .sub(127.5).div(127.5)) for n in range(6)])
            theta = model.user_table[m, u[m]]
            x = (theta * (phi[i[m]] - phi[j[m]])).sum(-1)
            pen = reg * theta.square().sum() + 0.2 * sum(
                p.square().sum() for n_, p in model.nets[m].named_parameters() if n_.endswith("weight"))
        refs.append(-F.logsigmoid(x).mean() + pen / B)
    ref = torch.stack(refs)
    ref.sum().backward()
    assert torch.allclose(loss, ref.detach(), rtol=1e-5)
    ours = dense(model, grads)
    for n, p in model.named_parameters():
        if p.grad is not None or n in ours:
            assert torch.allclose(ours[n], p.grad, atol=1e-5), n


def category_world(seed: int = 0, n_users: int = 80, n_items: int = 48):
    """4 categories of 12 items; each user likes one category: 4 of its items and 2 items of
    other categories in their history, a held-out item of their category as test."""
    rng = np.random.default_rng(seed)
    cat = np.arange(n_items) % 4
    taste = rng.integers(0, 4, n_users)
    rows, test = [], []
    for u in range(n_users):
        own = rng.choice(np.flatnonzero(cat == taste[u]), 5, replace=False)
        other = rng.choice(np.flatnonzero(cat != taste[u]), 2, replace=False)
        rows += [(u, i) for i in [*own[:4], *other]]
        test.append((u, own[4]))
    train, test = (pd.DataFrame(r, columns=["user", "item"]) for r in (rows, test))
    data = RankingData.from_frames(train, test, n_users, n_items, cat, ("a", "b", "c", "d"))
    u, i = (torch.as_tensor(train[c].to_numpy().copy()) for c in ("user", "item"))
    return data, u, i, cat, rng


def test_acf_poisoning_reaches_only_the_users_who_have_the_item():
    """ACF's items are scored by v_j alone; an image enters through the users who have the
    item in their history. Replacing one item's feature map (a poisoned upload) changes
    exactly those users' representations (more weight on the item when its map matches what
    they attend to), and no item's vector."""
    m, maps, users, items = acf_problem()
    before_u, before_i = m.user_vectors(), m.item_vectors()
    poisoned = maps.clone()
    poisoned[2] = 5 * torch.randn(3, 5, generator=torch.Generator().manual_seed(9))
    m.maps[0] = poisoned
    after_u, after_i = m.user_vectors(), m.item_vectors()
    holders = set(users[items == 2].tolist())  # user 0
    changed = {n for n in range(4) if not torch.equal(after_u[n], before_u[n])}
    assert holders == changed == {0}
    assert torch.equal(after_i, before_i)


def colour_images(cat: np.ndarray, rng, size: int = 32) -> np.ndarray:
    """(N, 3, size, size) uint8: each category one colour, with pixel noise."""
    colours = np.array([[230, 30, 30], [30, 230, 30], [30, 30, 230], [230, 230, 30]])
    base = colours[cat][:, :, None, None]
    return np.clip(base + rng.integers(-25, 26, (len(cat), 3, size, size)), 0, 255).astype(np.uint8)


def test_dvbpr_learns_from_the_images_and_follows_an_image_swap():
    """Trained on images whose colour is the category: its lists find the users' categories,
    and giving category 0's items category 1's colour (without retraining) moves their
    vectors Phi(X_i) next to category 1's."""
    data, u, i, cat, rng = category_world()
    imgs = colour_images(cat, rng)
    cfg = RecConfig.of("dvbpr", epochs=15, lr=0.01, reg=1e-3, factors=8)
    model, _ = fit_recommender(cfg, data, u, i, imgs)
    from advrec_core.recommenders import evaluate

    rep = evaluate(model.user_vectors(), model.item_vectors(), data, ks=(5,))
    assert rep.accuracy["HR@5"] > 0.3  # random: 5 of 42 unseen items -> ~0.12
    swapped = imgs.copy()
    swapped[cat == 0] = colour_images(np.ones((cat == 0).sum(), int), rng)
    before = model.item_vectors()
    model.images[0] = torch.from_numpy(swapped)
    after = model.item_vectors()
    centre = before[torch.as_tensor(cat == 1)].mean(0)
    src = torch.as_tensor(cat == 0)
    assert (after[src] - centre).norm(dim=1).mean() < 0.5 * (before[src] - centre).norm(dim=1).mean()


def test_each_model_refuses_what_it_does_not_read_in_one_line():
    feats = np.zeros((5, 4), np.float32)
    with pytest.raises(AdvRecError, match=r"^acf reads \(n_items, h, w, D\) feature maps .*; "
                                          r"got float32 \(5, 4\)$"):
        model_input("acf", feats)
    with pytest.raises(AdvRecError, match=r"^dvbpr reads \(n_items, 3, S, S\) uint8 images; got none$"):
        model_input("dvbpr", None)
    with pytest.raises(AdvRecError, match=r"^deepstyle reads \(n_items, D\) pooled CNN features; "
                                          r"got float32 \(5, 2, 2, 1\)$"):
        model_input("deepstyle", np.zeros((5, 2, 2, 1), np.float32))
    with pytest.raises(ValueError, match="cnn must be one of auto, small, cnn-f"):
        RecConfig.of("dvbpr", cnn="vgg")
    with pytest.raises(ValueError, match="ACF computes in fp32"):
        ACF(2, 3, features=torch.zeros(3, 2, 4), history=(torch.tensor([0]), torch.tensor([1])),
            precision="bf16")


def test_dvbpr_images_that_do_not_fit_are_refused_before_any_work():
    from advrec_core.experiments.inputs import IMAGE_BUDGET, check_images_fit

    check_images_fit(1000, 96)
    n = IMAGE_BUDGET // (2 * 3 * 224 * 224) + 1
    with pytest.raises(AdvRecError, match=r"^dvbpr: \d+ images at 224 px take .* GiB .*--image-size"):
        check_images_fit(n, 224)


def test_cnn_f_is_the_papers_network_at_224_px():
    """CNN-F as the authors' code builds it: 224 px -> 56 -> 28 -> 14 -> 7 x 7 x 256 ->
    4096 -> 4096 -> K, dropout only while training."""
    from advrec_core.recommenders.dvbpr import cnn_f

    net = cnn_f(10, 224, torch.Generator().manual_seed(0))
    assert net[-1].out_features == 10 and net[-7].in_features == 7 * 7 * 256
    net.eval()
    x = torch.rand(2, 3, 224, 224)
    assert torch.equal(net(x), net(x))


@pytest.fixture(scope="module")
def demo_ds(demo_dir):
    from advrec_core.data import load_dataset

    return load_dataset("demo")


def test_poisoned_inputs_are_the_clean_ones_with_the_uploads_rows(demo_ds, isolated_cache):
    """What ACF and DVBPR read on the demo (the shipped Traditional CNN, PGD-8 on 4 sandals):
    the catalog's 6 x 6 x 256 feature maps, whose average is the pooled features, and the
    uploads' maps in the attacked rows; the catalog's 96 px images and the stored uploads
    themselves in the attacked rows. Nothing else differs."""
    from advrec_core.attacks import AttackSpec
    from advrec_core.cache import Cache
    from advrec_core.experiments.attack import AttackJob
    from advrec_core.experiments.poison import PoisonJob, poison_inputs

    attack = AttackJob(source="Sandal", target="Running shoe", spec=AttackSpec("pgd", 8),
                       limit=4, lpips=(), categories="true")
    cache = Cache(isolated_cache)
    acf = poison_inputs(demo_ds, PoisonJob(attack, RecConfig.of("acf"), (0,)), cache, "cpu")
    a = acf.attacked
    clean, poisoned = acf.clean, acf.poisoned()
    assert clean.shape == (576, 6, 6, 256) and clean.dtype == np.float16
    features = np.load(a.folder.parent.parent / "features" / next(
        p.name for p in (a.folder.parent.parent / "features").iterdir()
        if not p.name.startswith(".") and (p / "maps.npy").is_file()) / "features.npy")
    assert np.allclose(clean.astype(np.float32).mean((1, 2)), features, atol=2e-2, rtol=1e-2)
    assert np.allclose(poisoned[a.items].astype(np.float32).mean((1, 2)), a.features_adv,
                       atol=2e-2, rtol=1e-2)
    differs = np.flatnonzero((poisoned != clean).reshape(576, -1).any(1))
    assert set(differs) <= set(a.items) and len(differs) >= 3
    dv = poison_inputs(demo_ds, PoisonJob(attack, RecConfig.of("dvbpr"), (0,)), cache, "cpu")
    assert dv.clean.shape == (576, 3, 96, 96) and dv.clean.dtype == np.uint8
    assert np.array_equal(dv.clean.transpose(0, 2, 3, 1), np.stack(demo_ds.load_images(np.arange(576))))
    uploads = np.stack(a.uploads()).transpose(0, 3, 1, 2)
    assert np.array_equal(dv.poisoned()[a.items], uploads)
    assert np.array_equal(np.delete(dv.poisoned(), a.items, 0), np.delete(dv.clean, a.items, 0))


def test_the_commands_refuse_what_a_model_cannot_read_in_one_line(tmp_path, capsys):
    """poison-features gives (N, D) features: ACF and DVBPR are refused before the files are
    even read; INSA cannot follow a model that does not score features."""
    from advrec_core.cli import main

    code = main(["poison-features", "demo", "--clean", str(tmp_path / "none.npy"), "--poisoned",
                 str(tmp_path / "none.npy"), "--source", "Sandal", "--model", "dvbpr"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "dvbpr reads (n_items, 3, S, S) uint8 images" in err[0]
    with pytest.raises(ValueError, match="acf reads feature maps"):
        from advrec_core.attacks import AttackSpec

        AttackSpec.parse("insa-8").build().__class__(recommender="acf")
