"""Targeted adversarial attacks on the classifier: FGSM, PGD (one gradient loop) and C&W
L2; the item-promotion attacks EXPA and INSA (`promotion`), which aim at the features and at
the recommender's score.

Each attack module registers its class in ATTACKS; an AttackSpec names one setting (radius in
8-bit levels) and `build()`s the attack object, which holds settings only; the model and the
data come in at call time: ``attack(model, x, labels, generator, judge) -> x_adv`` (`judge`:
the fp32 model a reduced-precision search's successes are confirmed on). The driver that
measures attacks on batch streams is `experiments.driver.run_attack`. `Upload` says
where the attack happens (the full-size photo or the model's input) and what the platform
does to the upload."""
from .common import ATTACKS, HEADS, PRECISIONS, attacked_network, quantize, search_model
from .cw import CarliniWagnerL2  # noqa: I001  registers cw
from .gradient import FGSM, PGD, LinfGradientAttack  # registers fgsm, pgd (the paper's order)
from .promotion import EXPA, INSA  # registers expa, insa (Liu & Larson's item promotion)
from .spec import AttackSpec
from .upload import CHANNELS, Upload

__all__ = ["ATTACKS", "AttackSpec", "FGSM", "PGD", "LinfGradientAttack", "CarliniWagnerL2", "EXPA", "INSA",
           "HEADS", "attacked_network",
           "quantize", "CHANNELS", "Upload", "PRECISIONS",
           "search_model"]
