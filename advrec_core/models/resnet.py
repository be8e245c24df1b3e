"""torchvision ResNet50 as a `Classifier`: ImageNet weights or a robust checkpoint.

Weights, in order of what the user gives:
* a local file: a torchvision state_dict, a MadryLab `robustness` checkpoint (e.g.
  ``imagenet_linf_4.pt``: key ``model``, keys prefixed ``module.model.``; the
  ``module.normalizer.*`` and ``module.attacker.*`` entries are dropped) or a Free-AT
  checkpoint (``model_best.pth.tar``: key ``state_dict``, keys prefixed ``module.``);
* none: ``ResNet50_Weights.IMAGENET1K_V1`` through torchvision, which reads torch's hub
  cache and downloads there where there is internet.

Class names come from the weights' metadata; inputs are resized to 224 x 224."""
from __future__ import annotations

import os
import pickle
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torchvision.models import ResNet50_Weights, resnet50

from ..errors import AdvRecError
from .base import Classifier, Normalize

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class WeightsUnavailable(AdvRecError):
    """Model weights that cannot be found or downloaded here."""


class ResNet50(Classifier):
    def __init__(self, state_dict: dict[str, torch.Tensor] | None = None):
        super().__init__()
        net = resnet50(weights=None)
        if state_dict is not None:
            net.load_state_dict(state_dict)
        self.normalize = Normalize(IMAGENET_MEAN, IMAGENET_STD)
        self.body = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1,
                                  net.layer2, net.layer3, net.layer4, net.avgpool, nn.Flatten())
        self.head = net.fc  # (B, 2048) -> (B, 1000)
        self.class_names = tuple(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])
        self.input_size, self.feature_dim = 224, 2048


def convert_checkpoint(obj: Any, source: str = "checkpoint") -> tuple[dict[str, torch.Tensor], str]:
    """Any supported checkpoint -> (torchvision resnet50 state_dict, format name)."""
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict) and any(
            k.startswith("module.model.") for k in obj["model"]):
        sd = {k[len("module.model."):]: v for k, v in obj["model"].items()
              if k.startswith("module.model.")}  # drops module.normalizer.*, module.attacker.*
        fmt = "madrylab-robustness"
    elif isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        sd = {k.removeprefix("module."): v for k, v in obj["state_dict"].items()}
        fmt = "free-at"
    elif isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        sd = {k.removeprefix("module."): v for k, v in obj.items()}
        fmt = "state_dict"
    else:
        raise WeightsUnavailable(f"{source}: not a ResNet50 checkpoint; expected a state_dict, a "
                                 "MadryLab robustness checkpoint (key 'model') or a Free-AT "
                                 "checkpoint (key 'state_dict')")
    expected = set(resnet50(weights=None).state_dict())
    missing, unexpected = expected - set(sd), set(sd) - expected
    if missing or unexpected:
        raise WeightsUnavailable(
            f"{source}: {fmt} checkpoint does not fit torchvision's resnet50: "
            f"{len(missing)} missing keys (e.g. {sorted(missing)[:3]}), "
            f"{len(unexpected)} unexpected (e.g. {sorted(unexpected)[:3]})")
    return sd, fmt


TRUST_ENV = "ADVREC_TRUST_CHECKPOINTS"  # "1": a checkpoint a safe load refuses is unpickled


def _numpy_globals() -> list:
    """What published checkpoints pickle beside tensors (Free-AT's best_prec1 can be a numpy
    scalar): numpy's scalar constructor and dtypes, under numpy 1's and numpy 2's names."""
    import numpy as np

    scalar = np._core.multiarray.scalar if hasattr(np, "_core") else np.core.multiarray.scalar
    dtypes = [type(np.dtype(t)) for t in ("f2", "f4", "f8", "i4", "i8", "u1", "b1")]
    return [scalar, (scalar, "numpy.core.multiarray.scalar"), np.dtype, *dtypes]


def read_checkpoint(path: Path) -> Any:
    """torch.load a checkpoint as published: weights-only (no code runs), with the numpy
    scalars and dtypes MadryLab / Free-AT files carry allowed; anything else is refused
    unless $ADVREC_TRUST_CHECKPOINTS=1 (CLI: --trust-checkpoint), which unpickles it fully."""
    try:
        with torch.serialization.safe_globals(_numpy_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        why = str(e).replace("\n", " ")
        found = re.search(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) (\S+)", why)
        if found is None:  # not a pickle of objects: a truncated or foreign file
            raise WeightsUnavailable(f"{path}: cannot read checkpoint (not a torch checkpoint "
                                     f"a weights-only load can parse)") from None
        if os.environ.get(TRUST_ENV) != "1":
            glob = found.group(1)
            raise WeightsUnavailable(
                f"{path}: holds {glob}, which a weights-only load refuses; if you trust where "
                f"the file comes from, pass --trust-checkpoint ({TRUST_ENV}=1): a full pickle "
                f"load can run code from the file") from None
    except Exception as e:  # truncated files, not a torch file, ...
        raise WeightsUnavailable(f"{path}: cannot read checkpoint ({type(e).__name__}: "
                                 f"{str(e).splitlines()[0][:200]})") from None
    return torch.load(path, map_location="cpu", weights_only=False)  # trusted by the user


def load_resnet50(weights: str | Path | None = None, progress: bool = True) -> tuple[ResNet50, str]:
    """-> (frozen-ready model, description of where its weights came from)."""
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise WeightsUnavailable(f"{path}: weights file not found")
        sd, fmt = convert_checkpoint(read_checkpoint(path), str(path))
        return ResNet50(sd), f"{fmt} checkpoint {path}"
    w = ResNet50_Weights.IMAGENET1K_V1
    try:
        sd = w.get_state_dict(progress=progress, check_hash=True)
    except Exception as e:  # no internet and nothing in the hub cache
        hub = Path(torch.hub.get_dir()) / "checkpoints" / Path(w.url).name
        raise WeightsUnavailable(
            f"ResNet50 ImageNet weights are not in torch's hub cache ({hub}) and could not be "
            f"downloaded ({type(e).__name__}); copy {Path(w.url).name} there or pass a local "
            "weights file") from None
    return ResNet50(sd), f"torchvision {w}"
