"""`train-extractor`: train the demo CNN under a defense; `extract`: classify every item and
extract its features."""
from __future__ import annotations

import argparse
import json
import sys

from ..defenses import DEFENSES
from ..progress import TqdmProgress
from . import options


def register(sub) -> None:
    t = sub.add_parser("train-extractor", help=f"train the demo CNN "
                                               f"({', '.join(DEFENSES.available())})")
    options.add_extractor(t)
    t.add_argument("--json", action="store_true")
    t.set_defaults(func=train_extractor)

    d = sub.add_parser("train-demo-cnns", help="retrain the demo's shipped CNNs and measure "
                                               "their regime (writes advrec_core/demo_weights)")
    d.add_argument("--defense", nargs="+", choices=DEFENSES.available(), default=None,
                   help="which of them (default: all)")
    d.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:1 ...")
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=train_demo_cnns)

    e = sub.add_parser("extract", help="classify every item and extract its features")
    options.add_dataset(e)
    options.add_extractor(e)
    e.add_argument("--batch-size", type=int, default=128)
    e.set_defaults(func=extract)


def train_extractor(args: argparse.Namespace) -> int:
    from ..data.loaders import load_dataset
    from ..extractors import load_extractor

    progress = TqdmProgress(disable=args.quiet)
    cache = options.cache(args)
    ds = load_dataset("demo", cache=cache, progress=progress)
    config = options.extractor(args)
    _, info = load_extractor(config, ds.corpus, cache, args.device, progress)
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


def train_demo_cnns(args: argparse.Namespace) -> int:
    from ..data.loaders import load_dataset
    from ..experiments.demo_cnns import write_shipped

    progress = TqdmProgress(disable=args.quiet)
    cache = options.cache(args)
    result = write_shipped(load_dataset("demo", cache=cache, progress=progress), cache,
                           tuple(args.defense or ()) or None, args.device, progress)
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(f"regime of the shipped CNNs ({result['machine']}; {result['source']} -> "
              f"{result['target']}):")
        for c in result["checks"]:
            value = "n/a" if c["value"] is None else f"{c['value']:.1%}"
            margin = ("-" if c["margin"] is None else
                      f"{c['margin']:.1%} ({c['margin_images']:.1f} of {c['n']} images)")
            print(f"  {c['defense']:12s} {c['field']:10s} {value:>7s}  range "
                  f"{c['low']:.0%}-{c['high']:.0%}  margin {margin:>26s}  "
                  f"{'ok' if c['inside'] else 'OUTSIDE'}")
    if not result["accepted"]:
        print(f"not accepted: an anchor is outside its range or within "
              f"{result['min_margin']} images of an edge; do not commit these files",
              file=sys.stderr)
        return 1
    return 0


def extract(args: argparse.Namespace) -> int:
    from ..experiments.extract import ExtractJob, extract_features

    progress = TqdmProgress(disable=args.quiet)
    ds = options.dataset(args, progress)
    feats = extract_features(ds, ExtractJob(options.extractor(args), args.batch_size),
                             options.cache(args), args.device, progress)
    acc = feats.accuracy(ds)
    print(f"features     {feats.features.shape[0]} items x {feats.features.shape[1]} dims -> "
          f"{feats.folder}")
    print(f"accuracy     {'n/a (no matching categories)' if acc is None else f'{acc:.2%}'} "
          "(predicted class vs dataset category)")
    return 0
