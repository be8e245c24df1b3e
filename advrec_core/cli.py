"""Headless command line: ``python -m advrec_core <command> ...``.

Every command prints plain text (or JSON with --json), shows tqdm progress on long steps,
and turns a bad-input error into one clear line on stderr with exit code 2."""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from .attacks import ATTACKS, PRECISIONS, AttackSpec, Upload
from .attacks.upload import ATTACK_AT, parse_channel
from .cache import Cache, atomic_write_bytes
from .data import DEMO, DUPLICATES, DataConfig
from .defenses import DEFENSES, TRADITIONAL
from .errors import AdvRecError
from .experiments.categories import CATEGORY_MODES
from .extractors import EXTRACTORS, ExtractorConfig
from .jobs import RAY_ADDRESS_ENV
from .progress import TqdmProgress
from .recommenders import RECOMMENDERS, RecConfig


def _cmd_demo(args: argparse.Namespace) -> int:
    from .data.demo import DemoConfig, contact_sheet, demo_folder, generate_demo

    config = DemoConfig(seed=args.seed, n_users=args.users, n_items=args.items,
                        n_interactions=args.interactions, n_corpus=args.corpus)
    progress = TqdmProgress(disable=args.quiet)
    t0 = time.perf_counter()
    if args.out:
        out = Path(args.out)
        if out.exists() and any(out.iterdir()):
            raise AdvRecError(f"{out}: folder is not empty; expected a new or empty folder")
        generate_demo(out, config, workers=args.workers, progress=progress)
    else:
        cache = Cache(Path(args.cache)) if args.cache else Cache.default()
        out = demo_folder(config, cache, progress, workers=args.workers, force=args.force)
    elapsed = time.perf_counter() - t0
    if args.contact_sheet:
        import io

        buf = io.BytesIO()
        contact_sheet(out).save(buf, format="PNG")
        atomic_write_bytes(Path(args.contact_sheet), buf.getvalue())
    print(f"demo catalog: {out}  ({elapsed:.1f} s)")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from .data.loaders import load_dataset

    progress = TqdmProgress(disable=args.quiet)
    cache = Cache(Path(args.cache)) if args.cache else None
    ds = load_dataset(args.dataset, DataConfig(k_core=args.k_core, duplicates=args.duplicates),
                      cache=cache, progress=progress)
    table = ds.category_table()
    pop = ds.item_popularity()
    report = {**ds.summary(), "notes": ds.notes,
              "item popularity": {"min": int(pop.min()), "median": float(np.median(pop)),
                                  "max": int(pop.max())},
              "categories": table.to_dict(orient="records")}
    if args.check_images:
        problems = ds.check_images(progress)
        report["image problems"] = problems.to_dict(orient="records")
    if args.json:
        print(json.dumps(report, indent=1, default=str))
        return 0
    s = ds.summary()
    print(f"dataset      {s['name']}  ({s['layout']} layout, {ds.root})")
    print(f"users        {s['users']:,}")
    print(f"items        {s['items']:,}")
    print(f"interactions {s['interactions']:,}  (train {s['train']:,}, test {s['test users']:,})")
    print(f"sparsity     {s['sparsity']:.4%}")
    print(f"item popularity  min {pop.min()}  median {np.median(pop):g}  max {pop.max()}")
    for note in ds.notes:
        print(f"note         {note}")
    if len(ds.categories):
        print("\nper category (most popular first):")
        shown = table.assign(share=(table["share"] * 100).round(1).astype(str) + "%",
                             per_item=table["per_item"].round(1))
        print(shown.to_string(index=False))
    if args.check_images:
        bad = report["image problems"]
        print(f"\nimages: {len(ds.image_paths) - len(bad)} fine, {len(bad)} converted or failed")
        for row in bad[:20]:
            print(f"  {row['status']:9} {row['path']}: {row['message']}")
        if any(row["status"] == "error" for row in bad):
            return 1
    return 0


def _extractor_config(args: argparse.Namespace):
    from .defenses import TrainConfig

    train = TrainConfig(defense=args.defense, epochs=args.epochs)
    return ExtractorConfig(arch=args.extractor, defense=args.defense, weights=args.weights,
                           train=train)


def _weights_pairs(values: list[str]) -> tuple[tuple[str, str], ...]:
    """--weights DEFENSE=FILE ... -> ((defense, file), ...), checked before any work."""
    pairs = {}
    for v in values:
        name, sep, file = v.partition("=")
        if not sep or not file:
            raise AdvRecError(f"--weights {v!r}: expected DEFENSE=FILE with DEFENSE one of "
                              f"{', '.join(DEFENSES.available())}")
        DEFENSES.get(name)  # unknown names list the known ones
        if not Path(file).is_file():
            raise AdvRecError(f"--weights {name}={file}: file not found")
        pairs[name] = file
    return tuple(pairs.items())


def _cache(args: argparse.Namespace) -> Cache:
    return Cache(Path(args.cache)) if args.cache else Cache.default()


def _cmd_train_extractor(args: argparse.Namespace) -> int:
    from .data.loaders import load_dataset
    from .extractors import load_extractor

    progress = TqdmProgress(disable=args.quiet)
    ds = load_dataset(DEMO, cache=_cache(args), progress=progress)
    config = _extractor_config(args)
    _, info = load_extractor(config, ds.corpus, _cache(args), args.device, progress)
    if args.json:
        print(json.dumps(info, indent=1))
        return 0
    print(f"extractor    {config.label}  ({info['weights']})")
    if "clean_accuracy" in info:
        print(f"trained in   {info['train_seconds']:.1f} s ({info['epochs_run']} epochs, "
              f"{info['optimizer_steps']} steps)")
        print(f"held-out     {info['holdout_images']} images")
        print(f"clean acc    {info['clean_accuracy']:.2%}")
        print(f"robust acc   {info['robust_accuracy']:.2%}  ({info['robustness_check']})")
    return 0


