"""Pictures for judging perturbations: amplified perturbations, heatmap overlays and lossless
PNG bytes (the HTML that shows them lives in the UI layer, `ui.compare`). Arrays are uint8
(H, W, 3)."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image

# anchors of a perceptually ordered dark-to-bright map (inferno-like), interpolated to 256
_ANCHORS = np.array([[0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66],
                     [245, 125, 21], [250, 193, 39], [252, 255, 164]], dtype=float)
HEAT_LUT = np.stack([np.interp(np.linspace(0, 1, 256), np.linspace(0, 1, len(_ANCHORS)),
                               _ANCHORS[:, c]) for c in range(3)], 1).round().astype(np.uint8)


def upscale(img: np.ndarray, factor: int) -> np.ndarray:
    """Integer nearest-neighbour upscaling: every pixel becomes a factor x factor block."""
    return img if factor <= 1 else img.repeat(factor, 0).repeat(factor, 1)


def thumbnail(img: np.ndarray, size: int = 96) -> np.ndarray:
    """A catalogue thumbnail (not for judging perturbations): images larger than `size`
    are shrunk (Lanczos) to fit, smaller ones kept at native size."""
    if max(img.shape[:2]) <= size:
        return img
    im = Image.fromarray(img)
    im.thumbnail((size, size), Image.LANCZOS)
    return np.asarray(im)


def amplified(clean: np.ndarray, adv: np.ndarray, gain: float = 10.0) -> np.ndarray:
    """The perturbation adv - clean, times `gain`, around mid-grey (128 = no change)."""
    d = adv.astype(np.float32) - clean.astype(np.float32)
    return np.clip(128 + gain * d, 0, 255).round().astype(np.uint8)


def heat_colours(heat: np.ndarray, vmax: float | None = None,
                 size: tuple[int, int] | None = None) -> np.ndarray:
    """`heat` (h, w) >= 0 -> uint8 (H, W, 3) through HEAT_LUT, 0 darkest and `vmax` (default:
    the map's max) brightest; resized to `size` (H, W) by nearest neighbour (a feature-grid
    map shows its cells as blocks)."""
    heat = np.asarray(heat, dtype=np.float32)
    if size is not None and heat.shape != tuple(size):
        heat = np.asarray(Image.fromarray(heat).resize(size[::-1], Image.NEAREST))
    top = float(vmax) if vmax else float(heat.max()) or 1.0
    return HEAT_LUT[np.clip(heat / top * 255, 0, 255).astype(np.uint8)]


def heat_overlay(img: np.ndarray, heat: np.ndarray, vmax: float | None = None,
                 alpha: float = 0.6) -> np.ndarray:
    """`heat` (h, w) >= 0 coloured and blended over a greyed `img` (H, W, 3); the heat map is
    resized to the image by nearest neighbour. vmax: value shown brightest (default max)."""
    colour = heat_colours(heat, vmax, img.shape[:2]).astype(np.float32)
    grey = img.astype(np.float32).mean(2, keepdims=True).repeat(3, 2)
    return np.clip((1 - alpha) * grey + alpha * colour, 0, 255).round().astype(np.uint8)


def colour_bar(width: int = 256, height: int = 12) -> np.ndarray:
    """uint8 (height, width, 3) HEAT_LUT from 0 (left) to the scale's top (right)."""
    ramp = np.linspace(0, 255, width).round().astype(np.uint8)
    return np.broadcast_to(HEAT_LUT[ramp][None], (height, width, 3)).copy()


def png_bytes(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()
