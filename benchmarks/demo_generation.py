"""Demo catalog generation time at the default size (target: < 60 s on 2 CPU cores).

Generates the default demo into temporary folders with 1 and with 2 render processes,
side by side in one run, checks both outputs are byte-identical, and prints the speed-up.

    python benchmarks/demo_generation.py
"""
from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

from advrec_core.data.demo import DemoConfig, generate_demo

TARGET_S = 60.0  # seconds, issue 11: demo generation < 60 s on 2 cores


def digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(folder).as_posix().encode() + p.read_bytes())
    return h.hexdigest()


def main() -> int:
    config = DemoConfig()
    times, digests = {}, {}
    for workers in (1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            generate_demo(Path(tmp), config, workers=workers)
            times[workers] = time.perf_counter() - t0
            digests[workers] = digest(Path(tmp))
    print(f"cpu cores: {os.cpu_count()}  config: {config.n_users} users, {config.n_items} items, "
          f"{config.n_interactions} interactions, {config.n_corpus} corpus images")
    for w, t in times.items():
        print(f"workers={w}: {t:6.1f} s")
    print(f"speed-up 2 vs 1 workers: {times[1] / times[2]:.2f}x")
    print(f"outputs identical: {digests[1] == digests[2]}")
    ok = times[2] < TARGET_S and digests[1] == digests[2]
    print(f"target < {TARGET_S:.0f} s with the default 2 workers: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