def _cmd_extract(args: argparse.Namespace) -> int:
    from .data.loaders import load_dataset
    from .experiments.extract import ExtractJob, extract_features

    progress = TqdmProgress(disable=args.quiet)
    ds = load_dataset(args.dataset, cache=_cache(args), progress=progress)
    feats = extract_features(ds, ExtractJob(_extractor_config(args), args.batch_size),
                             _cache(args), args.device, progress)
    acc = feats.accuracy(ds)
    print(f"features     {feats.features.shape[0]} items x {feats.features.shape[1]} dims -> "
          f"{feats.folder}")
    print(f"accuracy     {'n/a (no matching categories)' if acc is None else f'{acc:.2%}'} "
          "(predicted class vs dataset category)")
    return 0


def _cmd_attack(args: argparse.Namespace) -> int:
    from .data.loaders import load_dataset
    from .experiments.attack import AttackJob, run_attack_job
    from .experiments.categories import describe
    from .experiments.poison import choose_pair  # both given: names resolved, nothing run
    from .metrics.registry import IMAGE_METRICS

    progress = TqdmProgress(disable=args.quiet)
    ds = load_dataset(args.dataset, cache=_cache(args), progress=progress)
    extractor = _extractor_config(args)
    source, target = choose_pair(ds, extractor, args.categories, args.source, args.target)
    job = AttackJob(source=source, target=target, spec=_attack_spec(args), extractor=extractor,
                    limit=args.limit, batch_size=args.batch_size, seed=args.seed,
                    lpips=tuple(args.lpips.split(",")) if args.lpips else (),
                    categories=args.categories, upload=_upload(args),
                    precision=args.attack_precision)
    res = run_attack_job(ds, job, _cache(args), args.device, progress)
    if args.json:
        print(json.dumps(res.summary, indent=1))
        return 0
    s, avg = res.summary, res.summary["averages"]
    print(f"attack       {s['settings']}")
    print(f"on           {s['extractor']}, {s['source']} -> {s['target']}, {avg['n']} images "
          f"({s['attack_seconds']:.1f} s on {s['device']})")
    print(f"categories   {describe(job.categories, job.extractor)}")
    print(f"upload       {'full-size photo' if s['attack_at'] == 'full' else 'model-size image'} "
          f"({', '.join(s['photo_sizes'])}), through the platform's {s['channel']} channel")
    if job.upload.lossless:
        print(f"SR           {avg['SR']:.2%}  (after 8-bit quantisation)")
    else:
        print(f"SR           {avg['SR']:.2%}  after the {job.upload.channel} channel "
              f"({avg['success_upload']:.2%} on the upload before it)")
    for name, metric in IMAGE_METRICS.items():  # means over the images, as in metrics.csv
        if name in avg:
            value = (f"{avg[name] * metric.scale:.2f}{metric.unit}" if metric.scale != 1.0
                     else f"{avg[name]:.6g}")  # L-inf in 8-bit levels
            print(f"{name:12} {value:14} {metric.title}")
    if s["unavailable"]:  # one line: which, and where to read why (status gives the paths)
        print(f"{'LPIPS':12} unavailable ({', '.join(s['unavailable'])}): no usable ImageNet "
              f"backbone weights; see 'python -m advrec_core lpips-weights status'")
    print(f"results      {res.folder}")
    return 0


def _cmd_maps(args: argparse.Namespace) -> int:
    from .data.loaders import load_dataset
    from .experiments.attack import export_maps, find_attack

    if args.zoom < 1:
        raise AdvRecError(f"--zoom must be an integer >= 1, not {args.zoom}")
    cache = _cache(args)
    ds = load_dataset(args.dataset, cache=cache, progress=TqdmProgress(disable=args.quiet))
    res = find_attack(ds, args.result, cache)
    written = export_maps(ds, res, args.item, Path(args.out), args.zoom)
    maps = json.loads(written[-1].read_text())["maps"]
    print(f"attack       {res.summary['attack']} on {res.summary['extractor']} "
          f"({res.summary['source']} -> {res.summary['target']}), item {args.item}")
    for name, m in maps.items():
        grid = "x".join(map(str, m["grid"]))
        print(f"{name:12} {m['value']:<12.6g} map {grid}, colours 0..{m['colour_scale'][1]:.4g} "
              f"({m['title']})")
    print(f"written      {len(written)} files to {args.out}")
    return 0


def _rec_config(args: argparse.Namespace):
    fields = {"model": args.model, "epochs": args.rec_epochs, "lr": args.lr, "reg": args.reg,
              "factors": args.factors, "precision": args.precision}
    return RecConfig(**{k: v for k, v in fields.items() if v is not None})


def _add_precision_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--precision", choices=["fp32", "bf16"],
                   help="VBPR/AMR feature arithmetic: fp32 (default) or bf16 (1.6-1.8x faster "
                        "training with 2048-d features on a CPU with AVX512-BF16)")


def _add_rec_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=RecConfig.model, choices=RECOMMENDERS.available())
    p.add_argument("--rec-epochs", type=int, help="recommender epochs")
    p.add_argument("--lr", type=float, help="recommender learning rate")
    p.add_argument("--reg", type=float, help="L2 regularisation (lambda of eq. 1)")
    p.add_argument("--factors", type=int, help="latent factors")
    _add_precision_arg(p)
    p.add_argument("--k", type=int, nargs="+", default=[10, 20, 50, 100], help="cut-offs")


