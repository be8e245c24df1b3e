"""Weight-free perceptual differences with spatial maps: nothing to download, so they exist on
every install (LPIPS needs ImageNet backbone weights; see `lpips_metric`).

* FLIP (Andersson et al., "FLIP: A Difference Evaluator for Alternating Images", HPG 2020),
  NVIDIA's `flip-evaluator`: built for the flicker comparison people make between two images;
  LDR sRGB inputs; per-pixel error in [0, 1], mean = the image's value. Viewing condition:
  FLIP's default screen (0.7 m from a 0.7 m wide 3840-pixel display, 67.02 pixels per
  degree) with each image pixel drawn as `display_zoom` x `display_zoom` screen pixels, as
  people see the images here (the study's default x4 for 96 px): 67.02 / zoom image pixels
  per degree.
* SSIM map: scikit-image's `structural_similarity(full=True)`, averaged over the colour
  channels; its scalar (the map's mean inside the border the window cannot cover) is the
  SSIM column.
* CIEDE2000: scikit-image's `deltaE_ciede2000` between the sRGB images in CIELAB (D65); per
  pixel in ΔE units (about 1: just noticeable side by side), mean = the image's value.
* |δ|: the largest absolute change over the colour channels per pixel ([0, 1] units); its
  maximum is the L-inf norm.

Images are numpy (N, H, W, 3) float in [0, 1]; maps (N, H, W) float32. FLIP and SSIM are one
library call per image (neither library takes a batch; at 96 px FLIP takes ~6 ms per image,
SSIM ~1 ms); CIEDE2000 and |δ| are one vectorised call for the batch."""
from __future__ import annotations

import numpy as np
from skimage import color
from skimage.metrics import structural_similarity

from ..data.images import display_factor
from .registry import ImageMetric, register

FLIP_SCREEN_PPD = 67.02064514160156  # FLIP's default: pixels per degree of its screen


VIEWING_SIDE = 384  # screen pixels of an image's longer side when people judge it


def display_zoom(height: int, width: int) -> int:
    """The integer zoom people see an image at (the Attack Lab's default too): its longer
    side at most VIEWING_SIDE screen pixels (96 px -> x4, 128 -> x3, 224 -> x1)."""
    return display_factor(height, width, VIEWING_SIDE)


def flip_ppd(height: int, width: int) -> float:
    """FLIP's pixels per degree for an image of this size shown at `display_zoom`."""
    return FLIP_SCREEN_PPD / display_zoom(height, width)


def flip(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N,) mean FLIP error in [0, 1] and (N, H, W) FLIP error maps (0: identical), at
    `flip_ppd` of the images' size."""
    from flip_evaluator import nbflip  # the compiled core, without the wrapper's sys.exit()

    a, b = _checked(a, b)
    values, maps = np.empty(len(a)), np.empty(a.shape[:3], np.float32)
    params = {"ppd": flip_ppd(*a.shape[1:3])}
    for i, (x, y) in enumerate(zip(a, b)):
        # (reference, test, HDR?, inputs sRGB?, magma?, compute mean?, parameters)
        m, values[i], _ = nbflip.evaluate(x, y, False, True, False, True, params)
        maps[i] = m[..., 0]
    return values, maps


def ssim_maps(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N,) SSIM in [-1, 1] (1: identical) and (N, H, W) SSIM maps (channel mean)."""
    a, b = _checked(a, b)
    values, maps = np.empty(len(a)), np.empty(a.shape[:3], np.float32)
    for i, (x, y) in enumerate(zip(a, b)):
        values[i], m = structural_similarity(x.astype(np.float64), y.astype(np.float64),
                                             channel_axis=2, data_range=1.0, full=True)
        maps[i] = m.mean(axis=2)
    return values, maps


def ciede2000(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N,) mean and (N, H, W) per-pixel CIEDE2000 colour difference (ΔE units, >= 0)."""
    a, b = _checked(a, b)
    maps = color.deltaE_ciede2000(color.rgb2lab(a, channel_axis=-1),
                                  color.rgb2lab(b, channel_axis=-1), channel_axis=-1)
    maps = maps.astype(np.float32)
    return maps.mean(axis=(1, 2), dtype=np.float64), maps


def abs_change(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N,) L-inf norm and (N, H, W) largest absolute change over the channels, [0, 1]."""
    a, b = _checked(a, b)
    maps = np.abs(b.astype(np.float64) - a).max(axis=3)
    return maps.max(axis=(1, 2)), maps.astype(np.float32)


def _checked(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)  # FLIP takes float32
    if a.shape != b.shape or a.ndim != 4 or a.shape[3] != 3:
        raise ValueError(f"expected two (N, H, W, 3) batches of one shape, got {a.shape} and "
                         f"{b.shape}")
    for t in (a, b):
        if t.size and (t.min() < 0 or t.max() > 1):
            raise ValueError(f"expected images in [0, 1], got [{t.min():.3f}, {t.max():.3f}]")
    return a, b


register(ImageMetric("FLIP", "FLIP (flicker difference)", +1, 0.0, 1.0, has_map=True,
                     short="FLIP", compute=lambda i: flip(i.a, i.b)))
register(ImageMetric("DeltaE2000", "ΔE2000 (CIEDE2000 colour difference)", +1, 0.0,
                     float("inf"), has_map=True, short="ΔE2000", compute=lambda i: ciede2000(i.a, i.b)))
register(ImageMetric("SSIM", "SSIM", -1, -1.0, 1.0, has_map=True, short="SSIM", shown=".3f",
                     compute=lambda i: ssim_maps(i.a, i.b)))
