"""What every attack shares: the registry, 8-bit quantisation and the model the search
differentiates (`search_model`: fp32, or a folded bf16 copy). The batched driver that
quantises, sends the upload through the platform and measures it is
`experiments.driver.run_attack`."""
from __future__ import annotations

import contextlib
from typing import Callable

import torch
from torch import nn

from ..device import PRECISIONS
from ..errors import AdvRecError
from ..registry import Registry

ATTACKS: Registry = Registry("attack")  # name -> attack class (settings only; called with
# (model, x, labels, generator, judge) -> x_adv); each attack's module registers itself
Attack = Callable[..., torch.Tensor]  # attack(model, x, labels, generator, judge) -> x_adv
HEADS = ("logits", "features", "score")  # what an attack's network outputs (its `head`)


class FeatureHead(nn.Module):
    """A classifier's pooled features, (B, 3, H, W) in [0, 1] -> (B, D), or their dot product
    with `w` (D,) -> (B,): what EXPA and INSA differentiate."""

    def __init__(self, model: nn.Module, w: torch.Tensor | None = None):
        super().__init__()
        self.model = model
        self.register_buffer("w", None if w is None else w.float())

    @property
    def std(self) -> torch.Tensor:
        return self.model.std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.model.forward_features(x)
        return f if self.w is None else f @ self.w.to(f.dtype)


def attacked_network(model: nn.Module, head: str, w: torch.Tensor | None = None) -> nn.Module:
    """The network an attack with `head` differentiates: the classifier ("logits"), its
    features ("features") or their dot product with `w` ("score")."""
    if head not in HEADS:
        raise AdvRecError(f"attack head must be one of {', '.join(HEADS)}, not {head!r}")
    if head == "score" and w is None:
        raise AdvRecError("a score head needs the recommender's direction w")
    return model if head == "logits" else FeatureHead(model, w if head == "score" else None)


class ThroughChannel(nn.Module):
    """`net` behind the platform's channel as the adaptive attacker models it: each call draws
    `samples` versions of the channel (`Upload.surrogate`, BPDA where the real step rounds)
    and returns their expectation (EOT, Athalye et al., ICML 2018): of the class probability
    for a logits head (returned as log-probabilities, so cross-entropy is -log E[p]), of the
    output otherwise. The channel runs in fp32 even inside a bf16 search."""

    def __init__(self, net: nn.Module, upload, samples: int, head: str,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.net, self.upload, self.samples, self.head = net, upload, samples, head
        self.generator = generator

    @property
    def std(self) -> torch.Tensor:
        return self.net.std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = len(x)
        with torch.autocast(x.device.type, enabled=False):
            seen = self.upload.surrogate(x.float().repeat(self.samples, 1, 1, 1), self.generator)
        out = self.net(seen)
        out = out.float().view(self.samples, b, *out.shape[1:])
        if self.head == "logits":
            return torch.logsumexp(out.log_softmax(-1), 0) - torch.log(torch.tensor(float(self.samples)))
        return out.mean(0)




class _ChannelsLast(nn.Module):
    """`model` fed channels-last inputs (oneDNN's and cuDNN's fast layout for convolutions)."""

    def __init__(self, model: nn.Module, std: torch.Tensor):
        super().__init__()
        self.model, self.std = model, std

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
    AVX512-BF16 (benchmarks/attacks.py). Only the search runs in bf16: the driver passes the
    fp32 model as the attack's `judge` (what a minimisation attack keeps must succeed on it)
    and classifies and extracts the quantised result in fp32 on the original model, so SR,
    FL and the features are fp32 measurements of a slightly different perturbation."""
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
    view = _ChannelsLast(fused, getattr(model, "std", None)).eval()
    return view, lambda: torch.autocast(device.type, dtype=torch.bfloat16)


def quantize(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] float -> the nearest 8-bit level (what a seller's PNG upload stores)."""
    return torch.round(x.clamp(0, 1) * 255) / 255
