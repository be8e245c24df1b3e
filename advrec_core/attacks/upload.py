"""The upload channel: how the seller's perturbed photo reaches the platform's CNN.

The paper perturbs the 224 x 224 model input and calls that the upload. A real seller uploads
the full-size photo; the platform may re-encode it (JPEG) or shrink it, then resizes it to the
CNN's input. `Upload` names both halves:

* ``at``: ``"full"`` (default) attacks the photo at its own size through a differentiable
  resize to the model's input (`Resized`); ``"model"`` attacks the image already resized to
  the model's input (the paper's setting). Where the photo already has the model's size (the
  demo's 96 px) both are the same computation.
* ``channel``: what the platform does to the uploaded 8-bit image before its CNN sees it,
  steps joined by ``+`` and applied in order: ``png`` (lossless, nothing changes),
  ``jpeg:Q`` (re-encoded at quality Q, 4:2:0 chroma as PIL and most platforms store it),
  ``resize:N`` (longer side shrunk to N pixels, Lanczos, when larger). E.g. ``jpeg:75``,
  ``resize:500+jpeg:90``.

After the channel every image is resized to the model's input by `to_model_size` (bicubic),
exactly as clean item images are, so the clean and the attacked features come from the same
preprocessing. Codec work is per image (PIL encodes one image at a time)."""
from __future__ import annotations

import io
from dataclasses import dataclass
from functools import cached_property
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from ..errors import AdvRecError
from ..registry import Registry

CHANNELS: Registry[Callable[[np.ndarray, int | None], np.ndarray]] = Registry("channel step")
ATTACK_AT = ("full", "model")  # the photo at its own size | resized to the model's input


@CHANNELS.register("png")
def _png(img: np.ndarray, arg: int | None) -> np.ndarray:
    """Lossless: the platform stores the 8-bit pixels the seller sent."""
    return img


@CHANNELS.register("jpeg")
def _jpeg(img: np.ndarray, quality: int | None) -> np.ndarray:
    """Re-encoded as JPEG at `quality` (1-95), decoded again."""
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


@CHANNELS.register("resize")
def _resize(img: np.ndarray, side: int | None) -> np.ndarray:
    """Longer side shrunk to `side` pixels (aspect kept, Lanczos) when it is larger."""
    h, w = img.shape[:2]
    if max(h, w) <= side:
        return img
    scale = side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(img).resize(size, Image.Resampling.LANCZOS))


ARG_RANGE = {"jpeg": (1, 95), "resize": (8, 100_000)}  # steps that take a number, its range


def parse_channel(channel: str) -> tuple[tuple[str, int | None], ...]:
    """"resize:500+jpeg:75" -> (("resize", 500), ("jpeg", 75)); one clear error otherwise."""
    steps = []
    for part in channel.split("+"):
        name, _, arg = part.strip().partition(":")
        expected = ("expected steps like png, jpeg:75 (quality 1-95), resize:500 (longest side "
                    "in pixels), joined by '+'")
        if name not in CHANNELS:
            raise AdvRecError(f"channel {channel!r}: unknown step {name!r}; {expected}")
        if name not in ARG_RANGE:
            if arg:
                raise AdvRecError(f"channel {channel!r}: {name} takes no number; {expected}")
            steps.append((name, None))
            continue
        lo, hi = ARG_RANGE[name]
        if not arg.isdigit() or not lo <= int(arg) <= hi:
            raise AdvRecError(f"channel {channel!r}: {name} needs a whole number in "
                              f"{lo}-{hi} after ':', not {arg!r}; {expected}")
        steps.append((name, int(arg)))
    return tuple(steps)


@dataclass(frozen=True)
class Upload:
    """Where the attack happens and what the platform does to the upload (module docstring)."""

    at: str = "full"  # "full": the photo at its own size | "model": at the model's input
    channel: str = "png"  # platform steps, e.g. "png", "jpeg:75", "resize:500+jpeg:90"

    def __post_init__(self):
        if self.at not in ATTACK_AT:
            raise AdvRecError(f"attack-at must be 'full' (the photo at its own size, through a "
                              f"differentiable resize) or 'model' (at the model's input size, "
                              f"the paper's), not {self.at!r}")
        _ = self.steps  # parses and checks the channel

    @cached_property
    def steps(self) -> tuple[tuple[str, int | None], ...]:
        """The parsed channel (once per Upload; not a field, so not in any cache key)."""
        return parse_channel(self.channel)

    @property
    def lossless(self) -> bool:
        """True when the channel changes nothing (PNG only)."""
        return all(name == "png" for name, _ in self.steps)

    @property
    def label(self) -> str:
        """"" for the default; else "jpeg:75", "model-size", "model-size/jpeg:75"."""
        parts = ([] if self.at == "full" else ["model-size"]) + \
            ([] if self.lossless else [self.channel])
        return "/".join(parts)

    def deliver(self, img: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 upload -> what the platform stores (uint8, any size)."""
        for name, arg in self.steps:
            img = CHANNELS.get(name)(img, arg)
        return np.ascontiguousarray(img)


def to_model_size(img: np.ndarray, size: int) -> np.ndarray:
    """(H, W, 3) uint8 -> (size, size, 3) uint8, bicubic (the whole product, not a crop): the
    platform's preprocessing for every image, clean or uploaded."""
    if img.shape[0] == size and img.shape[1] == size:
        return img
    return np.asarray(Image.fromarray(img).resize((size, size), Image.Resampling.BICUBIC))


def to_tensor(images: list[np.ndarray] | np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 (or a list of equal-size ones) -> (N, 3, H, W) float in [0, 1]."""
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div(255)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(N, 3, H, W) in [0, 1] -> (N, H, W, 3) uint8."""
    return (x.detach().clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()


def platform_input(images: list[np.ndarray] | np.ndarray, size: int,
                   upload: Upload | None = None) -> torch.Tensor:
    """8-bit images (any sizes) -> (N, 3, size, size) in [0, 1]: through `upload`'s channel
    (none when None), then resized to the model's input."""
    return to_tensor([to_model_size(upload.deliver(im) if upload else im, size)
                      for im in images])


class Resized(nn.Module):
    """A classifier seen through the platform's resize: (B, 3, H, W) in [0, 1] at the photo's
    size -> bicubic antialiased resize to (size, size) (torch's, which follows PIL's) ->
    `model`. Differentiable, so an attack perturbs the full-size photo."""

    def __init__(self, model: nn.Module, size: int):
        super().__init__()
        self.model, self.size = model, size

    @property
    def std(self) -> torch.Tensor:  # eps_space="normalized" reads the model's std
        return self.model.std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=(self.size, self.size), mode="bicubic", antialias=True,
                          align_corners=False).clamp(0, 1)
        return self.model(x)


__all__ = ["CHANNELS", "Upload", "Resized", "parse_channel", "platform_input", "to_model_size",
           "to_tensor", "to_uint8"]
