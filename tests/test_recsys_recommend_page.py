"""The Recommend page's helpers in vae_core.recsys.recommend: picks in an address, titles, a few of
each user's movies, the scores table, and where picks put a user."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from vae_core.recsys.model import RecSpec, build_recommender
from vae_core.recsys.movielens import Movies
from vae_core.recsys.recommend import (
    encode_clicks,
    example_titles,
    picks_from_text,
    picks_text,
    picks_z_mean,
    plain_title,
    scores_table,
)

MOVIES = Movies(np.array([1, 296, 318, 4306]),
                ["Toy Story (1995)", "Pulp Fiction (1994)", "Dexter (2006-2013)", "Shrek (2001)"],
                np.array([1995, 1994, 2006, 2001]), [("Comedy",), ("Crime",), (), ("Comedy",)])  # fmt: skip


def test_picks_in_an_address_become_columns_and_the_rest_is_named():
    columns, dropped = picks_from_text(MOVIES, " 4306,1,abc,,1,999, 296 ")
    assert columns == [3, 0, 1]  # in the given order, each once
    assert dropped == ["abc", "999"]
    assert picks_text(MOVIES, columns) == "4306,1,296"
    assert picks_from_text(MOVIES, picks_text(MOVIES, columns)) == (columns, [])
    assert picks_from_text(MOVIES, None) == ([], [])
    assert picks_from_text(MOVIES, "") == ([], [])


def test_titles_lose_their_year_but_never_everything():
    assert plain_title("Toy Story (1995)") == "Toy Story"
    assert plain_title("Dexter (2006-2013)") == "Dexter"
    assert plain_title("Hamlet") == "Hamlet"
    assert plain_title("(1995)") == "(1995)"


def test_a_few_of_each_users_movies_from_their_own_clicks():
    clicks = sp.csr_matrix(np.array([[1, 1, 1, 1], [0, 1, 0, 0], [0, 0, 0, 0]], np.float32))
    shown = example_titles(clicks, MOVIES, k=2, seed=1)
    assert len(shown[0]) == 2 and set(shown[0]) <= set(MOVIES.titles)
    assert len(set(shown[0])) == 2
    assert shown[1:] == [["Pulp Fiction (1994)"], []]
    assert example_titles(clicks, MOVIES, k=2, seed=1) == shown  # seeded


def test_the_scores_table_has_a_row_per_method_that_was_measured():
    metrics = {"recall@20": 0.3, "recall@50": 0.4, "ndcg@100": 0.35, "popularity_recall@20": 0.1,
               "popularity_recall@50": 0.2, "popularity_ndcg@100": float("nan"), "best_epoch": 7}  # fmt: skip
    rows = scores_table(metrics, "Mult-VAE")
    assert [r["method"] for r in rows] == ["Mult-VAE", "Popularity (most liked)"]  # no EASE scores
    assert rows[0] == {"method": "Mult-VAE", "Recall@20": 0.3, "Recall@50": 0.4, "NDCG@100": 0.35}
    assert rows[1]["NDCG@100"] is None and rows[1]["Recall@20"] == 0.1
    assert scores_table(None, "Mult-VAE") == [] and scores_table({"best_epoch": 3}, "x") == []


def test_picks_put_a_user_where_the_encoder_puts_their_clicks():
    bundle = build_recommender(RecSpec(n_items=4, hidden=8, latent_dim=3), seed=0)
    x = np.array([[1, 0, 0, 1]], np.float32)
    np.testing.assert_allclose(picks_z_mean(bundle, [3, 0]), encode_clicks(bundle, x)[0], atol=1e-6)
