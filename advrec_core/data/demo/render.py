"""Procedural product photographs for the demo world.

An item is drawn upright, supersampled (`CANVAS`), on the 100x100 design grid of its
class (`classes.py`): the *body* mask is filled with the item's fabric (colour x pattern,
shaded by a light from the top left), the *trim* layer composited on top, the silhouette
outlined. The photograph (`Shot`) then decides everything that is not the product, as
product photos on the web vary: mirrored or not, rotated, scaled (large scales crop the
item at the frame), shifted, a soft drop shadow, a background (plain studio, coloured
paper, gradient sweep, texture, or an out-of-focus "lifestyle" room), sometimes an
occluder (a hand, a tag, a prop), downsampling with a Lanczos filter (anti-aliased edges),
exposure, contrast and colour cast, lens blur, sensor noise and an earlier JPEG save.

How often each happens is a `ShotStyle`: the shop's catalog is mostly studio shots, the
classifier's corpus (the world's "ImageNet") is mostly photos in the wild. All randomness
comes from the `numpy.random.Generator` passed in, so the same seed gives byte-identical
pixels."""
from __future__ import annotations

import io
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageOps

from .canvas import COLOURS, MATERIALS, PALETTE, Canvas, Look, shade
from .classes import Category

CANVAS = 256  # drawn at about this size (an integer multiple of the output), then downsampled
BACKGROUNDS = ("studio", "paper", "gradient", "texture", "lifestyle")
OCCLUDERS = ("hand", "tag", "prop")

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class ShotStyle:
    """How varied a set of product photos is. Probabilities in [0, 1]; `backgrounds` gives
    relative weights of BACKGROUNDS; lengths as shares of the image side, angles in degrees."""

    backgrounds: tuple[float, ...] = (0.8, 0.08, 0.06, 0.02, 0.04)
    scale: tuple[float, float] = (0.78, 0.98)  # item size on the canvas (> 1 crops it)
    angle: float = 14.0  # max |rotation|
    shift: float = 0.04  # max |translation| per axis
    flip: float = 0.5  # mirrored
    occlusion: float = 0.03
    blur: float = 0.1  # share with lens blur (radius 0.5-1.7% of the side)
    noise: float = 1.5  # max sensor-noise std, 8-bit levels
    exposure: float = 0.06  # max |brightness change|
    contrast: tuple[float, float] = (0.6, 0.9)  # contrast factor range (< 1: flatter)
    pivot: float = 255.0  # the 8-bit level contrast keeps: 255 = high-key studio lighting
    # (white stays white, shadows lift), 128 = haze or flat light around mid-grey
    cast: float = 0.03  # max per-channel gain change (white balance)
    jpeg: float = 0.3  # share saved as JPEG before (quality 45-95)

    def __post_init__(self):
        if len(self.backgrounds) != len(BACKGROUNDS) or min(self.backgrounds) < 0 \
                or sum(self.backgrounds) <= 0:
            raise ValueError(f"backgrounds: {len(BACKGROUNDS)} weights >= 0 for {BACKGROUNDS}")


CATALOG_STYLE = ShotStyle()  # a shop's listing photos: mostly clean studio shots
CORPUS_STYLE = ShotStyle(  # the world's "ImageNet": photos in the wild
    backgrounds=(0.15, 0.15, 0.2, 0.2, 0.3), scale=(0.55, 1.2), angle=30.0, shift=0.14,
    occlusion=0.3, blur=0.15, noise=2.0, exposure=0.22, contrast=(0.5, 1.1), pivot=128.0,
    cast=0.1, jpeg=0.6)


@dataclass(frozen=True)
class Shot:
    """One photograph's conditions (everything but the product)."""

    background: str  # one of BACKGROUNDS
    colours: tuple[RGB, RGB]  # background colours (wall / floor, gradient ends...)
    param: float  # in [0, 1]: gradient direction, texture period, horizon height
    flip: bool
    occluder: tuple[str, float, float, float, RGB] | None  # kind, x, y, size (fractions), rgb
    brightness: float  # multiplicative
    contrast: float  # factor around `pivot`
    pivot: float  # 8-bit level
    cast: tuple[float, float, float]  # per-channel gains
    blur: float  # Gaussian radius, share of the image side (0: sharp)
    noise: float  # sensor-noise std, 8-bit levels
    jpeg: int | None  # quality of an earlier JPEG save
    seed: int  # textures, clutter and noise


