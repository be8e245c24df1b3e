"""Our VBPR vs Cornac's VBPR on the same data, factors, batch, learning rate and epochs, in one
run: seconds per epoch (ratio > 1: ours is faster) and nDCG@10 of both under one protocol
(our full-ranking evaluator on each model's user and item vectors); then full-ranking
evaluation time, ours vs Cornac's `ranking_eval`, at Amazon-Men size.

Ours runs in each requested precision (fp32, the default, and bf16 features). Shared
machines are noisy, so the fits are repeated in rounds (ours, then Cornac, in turn; round r
seeds both with r): each side's median (and best) seconds per epoch is compared, and nDCG@10
is the mean over the rounds' seeds, with its standard deviation.

    python benchmarks/recsys.py                   # demo catalog + Amazon-Men-size synthetic
    python benchmarks/recsys.py --sizes demo      # only the demo
    python benchmarks/recsys.py --repeats 1 --precision fp32
    python benchmarks/recsys.py --models deepstyle acf dvbpr   # the models no peer has here
Needs cornac (pip install cornac; a benchmark-only dependency).

DeepStyle, ACF and DVBPR have no peer that installs here: Elliot (the one framework with all
three, TensorFlow) is not in the package index, and Cornac 3.0.1's visual models are VBPR,
AMR, CausalRec, DMRL and CVAE. For them `--models` prints, per model on the demo, seconds per
epoch of one run alone and of the cell's runs trained as one batched model (per run), the
ratio, and nDCG@10; and VBPR's on the same data as the yardstick."""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace

import numpy as np
import pandas as pd
import torch

from advrec_core.experiments.poison import paired_interval
from advrec_core.recommenders import RankingData, RecConfig, evaluate, fit_recommender, scale_features


def demo_problem():
    from advrec_core.data import load_dataset
    from advrec_core.experiments.extract import extract_features

    ds = load_dataset("demo")
    return ("demo (2,000 x 600, 256-d)", ds.train[["user", "item"]], ds.test[["user", "item"]],
            ds.n_users, ds.n_items, extract_features(ds).features)


def amazon_men_problem(seed: int = 0):
    """24,379 users x 7,371 items, 89,020 interactions (leave-one-out), 2048-d non-negative
    features with cluster structure that users' tastes follow."""
    rng = np.random.default_rng(seed)
    n_users, n_items, n_inter, d = 24_379, 7_371, 89_020, 2048
    clusters = rng.integers(0, 50, n_items)
    centres = np.maximum(rng.normal(0, 1, (50, d)), 0)
    feats = (centres[clusters] + np.maximum(rng.normal(0, 0.5, (n_items, d)), 0)).astype(np.float32)
    taste = rng.dirichlet(np.full(50, 0.3), n_users)  # (U, 50)
    pop = rng.zipf(1.6, n_items).clip(max=500).astype(float)
    counts = np.maximum(2, rng.poisson(n_inter / n_users, n_users))
    users, items = [], []
    for lo in range(0, n_users, 4096):  # vectorised per user block: Gumbel top-k sampling
        hi = min(lo + 4096, n_users)
        logits = np.log(taste[lo:hi, clusters] + 1e-9) + 0.5 * np.log(pop)[None]
        keys = logits + rng.gumbel(size=logits.shape)
        order = np.argsort(-keys, axis=1)
        take = np.arange(n_items)[None] < counts[lo:hi, None]
        users.append(np.repeat(np.arange(lo, hi), counts[lo:hi]))
        items.append(order[take])
    users, items = np.concatenate(users), np.concatenate(items)
    last = np.r_[users[1:] != users[:-1], True]
    df = pd.DataFrame({"user": users, "item": items})
    train, test = df[~last], df[last]
    test = test[test["item"].isin(set(train["item"]))]
    return ("Amazon-Men size (24,379 x 7,371, 2048-d)", train, test, n_users, n_items, feats)


def ours(train, data, feats, cfg):
    u = torch.as_tensor(train["user"].to_numpy().copy())
    i = torch.as_tensor(train["item"].to_numpy().copy())
    t0 = time.perf_counter()
    model, _ = fit_recommender(cfg, data, u, i, feats)
    per_epoch = (time.perf_counter() - t0) / cfg.epochs
    with torch.no_grad():
        return per_epoch, model.user_vectors(), model.item_vectors()


