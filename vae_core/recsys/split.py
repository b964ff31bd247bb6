"""The Mult-VAE paper's preprocessing, step for step as dawenl/vae_cf's ML-20M notebook does it.

1. Ratings above 3.5 stars are positives ("clicks"); every other rating is dropped.
2. Users with at least 5 positives are kept.
3. Strong generalisation: the kept users are shuffled (seed 98765) and the last 2h become held-out
   users, h for validation and h for test (the paper: 10,000 each on ML-20M; here 10% each on
   smaller sets). Models are trained on the other users only.
4. Items are those the training users clicked, numbered in order of first appearance.
5. Each held-out user's clicks on those items are split 80% fold-in (what the model sees) / 20%
   held out (what it must find), by a generator reseeded with the same seed for each set.
Everything stays a scipy CSR matrix: ML-20M's 136k x 20k is never dense.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from vae_core.errors import DataError
from vae_core.recsys.movielens import MovieLens, Movies

PAPER_SEED = 98765  # vae_cf's np.random.seed for the user shuffle and the 80/20 draws
POSITIVE_ABOVE = 3.5  # stars; "ratings >= 4" in the paper's words
MIN_POSITIVES = 5  # per user
HELDOUT_FRACTION = 0.1  # of users, for validation and again for test, on small sets
HELDOUT_CAP = 10_000  # ... up to the paper's ML-20M count
TEST_PROPORTION = 0.2  # of a held-out user's clicks that the model must find


@dataclass
class Split:
    """Click matrices (users x items, 1.0 = positive) of the paper's protocol, and what the columns are."""

    dataset: str
    train: sp.csr_matrix  # the training users' clicks
    val_in: sp.csr_matrix  # validation users: the 80% the model sees ...
    val_out: sp.csr_matrix  # ... and the 20% it must find
    test_in: sp.csr_matrix
    test_out: sp.csr_matrix
    items: Movies  # one entry per column: movie id, title, year, genres
    train_users: np.ndarray  # MovieLens userId per row of `train` (likewise below)
    val_users: np.ndarray
    test_users: np.ndarray
    seed: int = PAPER_SEED

    @property
    def n_items(self) -> int:
        return self.train.shape[1]

    def summary(self) -> dict:
        """Sizes for people and metadata: users per part, items, clicks."""
        return {
            "dataset": self.dataset,
            "items": self.n_items,
            "train_users": self.train.shape[0],
            "val_users": self.val_in.shape[0],
            "test_users": self.test_in.shape[0],
            "train_clicks": int(self.train.nnz),
            "seed": self.seed,
        }


def default_heldout_users(n_users: int) -> int:
    """Held-out users per part: 10% of the users, at most the paper's 10,000 (ML-20M)."""
    return max(1, min(HELDOUT_CAP, int(round(HELDOUT_FRACTION * n_users))))


def _clicks(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    m = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=shape)
    m.sum_duplicates()
    m.data[:] = 1.0  # a movie rated twice is still one click
    return m


