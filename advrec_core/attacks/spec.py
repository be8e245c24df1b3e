"""AttackSpec: one attack setting as every layer names it (CLI, app, grid, cache, study).

The radius is in 8-bit levels (`eps=8` is 8/255 in pixel space), the unit of the paper's
tables; `build()` turns it into the attack object, in pixel units, once. `label` ("pgd-8")
names a grid row and parses back with `AttackSpec.parse`; `title` ("PGD (ε=8)") is for
people."""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from ..errors import AdvRecError
from .common import ATTACKS

SPEC_FIELDS = ("eps", "steps", "random_start", "eps_space")  # what AttackSpec names itself
ADAPTIVE = "adaptive"  # the label prefix of an attack that plans for the platform's channel


def own_settings(name: str) -> dict:
    """{setting: its field} of attack `name` beyond SPEC_FIELDS (C&W's lr, a new attack's
    momentum ...): what `AttackSpec.settings` may hold, the CLI and the pages offer."""
    cls = ATTACKS.get(name)
    fixed = (*SPEC_FIELDS, *getattr(cls, "fixed", ()))  # e.g. FGSM's one step of eps
    return {f.name: f for f in fields(cls) if f.name not in fixed}


def all_settings() -> dict:
    """{setting: (its field, the titles of the registered attacks that have it)}: what the
    CLI and the pages offer (the field with a `help`, where one has it)."""
    out: dict = {}
    for name in ATTACKS.available():
        for setting, f in own_settings(name).items():
            first, owners = out.get(setting, (f, []))
            out[setting] = (first if "help" in first.metadata else f,
                            [*owners, ATTACKS.get(name).title])
    return out


@dataclass(frozen=True)
class AttackSpec:
    name: str = "pgd"  # ATTACKS registry name: fgsm | pgd | cw
    eps: float | None = 8.0  # L-inf radius in 8-bit levels (x / 255); None for C&W (L2)
    steps: int | None = None  # iterations (PGD; C&W per search step); None: the attack's own
    random_start: bool = False  # PGD from a random point in the eps-ball (the paper's: no)
    eps_space: str = "pixel"  # "normalized": eps on ImageNet-normalised inputs (authors' code)
    settings: tuple[tuple[str, Any], ...] = ()  # the attack's other settings, by name (sorted,
    # its own defaults left out: one setting, one cache key)
    adaptive: bool = False  # the attacker plans for the platform's channel: differentiates
    # through its surrogate (Upload.surrogate; BPDA, EOT), as Tramer et al. 2020 ask of a defense
    eot: int = 8  # adaptive: channel draws averaged per gradient step (expectation over
    # transformation); ignored otherwise

    def __post_init__(self):
        if self.eps is not None:  # one type, so 8 and 8.0 name the same cache entry
            object.__setattr__(self, "eps", float(self.eps))
        cls = ATTACKS.get(self.name)  # unknown names list the known ones
        own = own_settings(self.name)
        unknown = sorted(k for k, _ in self.settings if k not in own)
        if unknown:
            raise AdvRecError(f"{cls.title} has no setting {', '.join(map(repr, unknown))}; "
                              f"its own: {', '.join(own) or 'none'}")
        object.__setattr__(self, "settings", tuple(sorted(
            (k, v) for k, v in self.settings if v != own[k].default)))
        if cls.takes_eps and (self.eps is None or self.eps <= 0):
            raise AdvRecError(f"{cls.title} needs eps > 0 (in 8-bit levels), not {self.eps}")
        if not cls.takes_eps and self.eps is not None:
            raise AdvRecError(f"{cls.title} has no eps (it minimises the L2 distance)")
        if not cls.takes_eps and self.eps_space != "pixel":
            raise AdvRecError(f"{cls.title} has no eps, so no eps_space")
        if self.random_start and "random_start" not in {f.name for f in fields(cls)}:
            raise AdvRecError(f"{cls.title} has no random start")
        if self.eot < 1:
            raise AdvRecError(f"eot (channel samples per step) must be >= 1, not {self.eot}")
        if not self.adaptive:
            object.__setattr__(self, "eot", AttackSpec.eot)  # unused: one name, one cache key
        if self.steps is not None and self.steps < 1:
            raise AdvRecError(f"steps must be >= 1, not {self.steps}")
        if cls.takes_steps and self.steps == getattr(cls, "steps", None):
            object.__setattr__(self, "steps", None)  # the attack's own: one name, one cache key
        try:
            self.build()
        except (TypeError, ValueError) as e:  # e.g. FGSM with steps, a bad eps_space
            raise AdvRecError(f"{cls.title}: {e}") from None

    @classmethod
    def create(cls, name: str, eps: float | None = None, steps: int | None = None,
               **settings) -> "AttackSpec":
        """The spec of attack `name` from a form or the CLI: a setting the attack does not
        take (FGSM's steps, C&W's eps) is dropped."""
        attack = ATTACKS.get(name)
        return cls(name, eps if attack.takes_eps else None,
                   steps if attack.takes_steps else None, **settings)

    def build(self):
        """The attack object (settings in pixel units), ready to call."""
        cls = ATTACKS.get(self.name)
        kw: dict = {}
        if cls.takes_eps:
            kw |= {"eps": self.eps / 255, "eps_space": self.eps_space}
        if self.steps is not None:
            kw["steps"] = self.steps
        if self.random_start:
            kw["random_start"] = True
        return cls(**kw, **dict(self.settings))

    def with_settings(self, settings: tuple[tuple[str, Any], ...]) -> "AttackSpec":
        """This spec with those of `settings` its attack has (a grid's template names the
        settings of every attack it runs)."""
        own = own_settings(self.name)
        return replace(self, settings=tuple(p for p in settings if p[0] in own))

    @property
    def label(self) -> str:
        """"pgd-8", "fgsm-4", "cw", "adaptive-pgd-8": a grid row, a CLI value."""
        base = self.name if self.eps is None else f"{self.name}-{self.eps:g}"
        return f"{ADAPTIVE}-{base}" if self.adaptive else base

    @property
    def title(self) -> str:
        """"PGD (ε=8)", "C&W", "adaptive PGD (ε=8)": for tables and pages."""
        title = ATTACKS.get(self.name).title
        title = title if self.eps is None else f"{title} (ε={self.eps:g})"
        return f"adaptive {title}" if self.adaptive else title

    @classmethod
    def parse(cls, label: str) -> "AttackSpec":
        """"pgd-8" -> AttackSpec("pgd", 8.0); "cw" -> AttackSpec("cw", None);
        "adaptive-pgd-8": PGD planning for the platform's channel."""
        adaptive = label.startswith(f"{ADAPTIVE}-")
        name, _, eps = label.removeprefix(f"{ADAPTIVE}-").partition("-")
        try:
            value = float(eps) if eps else None
            return cls(name, value, adaptive=adaptive)
        except (ValueError, AdvRecError):
            raise AdvRecError(f"attack must look like {', '.join(_examples())} (ε in 8-bit "
                              f"levels), not {label!r}") from None


def _examples() -> list[str]:
    return [f"{n}-8" if c.takes_eps else n for n, c in ATTACKS.items()] + [f"{ADAPTIVE}-pgd-8"]
