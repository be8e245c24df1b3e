"""Clean-vs-perturbed comparisons in plain HTML + CSS for `st.html` (no script, no CDN, so
they work offline and inside Streamlit's sanitised HTML): the Attack Lab's wipe / flicker
widget and the metric heatmaps. Images are lossless PNG, zoomed by integer nearest
neighbour. Arrays are uint8 (H, W, 3)."""
from __future__ import annotations

import base64
import html

import numpy as np

from advrec_core.viz import colour_bar, png_bytes, upscale


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


def heat_html(overlay: np.ndarray, title: str, vmax: float, value: float, value_name: str,
              factor: int = 1, note: str = "") -> str:
    """A heatmap drawn over the image (lossless PNG at `factor` x native size, nearest
    neighbour) with its colour bar (0 .. `vmax`) and the image's value of the metric."""
    h, w = overlay.shape[:2]
    H, W = h * factor, w * factor
    img, bar = png_data_uri(upscale(overlay, factor)), png_data_uri(colour_bar(256, 12))
    t, vn, nt = (html.escape(s) for s in (title, value_name, note))
    return f"""
<figure style="margin:0;font:13px sans-serif;width:{max(W, 200)}px">
<img src="{img}" width="{W}" height="{H}" alt="{t}" style="image-rendering:pixelated;
 image-rendering:crisp-edges;display:block;width:{W}px;height:{H}px;max-width:none">
<img src="{bar}" width="{W}" height="12" alt="colour bar" style="display:block;width:{W}px;
 height:12px;margin-top:4px">
<div style="display:flex;justify-content:space-between;width:{W}px;color:#555">
<span>0</span><span>{vmax:.3g}</span></div>
<figcaption><b>{t}</b><br>{vn} of this image: <b>{value:.4g}</b>{'<br>' + nt if nt else ''}
</figcaption></figure>"""