def sample_look(rng: np.random.Generator, colour: str, pattern: str,
                style: ShotStyle = CATALOG_STYLE, material: str = "smooth") -> Look:
    """An item's appearance; its surface is `material` 3 times in 4, else another one."""
    base = np.asarray(PALETTE[colour]) + rng.integers(-10, 11, size=3)
    accents = [n for n in COLOURS if n != colour]
    accent = PALETTE[accents[int(rng.integers(len(accents)))]]
    bg = int(rng.integers(238, 253))
    tint = rng.integers(-3, 4, size=3)
    return Look(
        colour=tuple(int(v) for v in np.clip(base, 0, 255)),  # type: ignore[arg-type]
        pattern=pattern,
        scale=float(rng.uniform(*style.scale)),
        angle=float(rng.uniform(-style.angle, style.angle)),
        shift=(float(rng.uniform(-style.shift, style.shift)),
               float(rng.uniform(-style.shift, style.shift))),
        light=float(rng.uniform(0.12, 0.32)),
        background=tuple(int(v) for v in np.clip(bg + tint, 0, 255)),  # type: ignore[arg-type]
        pattern_period=float(rng.uniform(7, 12)),
        pattern_angle=float(rng.choice([0.0, 90.0, 45.0, -45.0])),
        accent=accent,
        shape=tuple(float(v) for v in rng.random(4)),
        material=material if rng.random() < 0.75 else MATERIALS[int(rng.integers(len(MATERIALS)))],
        grain=float(rng.uniform(8, 16)),
        grain_period=float(rng.uniform(2.0, 3.2)),
    )


def _colour(rng: np.random.Generator, lo: int, hi: int) -> RGB:
    return tuple(int(v) for v in rng.integers(lo, hi, size=3))  # type: ignore[return-value]


def sample_shot(rng: np.random.Generator, look: Look, style: ShotStyle = CATALOG_STYLE) -> Shot:
    w = np.asarray(style.backgrounds, float)
    background = BACKGROUNDS[int(rng.choice(len(BACKGROUNDS), p=w / w.sum()))]
    if background == "studio":
        colours = (look.background, look.background)
    elif background == "paper":
        c = _colour(rng, 110, 250)
        colours = (c, c)
    else:
        colours = (_colour(rng, 60, 250), _colour(rng, 60, 250))
    occluder = None
    if rng.random() < style.occlusion:
        kind = OCCLUDERS[int(rng.integers(len(OCCLUDERS)))]
        skin = ((224, 180, 150), (190, 140, 105), (141, 96, 70), (96, 62, 44))
        rgb = skin[int(rng.integers(4))] if kind == "hand" else _colour(rng, 30, 250)
        occluder = (kind, float(rng.uniform(0.1, 0.9)), float(rng.uniform(0.1, 0.9)),
                    float(rng.uniform(0.15, 0.35)), rgb)
    e = style.exposure
    return Shot(background, colours, float(rng.random()), bool(rng.random() < style.flip),
                occluder, float(rng.uniform(1 - e, 1 + e)), float(rng.uniform(*style.contrast)),
                style.pivot,
                tuple(float(v) for v in  # type: ignore[arg-type]
                      rng.uniform(1 - style.cast, 1 + style.cast, 3)),
                float(rng.uniform(0.005, 0.017)) if rng.random() < style.blur else 0.0,
                float(rng.uniform(0, style.noise)),
                int(rng.integers(45, 96)) if rng.random() < style.jpeg else None,
                int(rng.integers(2**31)))


@lru_cache(maxsize=4)
def _grid(size: int) -> np.ndarray:
    g = np.mgrid[0:size, 0:size].astype(np.float32) / size
    g.setflags(write=False)
    return g


