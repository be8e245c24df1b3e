"""`cache`: remove the build folders a killed run left, or verify every entry;
`lpips-weights`: the LPIPS backbones' status, fetch or import; `report`: the one-page HTML."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import AdvRecError
from ..metrics.lpips_metric import BACKBONES
from ..progress import TqdmProgress
from . import options


def register(sub) -> None:
    rp = sub.add_parser("report", help="a one-page self-contained HTML report: the story, "
                                       "Tables 1-2 beside the paper's, the studies")
    options.add_dataset(rp)
    rp.add_argument("--out", required=True, help="the .html file to write")
    rp.set_defaults(func=report)

    c = sub.add_parser("cache", help="gc: remove build folders a killed process left behind; "
                                     "verify: re-read every entry and report corrupt ones")
    c.add_argument("action", choices=["gc", "verify"])
    c.add_argument("--stale-after", type=float, default=None, metavar="SECONDS",
                   help="gc: another host's build folder goes when its heartbeat is older "
                        "than this (default 600); this host's go when their process has "
                        "ended, never for their age")
    c.set_defaults(func=cache)

    w = sub.add_parser("lpips-weights", help="status / fetch / import LPIPS backbone weights")
    w.add_argument("action", choices=["status", "fetch", "import"])
    w.add_argument("file", nargs="?", help="import: the weights file")
    w.add_argument("--net", choices=sorted(BACKBONES))
    w.set_defaults(func=lpips_weights)


def report(args: argparse.Namespace) -> int:
    from ..cache import atomic_write_text
    from ..report import report_html

    ds = options.dataset(args, TqdmProgress(disable=args.quiet))
    out = Path(args.out)
    if out.is_dir():
        raise AdvRecError(f"--out {out}: is a folder; expected an .html file path")
    atomic_write_text(out, report_html(ds, options.cache(args)))
    print(f"written      {out} ({out.stat().st_size / 1024:.0f} KB, self-contained HTML)")
    return 0


def cache(args: argparse.Namespace) -> int:
    store = options.cache(args)
    if args.action == "gc":
        removed = store.gc(args.stale_after)
        for folder in removed:
            print(f"removed      {folder}")
        print(f"cache gc     {len(removed)} stale build folder(s) removed under {store.root}")
        return 0
    bad = store.verify()
    for folder, why in bad:
        print(f"corrupt      {folder}: {why}")
    print(f"cache verify {len(bad)} corrupt entr{'y' if len(bad) == 1 else 'ies'} under "
          f"{store.root}" + (" (each is rebuilt when next needed)" if bad else ""))
    return 1 if bad else 0


def lpips_weights(args: argparse.Namespace) -> int:
    from ..metrics.lpips_metric import backbone_path, check_backbone, fetch_backbone, import_backbone

    nets = [args.net] if args.net else sorted(BACKBONES)
    if args.action == "fetch":
        for net in nets:
            print(f"LPIPS-{net}: {fetch_backbone(net, progress=not args.quiet)}")
    elif args.action == "import":
        if not args.file or len(nets) != 1:
            raise AdvRecError(f"import needs FILE and --net {'|'.join(sorted(BACKBONES))}")
        print(f"LPIPS-{nets[0]}: imported to {import_backbone(nets[0], Path(args.file))}")
    for net in nets:
        why = check_backbone(net)
        print(f"LPIPS-{net}: {'ready (' + str(backbone_path(net)) + ')' if why is None else why}")
    return 0
