"""What the Recommend page shows: lists for picks (mean and sampled z), the users' map, search."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import scipy.sparse as sp

from vae_core.errors import UserError
from vae_core.recsys.model import RecSpec, build_recommender
from vae_core.recsys.movielens import Movies
from vae_core.recsys.recommend import (
    encode_clicks,
    favourite_genres,
    pca_2d,
    recommend,
    sampled_recommendations,
    search_titles,
    user_latents,
)

I = 40  # noqa: E741


@pytest.fixture(scope="module")
def vae():
    keras.utils.set_random_seed(0)
    bundle = build_recommender(RecSpec(n_items=I, hidden=16, latent_dim=3), seed=0)
    # a wide posterior, so sampled z's really move the lists
    z_log_var = bundle.encoder.get_layer("z_log_var")
    z_log_var.bias.assign(np.full(3, 2.0, np.float32))
    return bundle


def test_top_n_for_picks_excludes_them_and_is_ranked(vae):
    picks = [3, 7, 7, 11]
    top = recommend(vae, picks, n=10)
    assert len(top.items) == 10 and not {3, 7, 11} & set(top.items.tolist())
    assert np.all(np.diff(top.scores) <= 0)
    x = np.zeros((1, I), np.float32)
    x[0, [3, 7, 11]] = 1
    probs = np.array(vae.composite(x, training=False))[0]  # the composite at prediction: z_mean
    probs[[3, 7, 11]] = -1
    assert top.items.tolist() == np.argsort(-probs, kind="stable")[:10].tolist()
    assert recommend(vae, picks, n=10).items.tolist() == top.items.tolist()  # deterministic


def test_sampled_lists_count_appearances_and_ranks(vae):
    lists = sampled_recommendations(vae, [1, 2], n=5, samples=20, seed=3)
    assert lists.lists.shape == (20, 5)
    assert not {1, 2} & set(lists.lists.ravel().tolist())
    assert lists.appearances.sum() == 100 and (np.diff(lists.appearances) <= 0).all()
    for item, count, best, worst, mean in zip(
        lists.items,
        lists.appearances,
        lists.best_rank,
        lists.worst_rank,
        lists.mean_rank,
        strict=True,
    ):
        rows, ranks = np.nonzero(lists.lists == item)
        assert count == len(rows) and best == ranks.min() + 1 and worst == ranks.max() + 1
        assert mean == pytest.approx(ranks.mean() + 1)
    assert lists.mean.items.tolist() == recommend(vae, [1, 2], n=5).items.tolist()
    assert len(lists.items) > 5  # sampling really changes the lists
    again = sampled_recommendations(vae, [1, 2], n=5, samples=20, seed=3)
    assert np.array_equal(again.lists, lists.lists)  # seeded
    assert ((0 <= lists.overlap) & (lists.overlap <= 1)).all()


def test_picks_must_be_some_of_the_models_items(vae):
    with pytest.raises(UserError, match="at least one"):
        recommend(vae, [])
    with pytest.raises(UserError, match="not one of"):
        recommend(vae, [I])
    dae = build_recommender(RecSpec(kind="mult_dae", n_items=I, latent_dim=4))
    with pytest.raises(UserError, match="no z to sample"):
        sampled_recommendations(dae, [1])
    assert len(recommend(dae, [1], n=3).items) == 3


def test_users_map_in_two_dimensions_and_the_picks_on_it(vae):
    clicks = sp.random(30, I, density=0.2, format="csr", random_state=0, dtype=np.float32)
    clicks.data[:] = 1
    z = user_latents(vae, clicks, batch_size=7)
    assert z.shape == (30, 3) and np.allclose(z[:5], encode_clicks(vae, clicks[:5])[0], atol=1e-6)
    pca = pca_2d(z)
    xy = pca.transform(z)
    assert xy.shape == (30, 2) and np.allclose(xy.mean(axis=0), 0, atol=1e-6)
    assert xy[:, 0].var() >= xy[:, 1].var() and 0 < pca.explained.sum() <= 1 + 1e-9
    assert pca.transform(z[0]).shape == (1, 2)


def test_favourite_genre_and_title_search():
    items = Movies(
        np.arange(4),
        ["Heat (1995)", "Toy Story (1995)", "Toy Soldiers (1991)", "Casino (1995)"],
        np.array([1995, 1995, 1991, 1995]),
        [("Crime", "Drama"), ("Comedy",), ("Drama",), ()],
    )
    clicks = sp.csr_matrix(np.array([[1, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1]], np.float32))
    assert favourite_genres(clicks, items) == ["Drama", "Comedy", ""]
    # Crime is rarer in the catalogue than Drama: relative to it, user 0 is a crime fan
    assert favourite_genres(clicks, items, relative=True)[0] == "Crime"
    assert search_titles(items, "toy").tolist() == [1, 2]
    assert search_titles(items, "TOY sto").tolist() == [1]
    assert search_titles(items, "toy", popularity=np.array([0, 1, 5, 0])).tolist() == [2, 1]
    assert search_titles(items, "  ").size == 0
