"""A toy attack, registered here and nowhere else: an L-inf step of eps on a random share
`density` of the pixels (a setting no other attack has). tests/test_extending.py runs it
through the CLI, the grid and the Attack Lab with no other edit."""
from dataclasses import dataclass, field
from typing import ClassVar

import torch

from advrec_core.attacks import ATTACKS


@ATTACKS.register("toy")
@dataclass(frozen=True)
class SparseSign:
    eps: float = 4 / 255  # L-inf radius, pixel units
    eps_space: str = "pixel"
    density: float = field(default=1.0, metadata={"help": "share of the pixels it changes"})
    title: ClassVar[str] = "Sparse sign"
    takes_eps: ClassVar[bool] = True
    takes_steps: ClassVar[bool] = False

    def __call__(self, model, x, labels, generator=None, judge=None):
        sign = torch.randint(0, 2, x.shape, generator=generator).float() * 2 - 1
        keep = (torch.rand(x.shape, generator=generator) < self.density).float()
        return (x + self.eps * sign * keep).clamp(0, 1)
