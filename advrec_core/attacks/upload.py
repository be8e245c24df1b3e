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
  ``resize:N`` (longer side shrunk to N pixels, Lanczos, when larger), and the platform's
  defenses: ``bits:N`` (bit-depth reduction) and ``median:K`` (K x K median smoothing), the
  feature squeezers of Xu, Evans & Qi (NDSS 2018), and ``denoise`` (a learned denoiser before
  the CNN, `defenses.denoiser`). E.g. ``jpeg:75``, ``resize:500+jpeg:90``, ``bits:5+median:2``.
  Every step has a differentiable surrogate (`Upload.surrogate`) for the adaptive attacker.

After the channel every image is resized to the model's input by `to_model_size` (bicubic),
exactly as clean item images are, so the clean and the attacked features come from the same
preprocessing; the clean catalog goes through the same channel (`ExtractJob.channel`): the
platform treats every upload alike. Codec work is per image (PIL encodes one image at a time);
the squeezers and the denoiser run on batches."""
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
from .diffjpeg import diff_jpeg, ste_round

ATTACK_AT = ("full", "model")  # the photo at its own size | resized to the model's input


@dataclass(frozen=True)
class ChannelStep:
    """One thing a platform can do to an upload. `apply`: the real thing, on a batch of 8-bit
    images ((H, W, 3) uint8 each, any sizes) -> 8-bit images. `surrogate`: the same as a
    differentiable map of (B, 3, H, W) in [0, 1], for the attacker who plans for it (BPDA,
    Athalye et al. 2018: exact forward and straight-through rounding where the real step
    rounds). Both get (arg, the bound denoiser or None)."""

    apply: Callable[[list[np.ndarray], int | None, nn.Module | None], list[np.ndarray]]
    surrogate: Callable[[torch.Tensor, int | None, nn.Module | None], torch.Tensor]
    arg: tuple[int, int] | None = None  # the range of its number (None: takes none)
    example: str = ""  # e.g. "jpeg:75 (quality 1-100)"
    random: bool = False  # the attacker does not know its exact setting: EOT samples it


CHANNELS: Registry[ChannelStep] = Registry("channel step")


def _by_shape(images: list[np.ndarray], fn: Callable[[torch.Tensor], torch.Tensor]) -> list[np.ndarray]:
    """`fn` on every group of equal-size images as one (B, 3, H, W) batch in [0, 1]; back to
    uint8 in the images' order."""
    out: list = [None] * len(images)
    for shape in {im.shape for im in images}:
        idx = [i for i, im in enumerate(images) if im.shape == shape]
        with torch.no_grad():
            res = to_uint8(fn(to_tensor([images[i] for i in idx])))
        for i, r in zip(idx, res):
            out[i] = r
    return out


def _jpeg_one(img: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def _resize_one(img: np.ndarray, side: int) -> np.ndarray:
    h, w = img.shape[:2]
    if max(h, w) <= side:
        return img
    scale = side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(img).resize(size, Image.Resampling.LANCZOS))


