"""`grid`: the paper's attack x defense x recommender grid (its computed cells; --run
computes the rest, as one plan); `regime`: how robust each defense's extractor is."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..defenses import DEFENSES, TRADITIONAL
from ..progress import TqdmProgress
from ..recommenders import KS, RECOMMENDERS
from . import options, settings
from .recommend import dataset_and_pair


def register(sub) -> None:
    from ..experiments.grid import PAPER_ATTACKS, PAPER_MODELS, VISUAL_MODELS

    g = sub.add_parser("grid", help="the paper's attack x defense x recommender grid "
                                    "(computed cells; --run computes the rest)")
    options.add_dataset(g)
    g.add_argument("--source", help="category to push (default: the least popular)")
    g.add_argument("--target", help="class to imitate (default: the most popular)")
    g.add_argument("--attacks", nargs="+",
                   help=f"default: {' '.join(PAPER_ATTACKS)} (the paper's rows); beyond the "
                        f"paper: expa-8, insa-8, adaptive-pgd-8 (plans for the platform's "
                        f"defense)")
    g.add_argument("--platforms", nargs="+", type=settings.channel_arg,
                   help="the platform's defenses, an axis (channels: png = none, jpeg:75, "
                        "bits:5+median:2, denoise); default: --channel's one")
    g.add_argument("--defenses", nargs="+", choices=DEFENSES.available(),
                   help="default: all of them")
    g.add_argument("--models", nargs="+", choices=RECOMMENDERS.available(),
                   help=f"default: the paper's {' '.join(PAPER_MODELS)}; the visual ones: "
                        f"{' '.join(VISUAL_MODELS)}")
    g.add_argument("--seeds", type=int, nargs="+", help="default: 0 1 2")
    g.add_argument("--cw-steps", type=int, default=0,
                   help="C&W iterations per search step (default 0: the paper's 1000)")
    settings.add_attack(g, one=False)  # the rows' settings (the rows name attack and eps)
    settings.add_rec(g, model=False, cutoffs=False)
    g.add_argument("--run", action="store_true", help="compute the missing cells")
    options.add_ray(g)
    g.add_argument("--csv", help="also write the table to this CSV file")
    options.add_extractor(g, defense=False, per_defense=True)
    options.add_categories(g)
    options.add_feature_scale(g)
    g.set_defaults(func=grid)

    rg = sub.add_parser("regime", help="how robust is an extractor: clean / PGD accuracy and "
                                       "the targeted SR of FGSM and PGD per defense")
    options.add_dataset(rg)
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
    options.add_extractor(rg, defense=False, per_defense=True)
    options.add_categories(rg)
    rg.set_defaults(func=regime)


def grid_spec(args: argparse.Namespace):
    """(progress, dataset, the grid): a template of the options' settings, the axes of
    --attacks/--defenses/--models; every cell's weights checked before any work."""
    from ..experiments.grid import GridSpec, cell_extractor
    from ..experiments.inputs import check_inputs
    from ..extractors import preflight

    weights = options.weights_pairs(args.weights)
    extractor = options.extractor(args, defense=TRADITIONAL.name)
    for d in args.defenses or DEFENSES.available():
        preflight(cell_extractor(extractor, weights, d))
    rec = settings.rec_config(args, own=False)
    progress, ds, source, target = dataset_and_pair(
        args, cell_extractor(extractor, weights, TRADITIONAL.name), (GridSpec.k,))
    axes = {k: tuple(v) for k, v in (("attacks", args.attacks), ("defenses", args.defenses),
                                     ("models", args.models), ("seeds", args.seeds),
                                     ("platforms", args.platforms)) if v}
    for model in axes.get("models", GridSpec.models):  # DVBPR's images, ACF's maps fit
        check_inputs(ds, rec.for_model(model), extractor, options.cache(args))
    return progress, ds, GridSpec.of(
        source, target, attack_settings=settings.attack_settings(args),
        rec_params=tuple(settings.rec_params(args).items()), limit=args.limit,
        cw_steps=args.cw_steps or None, eot=args.eot,
        extractor=extractor, categories=args.categories, weights=weights,
        feature_scale=args.feature_scale, upload=settings.upload(args),
        precision=args.attack_precision, rec=rec, **axes).fitted(ds.n_items)