def cornac_vbpr(train, test, n_users, n_items, feats, cfg):
    import cornac
    from cornac.data import ImageModality

    uir = [(str(u), str(i), 1.0) for u, i in train[["user", "item"]].to_numpy()]
    train_set = cornac.data.Dataset.build(uir, fmt="UIR", seed=cfg.seed)
    ids = [str(i) for i in range(n_items)]
    image = ImageModality(features=scale_features(feats).numpy(), ids=ids, normalized=True)
    image.build(id_map=train_set.iid_map)
    train_set.add_modalities(item_image=image)
    model = cornac.models.VBPR(k=cfg.factors, k2=cfg.hyper().visual_factors, n_epochs=cfg.epochs,
                               batch_size=cfg.batch_size, learning_rate=cfg.lr,
                               lambda_w=cfg.reg, lambda_b=cfg.reg, verbose=False, seed=cfg.seed)
    t0 = time.perf_counter()
    model.fit(train_set)
    per_epoch = (time.perf_counter() - t0) / cfg.epochs
    # cornac's internal order -> ours; items it never saw in training get a vector that
    # ranks them last (they are not test items)
    u_idx = np.array([train_set.uid_map[str(u)] for u in range(n_users)])
    user = np.hstack([model.gamma_user, model.theta_user, np.ones((len(model.gamma_user), 1))])
    known = np.hstack([model.gamma_item, model.theta_item,
                       (model.beta_item + model.visual_bias)[:, None]])
    item = np.zeros((n_items, known.shape[1]), np.float32)
    item[:, -1] = -1e9
    seen = [(i, train_set.iid_map[str(i)]) for i in range(n_items) if str(i) in train_set.iid_map]
    ours_i, theirs_i = map(np.array, zip(*seen))
    item[ours_i] = known[theirs_i]
    return (per_epoch, torch.as_tensor(user[u_idx], dtype=torch.float32),
            torch.as_tensor(item, dtype=torch.float32), model, train_set)


def cornac_eval_time(model, train_set, test, n_users):
    import cornac
    from cornac.metrics import NDCG

    uir = [(str(u), str(i), 1.0) for u, i in test[["user", "item"]].to_numpy()]
    test_set = cornac.data.Dataset.build(uir, fmt="UIR", global_uid_map=train_set.uid_map,
                                         global_iid_map=train_set.iid_map)
    t0 = time.perf_counter()
    res = cornac.eval_methods.ranking_eval(model, [NDCG(k=10)], train_set, test_set,
                                           exclude_unknowns=True, verbose=False)
    return time.perf_counter() - t0, res[0][0]  # ([NDCG@10 average], per-user)


def peak_rss(epochs: int, precision: str) -> float:
    """GiB: the peak resident memory of a fresh process that builds the Amazon-Men-size
    problem, trains our VBPR on it and evaluates it (nothing of Cornac loaded)."""
    import subprocess

    out = subprocess.run([sys.executable, __file__, "--rss-child", "--epochs", str(epochs),
                          "--precision", precision], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1]) / 2**20  # ru_maxrss: KiB on Linux


def _rss_child(epochs: int, precision: str) -> None:
    import resource

    _, train, test, n_users, n_items, feats = amazon_men_problem()
    data = RankingData.from_frames(train, test, n_users, n_items, np.zeros(n_items, np.int64),
                                   ("all",))
    cfg = RecConfig.of("vbpr", epochs=epochs, factors=64, visual_factors=64,
                       batch_size=512, lr=1e-3, reg=1e-2, biases=True, precision=precision)
    _, users_v, items_v = ours(train, data, feats, cfg)
    evaluate(users_v, items_v, data, ks=(10,))
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


PEERS_TRIED = ("Elliot (not in the package index here)", "Cornac 3.0.1 (has none of DeepStyle, "
               "ACF, DVBPR)")


