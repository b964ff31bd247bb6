"""Two neighbours for every Mult-VAE figure, scored by the same metrics code on the same users.

- Popularity: every user gets the items the training users clicked most (minus their fold-in).
- EASE (Steck 2019, "Embarrassingly Shallow Autoencoders"): an item-item weight matrix B with a zero
  diagonal, in closed form: P = (X'X + lambda I)^-1, B = I - P / diag(P). Scores = fold-in clicks @ B.
  lambda is the one of a small grid with the best validation NDCG@100 (Steck used 500 on ML-20M).
  It needs an items x items matrix: 9k items is 0.3 GB in float32, ML-20M's 20k is 1.6 GB.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from vae_core.recsys.metrics import NDCG_K, evaluate
from vae_core.recsys.split import Split

EASE_LAMBDAS = (50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0)


@dataclass
class Popularity:
    """Scores = how many training users clicked each item."""

    counts: np.ndarray  # (I,) float32

    @classmethod
    def fit(cls, train: sp.csr_matrix) -> Popularity:
        return cls(np.asarray(train.sum(axis=0), dtype=np.float32).ravel())

    def score(self, fold_in: sp.csr_matrix) -> np.ndarray:
        return np.broadcast_to(self.counts, (fold_in.shape[0], len(self.counts))).copy()


@dataclass
class Ease:
    """The EASE item-item model: scores = clicks @ B."""

    weights: np.ndarray  # (I, I) float32, zero diagonal
    lam: float
    validation: dict[float, float] = field(default_factory=dict)  # lambda -> val NDCG@100

    @classmethod
    def fit(cls, train: sp.csr_matrix, lam: float) -> Ease:
        """The closed form for one lambda; B = I - P / diag(P), i.e. -P[i, j] / P[j, j] off the diagonal."""
        p = _ridge_inverse(train, lam)
        b = p / (-np.diag(p))
        b[np.diag_indices_from(b)] = 0.0
        return cls(b.astype(np.float32), float(lam))

    def score(self, fold_in: sp.csr_matrix) -> np.ndarray:
        return np.asarray(fold_in @ self.weights)


def _ridge_inverse(x: sp.csr_matrix, lam: float) -> np.ndarray:
    """P = (X'X + lambda I)^-1 (items x items), by the cheaper of two exact routes.

    With fewer users than items (ml-latest-small: 527 x 5,723) Woodbury's identity inverts a
    users x users matrix instead: P = (I - X' (lambda I + X X')^-1 X) / lambda.
    """
    users, items = x.shape
    if users < items:
        k = np.asarray((x @ x.T).todense(), dtype=np.float64)
        k[np.diag_indices_from(k)] += lam
        m = scipy.linalg.cho_solve(scipy.linalg.cho_factor(k), x.toarray().astype(np.float64))
        p = -np.asarray(x.T @ m)
        p[np.diag_indices_from(p)] += 1.0
        return p / lam
    gram = np.asarray((x.T @ x).todense(), dtype=np.float64)
    gram[np.diag_indices_from(gram)] += lam
    # The inverse from the Cholesky factor, in place: one items x items matrix in memory.
    chol, info = scipy.linalg.lapack.dpotrf(gram, lower=False, overwrite_a=True)
    p, info2 = scipy.linalg.lapack.dpotri(chol, lower=False, overwrite_c=True)
    if info or info2:
        raise ValueError(f"EASE: the Gram matrix is not positive definite (lambda {lam:g}).")
    return np.triu(p) + np.triu(p, 1).T  # potri fills the upper triangle only


def fit_ease(split: Split, lambdas: Sequence[float] = EASE_LAMBDAS) -> Ease:
    """EASE with lambda chosen on the validation users' NDCG@100."""
    best: Ease | None = None
    scores: dict[float, float] = {}
    for lam in lambdas:
        model = Ease.fit(split.train, lam)
        scores[float(lam)] = evaluate(model.score, split.val_in, split.val_out)[f"ndcg@{NDCG_K}"]
        if best is None or scores[float(lam)] > scores[best.lam]:
            best = model
    assert best is not None, "no lambda given"
    best.validation = scores
    return best
