"""Headless command line: ``python -m advrec_core <command> ...`` (or ``advrec ...``).

One module per group of commands, each command's parser beside its handler; the options
several commands share, generated from the configs and registries they fill, are in
`options`. Every command prints plain text (or JSON with --json), shows tqdm progress on long
steps, and turns a bad-input error into one clear line on stderr with exit code 2. SIGTERM
unwinds like Ctrl-C: builds in progress remove their folders, the exit code is 143."""
from __future__ import annotations

import logging
import os
import signal
import sys
import threading

from ..errors import AdvRecError
from . import attack, data, extract, grid, maintenance, options, recommend, study

COMMANDS = (data, extract, attack, recommend, grid, study, maintenance)  # the parsers' order


def build_parser() -> options.Parser:
    p = options.Parser(prog="python -m advrec_core",
                       description="AdvRec Lab engine: adversarially poisoned product images "
                                   "vs visual recommenders.")
    p.add_argument("--cache", help="cache folder (default: $ADVREC_CACHE or ./cache)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    sub = p.add_subparsers(dest="command", required=True, metavar="<command>")
    for module in COMMANDS:
        module.register(sub)
    return p


def _terminated(signum, frame) -> None:
    """SIGTERM: unwind like Ctrl-C, so every build in progress removes its folder."""
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    here = threading.current_thread() is threading.main_thread()
    before = signal.signal(signal.SIGTERM, _terminated) if here else None
    try:
        return _main(argv)
    finally:
        if here:
            signal.signal(signal.SIGTERM, before)


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.command != "cache":
        options.cache(args).gc()  # debris of killed runs (builders provably gone)
    if getattr(args, "trust_checkpoint", False):
        from ..models.resnet import TRUST_ENV

        os.environ[TRUST_ENV] = "1"  # the loader's one switch
    try:
        return args.func(args)
    except AdvRecError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


__all__ = ["main", "build_parser"]