def texture(size: int, pixel: int, look: Look) -> np.ndarray:
    """(size, size) float in about [-1, 1]: the item's surface texture on a canvas of `pixel`
    canvas pixels per output pixel (periods are in output pixels)."""
    yy, xx = _grid(size)
    x, y = xx * size / pixel, yy * size / pixel  # output-pixel coordinates
    p = look.grain_period
    if look.material == "mesh":  # small holes on a grid
        return -1.0 * ((np.sin(2 * np.pi * x / p) * np.sin(2 * np.pi * y / p)) > 0.45)
    if look.material == "leather":  # grain: hashed noise per output pixel
        h = np.sin(np.floor(x) * 12.9898 + np.floor(y) * 78.233) * 43758.5453
        return 2.0 * (h - np.floor(h)) - 1.0
    if look.material == "knit":  # vertical ribs
        return np.sin(2 * np.pi * x / p)
    if look.material == "twill":  # diagonal lines
        return np.sin(2 * np.pi * (x + y) / (p * 1.4))
    if look.material == "weave":  # fine basket weave
        return np.sign(np.sin(2 * np.pi * x / p) * np.sin(2 * np.pi * y / p))
    return np.zeros_like(x)


def fabric(size: int, scale: float, look: Look, pixel: int = 4) -> np.ndarray:
    """(size, size, 3) float RGB in [0, 255]: the item's colour and pattern, shaded, with
    its surface texture (`pixel` canvas pixels per output pixel)."""
    yy, xx = _grid(size)  # (S, S) each, in [0, 1)
    period = look.pattern_period / 100 * scale
    a = np.radians(look.pattern_angle)
    u, v = xx * np.cos(a) + yy * np.sin(a), -xx * np.sin(a) + yy * np.cos(a)
    base = np.asarray(look.colour, np.float32)
    second = np.asarray(shade(look.colour, 1.7) if sum(look.colour) < 300
                        else shade(look.colour, 0.55), np.float32)
    if look.pattern == "stripes":
        m = ((u / period) % 1.0) < 0.42
    elif look.pattern == "dots":
        du, dv = (u / period) % 1.0 - 0.5, (v / period) % 1.0 - 0.5
        m = du * du + dv * dv < 0.22 ** 2
    elif look.pattern == "checks":
        m = ((np.floor(u / period) + np.floor(v / period)) % 2) == 0
    else:
        m = np.zeros_like(xx, dtype=bool)
    rgb = np.where(m[..., None], second, base)
    rgb = rgb + look.grain * texture(size, pixel, look)[..., None]
    light = 1.0 + look.light * (0.6 - 0.9 * (xx + yy) / 2 - 0.4 * ((xx - 0.35) ** 2 + (yy - 0.3) ** 2))
    return np.clip(rgb * light[..., None], 0, 255)


def background(size: int, shot: Shot) -> Image.Image:
    """(size, size) RGB backdrop of a shot, drawn at the supersampled size."""
    (yy, xx), rng = _grid(size), np.random.default_rng(shot.seed)
    c0, c1 = (np.asarray(c, np.float32) for c in shot.colours)
    if shot.background == "gradient":
        a = np.pi * 2 * shot.param
        t = np.clip(0.5 + (xx - 0.5) * np.cos(a) + (yy - 0.5) * np.sin(a), 0, 1)[..., None]
        rgb = c0 * (1 - t) + c1 * t
    elif shot.background == "texture":  # wood grain or a woven fabric
        period = 0.03 + 0.08 * shot.param
        if rng.random() < 0.5:
            wave = np.sin(2 * np.pi * (yy + 0.02 * np.sin(9 * xx + rng.random() * 6)) / period)
        else:
            wave = np.sign(np.sin(2 * np.pi * xx / period) * np.sin(2 * np.pi * yy / period))
        rgb = c0 + (c1 - c0) * (0.5 + 0.25 * wave)[..., None]
    elif shot.background == "lifestyle":  # wall, floor, out-of-focus clutter
        horizon = 0.55 + 0.3 * shot.param
        rgb = np.where((yy < horizon)[..., None], c0, c1)
        img = Image.fromarray(rgb.astype(np.uint8), "RGB")
        draw = ImageDraw.Draw(img)
        for _ in range(int(rng.integers(2, 5))):
            x, y, r = rng.uniform(0, 1), rng.uniform(0, horizon), rng.uniform(0.06, 0.2)
            draw.ellipse([(x - r) * size, (y - r) * size, (x + r) * size, (y + r) * size],
                         fill=tuple(int(v) for v in rng.integers(40, 250, 3)))
        return img.filter(ImageFilter.GaussianBlur(size / 30))
    else:  # studio, paper: flat
        rgb = np.broadcast_to(c0, (size, size, 3))
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")


