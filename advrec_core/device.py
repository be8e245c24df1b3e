"""Device choice and seeding, shared by every torch step."""
from __future__ import annotations

import random

import numpy as np
import torch

PRECISIONS = ("fp32", "bf16")  # the arithmetic a step may run in: an attack's search, a
# recommender's features (bf16: fast on CPUs with AVX512-BF16 or AMX, and on GPUs)


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """"auto" -> cuda if present, else cpu; anything else is passed to torch.device."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def seed_everything(seed: int) -> torch.Generator:
    """Seed python, numpy and torch; return a CPU torch.Generator for explicit draws."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)
