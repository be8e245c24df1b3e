"""Attack throughput: our FGSM / PGD-10 vs torchattacks, same model, batch and device, in one
run (ratio > 1: ours is faster), plus C&W L2 time per image at the paper's settings.

    python benchmarks/attacks.py                 # CPU: the demo CNN at its 96x96 (fp32, and
                                                 # bf16 search where the CPU has AVX512-BF16)
    python benchmarks/attacks.py --resnet50      # also ResNet50 at 224x224 (on CUDA: bf16
                                                 # autocast + channels_last; target >= 2,000
                                                 # images/s PGD-10 on an H100)
Needs torchattacks (pip install --no-deps -r requirements-test.txt)."""
from __future__ import annotations

import argparse
import contextlib
import sys
import time

import numpy as np
import torch

from advrec_core.attacks import FGSM, PGD, CarliniWagnerL2, quantize, search_model
from advrec_core.data import load_dataset
from advrec_core.experiments.images import item_images
from advrec_core.extractors import ExtractorConfig, load_extractor
from advrec_core.models import ResNet50


def timed(fn, repeats: int, sync) -> float:
    fn()  # warm-up
    sync()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync()
    return (time.perf_counter() - t0) / repeats


def compare(name: str, model, x, y, repeats: int, autocast, bf16: bool = False) -> None:
    """Ours (fp32; and bf16 where `bf16`) vs torchattacks (fp32) on the same model, batch and
    device: images/s, ratio, success rate on the 8-bit result, and the largest difference
    between our fp32 output and torchattacks' (the paper's PGD: no random start)."""
    import torchattacks

    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    rows = []
    for label, ours, peer in [
        ("FGSM", FGSM(8 / 255), torchattacks.FGSM(model, eps=8 / 255)),
        ("PGD-10", PGD(8 / 255, steps=10),
         torchattacks.PGD(model, eps=8 / 255, alpha=8 / 255 / 6, steps=10, random_start=False)),
    ]:
        peer.set_mode_targeted_by_label(quiet=True)
        with autocast():
            t_ours = timed(lambda ours=ours: ours(model, x, y), repeats, sync)
            t_peer = timed(lambda peer=peer: peer(x, y), repeats, sync)
            a_ours, a_peer = ours(model, x, y), peer(x, y)
        row = {"label": label, "ours": len(x) / t_ours, "peer": len(x) / t_peer,
               "sr_ours": sr(model, a_ours, y), "sr_peer": sr(model, a_peer, y),
               "diff": (a_ours.float() - a_peer.float()).abs().max().item()}
        if bf16:
            view, context = search_model(model, "bf16", x.device)
            with context():
                t_bf = timed(lambda ours=ours, view=view: ours(view, x, y), repeats, sync)
                a_bf = ours(view, x, y).float()
            row |= {"bf16": len(x) / t_bf, "sr_bf16": sr(model, a_bf, y)}
        rows.append(row)
    print(f"\n{name}: batch {len(x)}, {tuple(x.shape[1:])}, {x.device}")
    print(f"{'attack':8} {'ours img/s':>11} {'torchattacks':>13} {'ratio':>6} {'SR ours':>8} "
          f"{'SR peer':>8} {'max|diff|':>10}" + (f" {'bf16 img/s':>11} {'ratio':>6} "
                                                 f"{'SR bf16':>8}" if bf16 else ""))
    for r in rows:
        line = (f"{r['label']:8} {r['ours']:11.1f} {r['peer']:13.1f} {r['ours'] / r['peer']:5.2f}x "
                f"{r['sr_ours']:8.1%} {r['sr_peer']:8.1%} {r['diff']:10.2e}")
        if bf16:
            line += f" {r['bf16']:11.1f} {r['bf16'] / r['peer']:5.2f}x {r['sr_bf16']:8.1%}"
        print(line)


def sr(model, adv, y) -> float:
    """Targeted success on the 8-bit image, judged in fp32 by the original model."""
    with torch.no_grad():
        return (model(quantize(adv.float())).argmax(1) == y).float().mean().item()


def cw_time(model, x, y, bf16: bool) -> None:
    """C&W L2 at the paper's settings (5 x 1000 Adam steps, abort early, c0 1e-2) on the
    same images: seconds per image, SR (fp32, 8-bit) and the successful images' mean L2;
    fp32, and bf16 search with fp32 judging where the CPU has it."""
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    for precision in ("fp32", "bf16") if bf16 else ("fp32",):
        view, context = search_model(model, precision, x.device)
        sync()
        t0 = time.perf_counter()
        with context():
            adv = CarliniWagnerL2()(view, x, y).float()
        sync()
        dt = time.perf_counter() - t0
        with torch.no_grad():
            ok = model(quantize(adv)).argmax(1) == y
        l2 = (adv - x).flatten(1).norm(dim=1)[ok].mean().item()
        print(f"C&W L2 {precision} (5 x 1000 steps, abort early): {dt / len(x):.3f} s/image "
              f"over {len(x)} images (SR {ok.float().mean():.0%}, mean L2 {l2:.4f})")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--resnet50", action="store_true")
    ap.add_argument("--cw-images", type=int, default=64,
                    help="images for the C&W timing (default: every Sandal image; 0: skip)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    dev = torch.device(args.device)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, device {dev}"
          + (f" ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else ""))
    g = torch.Generator().manual_seed(0)
    # the Traditional demo CNN (trained once, cached) on the demo catalog's Sandal images,
    # targeted at Running shoe: the paper's setting in miniature
    ds = load_dataset("demo")
    model, _ = load_extractor(ExtractorConfig(), ds.corpus, device=dev)
    items = np.flatnonzero(ds.category_names() == "Sandal")[:args.batch]
    x = item_images(ds, items, model.input_size).to(dev)  # the demo's own 96 px
    y = torch.full((len(x),), model.class_names.index("Running shoe"), device=dev)
    bf16 = dev.type == "cuda" or torch.ops.mkldnn._is_mkldnn_bf16_supported()
    compare("demo-cnn (Traditional), Sandal -> Running shoe", model, x, y, args.repeats,
            contextlib.nullcontext, bf16)
    if args.cw_images:
        cw_time(model, x[:args.cw_images], y[:args.cw_images], bf16)
    if args.resnet50:
        model = ResNet50().to(dev).freeze()
        autocast = contextlib.nullcontext
        if dev.type == "cuda":
            model = model.to(memory_format=torch.channels_last)
            autocast = lambda: torch.autocast("cuda", dtype=torch.bfloat16)  # noqa: E731
        n = 256 if dev.type == "cuda" else 8
        x = (torch.randint(0, 256, (n, 3, 224, 224), generator=g).float() / 255).to(dev)
        if dev.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        y = torch.randint(0, 1000, (n,), generator=g).to(dev)
        compare("resnet50", model, x, y, max(1, args.repeats // 2), autocast)
    return 0


if __name__ == "__main__":
    sys.exit(main())