def _occlude(img: Image.Image, shot: Shot) -> None:
    """Draw the shot's occluder (in place): a hand from the frame's edge, a tag or a prop."""
    kind, x, y, r, rgb = shot.occluder  # type: ignore[misc]
    S, draw = img.width, ImageDraw.Draw(img)
    cx, cy, rr = x * S, y * S, r * S
    if kind == "hand":  # a palm and fingers reaching in from the nearest edge
        edge = min((x, (0, cy)), (1 - x, (S, cy)), (y, (cx, 0)), (1 - y, (cx, S)))[1]
        draw.line([edge, (cx, cy)], fill=rgb, width=int(rr * 0.9))
        draw.ellipse([cx - rr / 2, cy - rr / 2, cx + rr / 2, cy + rr / 2], fill=rgb)
    elif kind == "tag":
        draw.rounded_rectangle([cx - rr / 2, cy - rr / 3, cx + rr / 2, cy + rr / 3],
                               radius=rr / 8, fill=rgb, outline=shade(rgb, 0.6),
                               width=max(1, S // 100))
    else:
        draw.ellipse([cx - rr / 2, cy - rr / 2, cx + rr / 2, cy + rr / 2], fill=rgb)


_SHADOW_LUT = [int(a * 0.28) for a in range(256)]


def render(category: Category, look: Look, size: int = 96,
           shot: Shot | None = None) -> Image.Image:
    """Photograph one product: (size, size) RGB. Without a `shot`, a plain studio shot."""
    shot = shot or Shot("studio", (look.background, look.background), 0.0, False, None, 1.0,
                        1.0, 255.0, (1.0, 1.0, 1.0), 0.0, 0.0, None, 0)
    sup = max(2, round(CANVAS / size))  # supersampling factor
    S = size * sup
    canvas = Canvas(S, look.scale)
    category.draw(canvas, look)
    body = canvas.body
    rgb = fabric(S, look.scale, look, sup)
    # outline: darken a thin band along the inside of the silhouette
    blur = np.asarray(body.filter(ImageFilter.BoxBlur(sup)), np.float32)
    edge = np.clip(np.asarray(body, np.float32) - blur, 0, 127.5) / 127.5  # (S, S) in [0, 1]
    rgb *= (1.0 - 0.2 * edge)[..., None]
    item = Image.fromarray(rgb.astype(np.uint8), "RGB").convert("RGBA")
    item.putalpha(body)
    item = Image.alpha_composite(item, canvas.trim)
    if shot.flip:
        item = ImageOps.mirror(item)
    sx, sy = look.shift
    item = item.rotate(look.angle, resample=Image.Resampling.BILINEAR,
                       translate=(sx * S, sy * S))
    alpha = item.getchannel("A")
    shadow = alpha.filter(ImageFilter.GaussianBlur(S / 45)).point(_SHADOW_LUT)
    shadow = ImageChops.offset(shadow, int(S / 70), int(S / 40))
    bg = background(S, shot).convert("RGBA")
    dark = Image.new("RGBA", (S, S), (60, 60, 70, 255))
    bg = Image.composite(dark, bg, shadow)
    out = Image.alpha_composite(bg, item).convert("RGB")
    if shot.occluder is not None:
        _occlude(out, shot)
    out = out.resize((size, size), Image.Resampling.LANCZOS)
    if shot.blur > 0:
        out = out.filter(ImageFilter.GaussianBlur(shot.blur * size))
    x = np.asarray(out, np.float32)
    x = ((x - shot.pivot) * shot.contrast + shot.pivot) * shot.brightness \
        * np.asarray(shot.cast, np.float32)
    if shot.noise > 0:
        x = x + np.random.default_rng(shot.seed).normal(0, shot.noise, x.shape).astype(np.float32)
    out = Image.fromarray(np.clip(np.round(x), 0, 255).astype(np.uint8), "RGB")
    if shot.jpeg is not None:  # an earlier JPEG save, decoded again
        buf = io.BytesIO()
        out.save(buf, format="JPEG", quality=shot.jpeg)
        out = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    return out
