"""The per-image metrics an attack result stores (one column each in `metrics.csv`): their
names, what they measure and which way they go. The study's lists, the analysis and the
pages read them from here."""
from __future__ import annotations

from dataclasses import dataclass

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


IMAGE_METRICS: Registry[ImageMetric] = Registry("image metric")
for _m in (ImageMetric("LPIPS-vgg", "LPIPS (VGG)", +1, 0.0, float("inf"), has_map=True),
           ImageMetric("LPIPS-alex", "LPIPS (AlexNet)", +1, 0.0, float("inf"), has_map=True),
           ImageMetric("SSIM", "SSIM", -1, -1.0, 1.0),
           ImageMetric("PSNR", "PSNR (dB)", -1, 0.0, float("inf")),
           ImageMetric("L2", "L2 norm of the perturbation", +1, 0.0, float("inf")),
           ImageMetric("Linf", "L-inf norm of the perturbation", +1, 0.0, 1.0),
           ImageMetric("FL", "feature loss (MSE of the CNN features)", +1, 0.0, float("inf"),
                       perceptual=False)):
    IMAGE_METRICS.register(_m.name)(_m)
