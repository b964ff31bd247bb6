"""The paper's split: what the protocol promises, and the very users and clicks vae_cf's code picks."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from tests.movielens_files import synthetic_ratings
from vae_core.errors import DataError
from vae_core.recsys.movielens import MovieLens, Movies, Ratings, load_shipped_small
from vae_core.recsys.split import default_heldout_users, paper_split


def _movielens(n_users=300, n_items=120, seed=0) -> MovieLens:
    ratings, movies = synthetic_ratings(n_users, n_items, seed)
    u, m, r, _ = (np.array(c) for c in zip(*ratings, strict=True))
    cat = Movies(
        np.array([x[0] for x in movies], np.int32),
        [x[1] for x in movies],
        np.zeros(len(movies), np.int16),
        [x[2] for x in movies],
    )
    return MovieLens(
        "synthetic",
        Ratings(u.astype(np.int32), m.astype(np.int32), r.astype(np.float32)),
        cat,
        "test",
    )


def _pairs(m: sp.csr_matrix, users: np.ndarray, items: np.ndarray) -> set[tuple[int, int]]:
    coo = m.tocoo()
    return set(zip(users[coo.row].tolist(), items[coo.col].tolist(), strict=True))


@pytest.fixture(scope="module")
def small():
    data = load_shipped_small()
    return data, paper_split(data)


def test_positives_are_ratings_above_3_5_of_users_with_5_or_more(small):
    data, s = small
    r = data.ratings
    positive = set(
        zip(r.users[r.stars > 3.5].tolist(), r.items[r.stars > 3.5].tolist(), strict=True)
    )
    ids = s.items.ids
    parts = [
        _pairs(s.train, s.train_users, ids),
        _pairs(s.val_in, s.val_users, ids),
        _pairs(s.val_out, s.val_users, ids),
        _pairs(s.test_in, s.test_users, ids),
        _pairs(s.test_out, s.test_users, ids),
    ]
    every = set().union(*parts)
    assert every <= positive  # nothing at 3.5 stars or below
    assert sum(len(p) for p in parts) == len(every)  # no click in two parts
    counts = np.bincount(r.users[r.stars > 3.5])
    kept = np.concatenate([s.train_users, s.val_users, s.test_users])
    assert counts[kept].min() >= 5
    assert set(np.flatnonzero(counts >= 5)) == set(kept.tolist())  # every such user is kept
    assert len(set(kept.tolist())) == len(kept)  # each user in one part only


def test_held_out_users_are_10_percent_each_and_items_come_from_training_users(small):
    _, s = small
    n = s.train.shape[0] + 2 * s.val_in.shape[0]
    assert s.val_in.shape[0] == s.test_in.shape[0] == default_heldout_users(n) == round(0.1 * n)
    assert default_heldout_users(136_677) == 10_000  # ML-20M: the paper's 10,000
    # every column is clicked by some training user; held-out users' other items are dropped
    assert (np.asarray(s.train.sum(axis=0)).ravel() > 0).all()
    assert s.items.titles[0] and len(s.items.titles) == s.n_items == len(s.items.ids)


def test_fold_in_is_80_percent_and_held_out_20_percent_per_user(small):
    _, s = small
    for fold_in, held in ((s.val_in, s.val_out), (s.test_in, s.test_out)):
        n_in, n_out = fold_in.getnnz(axis=1), held.getnnz(axis=1)
        total = n_in + n_out
        assert np.array_equal(n_out[total >= 5], (0.2 * total[total >= 5]).astype(int))
        assert (n_out[total < 5] == 0).all()
        assert fold_in.multiply(held).nnz == 0


def test_the_split_is_seeded(small):
    data, s = small
    again = paper_split(data)
    other = paper_split(data, seed=1)
    assert (
        np.array_equal(again.test_users, s.test_users) and (again.test_out != s.test_out).nnz == 0
    )
    assert not np.array_equal(other.test_users, s.test_users)


def test_too_few_users_is_a_sentence_not_a_crash():
    data = _movielens(n_users=2)
    with pytest.raises(DataError, match="too few"):
        paper_split(data, heldout_users=1)


def _vae_cf_split(data: MovieLens, n_heldout: int):
    """dawenl/vae_cf's ML-20M notebook, line for line (pandas; groupby sizes as the 2018 pandas)."""
    pd = pytest.importorskip("pandas")
    raw_data = pd.DataFrame(
        {"userId": data.ratings.users, "movieId": data.ratings.items, "rating": data.ratings.stars}
    )
    raw_data = raw_data[raw_data["rating"] > 3.5]

    def get_count(tp, id):
        return tp.groupby(id).size()

    usercount = get_count(raw_data, "userId")
    raw_data = raw_data[raw_data["userId"].isin(usercount.index[usercount >= 5])]
    user_activity = get_count(raw_data, "userId")
    unique_uid = user_activity.index
    np.random.seed(98765)
    idx_perm = np.random.permutation(unique_uid.size)
    unique_uid = unique_uid[idx_perm]
    n_users = unique_uid.size
    tr_users = unique_uid[: (n_users - n_heldout * 2)]
    vd_users = unique_uid[(n_users - n_heldout * 2) : (n_users - n_heldout)]
    te_users = unique_uid[(n_users - n_heldout) :]
    train_plays = raw_data.loc[raw_data["userId"].isin(tr_users)]
    unique_sid = pd.unique(train_plays["movieId"])

    def split_train_test_proportion(data, test_prop=0.2):
        data_grouped_by_user = data.groupby("userId")
        tr_list, te_list = list(), list()
        np.random.seed(98765)
        for _, group in data_grouped_by_user:
            n_items_u = len(group)
            if n_items_u >= 5:
                idx = np.zeros(n_items_u, dtype="bool")
                idx[
                    np.random.choice(
                        n_items_u, size=int(test_prop * n_items_u), replace=False
                    ).astype("int64")
                ] = True
                tr_list.append(group[np.logical_not(idx)])
                te_list.append(group[idx])
            else:
                tr_list.append(group)
        return pd.concat(tr_list), pd.concat(te_list)

    out = {"train": train_plays, "items": np.asarray(unique_sid), "users": np.asarray(unique_uid)}
    for part, users in (("val", vd_users), ("test", te_users)):
        plays = raw_data.loc[raw_data["userId"].isin(users)]
        plays = plays.loc[plays["movieId"].isin(unique_sid)]
        out[part + "_in"], out[part + "_out"] = split_train_test_proportion(plays)
    return out


