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

    Subclasses set `body`, `head`, `class_names`, `input_size` and `feature_dim`; `body` is
    a Sequential whose last two modules are the global pooling and the flatten, so
    `body[:-2]` gives the last convolutional feature map (the FL map is made from it)."""

    normalize: Normalize
    body: nn.Sequential  # (B, C, H, W) normalised -> (B, feature_dim); [..., pool, flatten]
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

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> (B, D, h, w): the last convolutional feature map, before
        the global pooling that gives `forward_features` (demo CNN 96 px: 6 x 6; ResNet50
        224 px: 7 x 7)."""
        return self.body[:-2](self.normalize(x))

    @torch.no_grad()
    def classify_map(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(B, 3, H, W) in [0, 1] -> feature map (B, D, h, w), pooled features (B, D),
        predicted class (B,) and its softmax probability (B,), from one pass."""
        fmap = self.feature_map(x)
        feats = self.body[-2:](fmap)
        conf, pred = self.head(feats).softmax(dim=1).max(dim=1)
        return fmap, feats, pred, conf

    def classify(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, 3, H, W) in [0, 1] -> features (B, D), predicted class (B,), its softmax
        probability (B,), from one pass."""
        return self.classify_map(x)[1:]

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