def _cmd_train_rec(args: argparse.Namespace) -> int:
    from .data.loaders import load_dataset
    from .device import resolve_device
    from .experiments.categories import categorize, describe
    from .experiments.extract import ExtractJob, extract_features
    from .experiments.poison import compare_recommenders, train_and_evaluate

    if len(args.seeds) > 1 and not args.against:
        raise AdvRecError("train-rec: several --seeds need --against MODEL (a paired "
                          "comparison over the seeds)")
    if args.against == args.model:
        raise AdvRecError(f"train-rec: --against {args.against} is the --model itself; name "
                          f"another recommender ({', '.join(RECOMMENDERS.available())})")
    if args.against and len(args.seeds) < 2:
        raise AdvRecError("train-rec: --against needs at least two --seeds for a paired interval")
    progress = TqdmProgress(disable=args.quiet)
    cache = _cache(args)
    extractor = _extractor_config(args)
    ds = categorize(load_dataset(args.dataset, cache=cache, progress=progress), extractor,
                    args.categories, cache, args.device, progress)
    rec = _rec_config(args)
    other = replace(rec, model=args.against) if args.against else None
    feats = None
    if any(RECOMMENDERS.get(r.model).uses_images for r in (rec, other) if r):
        feats = extract_features(ds, ExtractJob(extractor), cache, args.device,
                                 progress).features
    if other:
        table = compare_recommenders(ds, feats, other, rec, tuple(args.seeds), cache,
                                     resolve_device(args.device), progress, tuple(args.k))
        print(f"{rec.model} vs {other.model}: {rec.epochs} epochs, seeds {args.seeds}; "
              f"difference = {rec.model} - {other.model}, paired over seeds "
              f"(95% t-interval, paired t-test)")
        table["ci95"] = [f"[{d - h:+.4f}, {d + h:+.4f}]" for d, h in
                         zip(table["difference"], table["ci95"])]
        print(table.round(4).to_string(index=False))
        return 0
    run = train_and_evaluate(ds, feats, replace(rec, seed=args.seeds[0]), np.zeros(0, np.int64),
                             None, cache, resolve_device(args.device), progress, tuple(args.k))
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


def _dataset_and_pair(args: argparse.Namespace, extractor, ks: tuple[int, ...]):
    """(progress, cache, dataset, source, target): --source/--target, else the pair proposed
    on the items' categories (--categories; predicted by `extractor`). Cut-offs `ks` that
    the catalog cannot fill are refused first, before any extraction or attack."""
    from .data.loaders import load_dataset
    from .experiments.poison import choose_pair
    from .recommenders.evaluation import check_cutoffs

    progress = TqdmProgress(disable=args.quiet)
    cache = _cache(args)
    ds = load_dataset(args.dataset, cache=cache, progress=progress)
    check_cutoffs(ks, ds.n_items)
    source, target = choose_pair(ds, extractor, args.categories, args.source, args.target,
                                 cache, args.device, progress)
    return progress, cache, ds, source, target


def _cmd_poison(args: argparse.Namespace) -> int:
    from .experiments.attack import AttackJob
    from .experiments.categories import describe, overlap
    from .experiments.poison import PoisonJob, run_poison

    extractor = _extractor_config(args)
    progress, cache, ds, source, target = _dataset_and_pair(args, extractor, tuple(args.k))
    job = PoisonJob(AttackJob(source=source, target=target, spec=_attack_spec(args),
                              extractor=extractor,
                              limit=args.limit, lpips=(), categories=args.categories,
                              upload=_upload(args), precision=args.attack_precision),
                    rec=_rec_config(args), seeds=tuple(args.seeds), ks=tuple(args.k),
                    feature_scale=args.feature_scale)
    res = run_poison(ds, job, cache, args.device, progress)
    avg = res.attack_summary["averages"]
    print(f"poisoning    {source} -> {target} with {job.attack.spec.title} on {extractor.label}: "
          f"SR {avg['SR']:.1%} over {avg['n']} images, FL {avg['FL']:.4g}")
    print(f"categories   {describe(args.categories, extractor)} (CHR@K, nCDCG, source items)")
    n_cat, n_given, n_both = overlap(ds, res.dataset, source)
    print(f"source items: {n_cat} predicted as {source} by {extractor.label} ({n_given} given "
          f"as {source}; {n_both} of them both)" if args.categories == "predicted" else
          f"source items: {n_given} given as {source}")
    print(f"recommender  {job.rec.model}, seeds {list(job.seeds)}")
    print(f"\nCHR@K of {source} (mean over seeds; change with 95% CI and paired t-test):")
    ch = res.change.assign(relative=(res.change["relative"] * 100).round(1).astype(str) + "%")
    print(ch.round(4).to_string(index=False))
    acc = res.per_seed.groupby("phase")[[f"nDCG@{k}" for k in job.ks] + [f"HR@{k}" for k in job.ks]].mean()
    print("\naccuracy before / after:")
    print(acc.round(4).to_string())
    att = res.ranks[res.ranks["attacked"]]
    print(f"\nattacked items: mean rank {att['mean_rank_clean'].mean():.1f} -> "
          f"{att['mean_rank_poisoned'].mean():.1f} (of {ds.n_items}); in top-20 for "
          f"{att['in_top@20_clean'].mean():.2%} -> {att['in_top@20_poisoned'].mean():.2%} of users"
          if 20 in job.ks else "")
    return 0


