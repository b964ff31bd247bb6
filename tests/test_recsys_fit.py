"""Training a recommender: shuffled sparse batches, the best epoch by validation NDCG@100, a real
short run on ml-latest-small that beats popularity, and ML-20M's code path on a synthetic file."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import scipy.sparse as sp

from tests.movielens_files import synthetic_ratings, write_release
from vae_core.recsys.baselines import Popularity
from vae_core.recsys.fit import (
    FitConfig,
    RankingValidation,
    click_dataset,
    fit_recommender,
    score_test_users,
)
from vae_core.recsys.metrics import evaluate
from vae_core.recsys.model import RecSpec, build_recommender
from vae_core.recsys.movielens import load_movielens, load_shipped_small
from vae_core.recsys.recommend import recommend
from vae_core.recsys.split import paper_split


def _rows(batch) -> list[tuple[int, ...]]:
    dense = np.asarray(keras.ops.convert_to_numpy(batch.indices))
    return [
        tuple(sorted(dense[dense[:, 0] == r, 1].tolist())) for r in range(int(batch.dense_shape[0]))
    ]


def test_each_epoch_visits_every_user_once_in_a_seeded_order():
    x = sp.csr_matrix(np.eye(7, 9, dtype=np.float32))  # user u clicked item u
    ds = click_dataset(x, batch_size=3, seed=5)
    epochs = [[r[0] for b in ds for r in _rows(b)] for _ in range(2)]
    assert sorted(epochs[0]) == sorted(epochs[1]) == list(range(7))
    assert epochs[0] != epochs[1]  # reshuffled each epoch
    resumed = click_dataset(x, batch_size=3, seed=5, first_epoch=1)  # a run resumed at epoch 1
    assert [r[0] for b in resumed for r in _rows(b)] == epochs[1]
    assert int(ds.cardinality()) == 3


def test_validation_adds_metrics_to_the_logs_and_keeps_the_best_epoch(tmp_path):
    data = load_shipped_small()
    split = paper_split(data)
    bundle = build_recommender(RecSpec(n_items=split.n_items, hidden=8, latent_dim=4), seed=0)
    check = RankingValidation(split, bundle, best_path=tmp_path / "best.weights.h5")
    logs: dict = {}
    check.on_epoch_end(0, logs)
    assert {"val_recall@20", "val_recall@50", "val_ndcg@100"} <= logs.keys()
    assert check.best_epoch == 1 and (tmp_path / "best.weights.json").is_file()
    first = [w.copy() for w in check.best_weights]
    # an epoch that scores below the best so far does not replace it ...
    bundle.composite.set_weights([w + 0.1 for w in bundle.composite.get_weights()])
    check.best_score = 2.0  # above any NDCG
    check.on_epoch_end(1, logs)
    assert check.best_epoch == 1
    assert all(
        np.array_equal(a, b)
        for a, b in zip(first, check.best_bundle().composite.get_weights(), strict=True)
    )
    # ... one that scores above it does
    check.best_score = -1.0
    check.on_epoch_end(2, logs)
    assert check.best_epoch == 3 and check.best_score == logs["val_ndcg@100"]
    assert not np.array_equal(first[0], check.best_bundle().composite.get_weights()[0])
    # a resumed run remembers its best so far
    again = RankingValidation(split, bundle, best_path=tmp_path / "best.weights.h5")
    assert again.best_epoch == check.best_epoch and again.best_score == pytest.approx(
        check.best_score
    )


@pytest.mark.slow
def test_short_real_training_on_ml_latest_small_beats_popularity():
    split = paper_split(load_shipped_small())
    rows = []
    result = fit_recommender(
        split,
        config=FitConfig(epochs=12, batch_size=100, anneal_steps=60, seed=1),
        on_epoch=rows.append,
    )
    pop = evaluate(Popularity.fit(split.train).score, split.test_in, split.test_out)
    assert len(result.history) == len(rows) == 12
    assert result.best_epoch == 1 + int(np.argmax([r["val_ndcg@100"] for r in rows]))
    assert result.test_metrics["ndcg@100"] > pop["ndcg@100"]
    assert result.test_metrics["recall@20"] > pop["recall@20"]
    assert result.bundle.composite.dtype_policy.name == "float32"
    # the returned bundle is the best epoch's, and scores what fit reported
    again = score_test_users(result.bundle, split)
    assert again["ndcg@100"] == pytest.approx(result.test_metrics["ndcg@100"], abs=1e-6)


@pytest.mark.slow
def test_ml20m_code_path_end_to_end_on_a_synthetic_file(tmp_path, monkeypatch):
    ratings, movies = synthetic_ratings(n_users=400, n_items=120, seed=3)
    write_release(tmp_path, "ml-20m", ratings, movies)
    monkeypatch.setenv("VAE_LAB_DATA_DIR", str(tmp_path))
    data = load_movielens("ml-20m")
    split = paper_split(data)
    assert split.dataset == "ml-20m" and split.val_in.shape[0] == split.test_in.shape[0] == 40
    result = fit_recommender(
        split,
        RecSpec(n_items=split.n_items, hidden=64, latent_dim=16),
        FitConfig(epochs=15, batch_size=50, anneal_steps=100),
    )
    pop = evaluate(Popularity.fit(split.train).score, split.test_in, split.test_out)
    assert result.test_metrics["ndcg@100"] > pop["ndcg@100"] + 0.05  # it learned the taste groups
    picks = np.flatnonzero(np.asarray(split.test_in[0].todense()).ravel())
    top = recommend(result.bundle, picks, n=10)
    assert not set(top.items.tolist()) & set(picks.tolist())
    assert all(split.items.titles[i].startswith("Movie ") for i in top.items)
