"""`attack`: perturb a source category towards a target class and measure it; `maps`: one
attacked item's images and metric maps as PNG files."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import AdvRecError
from ..progress import TqdmProgress
from . import options, settings


def register(sub) -> None:
    a = sub.add_parser("attack", help="perturb a source category towards a target class")
    options.add_dataset(a)
    a.add_argument("--source", required=True,
                   help="category to perturb, e.g. Sandal (ResNet50: a name or an ImageNet "
                        "index such as 774)")
    a.add_argument("--target", required=True,
                   help="class to reach, e.g. 'Running shoe' (ResNet50: or 770)")
    settings.add_attack(a)
    a.add_argument("--batch-size", type=int, default=64)
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--lpips", default="vgg,alex", help="LPIPS backbones, comma-separated ('' none)")
    a.add_argument("--json", action="store_true")
    options.add_extractor(a)
    options.add_categories(a)
    options.add_ray(a)
    a.set_defaults(func=attack)

    mp = sub.add_parser("maps", help="one attacked item's clean, perturbed and metric maps "
                                     "as PNG files")
    mp.add_argument("result", help="an attack result folder (cache/attack/<key>) or a computed "
                                   "cell label such as pgd-8/traditional")
    options.add_dataset(mp, positional=False)
    mp.add_argument("--item", required=True, help="the attacked item's id (metrics.csv 'item')")
    mp.add_argument("--out", required=True, help="folder to write the PNGs into")
    mp.add_argument("--zoom", type=int, default=1, help="integer nearest-neighbour zoom")
    mp.set_defaults(func=maps)


def attack(args: argparse.Namespace) -> int:
    from ..experiments.attack import AttackJob, run_attack_job
    from ..experiments.poison import choose_pair  # both given: names resolved, nothing run

    progress = TqdmProgress(disable=args.quiet)
    spec = settings.attack_spec(args)  # a setting the attack lacks: one line, before any work
    ds = options.dataset(args, progress)
    extractor = options.extractor(args)
    source, target = choose_pair(ds, extractor, args.categories, args.source, args.target)
    job = AttackJob(source=source, target=target, spec=spec, extractor=extractor,
                    limit=args.limit, batch_size=args.batch_size, seed=args.seed,
                    lpips=tuple(args.lpips.split(",")) if args.lpips else (),
                    categories=args.categories, upload=settings.upload(args),
                    precision=args.attack_precision)
    res = through_plan(run_attack_job, ds, job, args, progress)
    if args.json:
        print(json.dumps(res.summary, indent=1))
        return 0
    _print_attack(job, res)
    return 0


def _print_attack(job, res) -> None:
    from ..defenses.detection import detection_line
    from ..experiments.categories import describe
    from ..metrics.registry import IMAGE_METRICS

    s, avg = res.summary, res.summary["averages"]
    print(f"attack       {s['settings']}")
    print(f"on           {s['extractor']}, {s['source']} -> {s['target']}, {avg['n']} images "
          f"({s['attack_seconds']:.1f} s on {s['device']})")
    print(f"categories   {describe(job.categories, job.extractor)}")
    print(f"upload       {'full-size photo' if s['attack_at'] == 'full' else 'model-size image'} "
          f"({', '.join(s['photo_sizes'])}), through the platform's {s['channel']} channel")
    if job.upload.lossless:
        print(f"SR           {avg['SR']:.2%}  (after 8-bit quantisation)")
    else:
        print(f"SR           {avg['SR']:.2%}  after the {job.upload.channel} channel "
              f"({avg['success_upload']:.2%} on the upload before it)")
    for name, metric in IMAGE_METRICS.items():  # means over the images, as in metrics.csv
        if name in avg:
            value = (f"{avg[name] * metric.scale:.2f}{metric.unit}" if metric.scale != 1.0
                     else f"{avg[name]:.6g}")  # L-inf in 8-bit levels
            print(f"{name:12} {value:14} {metric.title}")
    if s.get("objective"):
        o = s["objective"]
        print(f"{'objective':12} {o['name']}: {o['clean']:.4g} clean -> {o['attacked']:.4g} "
              f"attacked ({s['goal']})")
    if s.get("adaptive"):
        print(f"{'adaptive':12} the attack planned for the {s['channel']} channel (BPDA"
              f"{', EOT ' + str(job.spec.eot) + ' draws per step' if job.upload.random else ''})")
    if "detection" in s:
        print(f"{'flagged':12} {detection_line(s['detection'])}")
    if s["unavailable"]:  # one line: which, and where to read why (status gives the paths)
        print(f"{'LPIPS':12} unavailable ({', '.join(s['unavailable'])}): no usable ImageNet "
              f"backbone weights; see 'python -m advrec_core lpips-weights status'")
    print(f"results      {res.folder}")


def through_plan(result, ds, job, args: argparse.Namespace, progress):
    """`job` computed as every command and page computes work (the plan of its steps, in
    this process or on Ray: --ray / $ADVREC_RAY_ADDRESS), then `result(ds, job)` read from
    the cache (a step that could not run, e.g. no item predicted as the source: its line)."""
    from ..experiments.steps import run_plan

    cache = options.cache(args)
    out = run_plan([job], ds, cache, args.device, progress, ray=getattr(args, "ray", None),
                   quiet=args.quiet)
    if out.skipped:
        return result(ds, job, cache, args.device, progress)
    return result(ds, job, cache.read_only())


def maps(args: argparse.Namespace) -> int:
    from ..experiments.attack import export_maps, find_attack

    if args.zoom < 1:
        raise AdvRecError(f"--zoom must be an integer >= 1, not {args.zoom}")
    ds = options.dataset(args, TqdmProgress(disable=args.quiet))
    res = find_attack(ds, args.result, options.cache(args))
    written = export_maps(ds, res, args.item, Path(args.out), args.zoom)
    found = json.loads(written[-1].read_text())["maps"]
    print(f"attack       {res.summary['attack']} on {res.summary['extractor']} "
          f"({res.summary['source']} -> {res.summary['target']}), item {args.item}")
    for name, m in found.items():
        grid = "x".join(map(str, m["grid"]))
        print(f"{name:12} {m['value']:<12.6g} map {grid}, colours 0..{m['colour_scale'][1]:.4g} "
              f"({m['title']})")
    print(f"written      {len(written)} files to {args.out}")
    return 0
