"""Popularity and EASE: the closed form is right, and both are scored by the shared metrics code."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from tests.test_recsys_split import _movielens
from vae_core.recsys.baselines import Ease, Popularity, _ridge_inverse, fit_ease
from vae_core.recsys.metrics import evaluate
from vae_core.recsys.split import paper_split


def _clicks(users: int, items: int, seed: int = 0) -> sp.csr_matrix:
    x = sp.random(users, items, density=0.1, format="csr", random_state=seed, dtype=np.float32)
    x.data[:] = 1.0
    return x


def test_ease_is_steck_closed_form():
    x = _clicks(60, 25)
    lam = 5.0
    g = (x.T @ x).toarray() + lam * np.eye(25)
    p = np.linalg.inv(g)
    expected = np.eye(25) - p / np.diag(p)  # Steck 2019, eq. 8
    model = Ease.fit(x, lam)
    assert np.allclose(model.weights, expected, atol=1e-5)
    assert np.all(np.diag(model.weights) == 0)  # an item never predicts itself


def test_woodbury_route_for_few_users_is_the_same_inverse():
    for users, items in ((15, 40), (40, 15)):  # fewer users than items, and the other way round
        x = _clicks(users, items, seed=users)
        direct = np.linalg.inv((x.T @ x).toarray() + 3.0 * np.eye(items))
        assert np.allclose(_ridge_inverse(x, 3.0), direct, atol=1e-10)


def test_popularity_ranks_by_training_clicks():
    train = sp.csr_matrix(np.array([[1, 1, 0, 0], [1, 0, 0, 1], [1, 1, 0, 0]], np.float32))
    pop = Popularity.fit(train)
    assert pop.counts.tolist() == [3, 2, 0, 1]
    assert pop.score(sp.csr_matrix((2, 4))).shape == (2, 4)


def test_ease_beats_popularity_and_its_lambda_comes_from_validation():
    split = paper_split(_movielens(n_users=400, n_items=90))
    pop = evaluate(Popularity.fit(split.train).score, split.test_in, split.test_out)
    ease = fit_ease(split, lambdas=(1.0, 10.0, 100.0))
    assert set(ease.validation) == {1.0, 10.0, 100.0}
    assert ease.validation[ease.lam] == max(ease.validation.values())
    test = evaluate(ease.score, split.test_in, split.test_out)
    # taste groups: EASE finds the user's group, popularity cannot
    assert test["ndcg@100"] > pop["ndcg@100"] + 0.1
    assert test["recall@20"] > pop["recall@20"]