def _cmd_poison_features(args: argparse.Namespace) -> int:
    from .data.loaders import load_dataset
    from .experiments.poison import GivenFeaturesJob, run_given_features

    progress = TqdmProgress(disable=args.quiet)
    ds = load_dataset(args.dataset, cache=_cache(args), progress=progress)
    job = GivenFeaturesJob(args.clean, args.poisoned, args.source, args.defense,
                           _rec_config(args), tuple(args.seeds), tuple(args.k),
                           args.feature_scale)
    change, per_seed, n_changed, cds = run_given_features(ds, job, _cache(args), args.device,
                                                          progress)
    print(f"features     clean {args.clean}; poisoned {args.poisoned} ({n_changed} items differ)")
    print(f"categories   {args.defense} ({len(cds.categories)} classes); source {args.source}")
    print(f"recommender  {job.rec.model}, seeds {list(job.seeds)}")
    print(f"\nCHR@K of {args.source} (mean over seeds; change with 95% CI and paired t-test):")
    ch = change.assign(relative=(change["relative"] * 100).round(1).astype(str) + "%")
    print(ch.round(4).to_string(index=False))
    return 0


def _cmd_grid(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from .experiments.grid import LPIPS_MISSING, GridSpec, grid_table, table2_columns
    from .experiments.steps import run_grid
    from .extractors import preflight

    given = {"attacks": args.attacks, "defenses": args.defenses, "models": args.models,
             "seeds": args.seeds}
    for a in args.attacks or ():
        AttackSpec.parse(a)  # a clear error before any work
    weights = _weights_pairs(args.weights)
    if args.run and args.ray:  # a wrong address, before any work
        from .jobs import connect_ray

        connect_ray(args.ray)
    extractor = _extractor_config(argparse.Namespace(**{**vars(args), "weights": None,
                                                        "defense": TRADITIONAL.name}))
    cells = GridSpec("", "", extractor=extractor, weights=weights)
    for d in args.defenses or DEFENSES.available():  # every cell's weights, before any work
        preflight(cells.extractor_for(d))
    progress, cache, ds, source, target = _dataset_and_pair(
        args, cells.extractor_for(TRADITIONAL.name), (GridSpec.k,))
    spec = GridSpec(source, target, limit=args.limit,
                    cw_steps=args.cw_steps or None, extractor=extractor,
                    categories=args.categories, weights=weights,
                    feature_scale=args.feature_scale, upload=_upload(args),
                    attack_precision=args.attack_precision,
                    **{k: tuple(v) for k, v in given.items() if v is not None})
    rec = {k: v for k, v in (("epochs", args.rec_epochs), ("precision", args.precision)) if v}
    spec = replace(spec, rec=replace(spec.rec, **rec)).fitted(ds.n_items)
    if spec.ks != GridSpec.ks:
        print(f"cut-offs     {' '.join(map(str, spec.ks))} (those above the {ds.n_items} items "
              f"dropped)")
    if args.run:
        where = args.dataset if args.dataset == "demo" else str(Path(args.dataset).resolve())
        out = run_grid(ds, spec, cache, args.device, progress, ray=args.ray,
                       shared=args.ray_shared_cache, dataset=where, quiet=args.quiet)
        print(f"steps        {out.computed} computed, {out.cached} found in the cache"
              + (f", {len(out.skipped)} skipped" if out.skipped else "")
              + f" ({out.seconds:.1f} s" + (f" on Ray {args.ray}" if args.ray else
                                            " in this process") + ")")
        for title, why in out.skipped.items():  # e.g. this defense predicts no source item
            print(f"  skipped: {title}: {why}", flush=True)
    table = grid_table(ds, spec, cache)
    print(f"grid         {spec.source} -> {spec.target}, seeds {list(spec.seeds)}, "
          f"{int(table['computed'].sum())}/{len(table)} cells computed"
          + ("" if args.run else " (--run computes the missing ones)"))
    print("categories   " + ("predicted by each cell's extractor" if spec.categories == "predicted"
                             else "given by the dataset"))
    cols = ["model", "attack", "defense", f"CHR@{spec.k} clean", f"CHR@{spec.k} poisoned",
            "relative", "p_value", *table2_columns(table)]
    print(table[cols].round(4).to_string(index=False, na_rep="-"))
    if "LPIPS-vgg" not in cols and table["SR"].notna().any():
        print(LPIPS_MISSING)
    if args.csv:
        from .cache import atomic_write_text

        atomic_write_text(Path(args.csv), table.to_csv(index=False))
        print(f"\nwritten      {args.csv}")
    return 0


def _cmd_regime(args: argparse.Namespace) -> int:
    import pandas as pd

    from .data.loaders import load_dataset
    from .experiments.regime import regime

    weights = _weights_pairs(args.weights)  # before any work
    progress = TqdmProgress(disable=args.quiet)
    cache = _cache(args)
    ds = load_dataset(args.dataset, cache=cache, progress=progress)
    extractor = _extractor_config(argparse.Namespace(**{**vars(args), "weights": None,
                                                        "defense": TRADITIONAL.name}))
    out = regime(ds, tuple(dict.fromkeys(args.defense)), extractor, args.source, args.target,
                 args.categories, args.limit, args.cw, args.cw_steps or None, cache, args.device,
                 progress, weights)
    if args.json:
        print(json.dumps(out, indent=1))
        return 0
    print(f"regime       {out['dataset']}: {out['source']} -> {out['target']} (categories "
          + ("predicted by each defense's extractor)" if out["categories"] == "predicted"
             else "given by the dataset)"))
    def cell(v, share=True):
        return "n/a" if v is None else f"{v:.1%}" if share else str(v)

    rows = [{"defense": d, "clean acc": cell(r["clean_acc"]),
             "PGD-10 acc (4/255)": cell(r["pgd4_acc"]),
             "held-out": cell(r["holdout_images"], False),
             "source items": cell(r["n_source_items"], False),
             "attacked": cell(r["n_attacked"], False),
             **{f"SR {a}": cell(v) for a, v in r["sr"].items()}}
            for d, r in out["defenses"].items()]
    print(pd.DataFrame(rows).to_string(index=False))
    for d, r in out["defenses"].items():
        for name, why in r["unavailable"].items():
            print(f"{d}: {name} unavailable: {why}")
    return 0


def _cmd_study(args: argparse.Namespace) -> int:
    import pandas as pd

    from .cache import atomic_write_text
    from .study import all_studies, analysis, answers_frame, database_url, session_factory

    db = session_factory(args.db)
    studies = all_studies(db)
    print(f"database     {database_url(args.db).split('@')[-1]}")
    if args.action == "list":
        print(studies.to_string(index=False) if len(studies) else "no studies")
        return 0
    if args.study is None or args.study not in set(studies["id"]):
        raise AdvRecError(f"{args.action} needs a study id; known: "
                          f"{sorted(studies['id']) or 'none'}")
    if args.action == "invite":  # rows appear only when a link's holder consents
        from .study import invitation_tokens

        for token in invitation_tokens(db, args.study, args.n):
            print(f"{args.base.rstrip('/')}/study/p/{token}")
        return 0
    answers = answers_frame(db, args.study)
    from .study import StudyConfig, get_study

    cfg = StudyConfig.of(get_study(db, args.study))
    summary = analysis.summary(answers, exclude_failing=not args.keep_failing,
                               min_rt_ms=cfg.min_rt_ms,
                               exposure_ms=cfg.exposure_ms if cfg.presentation == "timed"
                               else None) if len(answers) else {"answers": 0}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "answers.csv", answers.to_csv(index=False))
    atomic_write_text(out / "answers.json", answers.to_json(orient="records", date_format="iso"))
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=1, default=str))
    det = pd.DataFrame(summary.get("detection", []))
    atomic_write_text(out / "detection.csv", det.to_csv(index=False))
    print(f"answers      {len(answers)} from {answers['pid'].nunique() if len(answers) else 0} "
          f"annotators -> {out}/answers.csv, answers.json, summary.json, detection.csv")
    if len(det):
        print(det.round(4).to_string(index=False))
    return 0


