"""Nothing lost to kill -9: a 6-cell plan (3 attacks x Traditional x VBPR/AMR, a quick demo
CNN trained as its first step, small settings) run by `advrec grid --run` in a subprocess and
killed with SIGKILL at a random moment, then run again to the end; repeated --trials times,
each in a fresh cache. Every trial must end with the table of an uninterrupted run (every
column but timings equal), `cache verify` clean, and no build folder (.tmp-*) or training
checkpoint (.ckpt-*) left behind. Prints one line per trial: when it was killed, what the
cache held at that moment, and the outcome.

    python benchmarks/resilience.py                 # 10 trials
    python benchmarks/resilience.py --trials 3 --seed 1"""
from __future__ import annotations

import argparse
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from advrec_core.cache import Cache

GRID = ["grid", "demo", "--source", "Sandal", "--target", "Running shoe", "--categories", "true",
        "--attacks", "fgsm-4", "fgsm-8", "pgd-4", "--defenses", "traditional",
        "--models", "vbpr", "amr", "--limit", "6", "--seeds", "0", "1", "--rec-epochs", "5",
        "--epochs", "2", "--run"]
STEPS = ("extractor", "features", "attack", "rec")  # the entries a cell is made of


def advrec(cache: Path, *args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "advrec_core", "-q", "--cache", str(cache),
                             *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, **kw)


def finish(cache: Path, csv: Path) -> tuple[float, str]:
    """Run the plan to its end (the table written to `csv`): (seconds, output)."""
    t0 = time.perf_counter()
    proc = advrec(cache, *GRID, "--csv", str(csv))
    out, _ = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"grid --run failed ({proc.returncode}): {out[-2000:]}")
    return time.perf_counter() - t0, out


def held(cache: Path) -> str:
    """What the cache holds now, per step: entries and build folders."""
    parts = []
    for step in STEPS:
        folder = cache / step
        entries = len(list(folder.glob("[!.]*"))) if folder.is_dir() else 0
        building = len(list(folder.glob(".tmp-*"))) if folder.is_dir() else 0
        parts.append(f"{step} {entries}" + (f"+{building} building" if building else ""))
    return ", ".join(parts)


def table(csv: Path) -> pd.DataFrame:
    df = pd.read_csv(csv)
    return df[[c for c in df.columns if "second" not in c.lower()]]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0, help="of the kill moments")
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    home = Cache.default()
    advrec(Path(home.root), "demo").communicate()  # the demo shop, generated once
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ref_cache = tmp / "reference"
        Cache(ref_cache).link_entries(home, ("demo",))
        wall, _ = finish(ref_cache, tmp / "reference.csv")
        reference = table(tmp / "reference.csv")
        print(f"uninterrupted: {wall:.1f} s, {int(reference['computed'].sum())}/"
              f"{len(reference)} cells computed", flush=True)
        for trial in range(1, args.trials + 1):
            cache = tmp / f"trial{trial}"
            Cache(cache).link_entries(home, ("demo",))
            at = rng.uniform(1.0, wall)
            proc = advrec(cache, *GRID)
            time.sleep(at)
            state = held(cache) + (", already finished" if proc.poll() is not None else "")
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            again, _ = finish(cache, tmp / f"trial{trial}.csv")
            same = table(tmp / f"trial{trial}.csv").equals(reference)
            verify = advrec(cache, "cache", "verify").communicate()[0].strip().splitlines()[-1]
            verify = verify.split(" under ")[0]
            left = [p.name for p in cache.glob("*/.tmp-*")] + [p.name for p in cache.glob("*/.ckpt-*")]
            ok = same and " 0 corrupt entries" in verify and not left
            failures += not ok
            print(f"trial {trial:2d}: killed at {at:5.1f} s ({state}); rerun {again:5.1f} s: "
                  f"{'same table' if same else 'TABLE DIFFERS'}, verify: {verify}, "
                  f"{len(left)} leftover folders{': ' + ', '.join(left) if left else ''} "
                  f"-> {'ok' if ok else 'FAILED'}", flush=True)
    print(f"{args.trials - failures}/{args.trials} trials ended with the uninterrupted table, "
          f"a clean cache and nothing left behind")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
