"""Item images as model-ready batches: resized to the model's input size and kept on the
8-bit grid (the clean reference a seller's upload is compared with)."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from ..data.dataset import Dataset


def to_model_size(img: np.ndarray, size: int) -> np.ndarray:
    """(H, W, 3) uint8 -> (size, size, 3) uint8 (the whole product, not a crop)."""
    if img.shape[0] == size and img.shape[1] == size:
        return img
    return np.asarray(Image.fromarray(img).resize((size, size), Image.Resampling.BICUBIC))


def item_images(ds: Dataset, items: np.ndarray, size: int) -> torch.Tensor:
    """(N, 3, size, size) float in [0, 1], multiples of 1/255."""
    arr = np.stack([to_model_size(im, size) for im in ds.load_images(items)])  # (N, s, s, 3)
    return torch.from_numpy(arr).permute(0, 3, 1, 2).float().div(255)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(N, 3, H, W) in [0, 1] -> (N, H, W, 3) uint8."""
    return (x.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()
