"""Item images as model-ready batches: resized to the model's input size and kept on the
8-bit grid (the clean reference a seller's upload is compared with)."""
from __future__ import annotations

import numpy as np
import torch

from ..attacks.upload import to_model_size, to_tensor
from ..data.dataset import Dataset


def item_images(ds: Dataset, items: np.ndarray, size: int) -> torch.Tensor:
    """(N, 3, size, size) float in [0, 1], multiples of 1/255."""
    return to_tensor([to_model_size(im, size) for im in ds.load_images(items)])


__all__ = ["item_images"]