def _cmd_serve_study(args: argparse.Namespace) -> int:
    """Check the study server's settings, then become it (Streamlit running study_app.py
    with the study server's options): fails closed, in one line per problem."""
    from .cache import PROJECT_ROOT
    from .study.access import MODE_ENV, server_problems
    from .study.db import ENV_URL

    problems = server_problems()
    for line in problems:
        print(f"error: {line}", file=sys.stderr)
    if problems:
        return 2
    env = {**os.environ, MODE_ENV: "study", **({ENV_URL: args.db} if args.db else {})}
    argv = [sys.executable, "-m", "streamlit", "run", str(PROJECT_ROOT / "study_app.py"),
            "--server.address", args.host, "--server.port", str(args.port),
            "--server.headless", "true", "--server.fileWatcherType", "none",
            "--server.runOnSave", "false", "--server.maxUploadSize", "1",
            "--client.toolbarMode", "minimal", "--client.showErrorDetails", "none",
            "--browser.gatherUsageStats", "false", "--global.developmentMode", "false"]
    print(f"study server on http://{args.host}:{args.port} (participants: /study?study=ID)",
          flush=True)
    os.chdir(PROJECT_ROOT)
    os.execve(sys.executable, argv, env)
    return 0  # not reached


def _attack_spec(args: argparse.Namespace) -> AttackSpec:
    return AttackSpec.create(args.attack, args.eps, args.steps, random_start=args.random_start,
                             eps_space=args.eps_space)


def _add_attack_args(a: argparse.ArgumentParser) -> None:
    a.add_argument("--attack", default=AttackSpec.name, choices=ATTACKS.available())
    a.add_argument("--eps", type=float, default=AttackSpec.eps,
                   help="L-inf radius in 8-bit levels (x/255); FGSM and PGD")
    a.add_argument("--eps-space", default="pixel", choices=["pixel", "normalized"],
                   help="'normalized' reproduces the authors' code (eps on normalised inputs)")
    a.add_argument("--steps", type=int,
                   help="iterations: PGD steps (default 10), C&W steps per search step (1000)")
    a.add_argument("--random-start", action="store_true",
                   help="PGD from a random point in the eps-ball (the authors' code: none)")
    a.add_argument("--limit", type=int, help="attack only the first N source items")


def _cmd_report(args: argparse.Namespace) -> int:
    from .cache import atomic_write_text
    from .data.loaders import load_dataset
    from .report import report_html

    cache = _cache(args)
    ds = load_dataset(args.dataset, cache=cache, progress=TqdmProgress(disable=args.quiet))
    out = Path(args.out)
    if out.is_dir():
        raise AdvRecError(f"--out {out}: is a folder; expected an .html file path")
    atomic_write_text(out, report_html(ds, cache))
    print(f"written      {out} ({out.stat().st_size / 1024:.0f} KB, self-contained HTML)")
    return 0


def _cmd_cache(args: argparse.Namespace) -> int:
    cache = _cache(args)
    if args.action == "gc":
        removed = cache.gc(args.stale_after)
        for folder in removed:
            print(f"removed      {folder}")
        print(f"cache gc     {len(removed)} stale build folder(s) removed under {cache.root}")
        return 0
    bad = cache.verify()
    for folder, why in bad:
        print(f"corrupt      {folder}: {why}")
    print(f"cache verify {len(bad)} corrupt entr{'y' if len(bad) == 1 else 'ies'} under "
          f"{cache.root}" + (" (each is rebuilt when next needed)" if bad else ""))
    return 1 if bad else 0


