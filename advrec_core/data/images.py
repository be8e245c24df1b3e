"""Safe image decoding: every product image enters the engine through `load_image`.

Returns (H, W, 3) uint8 RGB. Modes other than 8-bit RGB are converted and the conversion
is reported (grayscale, palette, RGBA/LA composited on white as product shots are,
CMYK, 16-bit scaled, not clipped). Empty, undecodable, truncated and oversized
(decompression-bomb) files raise `DataError` naming the file."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")
DEFAULT_MAX_PIXELS = 40_000_000  # a 6,300 x 6,300 photo; product shots are far smaller


def _to_rgb(img: Image.Image) -> tuple[np.ndarray, str | None]:
    mode = img.mode
    if mode == "RGB":
        return np.asarray(img), None
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        a = np.asarray(img).astype(np.float64)
        peak = 65535.0 if a.max(initial=0) > 255 or mode.startswith("I;16") else 255.0
        g = np.clip(np.round(a / peak * 255.0), 0, 255).astype(np.uint8)
        return np.repeat(g[..., None], 3, axis=2), f"converted {mode} (16-bit) grayscale to 8-bit RGB"
    if mode == "F":
        a = np.asarray(img, dtype=np.float64)
        scale = 255.0 if a.max(initial=0) <= 1.0 else 1.0
        g = np.clip(np.round(a * scale), 0, 255).astype(np.uint8)
        return np.repeat(g[..., None], 3, axis=2), "converted float grayscale to 8-bit RGB"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        out = Image.alpha_composite(white, rgba).convert("RGB")
        return np.asarray(out), f"composited {mode} transparency on white, converted to RGB"
    names = {"L": "grayscale", "1": "1-bit", "P": "palette", "CMYK": "CMYK", "YCbCr": "YCbCr",
             "LAB": "Lab", "HSV": "HSV"}
    return np.asarray(img.convert("RGB")), f"converted {names.get(mode, mode)} to RGB"


def load_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[np.ndarray, str | None]:
    """Decode `path` -> ((H, W, 3) uint8 RGB, note or None). Raises DataError on bad files."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "image file is missing; expected a JPEG/PNG product image here")
    if path.stat().st_size == 0:
        raise DataError(path, "image file is empty (0 bytes); expected a JPEG/PNG image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                w, h = img.size
                if w * h > max_pixels:
                    raise DataError(path, f"image is {w}x{h} = {w * h:,} pixels, over the "
                                          f"limit of {max_pixels:,} (possible decompression "
                                          "bomb); expected a product photo")
                img.load()
                rotated = img.getexif().get(0x0112, 1) not in (1, None)  # EXIF Orientation
                arr, note = _to_rgb(ImageOps.exif_transpose(img) if rotated else img)
                if rotated:
                    note = "; ".join(filter(None, ["applied EXIF orientation", note]))
                return np.ascontiguousarray(arr), note
    except DataError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise DataError(path, f"possible decompression bomb ({e}); expected a product photo") from None
    except UnidentifiedImageError:
        raise DataError(path, "cannot decode: not a recognised image format; expected JPEG/PNG") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise DataError(path, f"cannot decode image ({e}); the file may be truncated or corrupt") from None


def index_images(folder: Path) -> dict[str, Path]:
    """Map item id (file stem) -> image path for every image file in `folder`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(folder, "image folder is missing; expected one image per item, "
                                "named <item_id>.jpg or .png")
    found: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file():
            if p.stem in found:
                raise DataError(p, f"item {p.stem!r} has two images ({found[p.stem].name} and "
                                   f"{p.name}); expected one image per item")
            found[p.stem] = p
    return found


def upscale_nearest(img: np.ndarray, factor: int) -> np.ndarray:
    """(H, W, C) -> (H*f, W*f, C) by pixel repetition: every perturbed pixel stays visible
    as an f x f block, with no interpolation blurring it away."""
    if factor <= 1:
        return img
    return np.repeat(np.repeat(img, factor, axis=0), factor, axis=1)


def display_factor(height: int, width: int, target: int = 128) -> int:
    """Largest integer upscale keeping the longer side <= max(target, native)."""
    return max(1, target // max(height, width))
