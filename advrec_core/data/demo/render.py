"""Procedural product thumbnails for the demo catalog.

Each item is drawn upright at `SUPER` x the output size on a 100x100 design grid: a *body*
mask that is filled with the item's fabric (colour x pattern, shaded by a light from the top
left) and a *trim* layer (seams, soles, laces, lenses, buckles) composited on top. The item
is then outlined, rotated, given a soft drop shadow on a light studio background and
downsampled with a Lanczos filter, which anti-aliases every edge.

All randomness comes from the `numpy.random.Generator` passed in, so the same seed gives
byte-identical pixels."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Sequence

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter

SUPER = 4  # supersampling factor: drawn at 4x, downsampled with Lanczos

# name -> RGB. Users in the demo world like some colours and patterns more than others,
# so these are the visual signal VBPR can learn from.
PALETTE: dict[str, tuple[int, int, int]] = {
    "black": (38, 38, 42), "white": (236, 236, 232), "grey": (128, 131, 137),
    "navy": (32, 48, 96), "blue": (52, 112, 200), "denim": (70, 100, 150),
    "red": (196, 40, 48), "pink": (234, 132, 170), "green": (40, 138, 82),
    "olive": (112, 120, 54), "yellow": (236, 196, 52), "orange": (236, 128, 42),
    "brown": (122, 78, 42), "beige": (214, 190, 150), "purple": (118, 62, 160),
}
COLOURS = tuple(PALETTE)
PATTERNS = ("solid", "stripes", "dots", "checks")

Point = tuple[float, float]


@dataclass(frozen=True)
class Look:
    """Per-item appearance: fabric colour/pattern plus pose and lighting jitter."""

    colour: tuple[int, int, int]
    pattern: str
    scale: float  # size on the canvas, ~0.8-1.0
    angle: float  # degrees, counter-clockwise
    shift: tuple[float, float]  # translation in output pixels
    light: float  # shading strength, 0.1-0.35
    background: tuple[int, int, int]
    pattern_period: float  # in design units (0-100 grid)
    pattern_angle: float  # degrees
    accent: tuple[int, int, int]  # second colour: stripes, dots, heel patches...


def shade(rgb: Sequence[int], f: float) -> tuple[int, int, int]:
    """Darken (f < 1) or lighten (f > 1, towards white) a colour."""
    c = np.asarray(rgb, dtype=float)
    c = c * f if f <= 1 else c + (255 - c) * (f - 1)
    return tuple(int(v) for v in np.clip(np.round(c), 0, 255))  # type: ignore[return-value]


class Canvas:
    """Drawing on the 0-100 design grid; `body` is the fabric mask, `trim` an RGBA layer."""

    def __init__(self, size: int, scale: float):
        self.size, self.k = size, size / 100.0 * scale
        self.off = size / 2 - 50 * self.k
        self.body = Image.new("L", (size, size), 0)
        self.trim = Image.new("RGBA", (size, size), (0, 0, 0, 0))
        self._b, self._t = ImageDraw.Draw(self.body), ImageDraw.Draw(self.trim)

    def p(self, pts: Sequence[Point]) -> list[Point]:
        return [(x * self.k + self.off, y * self.k + self.off) for x, y in pts]

    def box(self, x0: float, y0: float, x1: float, y1: float) -> list[float]:
        (a, b), (c, d) = self.p([(x0, y0), (x1, y1)])
        return [a, b, c, d]

    def w(self, width: float) -> int:
        return max(1, int(round(width * self.k)))

    # fabric (body mask)
    def poly(self, pts: Sequence[Point]) -> None:
        self._b.polygon(self.p(pts), fill=255)

    def ellipse(self, *bbox: float, width: float = 0) -> None:
        if width:
            self._b.ellipse(self.box(*bbox), outline=255, width=self.w(width))
        else:
            self._b.ellipse(self.box(*bbox), fill=255)

    def arc(self, bbox: Sequence[float], start: float, end: float, width: float) -> None:
        self._b.arc(self.box(*bbox), start, end, fill=255, width=self.w(width))

    def line(self, pts: Sequence[Point], width: float) -> None:
        self._b.line(self.p(pts), fill=255, width=self.w(width), joint="curve")

    def rounded(self, bbox: Sequence[float], radius: float) -> None:
        self._b.rounded_rectangle(self.box(*bbox), radius=radius * self.k, fill=255)

    # trim (coloured, drawn over the fabric)
    def t_poly(self, pts: Sequence[Point], rgba) -> None:
        self._t.polygon(self.p(pts), fill=_rgba(rgba))

    def t_line(self, pts: Sequence[Point], rgba, width: float) -> None:
        self._t.line(self.p(pts), fill=_rgba(rgba), width=self.w(width), joint="curve")

    def t_ellipse(self, bbox: Sequence[float], rgba, outline=None, width: float = 0) -> None:
        self._t.ellipse(self.box(*bbox), fill=_rgba(rgba) if rgba else None,
                        outline=_rgba(outline) if outline else None, width=self.w(width))

    def t_arc(self, bbox: Sequence[float], start: float, end: float, rgba, width: float) -> None:
        self._t.arc(self.box(*bbox), start, end, fill=_rgba(rgba), width=self.w(width))

    def t_rounded(self, bbox: Sequence[float], radius: float, rgba) -> None:
        self._t.rounded_rectangle(self.box(*bbox), radius=radius * self.k, fill=_rgba(rgba))


def _rgba(c) -> tuple[int, int, int, int]:
    return tuple(c) if len(c) == 4 else (*c, 255)  # type: ignore[return-value]


def ellipse_arc(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float,
                n: int = 24) -> list[Point]:
    t = np.radians(np.linspace(a0, a1, n))
    return list(zip((cx + rx * np.cos(t)).tolist(), (cy + ry * np.sin(t)).tolist()))


# --- silhouettes: one function per category, drawing on the 0-100 grid -------------------

def draw_tshirt(c: Canvas, look: Look) -> None:
    scoop = ellipse_arc(50, 16, 10, 8, 0, 180)[1:-1]  # neckline, right to left
    c.poly([(40, 16), (29, 18), (8, 36), (17, 49), (28, 40), (28, 88), (72, 88), (72, 40),
            (83, 49), (92, 36), (71, 18), (60, 16)] + scoop)
    dark = shade(look.colour, 0.7)
    c.t_line(ellipse_arc(50, 16, 10, 8, 0, 180), dark, 2.2)  # collar rib
    c.t_line([(9, 38), (18, 47)], dark, 1.5)  # sleeve hems
    c.t_line([(91, 38), (82, 47)], dark, 1.5)
    c.t_line([(28, 85), (72, 85)], dark, 1.2)  # bottom hem


def draw_brassiere(c: Canvas, look: Look) -> None:
    left = [(37, 34)] + ellipse_arc(33, 56, 16, 14, 0, 180) + [(20, 48)]
    right = [(63, 34), (80, 48)] + ellipse_arc(67, 56, 16, 14, 0, 180)
    c.poly(left)
    c.poly(right)
    c.poly([(47, 54), (53, 54), (52, 66), (48, 66)])  # centre gore
    c.poly([(17, 56), (5, 60), (6, 70), (20, 67)])  # side wings / band
    c.poly([(83, 56), (95, 60), (94, 70), (80, 67)])
    c.line([(37, 35), (30, 10)], 2.5)  # straps
    c.line([(63, 35), (70, 10)], 2.5)
    dark = shade(look.colour, 0.65)
    c.t_line(ellipse_arc(33, 56, 16, 14, 5, 175), dark, 1.6)  # underwires
    c.t_line(ellipse_arc(67, 56, 16, 14, 5, 175), dark, 1.6)
    lace = shade(look.colour, 1.35)
    for x0, x1 in ((20, 37), (63, 80)):  # lace trim along the cup tops
        for t in np.linspace(0.1, 0.9, 5):
            x, y = x0 + (x1 - x0) * t, 48 - 14 * (t if x0 < 50 else 1 - t)
            c.t_ellipse((x - 1.6, y - 1.6, x + 1.6, y + 1.6), lace)
    c.t_ellipse((47.5, 52, 52.5, 57), look.accent)  # bow


def draw_sandal(c: Canvas, look: Look) -> None:
    sole = (186, 146, 96) if sum(look.colour) < 420 else (72, 56, 44)  # cork or leather
    c.t_poly([(8, 66), (86, 67), (94, 71), (90, 76), (30, 76), (24, 82), (8, 82), (6, 72)], sole)
    c.t_line([(9, 67), (87, 68)], shade(sole, 1.35), 1.6)  # footbed edge
    c.arc((56, 44, 92, 92), 190, 350, 7)  # wide toe strap
    c.arc((34, 36, 72, 100), 200, 340, 6)  # instep strap
    c.arc((8, 26, 40, 92), 205, 335, 4)  # ankle strap
    c.line([(14, 67), (17, 40)], 4.5)  # heel strap
    c.t_rounded((19, 31, 26, 38), 1, (200, 170, 90))  # buckle
    c.t_rounded((20.8, 32.8, 24.2, 36.2), 0.5, (90, 70, 40))


def draw_running_shoe(c: Canvas, look: Look) -> None:
    c.poly([(10, 68), (9, 48), (13, 36), (24, 32), (36, 40), (52, 45), (68, 50), (84, 56),
            (93, 63), (93, 69)])
    mid = shade(look.accent, 1.6)
    c.t_poly([(7, 66), (94, 66), (97, 72), (91, 79), (11, 79), (5, 73)], mid)  # midsole
    c.t_line([(8, 78), (92, 78)], (55, 55, 60), 2.5)  # outsole
    c.t_poly([(14, 36), (24, 33), (34, 39), (24, 41)], shade(look.colour, 0.45))  # collar
    c.t_poly([(22, 62), (48, 50), (76, 58), (70, 62), (48, 56), (28, 64)], look.accent)  # stripe
    for i in range(5):  # laces
        x, y = 38 + i * 6, 42 + i * 2.2
        c.t_line([(x - 2, y - 3), (x + 3, y + 2)], (245, 245, 245), 1.6)
    c.t_poly([(9, 50), (14, 50), (15, 66), (10, 66)], shade(look.colour, 0.7))  # heel tab


def draw_dress(c: Canvas, look: Look) -> None:
    c.line([(38, 8), (40, 22)], 2.5)
    c.line([(62, 8), (60, 22)], 2.5)
    c.poly([(36, 21), (44, 21), (50, 28), (56, 21), (64, 21), (61, 44), (39, 44)])
    c.poly([(39, 43), (61, 43), (84, 90), (68, 93), (50, 90), (32, 93), (16, 90)])
    c.t_poly([(39, 42), (61, 42), (61.5, 47), (38.5, 47)], shade(look.colour, 0.6))  # belt
    c.t_line([(44, 21), (50, 28), (56, 21)], shade(look.colour, 0.7), 1.2)  # neckline
    c.t_line([(16, 89.5), (32, 92.5), (50, 89.5), (68, 92.5), (84, 89.5)],
             shade(look.colour, 0.75), 1.2)  # hem


def draw_handbag(c: Canvas, look: Look) -> None:
    c.poly([(18, 42), (82, 42), (88, 80), (84, 86), (16, 86), (12, 80)])
    dark = shade(look.colour, 0.6)
    c.t_arc((30, 16, 70, 64), 180, 360, dark, 4.5)  # handle
    c.t_poly([(18, 42), (82, 42), (80, 57), (50, 64), (20, 57)], shade(look.colour, 0.8))
    c.t_line([(20, 57), (50, 64), (80, 57)], dark, 1.2)
    c.t_ellipse((46.5, 59.5, 53.5, 66.5), (214, 176, 80), outline=(150, 115, 40), width=0.8)
    c.t_line([(16, 84), (84, 84)], dark, 1.0)


def draw_sunglasses(c: Canvas, look: Look) -> None:
    c.t_rounded((14, 38, 46, 64), 10, (28, 30, 40, 235))  # lenses
    c.t_rounded((54, 38, 86, 64), 10, (28, 30, 40, 235))
    c.t_line([(18, 46), (28, 42)], (255, 255, 255, 110), 2.5)  # glare
    c.t_line([(58, 46), (68, 42)], (255, 255, 255, 110), 2.5)
    c._b.rounded_rectangle(c.box(13, 37, 47, 65), radius=11 * c.k, outline=255, width=c.w(3.5))
    c._b.rounded_rectangle(c.box(53, 37, 87, 65), radius=11 * c.k, outline=255, width=c.w(3.5))
    c.arc((44, 40, 56, 52), 190, 350, 3)  # bridge
    c.line([(13, 42), (3, 40)], 3)  # temple ends
    c.line([(87, 42), (97, 40)], 3)


def draw_hat(c: Canvas, look: Look) -> None:
    c.ellipse(6, 58, 94, 80)  # brim
    c.poly([(25, 68), (27, 36), (34, 25), (50, 22), (66, 25), (73, 36), (75, 68)])  # crown
    c.t_poly([(26, 52), (74, 52), (74.6, 62), (25.4, 62)], look.accent)  # band
    c.t_line([(42, 25), (50, 30), (58, 25)], shade(look.colour, 0.7), 1.2)  # crown dent
    c.t_arc((6, 58, 94, 80), 10, 170, shade(look.colour, 0.75), 1.2)  # brim edge


def draw_sock(c: Canvas, look: Look) -> None:
    c.poly([(30, 8), (56, 8), (58, 56), (84, 64), (93, 74), (88, 88), (70, 90), (40, 86),
            (30, 77), (28, 60)])
    dark = shade(look.colour, 0.7)
    c.t_poly([(30, 8), (56, 8), (56.3, 19), (29.7, 19)], dark)  # ribbed cuff
    for x in np.arange(33, 55, 3):
        c.t_line([(x, 9), (x, 18)], shade(look.colour, 0.55), 0.8)
    c.t_poly([(28, 66), (40, 74), (42, 86), (30, 77)], look.accent)  # heel
    c.t_poly([(82, 64), (93, 74), (88, 88), (80, 89)], look.accent)  # toe


def draw_jeans(c: Canvas, look: Look) -> None:
    c.poly([(24, 8), (76, 8), (82, 92), (59, 92), (50, 38), (41, 92), (18, 92)])
    dark, light = shade(look.colour, 0.65), shade(look.colour, 1.35)
    c.t_poly([(24, 8), (76, 8), (76.4, 15), (23.6, 15)], dark)  # waistband
    for x in (30, 44, 56, 70):
        c.t_rounded((x - 1, 7, x + 1, 17), 0.5, shade(look.colour, 0.5))  # belt loops
    c.t_line([(50, 15), (50, 34), (46, 38)], dark, 1.2)  # fly
    c.t_arc((22, 4, 40, 30), 0, 90, light, 1.2)  # pocket openings
    c.t_arc((60, 4, 78, 30), 90, 180, light, 1.2)
    c.t_line([(19, 88), (41, 88)], light, 1.2)  # hems
    c.t_line([(59, 88), (81, 88)], light, 1.2)
    c.t_ellipse((48.8, 10.3, 51.2, 12.7), (205, 170, 80))  # button


@dataclass(frozen=True)
class Category:
    key: str
    name: str  # display name, as an ImageNet-style class string
    draw: Callable[[Canvas, Look], None]
    colours: dict[str, float] | None = None  # colour prior (None: uniform)


CATEGORIES: tuple[Category, ...] = (
    Category("tshirt", "Jersey, T-shirt", draw_tshirt),
    Category("brassiere", "Brassiere", draw_brassiere,
             {"black": 3, "white": 2, "pink": 3, "beige": 3, "red": 2, "purple": 1, "navy": 1}),
    Category("sandal", "Sandal", draw_sandal,
             {"brown": 4, "black": 3, "beige": 3, "white": 1, "red": 1, "navy": 1, "olive": 1}),
    Category("running_shoe", "Running shoe", draw_running_shoe),
    Category("dress", "Dress", draw_dress),
    Category("handbag", "Handbag", draw_handbag,
             {"black": 4, "brown": 4, "beige": 3, "red": 2, "navy": 1, "pink": 1, "olive": 1}),
    Category("sunglasses", "Sunglasses", draw_sunglasses,
             {"black": 5, "brown": 3, "grey": 2, "red": 1, "white": 1, "blue": 1, "purple": 1}),
    Category("hat", "Hat", draw_hat),
    Category("sock", "Sock", draw_sock),
    Category("jeans", "Jeans", draw_jeans,
             {"denim": 6, "navy": 4, "blue": 3, "black": 3, "grey": 2, "white": 1, "beige": 1}),
)


def colour_prior(cat: Category) -> np.ndarray:
    """(n_colours,) probabilities over COLOURS for this category."""
    w = np.ones(len(COLOURS)) if cat.colours is None else \
        np.array([cat.colours.get(n, 0.0) for n in COLOURS], dtype=float)
    return w / w.sum()


def sample_look(rng: np.random.Generator, colour: str, pattern: str) -> Look:
    base = np.asarray(PALETTE[colour]) + rng.integers(-10, 11, size=3)
    accents = [n for n in COLOURS if n != colour]
    accent = PALETTE[accents[int(rng.integers(len(accents)))]]
    bg = int(rng.integers(238, 253))
    tint = rng.integers(-3, 4, size=3)
    return Look(
        colour=tuple(int(v) for v in np.clip(base, 0, 255)),  # type: ignore[arg-type]
        pattern=pattern,
        scale=float(rng.uniform(0.78, 0.98)),
        angle=float(rng.uniform(-14, 14)),
        shift=(float(rng.uniform(-2.5, 2.5)), float(rng.uniform(-2.5, 2.5))),
        light=float(rng.uniform(0.12, 0.32)),
        background=tuple(int(v) for v in np.clip(bg + tint, 0, 255)),  # type: ignore[arg-type]
        pattern_period=float(rng.uniform(7, 12)),
        pattern_angle=float(rng.choice([0.0, 90.0, 45.0, -45.0])),
        accent=accent,
    )


@lru_cache(maxsize=4)
def _grid(size: int) -> np.ndarray:
    g = np.mgrid[0:size, 0:size].astype(np.float32) / size
    g.setflags(write=False)
    return g


def fabric(size: int, scale: float, look: Look) -> np.ndarray:
    """(size, size, 3) float RGB in [0, 255]: the item's colour and pattern, shaded."""
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
    light = 1.0 + look.light * (0.6 - 0.9 * (xx + yy) / 2 - 0.4 * ((xx - 0.35) ** 2 + (yy - 0.3) ** 2))
    return np.clip(rgb * light[..., None], 0, 255)


