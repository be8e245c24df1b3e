"""`demo`: generate the offline demo catalog; `info`: a dataset's statistics."""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from ..cache import atomic_write_bytes
from ..errors import AdvRecError
from ..progress import TqdmProgress
from . import options


def register(sub) -> None:
    from ..data.demo import DemoConfig

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
    d.set_defaults(func=demo)

    i = sub.add_parser("info", help="statistics of a dataset: 'demo' or a folder")
    options.add_dataset(i)
    i.add_argument("--check-images", action="store_true", help="decode every image")
    i.add_argument("--json", action="store_true", help="machine-readable output")
    i.set_defaults(func=info)


def demo(args: argparse.Namespace) -> int:
    from ..data.demo import DemoConfig, contact_sheet, demo_folder, generate_demo

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
        out = demo_folder(config, options.cache(args), progress, workers=args.workers,
                          force=args.force)
    elapsed = time.perf_counter() - t0
    if args.contact_sheet:
        import io

        buf = io.BytesIO()
        contact_sheet(out).save(buf, format="PNG")
        atomic_write_bytes(Path(args.contact_sheet), buf.getvalue())
    print(f"demo catalog: {out}  ({elapsed:.1f} s)")
    return 0


def info(args: argparse.Namespace) -> int:
    progress = TqdmProgress(disable=args.quiet)
    ds = options.dataset(args, progress)
    table, pop = ds.category_table(), ds.item_popularity()
    report = {**ds.summary(), "notes": ds.notes,
              "item popularity": {"min": int(pop.min()), "median": float(np.median(pop)),
                                  "max": int(pop.max())},
              "categories": table.to_dict(orient="records")}
    if args.check_images:
        report["image problems"] = ds.check_images(progress).to_dict(orient="records")
    if args.json:
        print(json.dumps(report, indent=1, default=str))
        return 0
    _print_info(ds, table, pop)
    if args.check_images:
        bad = report["image problems"]
        print(f"\nimages: {len(ds.image_paths) - len(bad)} fine, {len(bad)} converted or failed")
        for row in bad[:20]:
            print(f"  {row['status']:9} {row['path']}: {row['message']}")
        if any(row["status"] == "error" for row in bad):
            return 1
    return 0


def _print_info(ds, table, pop) -> None:
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
