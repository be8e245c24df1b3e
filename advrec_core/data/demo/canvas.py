"""Drawing vocabulary of the demo world: colours, patterns, an item's `Look`, and the
`Canvas` on which every class's silhouette is drawn (a 0-100 design grid).

A drawing has a *body* mask, later filled with the item's fabric (colour x pattern), and a
*trim* layer (seams, soles, laces, lenses, buckles) composited on top."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

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
# fine surface textures at 2-3 output pixels (real products are not flat colour: a running
# shoe's mesh, a sandal's leather grain, a sock's knit): texture cues a CNN learns to use
MATERIALS = ("smooth", "mesh", "leather", "knit", "twill", "weave")

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
    shape: tuple[float, ...] = (0.5, 0.5, 0.5, 0.5)  # intra-class shape jitter, each in [0, 1]
    material: str = "smooth"  # surface texture, one of MATERIALS
    grain: float = 0.0  # texture amplitude, 8-bit levels
    grain_period: float = 2.5  # texture period, output pixels


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

    def rounded(self, bbox: Sequence[float], radius: float, width: float = 0) -> None:
        if width:
            self._b.rounded_rectangle(self.box(*bbox), radius=radius * self.k, outline=255,
                                      width=self.w(width))
        else:
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