_SHADOW_LUT = [int(a * 0.28) for a in range(256)]


def render(category: Category, look: Look, size: int = 64) -> Image.Image:
    """Draw one product thumbnail: (size, size) RGB, anti-aliased."""
    S = size * SUPER
    canvas = Canvas(S, look.scale)
    category.draw(canvas, look)
    body = canvas.body
    rgb = fabric(S, look.scale, look)
    # outline: darken a thin band along the inside of the silhouette
    blur = np.asarray(body.filter(ImageFilter.BoxBlur(SUPER)), np.float32)
    edge = np.clip(np.asarray(body, np.float32) - blur, 0, 127.5) / 127.5  # (S, S) in [0, 1]
    rgb *= (1.0 - 0.35 * edge)[..., None]
    item = Image.fromarray(rgb.astype(np.uint8), "RGB").convert("RGBA")
    item.putalpha(body)
    item = Image.alpha_composite(item, canvas.trim)
    sx, sy = look.shift
    item = item.rotate(look.angle, resample=Image.Resampling.BILINEAR,
                       translate=(sx * SUPER, sy * SUPER))
    alpha = item.getchannel("A")
    shadow = alpha.filter(ImageFilter.GaussianBlur(S / 45)).point(_SHADOW_LUT)
    shadow = ImageChops.offset(shadow, int(S / 70), int(S / 40))
    bg = Image.new("RGBA", (S, S), (*look.background, 255))
    dark = Image.new("RGBA", (S, S), (60, 60, 70, 255))
    bg = Image.composite(dark, bg, shadow)
    out = Image.alpha_composite(bg, item).convert("RGB")
    return out.resize((size, size), Image.Resampling.LANCZOS)
