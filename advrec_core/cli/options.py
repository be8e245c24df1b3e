"""The options several commands share (the dataset, the extractor, categories, Ray) and the
configs they fill; the attack's and the recommender's settings are in `settings`. Where a
config declares a setting (a dataclass field with a `help` in its metadata), its option is
generated from that declaration and its choices from the registry."""
from __future__ import annotations

import argparse
import os
from dataclasses import MISSING, Field
from pathlib import Path

from ..attacks import ATTACKS
from ..cache import Cache
from ..data import DUPLICATES, DataConfig
from ..data.loaders import DatasetSpec
from ..defenses import DEFENSES, TRADITIONAL
from ..device import PRECISIONS
from ..errors import AdvRecError
from ..experiments.categories import CATEGORY_MODES
from ..experiments.poison import FEATURE_SCALES
from ..extractors import EXTRACTORS, ExtractorConfig
from ..jobs import RAY_ADDRESS_ENV
from ..recommenders import RECOMMENDERS
from ..recommenders.dvbpr import CNNS

CHOICES = {"recommenders": RECOMMENDERS.available, "attacks": ATTACKS.available,
           "rec_precisions": lambda: PRECISIONS, "dvbpr_cnns": lambda: CNNS,
           "insiders": lambda: [n for n, m in RECOMMENDERS.items() if m.reads == "features"]}
# a field's metadata "choices" -> the names


