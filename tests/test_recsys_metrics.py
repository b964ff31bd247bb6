"""Recall@k and NDCG@k: hand-computed cases, and vae_cf's own formulas on random scores."""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from vae_core.recsys.metrics import evaluate, mask_fold_in, ndcg_at_k, recall_at_k, top_k


def test_hand_computed_user():
    # 6 items; the model ranks 0 > 1 > 2 > 3 > 4 > 5; the user held out items 1 and 4
    scores = np.array([[0.9, 0.8, 0.7, 0.6, 0.5, 0.4]], np.float32)
    held = sp.csr_matrix(np.array([[0, 1, 0, 0, 1, 0]], np.float32))
    assert recall_at_k(scores, held, 1)[0] == 0.0  # item 0 is not held out
    assert recall_at_k(scores, held, 2)[0] == 0.5  # 1 hit / min(2, 2)
    assert recall_at_k(scores, held, 5)[0] == 1.0  # 2 hits / min(5, 2)
    dcg = 1 / math.log2(3) + 1 / math.log2(6)  # hits at ranks 2 and 5
    idcg = 1 / math.log2(2) + 1 / math.log2(3)
    assert math.isclose(ndcg_at_k(scores, held, 100)[0], dcg / idcg, rel_tol=1e-6)
    assert math.isclose(ndcg_at_k(scores, held, 2)[0], (1 / math.log2(3)) / idcg, rel_tol=1e-6)


def test_fold_in_items_are_never_recommended():
    scores = np.array([[5.0, 4.0, 3.0, 2.0]], np.float32)
    fold_in = sp.csr_matrix(np.array([[1, 1, 0, 0]], np.float32))
    held = sp.csr_matrix(np.array([[0, 0, 1, 1]], np.float32))
    assert top_k(mask_fold_in(scores.copy(), fold_in), 2).tolist() == [[2, 3]]
    result = evaluate(lambda x: scores, fold_in, held, recall_ks=(2,), ndcg_k=2)
    assert result["recall@2"] == 1.0 and math.isclose(result["ndcg@2"], 1.0)


def test_users_without_held_out_clicks_are_left_out_of_the_means():
    scores = np.array([[3.0, 2.0, 1.0], [3.0, 2.0, 1.0]], np.float32)
    held = sp.csr_matrix(np.array([[1, 0, 0], [0, 0, 0]], np.float32))
    fold_in = sp.csr_matrix((2, 3), dtype=np.float32)
    result = evaluate(lambda x: scores[: x.shape[0]], fold_in, held, recall_ks=(1,), ndcg_k=3)
    assert result == {"recall@1": 1.0, "ndcg@3": 1.0, "users": 1}


def _vae_cf_ndcg(X_pred, heldout_batch, k=100):
    """vae_cf's NDCG_binary_at_k_batch (bottleneck's argpartition -> numpy's)."""
    batch_users = X_pred.shape[0]
    idx_topk_part = np.argpartition(-X_pred, k, axis=1)
    topk_part = X_pred[np.arange(batch_users)[:, np.newaxis], idx_topk_part[:, :k]]
    idx_part = np.argsort(-topk_part, axis=1)
    idx_topk = idx_topk_part[np.arange(batch_users)[:, np.newaxis], idx_part]
    tp = 1.0 / np.log2(np.arange(2, k + 2))
    DCG = (heldout_batch[np.arange(batch_users)[:, np.newaxis], idx_topk].toarray() * tp).sum(
        axis=1
    )
    IDCG = np.array([(tp[: min(n, k)]).sum() for n in heldout_batch.getnnz(axis=1)])
    return DCG / IDCG


def _vae_cf_recall(X_pred, heldout_batch, k=100):
    """vae_cf's Recall_at_k_batch."""
    batch_users = X_pred.shape[0]
    idx = np.argpartition(-X_pred, k, axis=1)
    X_pred_binary = np.zeros_like(X_pred, dtype=bool)
    X_pred_binary[np.arange(batch_users)[:, np.newaxis], idx[:, :k]] = True
    X_true_binary = (heldout_batch > 0).toarray()
    tmp = (np.logical_and(X_true_binary, X_pred_binary).sum(axis=1)).astype(np.float32)
    return tmp / np.minimum(k, X_true_binary.sum(axis=1))


def test_same_numbers_as_vae_cf_on_random_users():
    rng = np.random.default_rng(0)
    n_users, n_items = 300, 400
    scores = rng.standard_normal((n_users, n_items)).astype(np.float32)  # no ties
    held = sp.random(n_users, n_items, density=0.05, format="csr", random_state=1)
    held.data[:] = 1
    held = held[held.getnnz(axis=1) > 0]
    scores = scores[: held.shape[0]]
    for k in (20, 50, 100):
        assert np.allclose(recall_at_k(scores, held, k), _vae_cf_recall(scores, held, k))
        assert np.allclose(ndcg_at_k(scores, held, k), _vae_cf_ndcg(scores, held, k))
    # batched evaluation = one pass over everyone
    fold_in = sp.csr_matrix(held.shape, dtype=np.float32)
    whole = evaluate(lambda x: scores[: x.shape[0]], fold_in, held, batch_size=10_000)
    size = -(-held.shape[0] // 7)
    seen = []

    def batch_scores(x):  # called once per batch of `size` users, in order
        seen.append(x.shape[0])
        lo = sum(seen[:-1])
        return scores[lo : lo + x.shape[0]]

    batched = evaluate(batch_scores, fold_in, held, batch_size=size)
    assert len(seen) == 7
    for key in ("recall@20", "recall@50", "ndcg@100"):
        assert math.isclose(whole[key], batched[key], rel_tol=1e-9)
    assert math.isclose(whole["ndcg@100"], float(_vae_cf_ndcg(scores, held).mean()), rel_tol=1e-6)
