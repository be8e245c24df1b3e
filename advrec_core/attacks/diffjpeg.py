"""A differentiable approximation of baseline JPEG (libjpeg / PIL, 4:2:0), for attacks that
plan for a platform that re-encodes uploads (Shin & Song, "JPEG-resistant adversarial
images", NeurIPS 2017 workshop; Athalye et al., ICML 2018, BPDA).

Every stage PIL runs is here as a tensor operation: RGB -> YCbCr (JFIF), chroma averaged over
2 x 2 blocks, 8 x 8 block DCT (orthonormal, which is JPEG's), quantisation with the IJG tables
scaled to the quality, dequantisation, inverse DCT, chroma upsampled bilinearly (libjpeg's
"fancy" triangle filter), YCbCr -> RGB, 8-bit rounding. The two roundings are straight-through
(exact values forward, identity backward: BPDA), so the forward pass is the codec up to
libjpeg's integer DCT and its edge handling (mean |difference| from PIL about 1/255, tested)
and the backward pass is the gradient of every linear stage. (B, 3, H, W) in [0, 1] -> same."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# ITU T.81 Annex K tables (quality 50), row-major over (v, u)
_LUMA = (16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57,
         69, 56, 14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55,
         64, 81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100,
         103, 99)
_CHROMA = (17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99,
           99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99, *([99] * 32))


def quant_table(quality: int, chroma: bool) -> torch.Tensor:
    """(8, 8) IJG quantisation table at `quality` (1-100), as libjpeg's jpeg_set_quality."""
    scale = 5000 / quality if quality < 50 else 200 - 2 * quality
    base = torch.tensor(_CHROMA if chroma else _LUMA, dtype=torch.float32).view(8, 8)
    return ((base * scale + 50) // 100).clamp(1, 255)


def _dct_matrix() -> torch.Tensor:
    n = torch.arange(8, dtype=torch.float64)
    c = torch.cos((2 * n[None, :] + 1) * n[:, None] * math.pi / 16) * math.sqrt(2 / 8)
    c[0] /= math.sqrt(2)
    return c.float()  # (8, 8): rows = frequencies


DCT = _dct_matrix()


def ste_round(x: torch.Tensor) -> torch.Tensor:
    """round(x) forward, identity backward (BPDA's straight-through estimator)."""
    return x + (torch.round(x) - x).detach()


def _blocks(x: torch.Tensor) -> torch.Tensor:
    """(B, H, W) -> (B, H/8, W/8, 8, 8)."""
    b, h, w = x.shape
    return x.view(b, h // 8, 8, w // 8, 8).transpose(2, 3)


def _unblocks(x: torch.Tensor) -> torch.Tensor:
    b, nh, nw = x.shape[:3]
    return x.transpose(2, 3).reshape(b, nh * 8, nw * 8)


def _code(plane: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """One (B, H, W) plane in 0-255 (H, W multiples of 8) through DCT, quantisation and back."""
    d = DCT.to(plane)
    blocks = _blocks(plane - 128)
    coef = d @ blocks @ d.T
    q = table.to(plane)
    rec = d.T @ (ste_round(coef / q) * q) @ d
    return _unblocks(rec) + 128


def diff_jpeg(x: torch.Tensor, quality: int | torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) in [0, 1] -> its JPEG at `quality` (an int, or (B,) ints: one per image),
    decoded, in [0, 1] on the 8-bit grid; differentiable (module docstring)."""
    b, _, h, w = x.shape
    ph, pw = (-h) % 16, (-w) % 16  # whole 16 x 16 macroblocks, edges repeated as libjpeg does
    img = F.pad(x, (0, pw, 0, ph), mode="replicate") * 255
    r, g, bl = img[:, 0], img[:, 1], img[:, 2]
    y = 0.299 * r + 0.587 * g + 0.114 * bl
    cb = -0.168736 * r - 0.331264 * g + 0.5 * bl + 128
    cr = 0.5 * r - 0.418688 * g - 0.081312 * bl + 128
    q = torch.as_tensor(quality).reshape(-1)
    tables = [(quant_table(int(v), False), quant_table(int(v), True)) for v in q.tolist()]
    luma = torch.stack([t[0] for t in tables])[:, None, None]  # (B or 1, 1, 1, 8, 8)
    chroma = torch.stack([t[1] for t in tables])[:, None, None]
    y = _code(y, luma)
    sub = F.avg_pool2d(torch.stack([cb, cr], 1), 2)  # 4:2:0
    cb2, cr2 = (_code(sub[:, i], chroma) for i in range(2))
    up = F.interpolate(torch.stack([cb2, cr2], 1), scale_factor=2, mode="bilinear",
                       align_corners=False)
    cb, cr = up[:, 0] - 128, up[:, 1] - 128
    rgb = torch.stack([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb], 1)
    out = ste_round(rgb.clamp(0, 255)) / 255
    return out[:, :, :h, :w]


__all__ = ["diff_jpeg", "quant_table", "ste_round"]
