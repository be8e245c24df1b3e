"""DVBPR: Kang, Fang, Wang & McAuley, "Visually-Aware Fashion Recommendation and Design with
Generative Image Models", ICDM 2017: the item's visual representation is learned end to
end from its image with the BPR objective.

x_ui = theta_u . Phi(X_i): Phi is a CNN over the item's image X_i (the paper's alpha and
beta_u cancel in x_ui - x_uj and the authors' code drops the item's latent factor, as here).
eq. 1's regularisation: the trainer's `reg` on the theta_u a batch reads and `cnn_reg` on
the CNN's weights (not its biases), as the authors' code (kang205/DVBPR: lambda 0.001 on the
CNN).

Two CNNs (`cnn`): "cnn-f", the paper's (CNN-F, Chatfield et al. 2014, as in the authors'
code: conv 11x11/4 64, pool, conv 5x5 256, pool, 3 x conv 3x3 256, pool, fc 4096, fc 4096
with dropout 0.5, fc K) for real photos at 224 px; "small", three convolutions (8x8/4 32,
pool, 3x3 64, pool, 3x3 64) and a linear layer over their pooled 64 channels, for the demo's
96 px images, which CNN-F's 4096-wide layers would only memorise; "auto" picks "small" up to
128 px. Images (N, 3, S, S) uint8 enter as (x - 127.5) / 127.5. The poisoned run trains on
the uploaded (attacked) images themselves."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
from torch import nn

from .autograd import AutogradModel, RowLeaves, check_fp32, member_init
from .models import member_sets

CNNS = ("auto", "small", "cnn-f")
SMALL_UP_TO = 128  # px: "auto" takes the small CNN up to this image size


@dataclass(frozen=True)
class DVBPRParams:
    """DVBPR's own hyperparameters."""
    cnn: str = field(default="auto", metadata={
        "help": "DVBPR: its CNN: small (the demo's), cnn-f (the paper's), auto (small up to "
                "128 px)", "choices": "dvbpr_cnns"})
    cnn_reg: float = field(default=1e-3, metadata={
        "help": "DVBPR: L2 on the CNN's weights (kang205's lambda 0.001)"})
    image_size: int = field(default=0, metadata={
        "help": "DVBPR: its images' size in px (0: the extractor's input size)"})

    def __post_init__(self):
        if self.cnn not in CNNS:
            raise ValueError(f"cnn must be one of {', '.join(CNNS)}, not {self.cnn!r}")
        if self.image_size < 0 or 0 < self.image_size < 32:
            raise ValueError(f"image_size must be 0 (the extractor's) or >= 32 px, not "
                             f"{self.image_size}")


class Dropout(nn.Module):
    """Dropout drawing its masks from the member's own generator (so a member's numbers do
    not depend on the members trained beside it); off in eval()."""

    def __init__(self, p: float, generator: torch.Generator):
        super().__init__()
        self.p, self.generator = p, generator

    def forward(self, x):
        if not self.training or self.p == 0:
            return x
        keep = torch.rand(x.shape, generator=self.generator).to(x.device) >= self.p
        return x * keep / (1 - self.p)


def small_cnn(K: int) -> nn.Sequential:
    """(B, 3, S, S) -> (B, K): the demo's DVBPR CNN (~7.5 M multiply-adds at 96 px)."""
    return nn.Sequential(
        nn.Conv2d(3, 32, 8, stride=4, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, K))


