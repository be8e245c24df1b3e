"""The per-image metrics an attack result stores (one column each in `metrics.csv`, and a
spatial map in ``maps/<name>.npy`` where `has_map`): their names, what they measure and which
way they go. The CSV, the grid, the study's lists, the analysis and the pages read them from
here."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..registry import Registry


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
for _m in (ImageMetric("LPIPS-vgg", "LPIPS (VGG)", +1, 0.0, float("inf"), has_map=True,
                       needs_weights=True, short="LPIPS (VGG)"),
           ImageMetric("LPIPS-alex", "LPIPS (AlexNet)", +1, 0.0, float("inf"), has_map=True,
                       needs_weights=True),
           ImageMetric("FLIP", "FLIP (flicker difference)", +1, 0.0, 1.0, has_map=True,
                       short="FLIP"),
           ImageMetric("DeltaE2000", "ΔE2000 (CIEDE2000 colour difference)", +1, 0.0,
                       float("inf"), has_map=True, short="ΔE2000"),
           ImageMetric("SSIM", "SSIM", -1, -1.0, 1.0, has_map=True, short="SSIM", shown=".3f"),
           ImageMetric("PSNR", "PSNR (dB)", -1, 0.0, float("inf"), short="PSNR", shown=".1f",
                       unit=" dB"),
           ImageMetric("L2", "L2 norm of the perturbation", +1, 0.0, float("inf")),
           ImageMetric("Linf", "|δ| (L-inf norm of the perturbation)", +1, 0.0, 1.0,
                       has_map=True, short="L-inf", shown=".1f", scale=255.0, unit="/255"),
           ImageMetric("FL", "feature loss (MSE of the CNN features)", +1, 0.0, float("inf"),
                       perceptual=False, short="Feature loss"),
           ImageMetric("FLmap", "FL map (squared change of the last conv feature map)", +1,
                       0.0, float("inf"), has_map=True, perceptual=False, short="FL map")):
    IMAGE_METRICS.register(_m.name)(_m)


def in_display_units(frame):
    """A copy of a metrics frame (or a one-row frame of averages) with every registered
    column scaled to its display unit (L-inf in 8-bit levels)."""
    out = frame.copy()
    for name, metric in IMAGE_METRICS.items():
        if name in out and metric.scale != 1.0:
            out[name] = out[name] * metric.scale
    return out
