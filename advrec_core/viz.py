"""Pictures for judging perturbations: amplified perturbations, heatmap overlays, lossless PNG
bytes and a clean-vs-perturbed comparison widget in plain HTML + CSS (no script, no CDN, so
it works offline and inside Streamlit's sanitised `st.html`). Arrays are uint8 (H, W, 3)."""
from __future__ import annotations

import base64
import html
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


def heat_overlay(img: np.ndarray, heat: np.ndarray, vmax: float | None = None,
                 alpha: float = 0.6) -> np.ndarray:
    """`heat` (h, w) >= 0 coloured and blended over a greyed `img` (H, W, 3); the heat map is
    resized to the image by nearest neighbour. vmax: value shown brightest (default max)."""
    heat = np.asarray(heat, dtype=np.float32)
    if heat.shape != img.shape[:2]:
        heat = np.asarray(Image.fromarray(heat).resize(img.shape[1::-1], Image.NEAREST))
    top = float(vmax) if vmax else float(heat.max()) or 1.0
    colour = HEAT_LUT[np.clip(heat / top * 255, 0, 255).astype(np.uint8)].astype(np.float32)
    grey = img.astype(np.float32).mean(2, keepdims=True).repeat(3, 2)
    return np.clip((1 - alpha) * grey + alpha * colour, 0, 255).round().astype(np.uint8)


def perturbation_map(clean: np.ndarray, adv: np.ndarray) -> np.ndarray:
    """(H, W) largest absolute change over the colour channels, in 8-bit levels."""
    return np.abs(adv.astype(np.int16) - clean.astype(np.int16)).max(2).astype(np.float32)


def png_bytes(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def png_data_uri(img: np.ndarray | bytes) -> str:
    """A data: URI of `img` (uint8 (H, W, 3), or PNG bytes already encoded)."""
    png = img if isinstance(img, bytes) else png_bytes(img)
    return "data:image/png;base64," + base64.b64encode(png).decode()


def compare_html(clean: np.ndarray, adv: np.ndarray, factor: int = 1, uid: str = "cmp",
                 labels: tuple[str, str] = ("clean", "perturbed")) -> str:
    """A wipe comparison (drag the handle at the bottom-right corner of the perturbed layer)
    and a flicker toggle (the two images alternate twice a second), both CSS only. Both
    images are lossless PNG at `factor` x native size, drawn without smoothing."""
    h, w = clean.shape[:2]
    H, W = h * factor, w * factor
    a, b = png_data_uri(upscale(clean, factor)), png_data_uri(upscale(adv, factor))
    u = "".join(ch for ch in uid if ch.isalnum()) or "cmp"
    la, lb = (html.escape(s) for s in labels)
    return f"""
<style>
.{u} {{font: 13px sans-serif; margin-bottom: .5rem}}
.{u} .stage {{position: relative; width: {W}px; height: {H}px; border: 1px solid #999}}
.{u} img {{image-rendering: pixelated; image-rendering: crisp-edges; display: block;
          width: {W}px; height: {H}px; max-width: none}}
.{u} .base {{position: absolute; left: 0; top: 0}}
.{u} .wipe {{position: absolute; left: 0; top: 0; width: {W // 2}px; max-width: {W}px;
            min-width: 8px; height: {H}px; overflow: hidden; resize: horizontal;
            border-right: 2px solid #e33}}
.{u} .flick {{position: absolute; left: 0; top: 0; display: none}}
.{u} input:checked ~ .stage .flick {{display: block; animation: {u}k 1s steps(1) infinite}}
.{u} input:checked ~ .stage .wipe {{display: none}}
@keyframes {u}k {{0% {{opacity: 1}} 50% {{opacity: 0}}}}
</style>
<div class="{u}">
<input type="checkbox" id="{u}f"> <label for="{u}f">flicker</label>
<span style="color:#666">&nbsp;· left of the red line: {lb}; right: {la}. Drag the
line's bottom corner to wipe.</span>
<div class="stage">
<img class="base" src="{a}" alt="{la}" width="{W}" height="{H}">
<div class="wipe"><img src="{b}" alt="{lb}" width="{W}" height="{H}"></div>
<img class="flick" src="{b}" alt="{lb} (flicker)" width="{W}" height="{H}">
</div></div>"""


def pair_html(left_png: bytes, right_png: bytes, zoom: int = 1,
              hide_after_ms: int | None = None, labels: tuple[str, str] = ("A", "B"),
              uid: str = "pair") -> str:
    """Two PNG images side by side at the same size (zoom x the first one's native size,
    nearest neighbour), for a judgment trial. With `hide_after_ms` both disappear after that
    exposure (a CSS animation: no script, so the timing does not depend on a round trip)."""
    w, h = Image.open(io.BytesIO(left_png)).size
    W, H = w * zoom, h * zoom
    u = "".join(ch for ch in uid if ch.isalnum()) or "pair"
    hide = (f"animation: {u}h 0s linear {int(hide_after_ms)}ms forwards;"
            if hide_after_ms else "")
    imgs = "".join(
        f'<figure><img src="{png_data_uri(png)}" '
        f'width="{W}" height="{H}" alt="{html.escape(lab)}"><figcaption>{html.escape(lab)}'
        f"</figcaption></figure>" for png, lab in ((left_png, labels[0]), (right_png, labels[1])))
    return f"""
<style>
.{u} {{display: flex; gap: 48px; justify-content: center; font: 15px sans-serif}}
.{u} figure {{margin: 0; text-align: center}}
.{u} img {{width: {W}px; height: {H}px; max-width: none; image-rendering: pixelated;
          image-rendering: crisp-edges; display: block; {hide}}}
@keyframes {u}h {{to {{visibility: hidden}}}}
</style>
<div class="{u}">{imgs}</div>"""