def cnn_f(K: int, size: int, generator: torch.Generator) -> nn.Sequential:
    """(B, 3, size, size) -> (B, K): CNN-F as the authors' code builds it ("SAME" padding,
    2x2 max-pools, dropout 0.5 on the two 4096-wide layers)."""
    def same(k: int, stride: int = 1) -> nn.Module:  # TF's SAME: extra padding after
        total = max(k - stride, 0) if size % stride == 0 else k - 1
        return nn.ZeroPad2d((total // 2, total - total // 2, total // 2, total - total // 2))

    pool = lambda: nn.MaxPool2d(2, ceil_mode=True)  # noqa: E731
    convs = nn.Sequential(
        same(11, 4), nn.Conv2d(3, 64, 11, stride=4), nn.ReLU(), pool(),
        nn.Conv2d(64, 256, 5, padding=2), nn.ReLU(), pool(),
        nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(),
        nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(),
        nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(), pool(), nn.Flatten())
    with torch.no_grad():
        flat = convs(torch.zeros(1, 3, size, size)).shape[1]
    return nn.Sequential(*convs, nn.Linear(flat, 4096), nn.ReLU(), Dropout(0.5, generator),
                         nn.Linear(4096, 4096), nn.ReLU(), Dropout(0.5, generator),
                         nn.Linear(4096, K))


class DVBPR(AutogradModel):
    title = "DVBPR"
    reads = "images"
    Params = DVBPRParams

    def __init__(self, n_users: int, n_items: int, factors: int = 64, cnn: str = "auto",
                 cnn_reg: float = 1e-3, image_size: int = 0,
                 features: torch.Tensor | Sequence[torch.Tensor] | None = None,
                 init_std: float = 0.01, precision: str = "fp32", seeds: Sequence[int] = (0,),
                 feature_of: Sequence[int] | None = None):
        """features: the items' images, (n_items, 3, S, S) uint8 (one set, or F with
        `feature_of`: the clean and the uploaded catalog). `image_size` is the pipeline's
        (what size it gives the images); the model takes S from them."""
        super().__init__(n_users, n_items, factors, init_std, seeds)  # theta_u
        check_fp32("DVBPR", precision)
        del self.item_table  # no item latent factor: Phi(X_i) is the item's whole vector
        sets, self.feature_of = member_sets(features, feature_of, self.members,
                                            f"(n_items={n_items}, 3, S, S) uint8 images")
        if any(f.ndim != 4 or f.shape[:2] != (n_items, 3) or f.dtype != torch.uint8
               or f.shape[2] != f.shape[3] for f in sets):
            raise ValueError(f"DVBPR needs (n_items={n_items}, 3, S, S) uint8 images, not "
                             f"{', '.join(f'{tuple(f.shape)} {f.dtype}' for f in sets)}")
        self.register_buffer("images", torch.stack(sets))  # (F, N, 3, S, S) X_i
        size = self.images.shape[-1]
        self.cnn = "small" if cnn == "auto" and size <= SMALL_UP_TO else \
            "cnn-f" if cnn == "auto" else cnn
        self.cnn_reg = cnn_reg
        gens = self._generators
        self._dropout = [torch.Generator().manual_seed(s + 1_000_003) for s in self.seeds]
        self.nets = nn.ModuleList(member_init(
            small_cnn(factors) if self.cnn == "small" else cnn_f(factors, size, d), g)
            for g, d in zip(gens, self._dropout))

    def phi(self, m: int, items: torch.Tensor) -> torch.Tensor:
        """(n, K) Phi(X_i) of member m's images of `items`."""
        x = self.images[self.feature_of[m]].index_select(0, items).float()
        return self.nets[m](x.sub_(127.5).div_(127.5))

    def member_scores(self, m: int, rows: RowLeaves, users, pos, neg):
        theta = rows("user_table", users)  # (B, K) theta_u
        uniq, inv = torch.unique(torch.cat([pos, neg]), return_inverse=True)
        phi = self.phi(m, uniq).index_select(0, inv)  # the CNN once per distinct item
        B = len(users)
        return (theta * (phi[:B] - phi[B:])).sum(-1)

    def net_penalty(self, m: int, reg: float) -> torch.Tensor:
        """cnn_reg ||W||^2 over the CNN's weights (its biases are not regularised)."""
        return self.cnn_reg * sum(p.square().sum() for n, p in self.nets[m].named_parameters()
                                  if n.endswith("weight"))

    def item_vectors(self, items=None, features=None, member=0, chunk: int = 256):
        """(N, K) Phi(X_i) over the member's images, in eval mode (no dropout)."""
        items = torch.arange(self.n_items, device=self.images.device) if items is None else items
        training = self.nets[member].training
        self.nets[member].eval()
        with torch.no_grad():
            out = torch.cat([self.phi(member, items[lo:lo + chunk])
                             for lo in range(0, len(items), chunk)])
        self.nets[member].train(training)
        return out


__all__ = ["DVBPR", "DVBPRParams", "CNNS"]