def visual_models(models: list[str], epochs: int, members: int) -> None:
    """Per model, on the demo with what it reads (features, feature maps, images): s/epoch of
    one run, then of `members` runs (seeds) trained as one batched model, per run."""
    from advrec_core.cache import Cache
    from advrec_core.data import load_dataset
    from advrec_core.experiments.inputs import clean_inputs, reads
    from advrec_core.extractors import ExtractorConfig
    from advrec_core.recommenders import Member, fit_recommenders

    ds = load_dataset("demo")
    data = RankingData.from_dataset(ds)
    u = torch.as_tensor(ds.train["user"].to_numpy().copy())
    i = torch.as_tensor(ds.train["item"].to_numpy().copy())
    recs = [RecConfig.of(m, epochs=epochs) for m in ["vbpr", *models]]
    inputs = clean_inputs(ds, recs, ExtractorConfig(), Cache.default(), "cpu")
    print(f"demo: {len(ds.train):,} train pairs, {epochs} epochs, defaults (k=64, batch 512); "
          f"peers tried: {'; '.join(PEERS_TRIED)}")
    print(f"{'model':10} {'reads':9} {'alone s/epoch':>14} {f'{members} batched, per run':>22} "
          f"{'speed-up':>9}   nDCG@10 (seed 0)")
    for rec in recs:
        x = inputs.get(reads(rec))
        t0 = time.perf_counter()
        model, _ = fit_recommenders(rec, data, u, i, [Member(0, x)])
        alone = (time.perf_counter() - t0) / epochs
        nd = evaluate(model.user_vectors(), model.item_vectors(), data, ks=(10,)).accuracy["nDCG@10"]
        t0 = time.perf_counter()
        fit_recommenders(rec, data, u, i, [Member(s, x) for s in range(members)])
        batched = (time.perf_counter() - t0) / epochs / members
        print(f"{rec.model:10} {reads(rec):9} {alone:14.3f} {batched:22.3f} {alone / batched:8.2f}x"
              f"   {nd:.4f}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", nargs="+", default=["demo", "amazon"], choices=["demo", "amazon"])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3, help="rounds of fits; medians compared")
    ap.add_argument("--precision", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"],
                    help="our VBPR's feature arithmetic (default: both)")
    ap.add_argument("--no-biases", dest="biases", action="store_false",
                    help="train our VBPR as the paper's eq. 2 (no item/visual biases); by "
                         "default it has them, like Cornac's, for a like-for-like comparison")
    ap.add_argument("--rss-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--models", nargs="+", choices=["deepstyle", "acf", "dvbpr"],
                    help="instead: these models on the demo, alone vs batched (no peer here)")
    ap.add_argument("--members", type=int, default=3, help="--models: runs trained together")
    args = ap.parse_args()
    if args.models:
        visual_models(args.models, args.epochs, args.members)
        return 0
    if args.rss_child:
        _rss_child(args.epochs, args.precision[0])
        return 0
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    for size in args.sizes:
        name, train, test, n_users, n_items, feats = (demo_problem() if size == "demo"
                                                      else amazon_men_problem())
        data = RankingData.from_frames(train, test, n_users, n_items,
                                       np.zeros(n_items, np.int64), ("all",))
        cfgs = {f"ours {p}": RecConfig.of("vbpr", epochs=args.epochs, factors=64,
                                          visual_factors=64, batch_size=512, lr=1e-3, reg=1e-2,
                                          biases=args.biases, precision=p) for p in args.precision}
        cfg = next(iter(cfgs.values()))
        times = {k: [] for k in [*cfgs, "cornac"]}
        ndcg, t_eval = {k: [] for k in times}, None
        for r in range(args.repeats):
            for label, c in cfgs.items():
                t, users_v, items_v = ours(train, data, feats, replace(c, seed=r))
                times[label].append(t)
                t0 = time.perf_counter()
                ndcg[label].append(evaluate(users_v, items_v, data, ks=(10,)).accuracy["nDCG@10"])
                t_eval = t_eval or time.perf_counter() - t0
            t_c, Uc, Ic, cmodel, cset = cornac_vbpr(train, test, n_users, n_items, feats,
                                                    replace(cfg, seed=r))
            times["cornac"].append(t_c)
            ndcg["cornac"].append(evaluate(Uc, Ic, data, ks=(10,)).accuracy["nDCG@10"])
            print(f"  round {r + 1}/{args.repeats}: "
                  + ", ".join(f"{k} {v[-1]:.3f}" for k, v in times.items()) + " s/epoch", flush=True)
        print(f"\n{name}: {len(train):,} train pairs, {len(test):,} test users, "
              f"{cfg.epochs} epochs, k={cfg.factors}+{cfg.hyper().visual_factors}, batch {cfg.batch_size}, "
              f"our biases {'on' if cfg.biases else 'off'}, {args.repeats} rounds")
        print(f"{'':12} {'s/epoch: median':>15} {'speed-up':>9} {'best':>7} {'speed-up':>9}   "
              "nDCG@10 (mean +- sd over seeds)")
        t_c, b_c = statistics.median(times["cornac"]), min(times["cornac"])
        for label, ts in times.items():
            t, b, nd = statistics.median(ts), min(ts), ndcg[label]
            sd = statistics.stdev(nd) if len(nd) > 1 else float("nan")
            print(f"{label:12} {t:15.3f} {t_c / t:8.1f}x {b:7.3f} {b_c / b:8.1f}x   "
                  f"{statistics.mean(nd):.4f} +- {sd:.4f}")
        for label in cfgs:  # same seed, same data: a paired comparison
            mean, half, p = paired_interval(np.subtract(ndcg[label], ndcg["cornac"]))
            print(f"nDCG@10 {label} - cornac: {mean:+.4f} (95% CI {mean - half:+.4f} to "
                  f"{mean + half:+.4f}, paired t-test p {p:.2f}, {args.repeats} seeds)")
        if size == "amazon":
            t_ce, ndcg_c = cornac_eval_time(cmodel, cset, test, n_users)
            print(f"full-ranking evaluation: ours {t_eval:.2f} s (HR/nDCG/Recall/Precision@10 "
                  f"+ CHR@10), cornac ranking_eval {t_ce:.2f} s (nDCG@10 {ndcg_c:.4f})"
                  f" -> {t_ce / t_eval:.1f}x")
            for precision in args.precision:
                print(f"peak RSS, ours {precision} (data + VBPR fit + evaluation, own process): "
                      f"{peak_rss(args.epochs, precision):.2f} GiB (target < 4 GiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
