"""k-core filtering and the time-aware leave-one-out split (He et al., SIGIR 2018).

Both work on integer-coded frames with columns user, item, timestamp (and optional
rating), fully vectorised."""
from __future__ import annotations

import numpy as np
import pandas as pd


def k_core(df: pd.DataFrame, k: int) -> pd.DataFrame:
    """Drop users and items with fewer than `k` interactions, repeatedly, until every
    remaining user and item has at least `k`. k <= 1 returns `df` unchanged."""
    if k <= 1:
        return df
    keep = np.ones(len(df), dtype=bool)
    users, items = df["user"].to_numpy(), df["item"].to_numpy()
    while True:
        u_cnt = np.bincount(users[keep], minlength=users.max(initial=-1) + 1)
        i_cnt = np.bincount(items[keep], minlength=items.max(initial=-1) + 1)
        ok = keep & (u_cnt[users] >= k) & (i_cnt[items] >= k)
        if ok.sum() == keep.sum():
            return df[keep]
        keep = ok


def leave_last_out(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Split into (train, test, n_moved_back).

    Each user's last interaction by timestamp (ties: the later row) goes to test; users with
    a single interaction stay in train only; a test row whose item never occurs in train is
    moved back to train, as a model cannot score an item it has never seen."""
    order = np.lexsort((np.arange(len(df)), df["timestamp"].to_numpy(), df["user"].to_numpy()))
    s = df.iloc[order]
    users = s["user"].to_numpy()
    is_last = np.r_[users[1:] != users[:-1], True]  # last row of each user's block
    counts = np.bincount(users)
    is_test = is_last & (counts[users] >= 2)
    train_items = np.zeros(int(s["item"].to_numpy().max(initial=-1)) + 1, dtype=bool)
    train_items[s["item"].to_numpy()[~is_test]] = True
    unseen = is_test & ~train_items[s["item"].to_numpy()]
    is_test &= ~unseen
    return s[~is_test].reset_index(drop=True), s[is_test].reset_index(drop=True), int(unseen.sum())