class Parser(argparse.ArgumentParser):
    """argparse with the project's error contract: one `error:` line, exit code 2."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {message}\n")


def _type(f: Field):
    default = f.default if f.default is not MISSING else None
    return type(default) if isinstance(default, (int, float, str)) else str


def add_field(p: argparse.ArgumentParser, f: Field, flag: str | None = None,
              help: str | None = None) -> None:
    """An option for dataclass field `f` (default None: "the config's own"); booleans as
    --x / --no-x."""
    flag = flag or f.metadata.get("flag") or f.name.replace("_", "-")
    help = help or f.metadata.get("help") or f.name.replace("_", " ")
    if isinstance(f.default, bool):
        p.add_argument(f"--{flag}", dest=dest(f), action=argparse.BooleanOptionalAction,
                       default=None, help=help)
        return
    choices = f.metadata.get("choices")
    p.add_argument(f"--{flag}", dest=dest(f), type=_type(f), default=None, help=help,
                   choices=CHOICES[choices]() if choices else None)


def dest(f: Field) -> str:
    """Where field `f`'s option lands in the parsed args: its name, or its own flag's
    (RecConfig.epochs is --rec-epochs -> rec_epochs: the extractor's --epochs is another)."""
    return f.metadata["flag"].replace("-", "_") if "flag" in f.metadata else f.name


def given(args: argparse.Namespace, names) -> dict:
    """{name: value} of the options among `names` the command line set; a name may be a
    dataclass field (read from its `dest`)."""
    out = {}
    for n in names:
        key, where = (n.name, dest(n)) if isinstance(n, Field) else (n, n)
        if getattr(args, where, None) is not None:
            out[key] = getattr(args, where)
    return out


# --- the dataset: one DatasetSpec from the command line to a Ray worker -------------------

def add_dataset(p: argparse.ArgumentParser, positional: bool = True) -> None:
    if positional:
        p.add_argument("dataset", help="'demo', or a folder in the authors' or the generic layout")
    else:
        p.add_argument("--dataset", default="demo", help="the dataset (default: demo)")
    p.add_argument("--k-core", type=int, default=DataConfig.k_core,
                   help="generic layout: k-core filter")
    p.add_argument("--duplicates", choices=DUPLICATES, default=DataConfig.duplicates,
                   help="what to do with repeated (user, item) rows")


def dataset(args: argparse.Namespace, progress=None):
    """The dataset the options name, loaded (it carries its DatasetSpec: a Ray worker loads
    the same)."""
    spec = DatasetSpec(args.dataset, DataConfig(k_core=args.k_core, duplicates=args.duplicates))
    return spec.load(cache(args), progress)


def cache(args: argparse.Namespace) -> Cache:
    return Cache(Path(args.cache)) if args.cache else Cache.default()


# --- the extractor -------------------------------------------------------------------------

def add_extractor(p: argparse.ArgumentParser, defense: bool = True,
                  per_defense: bool = False) -> None:
    p.add_argument("--extractor", default=ExtractorConfig.arch, choices=EXTRACTORS.available())
    if defense:
        p.add_argument("--defense", default=TRADITIONAL.name, choices=DEFENSES.available())
    if per_defense:
        p.add_argument("--weights", nargs="+", metavar="DEFENSE=FILE", default=[],
                       help="resnet50: each defense's checkpoint, e.g. at=imagenet_linf_4.pt "
                            "free_at=model_best.pth.tar (traditional: torchvision's ImageNet "
                            "weights unless given)")
    else:
        p.add_argument("--weights",
                       help="resnet50: local checkpoint (torchvision, MadryLab, Free-AT)")
    p.add_argument("--trust-checkpoint", action="store_true",
                   help="unpickle a checkpoint that holds objects a weights-only load refuses "
                        "(can run code from the file: only for files you trust)")
    p.add_argument("--epochs", type=int,
                   help="demo-cnn: training epochs (Free AT: epochs of m replays each; default: "
                        "the defense's recipe: Traditional 24, AT 12, Free AT 5)")
    p.add_argument("--train-seed", type=int,
                   help="demo-cnn: training seed (default: the defense's recipe, whose CNN "
                        "ships with the package)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:1 ...")


def extractor(args: argparse.Namespace, defense: str | None = None) -> ExtractorConfig:
    """The extractor the options name (`defense` instead of --defense where given: a grid's
    template, whose cells each take their own and their own --weights)."""
    from ..defenses import TrainConfig

    weights = args.weights if defense is None else None
    defense = defense or args.defense
    return ExtractorConfig(arch=args.extractor, defense=defense, weights=weights,
                           train=TrainConfig(defense=defense, epochs=args.epochs,
                                             seed=args.train_seed))


def weights_pairs(values: list[str]) -> tuple[tuple[str, str], ...]:
    """--weights DEFENSE=FILE ... -> ((defense, file), ...), checked before any work."""
    pairs = {}
    for v in values:
        name, sep, file = v.partition("=")
        if not sep or not file:
            raise AdvRecError(f"--weights {v!r}: expected DEFENSE=FILE with DEFENSE one of "
                              f"{', '.join(DEFENSES.available())}")
        DEFENSES.get(name)  # unknown names list the known ones
        if not Path(file).is_file():
            raise AdvRecError(f"--weights {name}={file}: file not found")
        pairs[name] = file
    return tuple(pairs.items())


def add_categories(p: argparse.ArgumentParser) -> None:
    p.add_argument("--categories", default=CATEGORY_MODES[0], choices=CATEGORY_MODES,
                   help="item category for CHR@K and for choosing the attacked items: the "
                        "extractor's prediction on the clean image (as in the paper) or the "
                        "dataset's given category")


def add_feature_scale(p: argparse.ArgumentParser) -> None:
    p.add_argument("--feature-scale", default=FEATURE_SCALES[0], choices=FEATURE_SCALES,
                   help="clean (default): the clean and poisoned runs divide the features by "
                        "the clean features' max |x|, so only the attacked items differ; "
                        "per-run: each run by its own max, as the authors' code")


def add_ray(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ray", metavar="ADDRESS", nargs="?", const="auto",
                   default=os.environ.get(RAY_ADDRESS_ENV),
                   help="compute the steps on Ray: auto (the cluster this machine joined), "
                        "local (start one here) or ray://host:port (default: $ADVREC_RAY_ADDRESS; "
                        "unset: in this process)")
    p.add_argument("--ray-shared-cache", action="store_true",
                   help="Ray workers write into this cache folder (ADVREC_CACHE on storage "
                        "every node mounts at the same path) instead of shipping results back")
