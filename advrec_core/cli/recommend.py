"""`train-rec`: a recommender on clean features (or two, paired over seeds); `poison`: the
paper's experiment, CHR@K before and after poisoning; `poison-features`: Table 1 on
precomputed feature files."""
from __future__ import annotations

import argparse

import numpy as np

from ..defenses import DEFENSES, TRADITIONAL
from ..errors import AdvRecError
from ..progress import TqdmProgress
from ..recommenders import RECOMMENDERS
from . import options, settings
from .attack import through_plan


def register(sub) -> None:
    r = sub.add_parser("train-rec", help="train and evaluate a recommender on clean features")
    options.add_dataset(r)
    settings.add_rec(r)
    r.add_argument("--seeds", type=int, nargs="+", default=[0],
                   help="training seeds (several: with --against)")
    r.add_argument("--against", choices=RECOMMENDERS.available(),
                   help="also train this model with the same seeds and report the paired "
                        "difference of every accuracy metric (e.g. vbpr --against bprmf)")
    options.add_extractor(r)
    options.add_categories(r)
    r.set_defaults(func=train_rec)

    pz = sub.add_parser("poison", help="the paper's experiment: CHR@K before/after poisoning")
    options.add_dataset(pz)
    pz.add_argument("--source", help="category to push (default: the least popular)")
    pz.add_argument("--target", help="class to imitate (default: the most popular)")
    pz.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    settings.add_attack(pz)
    settings.add_rec(pz)
    options.add_extractor(pz)
    options.add_categories(pz)
    options.add_feature_scale(pz)
    options.add_ray(pz)
    pz.set_defaults(func=poison)

    pf = sub.add_parser("poison-features", help="Table 1 without a CNN: the recommender on "
                                                "precomputed clean vs poisoned features.npy")
    options.add_dataset(pf)
    pf.add_argument("--clean", required=True, help="clean features.npy (N x D; row = item id, "
                                                   "or the order of features_items.txt)")
    pf.add_argument("--poisoned", required=True, help="the attacked run's features.npy")
    pf.add_argument("--source", required=True, help="the pushed category")
    pf.add_argument("--defense", default=TRADITIONAL.name, choices=DEFENSES.available(),
                    help="whose classes.csv gives the categories (original/, madry_original/, "
                         "free_adv_original/)")
    settings.add_rec(pf)
    pf.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    pf.add_argument("--device", default="auto", help="auto | cpu | cuda ...")
    options.add_feature_scale(pf)
    pf.set_defaults(func=poison_features)


def _check_seeds(args: argparse.Namespace, rec) -> None:
    if len(args.seeds) > 1 and not args.against:
        raise AdvRecError("train-rec: several --seeds need --against MODEL (a paired "
                          "comparison over the seeds)")
    if args.against == rec.model:
        raise AdvRecError(f"train-rec: --against {args.against} is the --model itself; name "
                          f"another recommender ({', '.join(RECOMMENDERS.available())})")
    if args.against and len(args.seeds) < 2:
        raise AdvRecError("train-rec: --against needs at least two --seeds for a paired interval")


def train_rec(args: argparse.Namespace) -> int:
    from ..experiments.categories import categorize
    from ..experiments.inputs import check_inputs, clean_inputs, reads

    rec = settings.rec_config(args)
    _check_seeds(args, rec)
    progress = TqdmProgress(disable=args.quiet)
    cache, extractor = options.cache(args), options.extractor(args)
    given = options.dataset(args, progress)
    other = rec.for_model(args.against) if args.against else None
    recs = [r for r in (rec, other) if r]
    for r in recs:
        check_inputs(given, r, extractor, cache)  # before any extraction or training
    ds = categorize(given, extractor, args.categories, cache, args.device, progress)
    inputs = clean_inputs(ds, recs, extractor, cache, args.device, progress)
    if other:
        return _compare(args, ds, inputs, rec, other, progress)
    return _one_run(args, ds, inputs.get(reads(rec)), rec, extractor, progress)


def _compare(args, ds, inputs, rec, other, progress) -> int:
    from ..device import resolve_device
    from ..experiments.poison import compare_recommenders

    table = compare_recommenders(ds, inputs, other, rec, tuple(args.seeds), options.cache(args),
                                 resolve_device(args.device), progress, tuple(args.k))
    print(f"{rec.model} vs {other.model}: {rec.epochs} epochs, seeds {args.seeds}; "
          f"difference = {rec.model} - {other.model}, paired over seeds "
          f"(95% t-interval, paired t-test)")
    table["ci95"] = [f"[{d - h:+.4f}, {d + h:+.4f}]" for d, h in
                     zip(table["difference"], table["ci95"])]
    print(table.round(4).to_string(index=False))
    return 0


