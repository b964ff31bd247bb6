"""Ranking metrics as dawenl/vae_cf defines them: Recall@k and NDCG@k over held-out clicks.

For each held-out user a model scores every item from the user's fold-in clicks; the fold-in items
are set to -inf (never recommended), and the top k of the rest are compared with the held-out 20%:
- Recall@k = hits in the top k / min(k, held-out count)   (so a perfect list scores 1 for any k);
- NDCG@k  = sum over the top k of hit / log2(rank + 1), divided by the best possible for that user.
Users without held-out clicks have no score (vae_cf's 0/0) and are left out of the means.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import scipy.sparse as sp

RECALL_KS = (20, 50)
NDCG_K = 100
EVAL_BATCH = 2000  # users scored at once (vae_cf's evaluation batch)

ScoreFn = Callable[[sp.csr_matrix], np.ndarray]  # fold-in clicks (B, I) -> scores (B, I)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of each row's k highest scores, best first."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    rows = np.arange(scores.shape[0])[:, None]
    return part[rows, np.argsort(-scores[rows, part], axis=1, kind="stable")]


def mask_fold_in(scores: np.ndarray, fold_in: sp.csr_matrix) -> np.ndarray:
    """Fold-in items can never be recommended: their scores become -inf (in place, returned)."""
    scores[fold_in.nonzero()] = -np.inf
    return scores


def ndcg_at_k(scores: np.ndarray, held_out: sp.csr_matrix, k: int = NDCG_K) -> np.ndarray:
    """Per user: NDCG@k with binary relevance (vae_cf's NDCG_binary_at_k_batch); nan without held-out."""
    idx = top_k(scores, k)
    discount = 1.0 / np.log2(np.arange(2, idx.shape[1] + 2))
    hits = np.asarray(held_out[np.arange(len(idx))[:, None], idx].todense()) > 0
    dcg = (hits * discount).sum(axis=1)
    n_held = held_out.getnnz(axis=1)
    ideal = np.cumsum(np.r_[0.0, discount])[np.minimum(n_held, idx.shape[1])]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_held > 0, dcg / ideal, np.nan)


def recall_at_k(scores: np.ndarray, held_out: sp.csr_matrix, k: int) -> np.ndarray:
    """Per user: hits in the top k / min(k, held-out count) (vae_cf's Recall_at_k_batch)."""
    idx = top_k(scores, k)
    hits = (np.asarray(held_out[np.arange(len(idx))[:, None], idx].todense()) > 0).sum(axis=1)
    n_held = held_out.getnnz(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_held > 0, hits / np.minimum(k, n_held), np.nan)


def scored_users(held_out: sp.csr_matrix) -> int:
    """How many users the means run over: those with at least one held-out click."""
    return int((held_out.getnnz(axis=1) > 0).sum())


def evaluate(
    score: ScoreFn,
    fold_in: sp.csr_matrix,
    held_out: sp.csr_matrix,
    recall_ks: Sequence[int] = RECALL_KS,
    ndcg_k: int = NDCG_K,
    batch_size: int = EVAL_BATCH,
) -> dict[str, float]:
    """Mean Recall@k and NDCG@k over the held-out users, scoring `batch_size` users at a time.

    Returns {"recall@20": ..., "recall@50": ..., "ndcg@100": ..., "users": scored users}.
    """
    per_user: dict[str, list[np.ndarray]] = {f"recall@{k}": [] for k in recall_ks}
    per_user[f"ndcg@{ndcg_k}"] = []
    for lo in range(0, fold_in.shape[0], batch_size):
        x_in, x_out = fold_in[lo : lo + batch_size], held_out[lo : lo + batch_size]
        scores = mask_fold_in(np.array(score(x_in), dtype=np.float32), x_in)
        for k in recall_ks:
            per_user[f"recall@{k}"].append(recall_at_k(scores, x_out, k))
        per_user[f"ndcg@{ndcg_k}"].append(ndcg_at_k(scores, x_out, ndcg_k))
    out = {}
    for name, parts in per_user.items():
        values = np.concatenate(parts)
        out[name] = float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
    out["users"] = scored_users(held_out)
    return out
