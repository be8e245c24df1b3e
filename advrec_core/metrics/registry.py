"""The per-image metrics an attack result stores (one column each in `metrics.csv`, and a
spatial map in ``maps/<name>.npy`` where `has_map`): their names, what they measure, which
way they go, and how each is computed (`compute`, beside its descriptor in the module that
holds its arithmetic: torchmetrics' habit). The CSV, the grid, the study's lists, the
analysis and the pages read them from here; an attack's cache entry is keyed by every
registered metric's name and `version`, so registering one recomputes stored attacks.

Registration order (what tables follow): LPIPS (lpips_metric), the weight-free perceptual
differences (perceptual), then PSNR, the norms and the feature losses (visual)."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable

import numpy as np
import torch

from ..registry import Registry


class MetricUnavailable(Exception):
    """A metric that cannot be computed here, with the reason (e.g. no LPIPS weights)."""


@dataclass
class MetricInputs:
    """What a metric's `compute` may read, for N images."""

    clean: torch.Tensor  # (N, 3, H, W) in [0, 1]
    adv: torch.Tensor  # (N, 3, H, W) in [0, 1], the upload (8-bit)
    f_clean: torch.Tensor  # (N, D) the CNN's features
    f_adv: torch.Tensor  # (N, D) after the platform's channel
    fl_map: torch.Tensor | None = None  # (N, h, w) squared change of the last conv map
    lpips: dict = field(default_factory=dict)  # "LPIPS-vgg" -> LPIPSMetric, those asked for

    @cached_property
    def a(self) -> np.ndarray:
        """(N, H, W, 3) float32 clean."""
        return self.clean.detach().float().permute(0, 2, 3, 1).cpu().numpy()

    @cached_property
    def b(self) -> np.ndarray:
        """(N, H, W, 3) float32 perturbed."""
        return self.adv.detach().float().permute(0, 2, 3, 1).cpu().numpy()


# compute(inputs) -> ((N,) values, (N, h, w) map or None); None: not asked for (a LPIPS
# backbone the job does not report); MetricUnavailable: cannot be computed here
Compute = Callable[[MetricInputs], "tuple[np.ndarray, np.ndarray | None] | None"]


@dataclass(frozen=True)
class ImageMetric:
    name: str  # column in an attack's metrics.csv
    title: str
    more_different: int  # +1: higher = clean and perturbed differ more; -1: higher = more alike
    low: float  # range of values
    high: float
    has_map: bool = False  # a spatial map is stored beside the value
    perceptual: bool = True  # about the image pixels (FL is about the CNN's features)
    needs_weights: bool = False  # computed only where downloaded weights exist (LPIPS)
    short: str = ""  # a label that fits a metric tile ("": no tile)
    shown: str = ".4g"  # display format of a value, after `scale`, before `unit`
    scale: float = 1.0  # display unit per stored unit (L-inf: 255 8-bit levels per 1.0)
    unit: str = ""
    compute: Compute | None = field(default=None, compare=False, repr=False)
    version: int = 1  # bump when `compute` changes what it stores (stored attacks redo it)

    def format(self, value: float) -> str:
        """A value as people read it: "8.0/255", "32.4 dB", "0.782"."""
        return f"{value * self.scale:{self.shown}}{self.unit}"

    @property
    def heat_title(self) -> str:
        """What `heat` shows: the metric, or its complement for a similarity (1 - SSIM)."""
        return self.title if self.more_different > 0 else f"{self.high:g} − {self.title}"

    def heat(self, values: np.ndarray) -> np.ndarray:
        """A map (or values) oriented so that higher = more different and 0 = identical."""
        values = np.asarray(values, dtype=np.float32)
        return values if self.more_different > 0 else np.float32(self.high) - values


IMAGE_METRICS: Registry[ImageMetric] = Registry("image metric")


def register(metric: ImageMetric) -> ImageMetric:
    """Add `metric` to IMAGE_METRICS (the one way a metric joins)."""
    return IMAGE_METRICS.register(metric.name)(metric)


def fingerprint() -> dict[str, int]:
    """{name: version} of every registered metric: part of an attack entry's key."""
    return {name: metric.version for name, metric in IMAGE_METRICS.items()}


def in_display_units(frame):
    """A copy of a metrics frame (or a one-row frame of averages) with every registered
    column scaled to its display unit (L-inf in 8-bit levels)."""
    out = frame.copy()
    for name, metric in IMAGE_METRICS.items():
        if name in out and metric.scale != 1.0:
            out[name] = out[name] * metric.scale
    return out


from . import lpips_metric, perceptual, visual  # noqa: E402,F401  registers every metric, in order
