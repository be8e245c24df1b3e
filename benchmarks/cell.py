"""One grid cell's recommender runs (3 seeds x clean + poisoned, trained and evaluated),
one run after another vs all six trained as one batched model (the default), and in two
fits of three, side by side in one run on the demo catalog, each into a fresh cache. Checks
that every run's numbers are identical across the ways, then prints median seconds over
rounds and ratios (> 1: faster than one by one).

The poisoned features are the clean ones with the Sandal items' rows replaced by Running
shoe rows (the same work as a real attack's features; no attack needs to run).

    python benchmarks/cell.py                  # VBPR and AMR, 3 rounds
    python benchmarks/cell.py --models vbpr --rounds 5"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import advrec_core.experiments.poison as P
from advrec_core.cache import Cache
from advrec_core.data import load_dataset
from advrec_core.experiments.extract import extract_features
from advrec_core.recommenders import Member, RecConfig

WAYS = {"one by one": 1, "two fits of three": 3, "one fit (default)": None}


def cell(ds, specs, rec, members_per_fit, root):
    t0 = time.perf_counter()
    runs = P.train_and_evaluate_runs(ds, specs, rec, np.arange(10), 0, Cache(root),
                                     torch.device("cpu"), members_per_fit=members_per_fit)
    return time.perf_counter() - t0, runs


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["vbpr", "amr"])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=RecConfig().epochs)
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    args = ap.parse_args(argv)
    ds = load_dataset("demo")
    clean = extract_features(ds).features
    names = ds.category_names()
    poisoned = clean.copy()
    src, tgt = np.flatnonzero(names == "Sandal"), np.flatnonzero(names == "Running shoe")
    poisoned[src] = clean[tgt[np.arange(len(src)) % len(tgt)]]
    scale = float(np.abs(clean).max())
    specs = [Member(s, f, scale) for s in (0, 1, 2) for f in (clean, poisoned)]
    print(f"demo: {ds.n_users} users x {ds.n_items} items, {len(ds.train)} training pairs, "
          f"{clean.shape[1]}-d features; {torch.get_num_threads()} threads; "
          f"{args.epochs} epochs; {args.precision}; 6 runs per cell")
    for model in args.models:
        rec = RecConfig(model=model, epochs=args.epochs, precision=args.precision)
        times = {w: [] for w in WAYS}
        for r in range(args.rounds):
            results = {}
            for way, size in WAYS.items():  # interleaved, so drift hits every way alike
                with tempfile.TemporaryDirectory() as tmp:
                    sec, runs = cell(ds, specs, rec, size, Path(tmp))
                    times[way].append(sec)
                    results[way] = [(run.report["accuracy"], run.chr.to_numpy().tolist(),
                                     run.topk().tolist()) for run in runs]
            same = all(results[w] == results["one by one"] for w in WAYS)
            print(f"{model} round {r + 1}: " + ", ".join(f"{w} {times[w][-1]:.2f} s" for w in WAYS)
                  + f"; identical numbers per run: {same}")
        base = statistics.median(times["one by one"])
        for way in WAYS:
            med = statistics.median(times[way])
            print(f"{model:5s} {way:20s} median {med:6.2f} s  best {min(times[way]):6.2f} s  "
                  f"ratio {base / med:4.2f}x")


if __name__ == "__main__":
    main()
