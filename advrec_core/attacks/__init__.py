"""Targeted adversarial attacks on the classifier: FGSM, PGD (one gradient loop) and C&W L2.

`ATTACKS.create(name, **settings)` builds an attack object that holds settings only; the
model and the data come in at call time: ``attack(model, x, labels, generator) -> x_adv``."""
from ..registry import Registry
from .common import AttackOutput, quantize, run_attack
from .cw import CarliniWagnerL2
from .gradient import FGSM, PGD, LinfGradientAttack

ATTACKS: Registry = Registry("attack")
ATTACKS.register("fgsm")(FGSM)
ATTACKS.register("pgd")(PGD)
ATTACKS.register("cw")(CarliniWagnerL2)

__all__ = ["ATTACKS", "FGSM", "PGD", "LinfGradientAttack", "CarliniWagnerL2", "quantize",
           "run_attack", "AttackOutput"]
