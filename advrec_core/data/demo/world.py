"""The demo shop's users: a latent taste model that makes images carry signal.

Each user u has a preference for every category (around the shop-wide popularity, so some
categories are popular and some are not), likes a few colours and has a taste for patterns.
The utility of item i is

    s(u, i) = log pop[c_i] + a_u[c_i] + b_u[col_i] + g_u[pat_i] + q_i

(category, colour and pattern are all visible in the image; q_i is a non-visual item
quality). Each user draws n_u items without replacement with probability proportional to
exp(s / temperature) (Gumbel top-k, vectorised over all users), in random time order."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Taste:
    """How much each visible attribute (and the invisible quality) drives choices."""

    category_spread: float = 0.9  # std of personal category taste around shop popularity
    colour_weight: float = 1.6  # utility bonus of a liked colour
    pattern_spread: float = 0.9  # std of personal pattern taste
    quality_spread: float = 0.4  # std of the non-visual item quality


DAY = 86_400
START = 1_388_534_400  # 2014-01-01, the era of the Amazon fashion datasets


def user_item_utility(rng: np.random.Generator, n_users: int, item_cat: np.ndarray,
                      item_col: np.ndarray, item_pat: np.ndarray, popularity: np.ndarray,
                      n_colours: int, n_patterns: int, taste: "Taste") -> np.ndarray:
    """(n_users, n_items) float utilities s(u, i)."""
    n_cat = len(popularity)
    a = rng.normal(0.0, taste.category_spread, size=(n_users, n_cat))  # personal category taste
    liked = rng.random((n_users, n_colours)) < 2.5 / n_colours  # ~2-3 liked colours each
    b = taste.colour_weight * liked + rng.normal(0.0, 0.25, size=(n_users, n_colours))
    g = rng.normal(0.0, taste.pattern_spread, size=(n_users, n_patterns))
    q = rng.normal(0.0, taste.quality_spread, size=len(item_cat))
    return (np.log(popularity)[item_cat][None, :] + a[:, item_cat] + b[:, item_col]
            + g[:, item_pat] + q[None, :])


def sample_interactions(rng: np.random.Generator, utility: np.ndarray, n_interactions: int,
                        min_per_user: int = 2, temperature: float = 0.8) -> pd.DataFrame:
    """Draw about `n_interactions` (user, item, timestamp, rating) rows, sorted by user, time."""
    n_users, n_items = utility.shape
    cap = max(min_per_user, n_items // 4)
    activity = rng.lognormal(0.0, 0.9, size=n_users)  # heavy-tailed user activity
    extra = max(0, n_interactions - min_per_user * n_users)
    counts = min_per_user + rng.multinomial(extra, activity / activity.sum())
    counts = np.minimum(counts, cap)  # (n_users,)

    keys = utility / temperature + rng.gumbel(size=utility.shape)
    order = np.argsort(-keys, axis=1, kind="stable")  # (n_users, n_items) best first
    take = np.arange(n_items)[None, :] < counts[:, None]
    users = np.repeat(np.arange(n_users), counts)
    items = order[take]  # row-major: each user's items, best first

    # random time order within a user: exponential gaps after a user-specific start
    perm_key = rng.random(len(items))
    idx = np.lexsort((perm_key, users))
    users, items = users[idx], items[idx]
    gaps = rng.exponential(9 * DAY, size=len(items))
    starts = np.repeat(rng.uniform(0, 540 * DAY, size=n_users), counts)
    first = np.repeat(np.cumsum(counts) - counts, counts)
    csum = np.cumsum(gaps)
    t = starts + csum - (csum[first] - gaps[first])  # within-user cumulative gaps
    timestamps = (START + t).astype(np.int64)

    s = utility[users, items]
    z = (s - s.mean()) / (s.std() + 1e-9)
    rating = np.clip(np.round(4.0 + 0.7 * z + rng.normal(0, 0.6, size=len(z))), 1, 5)
    return pd.DataFrame({"user": users, "item": items, "timestamp": timestamps,
                         "rating": rating.astype(np.int64)})
