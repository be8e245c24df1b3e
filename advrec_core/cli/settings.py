"""The attack's and the recommender's options, generated from what they declare: every
registered attack's own settings (its dataclass fields beyond AttackSpec's: --attack-<name>),
RecConfig's documented fields, and every registered recommender's own hyperparameters (its
`Params`). A new setting or a newly registered attack or recommender appears here without
being typed again; a setting given to one that lacks it is refused in one line."""
from __future__ import annotations

import argparse
from dataclasses import fields

from ..attacks import ATTACKS, AttackSpec, Upload
from ..attacks.gradient import EPS_SPACES
from ..attacks.spec import all_settings, own_settings
from ..attacks.upload import ATTACK_AT, parse_channel
from ..device import PRECISIONS
from ..errors import AdvRecError
from ..recommenders import RecConfig, all_params
from .options import add_field, given

# --- the attack ----------------------------------------------------------------------------

def add_attack(p: argparse.ArgumentParser, one: bool = True) -> None:
    """The attack (`one`; a grid's rows name theirs), its radius and steps, every registered
    attack's own settings (--attack-<setting>, from its dataclass fields), the upload."""
    if one:
        p.add_argument("--attack", default=AttackSpec.name, choices=ATTACKS.available())
        p.add_argument("--eps", type=float, default=AttackSpec.eps,
                       help="L-inf radius in 8-bit levels (x/255); FGSM and PGD")
        p.add_argument("--eps-space", default=EPS_SPACES[0], choices=EPS_SPACES,
                       help="'normalized' reproduces the authors' code (eps on normalised "
                            "inputs)")
        p.add_argument("--steps", type=int, help="iterations: PGD steps (default 10), C&W "
                                                 "steps per search step (1000)")
        p.add_argument("--random-start", action="store_true",
                       help="PGD from a random point in the eps-ball (the authors' code: none)")
        p.add_argument("--adaptive", action="store_true",
                       help="the attacker plans for the platform's --channel: differentiates "
                            "through its surrogate (differentiable JPEG, straight-through "
                            "squeezers, the denoiser itself), --eot draws per step")
    p.add_argument("--eot", type=int, default=AttackSpec.eot,
                   help=f"adaptive attacks: channel draws averaged per gradient step "
                        f"(expectation over transformation; default {AttackSpec.eot})")
    p.add_argument("--limit", type=int, help="attack only the first N source items")
    seen = all_settings()
    group = p.add_argument_group("attack settings (each for the attacks named)")
    for setting, (f, owners) in seen.items():
        add_field(group, f, f"attack-{setting.replace('_', '-')}",
                  f"{f.metadata.get('help', setting.replace('_', ' '))} ({', '.join(owners)})")
    p.set_defaults(attack_settings=tuple(seen))
    add_upload(p)


def attack_settings(args: argparse.Namespace) -> tuple[tuple[str, object], ...]:
    """The attack settings the command line gave (--attack-<setting>), by name."""
    return tuple(given(args, args.attack_settings).items())


def attack_spec(args: argparse.Namespace) -> AttackSpec:
    """The attack the options name; a setting given that it does not have: one line."""
    settings, own = dict(attack_settings(args)), own_settings(args.attack)
    if extra := sorted(set(settings) - set(own)):
        raise AdvRecError(f"--attack-{extra[0].replace('_', '-')}: "
                          f"{ATTACKS.get(args.attack).title} has no such setting; its own: "
                          f"{', '.join(own) or 'none'}")
    return AttackSpec.create(args.attack, args.eps, args.steps, random_start=args.random_start,
                             eps_space=args.eps_space, settings=tuple(settings.items()),
                             adaptive=args.adaptive, eot=args.eot)


def channel_arg(value: str) -> str:
    """argparse type: a channel checked when the command line is read, before any work."""
    try:
        parse_channel(value)
    except AdvRecError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return value


def add_upload(p: argparse.ArgumentParser) -> None:
    p.add_argument("--channel", default=Upload.channel, type=channel_arg,
                   help="what the platform does to every image before its CNN sees it: png "
                        "(lossless, default), jpeg:Q (re-encoded at quality Q, 1-100), "
                        "resize:N (longest side N px), and its defenses bits:N (bit depth), "
                        "median:K (KxK median), denoise (the learned denoiser); steps joined "
                        "by '+', e.g. resize:500+jpeg:90, bits:5+median:2")
    p.add_argument("--attack-at", default=Upload.at, choices=ATTACK_AT,
                   help="full (default): attack the photo at its own size through a "
                        "differentiable resize; model: at the model's input size (the paper's)")
    p.add_argument("--attack-precision", default=PRECISIONS[0], choices=PRECISIONS,
                   help="the perturbation search's arithmetic: fp32 (default) or bf16 (conv-BN "
                        "folded, channels-last, bf16 autocast: ~2.5x faster PGD on a CPU with "
                        "AVX512-BF16; SR and features still measured in fp32)")


def upload(args: argparse.Namespace) -> Upload:
    return Upload(args.attack_at, args.channel)


# --- the recommender -----------------------------------------------------------------------

def add_rec(p: argparse.ArgumentParser, model: bool = True, cutoffs: bool = True) -> None:
    """RecConfig's documented settings and every registered recommender's own
    hyperparameters (from its `Params`), each once."""
    for f in fields(RecConfig):
        if "help" in f.metadata and (model or f.name != "model"):
            add_field(p, f)
    own = all_params()
    group = p.add_argument_group("recommenders' own hyperparameters (each for the models named)")
    for name, (f, owners) in own.items():
        add_field(group, f, help=f"{f.metadata.get('help', name)} ({', '.join(owners)})")
    p.set_defaults(rec_params=tuple(own))
    if cutoffs:
        p.add_argument("--k", type=int, nargs="+", default=[10, 20, 50, 100], help="cut-offs")


def rec_config(args: argparse.Namespace, own: bool = True) -> RecConfig:
    """The recommender the options name, with the hyperparameters given (unless not `own`: a
    grid's template, whose models take theirs from `rec_params`); a hyperparameter the
    model does not have: one line (RecConfig says which it has)."""
    settings = given(args, [f for f in fields(RecConfig) if "help" in f.metadata])
    model = settings.pop("model", RecConfig.model)
    return RecConfig.of(model, **settings, **(rec_params(args) if own else {}))


def rec_params(args: argparse.Namespace) -> dict:
    """The recommenders' own hyperparameters the command line gave, by name."""
    return given(args, args.rec_params)