def _df_pairs(df) -> set[tuple[int, int]]:
    return set(zip(df["userId"].tolist(), df["movieId"].tolist(), strict=True))


@pytest.mark.parametrize("source", ["synthetic", "ml-latest-small"])
def test_same_users_items_and_clicks_as_vae_cf(source, small):
    data = _movielens() if source == "synthetic" else small[0]
    h = default_heldout_users(len(np.unique(data.ratings.users)))
    ours = paper_split(data, heldout_users=h)
    ref = _vae_cf_split(data, h)
    ids = ours.items.ids
    assert np.array_equal(ids, ref["items"])  # same items, same column order
    assert np.array_equal(
        np.concatenate([ours.train_users, ours.val_users, ours.test_users]), ref["users"]
    )
    assert _pairs(ours.train, ours.train_users, ids) == _df_pairs(ref["train"])
    for part, users in (("val", ours.val_users), ("test", ours.test_users)):
        assert _pairs(getattr(ours, part + "_in"), users, ids) == _df_pairs(ref[part + "_in"])
        assert _pairs(getattr(ours, part + "_out"), users, ids) == _df_pairs(ref[part + "_out"])


def test_items_can_be_limited_to_those_enough_training_users_clicked(small):
    data, full = small
    s = paper_split(data, min_item_users=5)
    clicked_by = np.asarray(s.train.sum(axis=0)).ravel()
    assert clicked_by.min() >= 5 and s.n_items == int(
        (np.asarray(full.train.sum(axis=0)) >= 5).sum()
    )
    assert np.array_equal(s.test_users, full.test_users)  # the same people, fewer movies
    kept = set(s.items.ids.tolist())
    assert _pairs(s.test_out, s.test_users, s.items.ids) <= {
        p
        for p in _pairs(full.test_in + full.test_out, full.test_users, full.items.ids)
        if p[1] in kept
    }