def _one_run(args, ds, feats, rec, extractor, progress) -> int:
    from dataclasses import replace

    from ..device import resolve_device
    from ..experiments.categories import describe
    from ..experiments.poison import train_and_evaluate

    run = train_and_evaluate(ds, feats, replace(rec, seed=args.seeds[0]), np.zeros(0, np.int64),
                             None, options.cache(args), resolve_device(args.device), progress,
                             tuple(args.k))
    acc = run.report["accuracy"]
    print(f"model        {rec.model} ({rec.epochs} epochs, "
          f"{run.report['history']['train_seconds']:.1f} s), {run.report['n_test_users']} test users")
    for name in ("HR", "nDCG", "Recall", "Precision"):
        print(f"{name:12} " + "  ".join(f"@{k} {acc[f'{name}@{k}']:.4f}" for k in args.k))
    print(f"\nCHR@K per category {describe(args.categories, extractor)} (items of the "
          "category in a top-K list, per user):")
    print(run.chr[[f"CHR@{k}" for k in args.k]].round(4).to_string())
    print(f"\nresults      {run.folder}")
    return 0


def dataset_and_pair(args: argparse.Namespace, extractor, ks: tuple[int, ...]):
    """(progress, dataset, source, target): --source/--target, else the pair proposed on
    the items' categories (--categories; predicted by `extractor`). Cut-offs `ks` that the
    catalog cannot fill are refused first, before any extraction or attack."""
    from ..experiments.poison import choose_pair
    from ..recommenders.evaluation import check_cutoffs

    progress = TqdmProgress(disable=args.quiet)
    ds = options.dataset(args, progress)
    check_cutoffs(ks, ds.n_items)
    source, target = choose_pair(ds, extractor, args.categories, args.source, args.target,
                                 options.cache(args), args.device, progress)
    return progress, ds, source, target


def poison(args: argparse.Namespace) -> int:
    from ..experiments.attack import AttackJob
    from ..experiments.inputs import check_inputs
    from ..experiments.poison import PoisonJob, run_poison

    spec, rec = settings.attack_spec(args), settings.rec_config(args)  # checked before any work
    extractor = options.extractor(args)
    progress, ds, source, target = dataset_and_pair(args, extractor, tuple(args.k))
    check_inputs(ds, rec, extractor, options.cache(args))
    job = PoisonJob(AttackJob(source=source, target=target, spec=spec, extractor=extractor,
                              limit=args.limit, lpips=(), categories=args.categories,
                              upload=settings.upload(args), precision=args.attack_precision),
                    rec=rec, seeds=tuple(args.seeds), ks=tuple(args.k),
                    feature_scale=args.feature_scale)
    res = through_plan(run_poison, ds, job, args, progress)
    _print_poison(args, ds, job, res, extractor)
    return 0


def _print_poison(args, ds, job, res, extractor) -> None:
    from ..experiments.categories import describe, overlap

    source, avg = job.attack.source, res.attack_summary["averages"]
    print(f"poisoning    {source} -> {job.attack.target} with {job.attack.spec.title} on "
          f"{extractor.label}: SR {avg['SR']:.1%} over {avg['n']} images, FL {avg['FL']:.4g}")
    print(f"categories   {describe(args.categories, extractor)} (CHR@K, nCDCG, source items)")
    n_cat, n_given, n_both = overlap(ds, res.dataset, source)
    print(f"source items: {n_cat} predicted as {source} by {extractor.label} ({n_given} given "
          f"as {source}; {n_both} of them both)" if args.categories == "predicted" else
          f"source items: {n_given} given as {source}")
    print(f"recommender  {job.rec.model}, seeds {list(job.seeds)}")
    print(f"\nCHR@K of {source} (mean over seeds; change with 95% CI and paired t-test):")
    ch = res.change.assign(relative=(res.change["relative"] * 100).round(1).astype(str) + "%")
    print(ch.round(4).to_string(index=False))
    cols = [f"nDCG@{k}" for k in job.ks] + [f"HR@{k}" for k in job.ks]
    print("\naccuracy before / after:")
    print(res.per_seed.groupby("phase")[cols].mean().round(4).to_string())
    att = res.ranks[res.ranks["attacked"]]
    print(f"\nattacked items: mean rank {att['mean_rank_clean'].mean():.1f} -> "
          f"{att['mean_rank_poisoned'].mean():.1f} (of {ds.n_items}); in top-20 for "
          f"{att['in_top@20_clean'].mean():.2%} -> {att['in_top@20_poisoned'].mean():.2%} of users"
          if 20 in job.ks else "")


def poison_features(args: argparse.Namespace) -> int:
    from ..experiments.poison import GivenFeaturesJob, run_given_features

    progress = TqdmProgress(disable=args.quiet)
    ds = options.dataset(args, progress)
    job = GivenFeaturesJob(args.clean, args.poisoned, args.source, args.defense,
                           settings.rec_config(args), tuple(args.seeds), tuple(args.k),
                           args.feature_scale)
    change, per_seed, n_changed, cds = run_given_features(ds, job, options.cache(args),
                                                          args.device, progress)
    print(f"features     clean {args.clean}; poisoned {args.poisoned} ({n_changed} items differ)")
    print(f"categories   {args.defense} ({len(cds.categories)} classes); source {args.source}")
    print(f"recommender  {job.rec.model}, seeds {list(job.seeds)}")
    print(f"\nCHR@K of {args.source} (mean over seeds; change with 95% CI and paired t-test):")
    ch = change.assign(relative=(change["relative"] * 100).round(1).astype(str) + "%")
    print(ch.round(4).to_string(index=False))
    return 0
