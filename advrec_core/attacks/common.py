"""What every attack shares: 8-bit quantisation and the batched driver `run_attack`, which
also takes the upload through the platform (`upload.Upload`) before classifying it."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from ..errors import AdvRecError
from ..metrics.visual import feature_loss_map
from ..progress import Progress
from ..registry import Registry
from .upload import Resized, Upload, platform_input, to_uint8

ATTACKS: Registry = Registry("attack")  # name -> attack class (settings only; called with
# (model, x, labels, generator) -> x_adv); each attack's module registers itself
Attack = Callable[..., torch.Tensor]  # attack(model, x, labels, generator) -> x_adv


PRECISIONS = ("fp32", "bf16")  # the perturbation search's arithmetic


class _ChannelsLast(nn.Module):
    """`model` fed channels-last inputs (oneDNN's and cuDNN's fast layout for convolutions)."""

    def __init__(self, model: nn.Module, std: torch.Tensor, judge: nn.Module | None = None):
        super().__init__()
        self.model, self.std = model, std
        self.__dict__["judge"] = judge  # the fp32 model that judges success (not a submodule)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.contiguous(memory_format=torch.channels_last))


def check_precision(precision: str) -> str:
    """`precision` if it is one of PRECISIONS; one clear error otherwise."""
    if precision not in PRECISIONS:
        raise AdvRecError(f"attack precision must be one of {', '.join(PRECISIONS)}, not "
                          f"{precision!r}")
    return precision


def fold(model: nn.Module) -> nn.Module:
    """A frozen copy of `model` with every convolution + batch norm folded into one
    convolution (torch.fx), in channels-last layout: the same function (eval mode) up to fp32
    rounding, with fewer operations to differentiate."""
    from torch.fx.experimental.optimization import fuse

    fused = fuse(model).to(memory_format=torch.channels_last)
    for param in fused.parameters():
        param.requires_grad_(False)  # gradients for the input only
    return fused


def search_model(model: nn.Module, precision: str = "fp32",
                 device: torch.device | str = "cpu") -> tuple[nn.Module, Callable]:
    """(the model the attack differentiates, a context to run the attack in).

    "fp32": the model itself, no context (results bitwise as always). "bf16": `fold(model)`
    with its convolution and linear weights cast to bf16 once (autocast would recast frozen
    weights on every call: its cache keeps only weights that require grad), run channels-last
    under bf16 autocast: 2.4-2.6x torchattacks' fp32 PGD-10 on the demo CNN on a CPU with
    AVX512-BF16 (benchmarks/attacks.py). Only the search runs in bf16; `run_attack`
    classifies and extracts the quantised result in fp32 on the original model, so SR, FL and
    the features are fp32 measurements of a slightly different perturbation."""
    if check_precision(precision) == "fp32":
        return model, contextlib.nullcontext
    device = torch.device(device)
    if device.type == "cpu" and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        raise AdvRecError("bf16 attacks need a CPU with AVX512-BF16 or AMX (or a GPU); this "
                          "CPU has neither: use fp32")
    fused = fold(model)
    for module in fused.modules():  # the casts autocast would make, made once
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            module.to(torch.bfloat16)
    view = _ChannelsLast(fused, getattr(model, "std", None), judge=model).eval()
    return view, lambda: torch.autocast(device.type, dtype=torch.bfloat16)


def quantize(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] float -> the nearest 8-bit level (what a seller's PNG upload stores)."""
    return torch.round(x.clamp(0, 1) * 255) / 255


@dataclass
class AttackOutput:
    """Per image (N = number attacked): all tensors on the CPU."""

    adv: torch.Tensor  # (N, 3, H, W) in [0, 1], quantised to 8 bits: the upload, at the
    # images' own size
    pred_clean: torch.Tensor  # (N,) int64
    conf_clean: torch.Tensor  # (N,) softmax probability of pred_clean
    pred_adv: torch.Tensor  # (N,) int64, on the upload after the platform's channel
    conf_adv: torch.Tensor  # (N,)
    features_clean: torch.Tensor  # (N, D)
    features_adv: torch.Tensor  # (N, D) after the channel (what the recommender gets)
    success: torch.Tensor  # (N,) bool: pred_adv == target (targeted), after the channel
    success_upload: torch.Tensor  # (N,) bool: the same on the upload before the channel
    fl_map: torch.Tensor  # (N, h, w) squared change of the last conv feature map (FL map)


def run_attack(attack: Attack, model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
               batch_size: int = 64, device: torch.device | str = "cpu", seed: int = 0,
               targeted: bool = True, progress: Progress | None = None,
               upload: Upload | None = None, precision: str = "fp32") -> AttackOutput:
    """Attack `images` (N, 3, H, W) in [0, 1] towards `labels` (N,) in batches on `device`,
    quantise to 8 bits (the upload), pass the upload through `upload`'s channel, and classify
    / extract features (and the FL map) before and after.

    Images larger or smaller than the model's `input_size` are attacked through `Resized` (a
    differentiable resize) and, clean and uploaded alike, resized to the model's input as the
    platform does (`platform_input`) before they are classified. `precision` is the search's
    arithmetic (`search_model`); classification and features are always fp32."""
    upload = upload or Upload()
    size = getattr(model, "input_size", None)
    resize = size is not None and tuple(images.shape[-2:]) != (size, size)
    searched, context = search_model(model, precision, device)
    attacked = Resized(searched, size) if resize else searched
    gen = torch.Generator().manual_seed(seed)
    parts: dict[str, list[torch.Tensor]] = {}
    n = len(images)
    for start in range(0, n, batch_size):
        x = images[start:start + batch_size].to(device)
        y = labels[start:start + batch_size].to(device)
        with context():
            adv = quantize(attack(attacked, x, y, generator=gen).float())
        sent = to_uint8(adv) if resize or not upload.lossless else None
        x_in = platform_input(to_uint8(x), size).to(device) if resize else x
        adv_in = adv if sent is None else platform_input(sent, size, upload).to(device)
        mc, fc, pc, cc = model.classify_map(x_in)
        ma, fa, pa, ca = model.classify_map(adv_in)
        ok = (pa == y) if targeted else (pa != y)
        if upload.lossless:
            ok_sent = ok
        else:  # the attacker's own view: the upload resized, before the platform's channel
            pu = model.classify(platform_input(sent, size).to(device) if resize else adv)[1]
            ok_sent = (pu == y) if targeted else (pu != y)
        for k, v in dict(adv=adv, pred_clean=pc, conf_clean=cc, pred_adv=pa, conf_adv=ca,
                         features_clean=fc, features_adv=fa, success=ok, success_upload=ok_sent,
                         fl_map=feature_loss_map(mc, ma)).items():
            parts.setdefault(k, []).append(v.detach().float().cpu() if v.is_floating_point()
                                           else v.cpu())
        if progress:
            progress(min(start + batch_size, n), n, "attacking")
    return AttackOutput(**{k: torch.cat(v) for k, v in parts.items()})