def _resize_surrogate(x: torch.Tensor, side: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    if max(h, w) <= side:
        return x
    scale = side / max(h, w)
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    return F.interpolate(x, size=size, mode="bicubic", antialias=True,
                         align_corners=False).clamp(0, 1)


def bit_depth(x: torch.Tensor, bits: int) -> torch.Tensor:
    """(B, 3, H, W) in [0, 1] -> `bits` bits per channel (Xu et al.'s squeezer), then on the
    8-bit grid; straight-through."""
    levels = 2 ** bits - 1
    return ste_round(ste_round(x * levels) / levels * 255) / 255


def median_smooth(x: torch.Tensor, k: int) -> torch.Tensor:
    """(B, 3, H, W) -> the median of each pixel's k x k window (edges reflected; an even k's
    window reaches one pixel further up and left; the lower of the two middle values), per
    channel. Differentiable almost everywhere (the gradient goes to the chosen pixel)."""
    lo, hi = k // 2, (k - 1) // 2
    b, c, h, w = x.shape
    padded = F.pad(x, (lo, hi, lo, hi), mode="reflect")
    windows = padded.unfold(2, k, 1).unfold(3, k, 1)  # (B, C, H, W, k, k)
    return windows.reshape(b, c, h, w, k * k).median(dim=-1).values


def _denoise(x: torch.Tensor, denoiser: nn.Module | None) -> torch.Tensor:
    if denoiser is None:
        raise AdvRecError("the denoise step needs its trained denoiser: it is bound where a job "
                          "runs (defenses.denoiser.bind)")
    return denoiser(x.to(next(denoiser.parameters()).device)).clamp(0, 1)


for _name, _step in {
    "png": ChannelStep(lambda ims, a, d: ims, lambda x, a, d: x,
                       example="png (lossless, nothing changes)"),
    "jpeg": ChannelStep(lambda ims, q, d: [_jpeg_one(im, q) for im in ims],
                        lambda x, q, d: diff_jpeg(x, q), (1, 100), "jpeg:75 (re-encoded at quality 1-100)",
                        random=True),
    "resize": ChannelStep(lambda ims, s, d: [_resize_one(im, s) for im in ims],
                          lambda x, s, d: _resize_surrogate(x, s), (8, 100_000),
                          "resize:500 (longest side in pixels)"),
    "bits": ChannelStep(lambda ims, n, d: _by_shape(ims, lambda x: bit_depth(x, n)),
                        lambda x, n, d: bit_depth(x, n), (1, 8),
                        "bits:5 (bit depth 1-8, feature squeezing)"),
    "median": ChannelStep(lambda ims, k, d: _by_shape(ims, lambda x: median_smooth(x, k)),
                          lambda x, k, d: median_smooth(x, k), (2, 9),
                          "median:2 (k x k median smoothing, k 2-9)"),
    "denoise": ChannelStep(lambda ims, a, d: _by_shape(ims, lambda x: _denoise(x, d)),
                           lambda x, a, d: _denoise(x, d),
                           example="denoise (the learned denoiser trained for the extractor)"),
}.items():
    CHANNELS.register(_name)(_step)


def parse_channel(channel: str) -> tuple[tuple[str, int | None], ...]:
    """"resize:500+jpeg:75" -> (("resize", 500), ("jpeg", 75)); one clear error otherwise."""
    steps = []
    expected = ("expected steps joined by '+' among " +
                ", ".join(step.example for _, step in CHANNELS.items()))
    for part in channel.split("+"):
        name, _, arg = part.strip().partition(":")
        if name not in CHANNELS:
            raise AdvRecError(f"channel {channel!r}: unknown step {name!r}; {expected}")
        step = CHANNELS.get(name)
        if step.arg is None:
            if arg:
                raise AdvRecError(f"channel {channel!r}: {name} takes no number; {expected}")
            steps.append((name, None))
            continue
        lo, hi = step.arg
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

    @property
    def random(self) -> bool:
        """True when the adaptive attacker must sample the channel (a JPEG quality it does not
        know exactly); a deterministic channel needs one draw per step."""
        return any(CHANNELS.get(name).random for name, _ in self.steps)

    @property
    def needs_denoiser(self) -> bool:
        """True when a step is the learned denoiser (bound per extractor where a job runs)."""
        return any(name == "denoise" for name, _ in self.steps)

    @property
    def denoiser(self) -> nn.Module | None:
        return self.__dict__.get("_denoiser")

    def bound(self, denoiser: nn.Module | None) -> "Upload":
        """This upload with its denoise step's trained network (not a field: the network's
        key is in the cache entries that use it)."""
        out = Upload(self.at, self.channel)
        out.__dict__["_denoiser"] = denoiser
        return out

    def deliver_all(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """8-bit uploads ((H, W, 3) uint8 each) -> what the platform stores (uint8, any size),
        each step over the whole batch."""
        for name, arg in self.steps:
            images = CHANNELS.get(name).apply(list(images), arg, self.denoiser)
        return [np.ascontiguousarray(im) for im in images]

    def deliver(self, img: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 upload -> what the platform stores (uint8, any size)."""
        return self.deliver_all([img])[0]

    def surrogate(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> the channel as a differentiable map (`ChannelStep.
        surrogate`), for the adaptive attacker. A step whose exact setting the attacker does not
        know (JPEG's quality) draws it per image, uniform within +-JPEG_SPREAD of the platform's
        and inside its range (expectation over transformation, Athalye et al. 2018)."""
        for name, arg in self.steps:
            step = CHANNELS.get(name)
            if step.random and arg is not None:
                lo, hi = max(step.arg[0], arg - JPEG_SPREAD), min(step.arg[1], arg + JPEG_SPREAD)
                arg = torch.randint(lo, hi + 1, (len(x),), generator=generator)
            x = step.surrogate(x, arg, self.denoiser)
        return x


JPEG_SPREAD = 10  # the adaptive attacker's uncertainty about the platform's JPEG quality


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
    delivered = upload.deliver_all(list(images)) if upload else images
    return to_tensor([to_model_size(im, size) for im in delivered])


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


__all__ = ["CHANNELS", "ChannelStep", "Upload", "bit_depth", "median_smooth", "Resized",
           "parse_channel", "platform_input", "to_model_size",
           "to_tensor", "to_uint8"]
