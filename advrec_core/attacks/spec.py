"""AttackSpec: one attack setting as every layer names it (CLI, app, grid, cache, study).

The radius is in 8-bit levels (`eps=8` is 8/255 in pixel space), the unit of the paper's
tables; `build()` turns it into the attack object, in pixel units, once. `label` ("pgd-8")
names a grid row and parses back with `AttackSpec.parse`; `title` ("PGD (ε=8)") is for
people."""
from __future__ import annotations

from dataclasses import dataclass, fields

from ..errors import AdvRecError
from .common import ATTACKS


@dataclass(frozen=True)
class AttackSpec:
    name: str = "pgd"  # ATTACKS registry name: fgsm | pgd | cw
    eps: float | None = 8.0  # L-inf radius in 8-bit levels (x / 255); None for C&W (L2)
    steps: int | None = None  # iterations (PGD; C&W per search step); None: the attack's own
    random_start: bool = False  # PGD from a random point in the eps-ball (the paper's: no)
    eps_space: str = "pixel"  # "normalized": eps on ImageNet-normalised inputs (authors' code)

    def __post_init__(self):
        if self.eps is not None:  # one type, so 8 and 8.0 name the same cache entry
            object.__setattr__(self, "eps", float(self.eps))
        cls = ATTACKS.get(self.name)  # unknown names list the known ones
        if cls.takes_eps and (self.eps is None or self.eps <= 0):
            raise AdvRecError(f"{cls.title} needs eps > 0 (in 8-bit levels), not {self.eps}")
        if not cls.takes_eps and self.eps is not None:
            raise AdvRecError(f"{cls.title} has no eps (it minimises the L2 distance)")
        if not cls.takes_eps and self.eps_space != "pixel":
            raise AdvRecError(f"{cls.title} has no eps, so no eps_space")
        if self.random_start and "random_start" not in {f.name for f in fields(cls)}:
            raise AdvRecError(f"{cls.title} has no random start")
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
        return cls(**kw)

    @property
    def label(self) -> str:
        """"pgd-8", "fgsm-4", "cw": a grid row, a CLI value."""
        return self.name if self.eps is None else f"{self.name}-{self.eps:g}"

    @property
    def title(self) -> str:
        """"PGD (ε=8)", "C&W": for tables and pages."""
        title = ATTACKS.get(self.name).title
        return title if self.eps is None else f"{title} (ε={self.eps:g})"

    @classmethod
    def parse(cls, label: str) -> "AttackSpec":
        """"pgd-8" -> AttackSpec("pgd", 8.0); "cw" -> AttackSpec("cw", None)."""
        name, _, eps = label.partition("-")
        try:
            value = float(eps) if eps else None
            return cls(name, value)
        except (ValueError, AdvRecError):
            raise AdvRecError(f"attack must look like {', '.join(_examples())} (ε in 8-bit "
                              f"levels), not {label!r}") from None


def _examples() -> list[str]:
    return [f"{n}-8" if c.takes_eps else n for n, c in ATTACKS.items()]
