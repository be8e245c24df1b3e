import pandas as pd

from advrec_core.data.split import k_core, leave_last_out


def frame(rows):
    return pd.DataFrame(rows, columns=["user", "item", "timestamp"])


def test_leave_last_out_by_timestamp_not_row_order():
    df = frame([(0, 0, 30), (0, 1, 10), (0, 2, 20),  # user 0: last by time is item 0
                (1, 1, 5), (1, 2, 5),  # tie: the later row wins
                (2, 0, 1)])  # one interaction: train only
    train, test, moved = leave_last_out(df)
    assert sorted(map(tuple, test[["user", "item"]].to_numpy())) == [(0, 0), (1, 2)]
    assert moved == 0
    assert len(train) == 4 and 2 in set(train["user"])


def test_unseen_test_item_moves_back_to_train():
    df = frame([(0, 0, 1), (0, 1, 2), (1, 0, 1), (1, 1, 3), (1, 2, 9)])  # item 2: only u1's last
    train, test, moved = leave_last_out(df)
    assert moved == 1
    assert test[["user", "item"]].to_numpy().tolist() == [[0, 1]]
    assert (1, 2) in set(map(tuple, train[["user", "item"]].to_numpy()))


def test_k_core_is_iterative():
    # 2-core: user 2 has one interaction -> dropped, which leaves item 2 with one -> dropped,
    # which leaves user 1 with one -> dropped.
    df = frame([(0, 0, 1), (0, 1, 1), (3, 0, 1), (3, 1, 1), (1, 0, 1), (1, 2, 1), (2, 2, 1)])
    out = k_core(df, 2)
    assert sorted(map(tuple, out[["user", "item"]].to_numpy())) == [(0, 0), (0, 1), (3, 0), (3, 1)]
    assert k_core(df, 0) is df
