"""The classifier interface every extractor implements.

A `Classifier` takes images in [0, 1] (ImageNet-style normalisation lives inside the model,
so attacks and metrics never see normalised tensors), returns logits from `forward` and the
pooled features the recommender consumes from `forward_features`."""
from __future__ import annotations

import torch
from torch import nn


class Normalize(nn.Module):
    """(B, C, H, W) in [0, 1] -> (x - mean) / std, per channel."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class Classifier(nn.Module):
    """Base: `normalize` -> `body` (-> pooled features) -> `head` (-> logits).

    Subclasses set `body`, `head`, `class_names`, `input_size` and `feature_dim`."""

    normalize: Normalize
    body: nn.Module  # (B, C, H, W) normalised -> (B, feature_dim)
    head: nn.Module  # (B, feature_dim) -> (B, n_classes)
    class_names: tuple[str, ...]
    input_size: int  # images are resized to input_size x input_size before the model
    feature_dim: int

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> (B, feature_dim) pooled features."""
        return self.body(self.normalize(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> (B, n_classes) logits."""
        return self.head(self.forward_features(x))

    @torch.no_grad()
    def classify(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, 3, H, W) in [0, 1] -> features (B, D), predicted class (B,), its softmax
        probability (B,), from one pass."""
        feats = self.forward_features(x)
        conf, pred = self.head(feats).softmax(dim=1).max(dim=1)
        return feats, pred, conf

    @property
    def std(self) -> torch.Tensor:
        """(1, 3, 1, 1) normalisation std: converts an eps in normalised space to pixels."""
        return self.normalize.std

    def freeze(self) -> "Classifier":
        """eval() and no parameter gradients: the state attacks and extraction need."""
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)
        return self
