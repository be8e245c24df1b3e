"""Headless command line: ``python -m advrec_core <command> ...``.

Every command prints plain text (or JSON with --json), shows tqdm progress on long steps,
and turns a bad-input error into one clear line on stderr with exit code 2."""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from .cache import Cache, atomic_write_bytes
from .errors import AdvRecError
from .progress import TqdmProgress


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
    from .data.loaders import DataConfig, load_dataset

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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m advrec_core",
                                description="AdvRec Lab engine: adversarially poisoned product "
                                            "images vs visual recommenders.")
    p.add_argument("--cache", help="cache folder (default: $ADVREC_CACHE or ./cache)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    sub = p.add_subparsers(dest="command", required=True, metavar="<command>")

    d = sub.add_parser("demo", help="generate the offline demo catalog (cached)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--users", type=int, default=2000)
    d.add_argument("--items", type=int, default=600)
    d.add_argument("--interactions", type=int, default=15000)
    d.add_argument("--corpus", type=int, default=3000, help="labelled classifier-training images")
    d.add_argument("--workers", type=int, default=None, help="render processes (default: 2)")
    d.add_argument("--out", help="write to this new folder instead of the cache")
    d.add_argument("--force", action="store_true", help="regenerate the cached copy")
    d.add_argument("--contact-sheet", metavar="PNG", help="also save one item per category")
    d.set_defaults(func=_cmd_demo)

    i = sub.add_parser("info", help="statistics of a dataset: 'demo' or a folder")
    i.add_argument("dataset", help="'demo', or a folder in the authors' or the generic layout")
    i.add_argument("--k-core", type=int, default=0, help="generic layout: k-core filter")
    i.add_argument("--duplicates", choices=["error", "first", "last"], default="error",
                   help="what to do with repeated (user, item) rows")
    i.add_argument("--check-images", action="store_true", help="decode every image")
    i.add_argument("--json", action="store_true", help="machine-readable output")
    i.set_defaults(func=_cmd_info)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except AdvRecError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