def _fold_in_split(
    rows: np.ndarray, cols: np.ndarray, n_rows: int, n_items: int, seed: int, proportion: float
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """vae_cf's split_train_test_proportion: per user (by userId), int(20%) of >= 5 clicks held out.

    `rows` must come grouped by user in ascending userId order, each user's clicks in file order;
    the generator is reseeded here, once per set, exactly as vae_cf reseeds it.
    """
    rng = np.random.RandomState(seed)
    held = np.zeros(len(rows), dtype=bool)
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    ends = np.r_[starts[1:], len(rows)]
    for start, end in zip(starts, ends, strict=True):
        n = end - start
        if n >= 5:
            held[start + rng.choice(n, size=int(proportion * n), replace=False)] = True
    fold_in = _clicks(rows[~held], cols[~held], (n_rows, n_items))
    held_out = _clicks(rows[held], cols[held], (n_rows, n_items))
    return fold_in, held_out


def paper_split(
    data: MovieLens,
    heldout_users: int | None = None,
    seed: int = PAPER_SEED,
    positive_above: float = POSITIVE_ABOVE,
    min_positives: int = MIN_POSITIVES,
    min_item_users: int = 1,
) -> Split:
    """The paper's strong-generalisation split of a MovieLens release (see the module docstring).

    min_item_users > 1 departs from the paper on purpose: only items that many training users
    clicked become columns (a smaller model to ship; the held-out users' other clicks are dropped).
    """
    r = data.ratings
    keep = r.stars > positive_above
    users, items = r.users[keep], r.items[keep]
    # 2. users with enough positives, sorted by id as pandas' groupby sorts them
    ids, counts = np.unique(users, return_counts=True)
    active = ids[counts >= min_positives]
    if active.size == 0:
        raise DataError(
            f"{data.name} has no user with {min_positives} or more ratings above "
            f"{positive_above:g} stars; there is nothing to learn from."
        )
    is_active = np.isin(users, active)
    users, items = users[is_active], items[is_active]
    # 3. shuffle the users; the last 2h are held out
    n = active.size
    h = default_heldout_users(n) if heldout_users is None else int(heldout_users)
    if h < 1 or n - 2 * h < 1:
        raise DataError(
            f"{data.name} has {n} users with {min_positives}+ positives: too few to hold out "
            f"{h} for validation and {h} for test and still train on some."
        )
    perm = np.random.RandomState(seed).permutation(n)
    shuffled = active[perm]
    rank = np.empty(n, dtype=np.int64)
    rank[perm] = np.arange(n)  # position of each (sorted) user in the shuffled order
    pos = rank[np.searchsorted(active, users)]
    n_train = n - 2 * h
    # 4. items = what training users clicked, numbered by first appearance (pandas.unique)
    in_train = pos < n_train
    uniq, first, clicked_by = np.unique(items[in_train], return_index=True, return_counts=True)
    if min_item_users > 1:
        popular = clicked_by >= min_item_users
        in_train &= np.isin(items, uniq[popular])
        uniq, first = uniq[popular], first[popular]
    by_appearance = np.argsort(first, kind="stable")
    item_ids = uniq[by_appearance]
    column_of_sorted = np.empty(len(uniq), dtype=np.int64)
    column_of_sorted[by_appearance] = np.arange(len(uniq))
    n_items = len(item_ids)
    train = _clicks(
        pos[in_train], column_of_sorted[np.searchsorted(uniq, items[in_train])], (n_train, n_items)
    )

    # 5. held-out users: their clicks on training items, split 80/20 per user
    def heldout(lo: int) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        mask = (pos >= lo) & (pos < lo + h)
        where = np.searchsorted(uniq, items[mask])
        known = (where < len(uniq)) & (uniq[np.minimum(where, len(uniq) - 1)] == items[mask])
        u, cols = users[mask][known], column_of_sorted[where[known]]
        rows = pos[mask][known] - lo
        order = np.argsort(u, kind="stable")  # groupby userId; file order within a user
        return _fold_in_split(rows[order], cols[order], h, n_items, seed, TEST_PROPORTION)

    val_in, val_out = heldout(n_train)
    test_in, test_out = heldout(n_train + h)
    catalogue = data.movies
    at = catalogue.positions(item_ids)
    if (at < 0).any():
        raise DataError(f"{data.name}: some rated movies are missing from the movies file.")
    items_meta = Movies(
        item_ids.astype(np.int32),
        [catalogue.titles[i] for i in at],
        catalogue.years[at],
        [catalogue.genres[i] for i in at],
    )
    return Split(
        data.name,
        train,
        val_in,
        val_out,
        test_in,
        test_out,
        items_meta,
        shuffled[:n_train],
        shuffled[n_train : n_train + h],
        shuffled[n_train + h :],
        seed,
    )
