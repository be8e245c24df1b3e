"""The same demo grid computed by the in-process runner and by Ray on this machine (a local
Ray with --workers CPUs, workers shipping their results back from their own cache folder),
side by side in one run: wall time, steps per second and the ratio; and whether both
tables are identical. Each backend starts from a cache holding only the trained
extractors and their features (they are trained once, before timing).

    python benchmarks/grid_scale.py                          # 4 attacks, T, VBPR+AMR, 3 seeds
    python benchmarks/grid_scale.py --attacks fgsm-4 --seeds 0 --workers 2
Needs ray (requirements-test.txt)."""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd

from advrec_core.cache import Cache
from advrec_core.data import load_dataset
from advrec_core.experiments.grid import GridSpec, grid_table
from advrec_core.experiments.poison import propose_pair
from advrec_core.experiments.steps import FeaturesJob, plan, run_plan
from advrec_core.jobs import connect_ray


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--attacks", nargs="+", default=["fgsm-4", "fgsm-8", "pgd-4", "pgd-8"])
    ap.add_argument("--defenses", nargs="+", default=["traditional"])
    ap.add_argument("--models", nargs="+", default=["vbpr", "amr"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--workers", type=int, default=2, help="CPUs of the local Ray")
    args = ap.parse_args(argv)
    ds = load_dataset("demo")
    spec = GridSpec.of(*propose_pair(ds), attacks=tuple(args.attacks),
                    defenses=tuple(args.defenses), models=tuple(args.models),
                    seeds=tuple(args.seeds), categories="true")
    home = Cache.default()
    run_plan([FeaturesJob(spec.extractor_for(d), spec.categories) for d in spec.defenses], ds,
             home)  # trained once, outside the timing
    n = len(plan(*spec.jobs()))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        results = {}
        for name in ("in-process", "ray-local"):
            cache = Cache(tmp / name).link_entries(home, ("extractor", "features"))
            if name == "ray-local":
                connect_ray("local", args.workers, {"ADVREC_CACHE": str(tmp / "workers")})
            t0 = time.perf_counter()
            out = run_plan(spec.jobs(), ds, cache, ray="auto" if name == "ray-local" else None)
            wall = time.perf_counter() - t0
            results[name] = (wall, out, grid_table(ds, spec, cache))
            print(f"{name:10s} {wall:7.1f} s  {out.computed} steps computed "
                  f"({out.computed / wall:.2f} steps/s), {out.cached} found cached")
        connect_ray().shutdown()
    (w_in, _, t_in), (w_ray, _, t_ray) = results["in-process"], results["ray-local"]
    same = t_in.equals(t_ray)
    print(f"grid: {len(spec.cells())} cells, {n} steps, {ds.n_items} items; "
          f"Ray-local / in-process wall time ratio {w_in / w_ray:.2f}x (> 1: Ray faster); "
          f"identical tables: {same}")
    if not same:
        print(pd.concat({"in-process": t_in, "ray-local": t_ray}, axis=1).to_string())


if __name__ == "__main__":
    main()
