"""A small CNN for the demo catalog (96x96; any size works): fast on CPU, ~1.2 M parameters.

Stride-2 stem then three stride-2 stages (96 -> 48 -> 24 -> 12 -> 6), global average pool to
a 256-d feature vector (the "pooled layer before the classifier"), linear head."""
from __future__ import annotations

from torch import nn

from .base import Classifier, Normalize


def _stage(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True))


class DemoCNN(Classifier):
    """`aux` = {name: n_classes} adds training-only heads on the features (e.g. colour and
    pattern): like ImageNet's breadth for ResNet50, they keep appearance in the features."""

    def __init__(self, class_names: tuple[str, ...], width: int = 32, input_size: int = 64,
                 aux: dict[str, int] | None = None):
        super().__init__()
        self.class_names, self.input_size = tuple(class_names), input_size
        self.feature_dim = 8 * width
        # statistics of light product shots: mostly near-white backgrounds
        self.normalize = Normalize((0.80, 0.79, 0.79), (0.25, 0.25, 0.26))
        self.body = nn.Sequential(
            nn.Conv2d(3, width, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),  # (B, w, 32, 32)
            _stage(width, 2 * width),  # (B, 2w, 16, 16)
            _stage(2 * width, 4 * width),  # (B, 4w, 8, 8)
            _stage(4 * width, 8 * width),  # (B, 8w, 4, 4)
            nn.AdaptiveAvgPool2d(1), nn.Flatten())  # (B, 8w)
        self.head = nn.Linear(self.feature_dim, len(self.class_names))
        self.aux = nn.ModuleDict({k: nn.Linear(self.feature_dim, n) for k, n in (aux or {}).items()})
