"""Uniform negative sampling over the items a user has not interacted with, vectorised:
draw all negatives at once, redraw only the collisions (a shrinking set) until none."""
from __future__ import annotations

import torch


class NegativeSampler:
    def __init__(self, users: torch.Tensor, items: torch.Tensor, n_items: int):
        self.n_items = n_items
        self.keys = torch.unique(users.long() * n_items + items.long())  # sorted (user, item)

    def seen(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """(B,) bool: did each user interact with each item?"""
        q = users.long() * self.n_items + items.long()
        pos = torch.searchsorted(self.keys, q).clamp(max=len(self.keys) - 1)
        return self.keys[pos] == q

    def sample(self, users: torch.Tensor, generator: torch.Generator | None = None,
               max_rounds: int = 100) -> torch.Tensor:
        """(B,) one negative item per user."""
        neg = torch.randint(self.n_items, users.shape, generator=generator)
        bad = self.seen(users, neg)
        for _ in range(max_rounds):
            if not bad.any():
                return neg
            idx = bad.nonzero().squeeze(1)
            neg[idx] = torch.randint(self.n_items, idx.shape, generator=generator)
            bad[idx] = self.seen(users[idx], neg[idx])
        raise RuntimeError("could not sample negatives: some user has interacted with "
                           "(almost) every item")
