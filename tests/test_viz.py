"""Pictures for perceptibility judgments: exact pixels, lossless PNG, offline comparison."""
import io
import re

import numpy as np
from PIL import Image

from advrec_core.metrics.perceptual import abs_change
from advrec_core.viz import (
    HEAT_LUT,
    amplified,
    colour_bar,
    heat_colours,
    heat_overlay,
    png_bytes,
    thumbnail,
    upscale,
)
from ui.compare import compare_html


def rng_image(seed=0, size=8):
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def test_upscale_is_integer_nearest_neighbour():
    img = rng_image()
    big = upscale(img, 3)
    assert big.shape == (24, 24, 3) and np.array_equal(big[::3, ::3], img)
    assert np.array_equal(big[1::3, 2::3], img)  # every pixel is a 3x3 block


def test_png_round_trip_is_lossless():
    img = rng_image(1)
    assert png_bytes(img)[:8] == b"\x89PNG\r\n\x1a\n"
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png_bytes(img)))), img)


def test_amplified_perturbation_and_map():
    clean = np.full((4, 4, 3), 100, np.uint8)
    adv = clean.copy()
    adv[0, 0, 1] = 102  # +2 levels
    adv[3, 3, 0] = 97  # -3 levels
    amp = amplified(clean, adv, gain=10)
    assert amp[0, 0, 1] == 148 and amp[3, 3, 0] == 98 and amp[1, 1, 1] == 128
    _, m = abs_change(clean[None] / 255, adv[None] / 255)  # the stored |δ| map
    np.testing.assert_allclose(m[0] * 255, [[2, 0, 0, 0], [0] * 4, [0] * 4, [0, 0, 0, 3]],
                               atol=1e-4)


def test_heat_colours_and_colour_bar():
    heat = np.array([[0.0, 1.0], [2.0, 4.0]], np.float32)
    c = heat_colours(heat, vmax=2.0, size=(4, 4))  # nearest neighbour: 2 x 2 blocks
    assert c.shape == (4, 4, 3) and (c[:2, :2] == HEAT_LUT[0]).all()
    assert (c[2:, 2:] == HEAT_LUT[255]).all() and (c[2:, :2] == HEAT_LUT[255]).all()  # clipped
    bar = colour_bar(256, 3)
    assert bar.shape == (3, 256, 3) and (bar[:, 0] == HEAT_LUT[0]).all()
    assert (bar[:, -1] == HEAT_LUT[255]).all()


def test_heat_overlay_brightest_where_the_heat_is():
    img = np.full((8, 8, 3), 128, np.uint8)
    heat = np.zeros((4, 4), np.float32)
    heat[0, 0] = 1.0  # resized to the image by nearest neighbour: the top-left 2x2 block
    out = heat_overlay(img, heat)
    assert out.shape == img.shape
    assert out[:2, :2].sum(2).min() > out[4:, 4:].sum(2).max()


def test_thumbnail_only_shrinks():
    assert thumbnail(rng_image(size=8), 96).shape == (8, 8, 3)
    assert max(thumbnail(rng_image(size=200), 96).shape[:2]) == 96


def test_compare_widget_is_offline_png_and_script_free():
    html = compare_html(rng_image(2), rng_image(3), factor=4, uid="t1")
    srcs = re.findall(r'src="([^"]+)"', html)
    assert len(srcs) == 3 and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "<script" not in html and "http" not in html  # no CDN, no JS
    assert 'width="32"' in html and "pixelated" in html  # 8 px x 4, nearest neighbour