def _cmd_lpips_weights(args: argparse.Namespace) -> int:
    from .metrics.lpips_metric import (
        BACKBONES,
        backbone_path,
        check_backbone,
        fetch_backbone,
        import_backbone,
    )

    nets = [args.net] if args.net else sorted(BACKBONES)
    if args.action == "fetch":
        for net in nets:
            print(f"LPIPS-{net}: {fetch_backbone(net, progress=not args.quiet)}")
    elif args.action == "import":
        if not args.file or len(nets) != 1:
            raise AdvRecError("import needs FILE and --net vgg|alex")
        print(f"LPIPS-{nets[0]}: imported to {import_backbone(nets[0], Path(args.file))}")
    for net in nets:
        why = check_backbone(net)
        print(f"LPIPS-{net}: {'ready (' + str(backbone_path(net)) + ')' if why is None else why}")
    return 0


def _add_extractor_args(p: argparse.ArgumentParser, defense: bool = True,
                        per_defense: bool = False) -> None:
    p.add_argument("--extractor", default=ExtractorConfig.arch, choices=EXTRACTORS.available())
    if defense:
        p.add_argument("--defense", default=TRADITIONAL.name, choices=DEFENSES.available())
    if per_defense:
        p.add_argument("--weights", nargs="+", metavar="DEFENSE=FILE", default=[],
                       help="resnet50: each defense's checkpoint, e.g. at=imagenet_linf_4.pt "
                            "free_at=model_best.pth.tar (traditional: torchvision's ImageNet "
                            "weights unless given)")
    else:
        p.add_argument("--weights",
                       help="resnet50: local checkpoint (torchvision, MadryLab, Free-AT)")
    p.add_argument("--trust-checkpoint", action="store_true",
                   help="unpickle a checkpoint that holds objects a weights-only load refuses "
                        "(can run code from the file: only for files you trust)")
    p.add_argument("--epochs", type=int,
                   help="demo-cnn: training epochs (Free AT: epochs of m replays each; default: "
                        "the defense's recipe: Traditional 24, AT 12, Free AT 5)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:1 ...")


def _add_feature_scale_arg(p: argparse.ArgumentParser) -> None:
    from .experiments.poison import FEATURE_SCALES

    p.add_argument("--feature-scale", default=FEATURE_SCALES[0], choices=FEATURE_SCALES,
                   help="clean (default): the clean and poisoned runs divide the features by "
                        "the clean features' max |x|, so only the attacked items differ; "
                        "per-run: each run by its own max, as the authors' code")


def _channel(value: str) -> str:
    """argparse type: a channel checked when the command line is read, before any work."""
    try:
        parse_channel(value)
    except AdvRecError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return value


def _add_upload_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--channel", default=Upload.channel, type=_channel,
                   help="what the platform does to the upload before its CNN sees it: png "
                        "(lossless, default), jpeg:Q (re-encoded at quality Q), resize:N "
                        "(longest side N px); steps joined by '+', e.g. resize:500+jpeg:90")
    p.add_argument("--attack-at", default=Upload.at, choices=ATTACK_AT,
                   help="full (default): attack the photo at its own size through a "
                        "differentiable resize; model: at the model's input size (the paper's)")


def _add_attack_precision_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--attack-precision", default="fp32", choices=PRECISIONS,
                   help="the perturbation search's arithmetic: fp32 (default) or bf16 (conv-BN "
                        "folded, channels-last, bf16 autocast: ~2.5x faster PGD on a CPU with "
                        "AVX512-BF16; SR and features still measured in fp32)")


def _upload(args: argparse.Namespace) -> Upload:
    return Upload(args.attack_at, args.channel)


def _add_categories_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--categories", default=CATEGORY_MODES[0], choices=CATEGORY_MODES,
                   help="item category for CHR@K and for choosing the attacked items: the "
                        "extractor's prediction on the clean image (as in the paper) or the "
                        "dataset's given category")