def grid(args: argparse.Namespace) -> int:
    from ..experiments.grid import LPIPS_MISSING, grid_table, table2_columns
    from ..experiments.steps import check_ray, run_plan

    if args.run and args.ray:  # a wrong address, before any work
        check_ray(args.ray)
    progress, ds, spec = grid_spec(args)
    if spec.ks != KS:
        print(f"cut-offs     {' '.join(map(str, spec.ks))} (those above the {ds.n_items} items "
              f"dropped)")
    cache = options.cache(args)
    if args.run:
        out = run_plan(spec.jobs(), ds, cache, args.device, progress, ray=args.ray,
                       shared=args.ray_shared_cache, quiet=args.quiet)
        print(f"steps        {out.computed} computed, {out.cached} found in the cache"
              + (f", {len(out.skipped)} skipped" if out.skipped else "")
              + f" ({out.seconds:.1f} s" + (f" on Ray {args.ray}" if args.ray else
                                            " in this process") + ")")
        for title, why in out.skipped.items():  # e.g. this defense predicts no source item
            print(f"  skipped: {title}: {why}", flush=True)
        if out.timed:
            print("time         " + time_line(out))
    table = grid_table(ds, spec, cache)
    print(f"grid         {spec.source} -> {spec.target}, seeds {list(spec.seeds)}, "
          f"{int(table['computed'].sum())}/{len(table)} cells computed"
          + ("" if args.run else " (--run computes the missing ones)"))
    print("categories   " + ("predicted by each cell's extractor" if spec.categories == "predicted"
                             else "given by the dataset"))
    cols = ["model", "attack", "defense", *(["platform"] if len(spec.channels) > 1 else []),
            f"CHR@{spec.k} clean", f"CHR@{spec.k} poisoned", "change", "ci95", "relative",
            "p_value", *table2_columns(table)]
    print(table[cols].round(4).to_string(index=False, na_rep="-"))
    if "LPIPS-vgg" not in cols and table["SR"].notna().any():
        print(LPIPS_MISSING)
    if args.csv:
        from ..cache import atomic_write_text

        atomic_write_text(Path(args.csv), table.to_csv(index=False))
        print(f"\nwritten      {args.csv}")
    return 0


def time_line(out) -> str:
    """Where a run's time went: seconds per kind of step, the recommender runs per model."""
    by_model: dict[str, float] = {}
    for step, sec in out.timed:
        if step.kind == "runs":
            by_model[step.job.cell.rec.model] = by_model.get(step.job.cell.rec.model, 0.0) + sec
    parts = []
    for kind, sec in sorted(out.seconds_by_kind.items(), key=lambda kv: -kv[1]):
        models = ", ".join(f"{m} {s:.0f} s" for m, s in sorted(by_model.items(),
                                                                key=lambda kv: -kv[1]))
        parts.append(f"{kind} {sec:.0f} s" + (f" ({models})" if kind == "runs" else ""))
    return "; ".join(parts)


def regime(args: argparse.Namespace) -> int:
    from ..experiments.regime import regime as measure

    weights = options.weights_pairs(args.weights)  # before any work
    progress = TqdmProgress(disable=args.quiet)
    cache = options.cache(args)
    ds = options.dataset(args, progress)
    out = measure(ds, tuple(dict.fromkeys(args.defense)),
                  options.extractor(args, defense=TRADITIONAL.name), args.source, args.target,
                  args.categories, args.limit, args.cw, args.cw_steps or None, cache,
                  args.device, progress, weights)
    if args.json:
        print(json.dumps(out, indent=1))
        return 0
    _print_regime(out)
    return 0


def _print_regime(out: dict) -> None:
    import pandas as pd

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
