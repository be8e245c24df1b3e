"""The whole demo grid at the paper's settings, timed stage by stage: every attack of
Tables 1-2 (FGSM and PGD at 4 and 8, C&W with 5 x 1000 steps), every defense, VBPR and AMR,
3 seeds, the source and target the grid proposes. The extractors are trained first (not
timed, as they would be on a machine that has run anything before); everything else starts
cold, in a fresh cache. Prints the wall time against the 10-minute target and each stage's
seconds and share.

    python benchmarks/grid.py                          # in process, fp32 attacks
    python benchmarks/grid.py --attack-precision bf16  # the attacks' bf16 search (AVX512-BF16)
    python benchmarks/grid.py --cw-steps 100           # a tenth of the paper's C&W budget"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from advrec_core.cache import Cache
from advrec_core.data import load_dataset
from advrec_core.device import PRECISIONS
from advrec_core.experiments.grid import GridSpec, grid_table
from advrec_core.experiments.poison import choose_pair
from advrec_core.experiments.steps import run_plan

TARGET_S = 600


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cw-steps", type=int, default=0, help="0: the paper's 1000")
    ap.add_argument("--attack-precision", choices=PRECISIONS, default="fp32")
    ap.add_argument("--models", nargs="+", default=["vbpr", "amr"])
    args = ap.parse_args(argv)
    ds = load_dataset("demo")
    home = Cache.default()
    settings = dict(models=tuple(args.models), cw_steps=args.cw_steps or None,
                    precision=args.attack_precision)
    spec = GridSpec.of("", "", **settings)
    run_plan([spec.extractor_for(d) for d in spec.defenses], ds, home)  # trained once,
    # outside the timing
    with tempfile.TemporaryDirectory() as tmp:
        cache = Cache(Path(tmp)).link_entries(home, ("extractor",))
        t0 = time.perf_counter()
        source, target = choose_pair(ds, spec.extractor_for("traditional"), spec.categories,
                                     cache=cache)
        spec = GridSpec.of(source, target, **settings).fitted(ds.n_items)
        out = run_plan(spec.jobs(), ds, cache)
        wall = time.perf_counter() - t0
        table = grid_table(ds, spec, cache)
    print(f"demo grid, {source} -> {target}: {len(spec.cells())} cells "
          f"({int(table['computed'].sum())} computed, {len(out.skipped)} steps skipped), "
          f"C&W {spec.cw_steps or 1000} steps x 5, attacks in {args.attack_precision}, "
          f"{torch.get_num_threads()} threads")
    print(f"wall time {wall:.0f} s ({wall / 60:.1f} min; target < {TARGET_S / 60:.0f} min: "
          f"{'met' if wall < TARGET_S else f'missed by {wall - TARGET_S:.0f} s'})")
    stages = {"pair and status checks": wall - sum(out.seconds_by_kind.values()),
              **out.seconds_by_kind}
    for kind, sec in sorted(stages.items(), key=lambda kv: -kv[1]):
        print(f"  {kind:24s} {sec:7.1f} s  {sec / wall:6.1%}")
    for step, sec in sorted(out.timed, key=lambda t: -t[1])[:8]:
        print(f"  slowest: {step.title:45s} {sec:6.1f} s")


if __name__ == "__main__":
    main()