class _Parser(argparse.ArgumentParser):
    """argparse with the project's error contract: one `error:` line, exit code 2."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m advrec_core",
                                description="AdvRec Lab engine: adversarially poisoned product "
                                            "images vs visual recommenders.")
    p.add_argument("--cache", help="cache folder (default: $ADVREC_CACHE or ./cache)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    sub = p.add_subparsers(dest="command", required=True, metavar="<command>")

    from .data.demo import DemoConfig
    from .experiments.grid import PAPER_ATTACKS, VISUAL_MODELS

    d = sub.add_parser("demo", help="generate the offline demo catalog (cached)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--users", type=int, default=DemoConfig.n_users)
    d.add_argument("--items", type=int, default=DemoConfig.n_items)
    d.add_argument("--interactions", type=int, default=DemoConfig.n_interactions)
    d.add_argument("--corpus", type=int, default=DemoConfig.n_corpus,
                   help="labelled classifier-training images")
    d.add_argument("--workers", type=int, default=None, help="render processes (default: 2)")
    d.add_argument("--out", help="write to this new folder instead of the cache")
    d.add_argument("--force", action="store_true", help="regenerate the cached copy")
    d.add_argument("--contact-sheet", metavar="PNG", help="also save one item per category")
    d.set_defaults(func=_cmd_demo)

    i = sub.add_parser("info", help="statistics of a dataset: 'demo' or a folder")
    i.add_argument("dataset", help="'demo', or a folder in the authors' or the generic layout")
    i.add_argument("--k-core", type=int, default=0, help="generic layout: k-core filter")
    i.add_argument("--duplicates", choices=DUPLICATES, default=DataConfig.duplicates,
                   help="what to do with repeated (user, item) rows")
    i.add_argument("--check-images", action="store_true", help="decode every image")
    i.add_argument("--json", action="store_true", help="machine-readable output")
    i.set_defaults(func=_cmd_info)

    t = sub.add_parser("train-extractor", help=f"train the demo CNN ({', '.join(DEFENSES.available())})")
    _add_extractor_args(t)
    t.add_argument("--json", action="store_true")
    t.set_defaults(func=_cmd_train_extractor)

    e = sub.add_parser("extract", help="classify every item and extract its features")
    e.add_argument("dataset", help="'demo' or a dataset folder")
    _add_extractor_args(e)
    e.add_argument("--batch-size", type=int, default=128)
    e.set_defaults(func=_cmd_extract)

    a = sub.add_parser("attack", help="perturb a source category towards a target class")
    a.add_argument("dataset", help="'demo' or a dataset folder")
    a.add_argument("--source", required=True,
                   help="category to perturb, e.g. Sandal (ResNet50: a name or an ImageNet "
                        "index such as 774)")
    a.add_argument("--target", required=True,
                   help="class to reach, e.g. 'Running shoe' (ResNet50: or 770)")
    _add_attack_args(a)
    _add_upload_args(a)
    _add_attack_precision_arg(a)
    a.add_argument("--batch-size", type=int, default=64)
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--lpips", default="vgg,alex", help="LPIPS backbones, comma-separated ('' none)")
    a.add_argument("--json", action="store_true")
    _add_extractor_args(a)
    _add_categories_arg(a)
    a.set_defaults(func=_cmd_attack)

    mp = sub.add_parser("maps", help="one attacked item's clean, perturbed and metric maps "
                                     "as PNG files")
    mp.add_argument("result", help="an attack result folder (cache/attack/<key>) or a computed "
                                   "cell label such as pgd-8/traditional")
    mp.add_argument("--dataset", default="demo", help="the dataset it was made on (default: demo)")
    mp.add_argument("--item", required=True, help="the attacked item's id (metrics.csv 'item')")
    mp.add_argument("--out", required=True, help="folder to write the PNGs into")
    mp.add_argument("--zoom", type=int, default=1, help="integer nearest-neighbour zoom")
    mp.set_defaults(func=_cmd_maps)

    r = sub.add_parser("train-rec", help="train and evaluate a recommender on clean features")
    r.add_argument("dataset", help="'demo' or a dataset folder")
    _add_rec_args(r)
    r.add_argument("--seeds", type=int, nargs="+", default=[0],
                   help="training seeds (several: with --against)")
    r.add_argument("--against", choices=RECOMMENDERS.available(),
                   help="also train this model with the same seeds and report the paired "
                        "difference of every accuracy metric (e.g. vbpr --against bprmf)")
    _add_extractor_args(r)
    _add_categories_arg(r)
    r.set_defaults(func=_cmd_train_rec)

    pz = sub.add_parser("poison", help="the paper's experiment: CHR@K before/after poisoning")
    pz.add_argument("dataset", help="'demo' or a dataset folder")
    pz.add_argument("--source", help="category to push (default: the least popular)")
    pz.add_argument("--target", help="class to imitate (default: the most popular)")
    pz.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    _add_attack_args(pz)
    _add_upload_args(pz)
    _add_attack_precision_arg(pz)
    _add_rec_args(pz)
    _add_extractor_args(pz)
    _add_categories_arg(pz)
    _add_feature_scale_arg(pz)
    pz.set_defaults(func=_cmd_poison)

    pf = sub.add_parser("poison-features", help="Table 1 without a CNN: the recommender on "
                                                "precomputed clean vs poisoned features.npy")
    pf.add_argument("dataset", help="a dataset folder (e.g. the authors' amazon_men)")
    pf.add_argument("--clean", required=True, help="clean features.npy (N x D; row = item id, "
                                                   "or the order of features_items.txt)")
    pf.add_argument("--poisoned", required=True, help="the attacked run's features.npy")
    pf.add_argument("--source", required=True, help="the pushed category")
    pf.add_argument("--defense", default=TRADITIONAL.name, choices=DEFENSES.available(),
                    help="whose classes.csv gives the categories (original/, madry_original/, "
                         "free_adv_original/)")
    _add_rec_args(pf)
    pf.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    pf.add_argument("--device", default="auto", help="auto | cpu | cuda ...")
    _add_feature_scale_arg(pf)
    pf.set_defaults(func=_cmd_poison_features)

    g = sub.add_parser("grid", help="the paper's attack x defense x recommender grid "
                                    "(computed cells; --run computes the rest)")
    g.add_argument("dataset", help="'demo' or a dataset folder")
    g.add_argument("--source", help="category to push (default: the least popular)")
    g.add_argument("--target", help="class to imitate (default: the most popular)")
    g.add_argument("--attacks", nargs="+",
                   help=f"default: {' '.join(PAPER_ATTACKS)} (the paper's rows)")
    g.add_argument("--defenses", nargs="+", choices=DEFENSES.available(),
                   help="default: all of them")
    g.add_argument("--models", nargs="+", choices=RECOMMENDERS.available(),
                   help=f"default: {' '.join(VISUAL_MODELS)}")
    g.add_argument("--seeds", type=int, nargs="+", help="default: 0 1 2")
    g.add_argument("--limit", type=int, help="attack only the first N source items")
    g.add_argument("--cw-steps", type=int, default=0,
                   help="C&W iterations per search step (default 0: the paper's 1000)")
    g.add_argument("--rec-epochs", type=int, help="recommender epochs")
    _add_precision_arg(g)
    g.add_argument("--run", action="store_true", help="compute the missing cells")
    g.add_argument("--ray", metavar="ADDRESS", nargs="?", const="auto",
                   default=os.environ.get(RAY_ADDRESS_ENV),
                   help="compute the steps on Ray: auto (the cluster this machine joined), "
                        "local (start one here) or ray://host:port (default: $ADVREC_RAY_ADDRESS; "
                        "unset: in this process)")
    g.add_argument("--ray-shared-cache", action="store_true",
                   help="Ray workers write into this cache folder (ADVREC_CACHE on storage "
                        "every node mounts at the same path) instead of shipping results back")
    g.add_argument("--csv", help="also write the table to this CSV file")
    _add_extractor_args(g, defense=False, per_defense=True)
    _add_categories_arg(g)
    _add_feature_scale_arg(g)
    _add_upload_args(g)
    _add_attack_precision_arg(g)
    g.set_defaults(func=_cmd_grid)

    rp = sub.add_parser("report", help="a one-page self-contained HTML report: the story, "
                                       "Tables 1-2 beside the paper's, the studies")
    rp.add_argument("dataset", help="'demo' or a dataset folder")
    rp.add_argument("--out", required=True, help="the .html file to write")
    rp.set_defaults(func=_cmd_report)

    rg = sub.add_parser("regime", help="how robust is an extractor: clean / PGD accuracy and "
                                       "the targeted SR of FGSM and PGD per defense")
    rg.add_argument("dataset", help="'demo' or a dataset folder")
    rg.add_argument("--defense", nargs="+", default=DEFENSES.available(),
                    choices=DEFENSES.available(), help="default: all of them")
    rg.add_argument("--source", help="category to attack (default: the least popular)")
    rg.add_argument("--target", help="class to reach (default: the most popular)")
    rg.add_argument("--limit", type=int, help="attack only the first N source items")
    rg.add_argument("--cw", action="store_true", help="also C&W (slow)")
    rg.add_argument("--cw-steps", type=int, default=0,
                    help="C&W iterations per search step (default 0: the paper's 1000, as "
                         "the grid's)")
    rg.add_argument("--json", action="store_true", help="one JSON object")
    _add_extractor_args(rg, defense=False, per_defense=True)
    _add_categories_arg(rg)
    rg.set_defaults(func=_cmd_regime)

    sy = sub.add_parser("study", help="perceptibility studies: list; export answers and the "
                                      "analysis (CSV / JSON); invite: personal links")
    sy.add_argument("action", choices=["list", "export", "invite"])
    sy.add_argument("study", nargs="?", type=int, help="export, invite: the study id")
    sy.add_argument("--n", type=int, default=10, help="invite: how many personal links")
    sy.add_argument("--base", default="", help="invite: the study server's address, e.g. "
                                               "https://study.example.org")
    sy.add_argument("--out", default="study_export", help="export folder")
    sy.add_argument("--db", help="SQLAlchemy URL (default: $ADVREC_STUDY_DB or "
                                 "studydata/study.sqlite)")
    sy.add_argument("--keep-failing", action="store_true",
                    help="keep annotators who failed catch trials in the summary")
    sy.set_defaults(func=_cmd_study)

    ss = sub.add_parser("serve-study", help="the study server: participants' pages and the "
                                            "admin app, in study mode (needs "
                                            "ADVREC_ADMIN_PASSWORD and ADVREC_STUDY_SECRET)")
    ss.add_argument("--host", default="127.0.0.1", help="address to listen on (behind a "
                                                         "reverse proxy: keep 127.0.0.1)")
    ss.add_argument("--port", type=int, default=8501)
    ss.add_argument("--db", help="SQLAlchemy URL (default: $ADVREC_STUDY_DB or "
                                 "studydata/study.sqlite)")
    ss.set_defaults(func=_cmd_serve_study)

    c = sub.add_parser("cache", help="gc: remove build folders a killed process left behind; "
                                     "verify: re-read every entry and report corrupt ones")
    c.add_argument("action", choices=["gc", "verify"])
    c.add_argument("--stale-after", type=float, default=None, metavar="SECONDS",
                   help="gc: another host's build folder goes when its heartbeat is older "
                        "than this (default 600); this host's go when their process has "
                        "ended, never for their age")
    c.set_defaults(func=_cmd_cache)

    w = sub.add_parser("lpips-weights", help="status / fetch / import LPIPS backbone weights")
    w.add_argument("action", choices=["status", "fetch", "import"])
    w.add_argument("file", nargs="?", help="import: the weights file")
    w.add_argument("--net", choices=["vgg", "alex"])
    w.set_defaults(func=_cmd_lpips_weights)
    return p


def _terminated(signum, frame) -> None:
    """SIGTERM: unwind like Ctrl-C, so every build in progress removes its folder."""
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    import signal
    import threading

    here = threading.current_thread() is threading.main_thread()
    before = signal.signal(signal.SIGTERM, _terminated) if here else None
    try:
        return _main(argv)
    finally:
        if here:
            signal.signal(signal.SIGTERM, before)


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.command != "cache":
        _cache(args).gc()  # debris of killed runs (builders provably gone)
    if getattr(args, "trust_checkpoint", False):
        from .models.resnet import TRUST_ENV

        os.environ[TRUST_ENV] = "1"  # the loader's one switch
    try:
        return args.func(args)
    except AdvRecError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
