"""What the perceptual metrics and maps cost the attack step, side by side in one run: the
demo's PGD-8 attack step (`run_attack_job`: Sandal -> Running shoe on the Traditional demo
CNN, extractor and features already cached, attack entry cold) with ATTACK_VERSION 2's metric
set (FL, norms, scalar SSIM, PSNR; no maps) vs today's (plus FLIP, ΔE2000, the FL map and
every spatial map, written). Prints the parts of today's metric work and the ratio; target:
the extra < 25% of the v2 step's wall time.

    python benchmarks/attack_metrics.py [--repeats 3]

Uses ./cache (or $ADVREC_CACHE) for the demo, extractor and features (trained on first use);
each timed step writes into a throw-away cache folder linked to them."""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

import advrec_core.experiments.attack as attack_step
from advrec_core.cache import Cache
from advrec_core.data import load_dataset
from advrec_core.experiments.attack import AttackJob, run_attack_job
from advrec_core.metrics import feature_loss, perceptual, perturbation_norms, visual_metrics


def v2_metrics(clean, adv, f_clean, f_adv, success, fl_map=None, lpips=(), batch=64):
    """ATTACK_VERSION 2's per-image metrics: FL, L-inf, L2, scalar SSIM and PSNR, no maps."""
    norms = perturbation_norms(clean, adv)
    a, b = clean.permute(0, 2, 3, 1).double().numpy(), adv.permute(0, 2, 3, 1).double().numpy()
    df = pd.DataFrame({"success": success.numpy().astype(bool),
                       "FL": feature_loss(f_clean, f_adv).numpy(),
                       "Linf": norms["linf"].numpy(), "L2": norms["l2"].numpy(),
                       "SSIM": [structural_similarity(p, q, channel_axis=2, data_range=1.0)
                                for p, q in zip(a, b)],
                       "PSNR": [peak_signal_noise_ratio(p, q, data_range=1.0) for p, q in zip(a, b)]})
    return df, {"maps": {}, "unavailable": {m.name: m.reason for m in lpips}}


def step_seconds(ds, job, shared: Path, metrics_fn) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("demo", "extractor", "features"):
            (Path(tmp) / kind).symlink_to(shared / kind)
        with mock.patch.object(attack_step, "visual_metrics", metrics_fn):
            t0 = time.perf_counter()
            run_attack_job(ds, job, Cache(tmp), device="cpu")
            return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    ds = load_dataset("demo")
    job = AttackJob("Sandal", "Running shoe")  # the paper's PGD-8 on Traditional
    cache = Cache.default()
    res = run_attack_job(ds, job, cache, device="cpu")  # trains / extracts once if needed
    steps = {"v2": [], "v3": []}
    for _ in range(args.repeats):  # interleaved, so drift hits both alike
        for name, fn in (("v2", v2_metrics), ("v3", visual_metrics)):
            steps[name].append(step_seconds(ds, job, Path(cache.root), fn))
    v2, v3 = min(steps["v2"]), min(steps["v3"])
    # the parts of today's metric work, on the same images
    clean = torch.from_numpy(np.stack([np.asarray(p) for p in (
        res.image_pair(ds, r)[0] for r in range(len(res.metrics)))])).permute(0, 3, 1, 2) / 255
    adv = torch.from_numpy(np.stack([res.image_pair(ds, r)[1]
                                     for r in range(len(res.metrics))])).permute(0, 3, 1, 2) / 255
    a, b = clean.permute(0, 2, 3, 1).numpy(), adv.permute(0, 2, 3, 1).numpy()
    parts = {}
    for name, fn in (("FLIP", perceptual.flip), ("DeltaE2000", perceptual.ciede2000),
                     ("SSIM map", perceptual.ssim_maps), ("|δ| map", perceptual.abs_change)):
        fn(a, b)  # warm-up
        t0 = time.perf_counter()
        fn(a, b)
        parts[name] = time.perf_counter() - t0
    print(f"demo PGD-8 attack step, {len(res.metrics)} images at {a.shape[1]} px, "
          f"{torch.get_num_threads()} threads, best of {args.repeats}:")
    print(f"  v2 metrics (FL, norms, SSIM, PSNR)        {v2:7.3f} s")
    print(f"  v3 metrics (+ FLIP, ΔE2000, FL map, maps) {v3:7.3f} s")
    print("  parts of v3: " + ", ".join(f"{k} {t:.3f} s" for k, t in parts.items()))
    print(f"v3 adds {v3 - v2:.3f} s = {(v3 - v2) / v2:.1%} of the step (target < 25%)")


if __name__ == "__main__":
    main()
