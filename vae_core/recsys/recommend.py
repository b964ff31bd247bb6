"""What the Recommend page asks of a trained Mult-VAE: lists for a set of picks, with the mean and
with sampled z; where users sit in the latent space; title search and favourite genres.

Picks are column indices of the split's items (Split.items). The models are called directly on
small batches (one user, or K samples in one decoder call), never through `predict`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from vae_core import kinds
from vae_core.errors import UserError
from vae_core.models import ModelBundle
from vae_core.recsys.movielens import _YEAR, Movies


@dataclass
class Recommendations:
    """A ranked list: item columns, best first, and their scores (the decoder's probabilities)."""

    items: np.ndarray  # (n,) int column indices
    scores: np.ndarray  # (n,) float32 pi(z) of each item


@dataclass
class SampledLists:
    """K lists from K sampled z's next to the one list from z_mean, and how stable the top n is."""

    mean: Recommendations  # z = z_mean: what the paper predicts with
    lists: np.ndarray  # (K, n) item columns, one row per sampled z, best first
    items: np.ndarray  # (M,) every item that made some sampled list, most frequent first
    appearances: np.ndarray  # (M,) in how many of the K lists it appears
    best_rank: np.ndarray  # (M,) its best rank (1 = top) where it appears
    worst_rank: np.ndarray  # (M,) its worst rank where it appears
    mean_rank: np.ndarray  # (M,) its average rank where it appears
    overlap: np.ndarray  # (K,) share of each sampled list that is also in the mean list


# ---------------------------------------------------------------- picks -> clicks
def _clicks(picks: Sequence[int], n_items: int) -> np.ndarray:
    picks = np.unique(np.asarray(list(picks), dtype=np.int64))
    if picks.size == 0:
        raise UserError("Pick at least one movie you like to get recommendations.")
    if picks.min() < 0 or picks.max() >= n_items:
        raise UserError(f"A picked movie is not one of this model's {n_items} movies.")
    x = np.zeros((1, n_items), dtype=np.float32)
    x[0, picks] = 1.0
    return x


def _ranked(probs: np.ndarray, exclude: np.ndarray, n: int) -> np.ndarray:
    """Top n columns of each row of probs, best first, never one of `exclude` (the picks)."""
    probs = np.array(probs, dtype=np.float32, copy=True)
    probs[:, exclude] = -np.inf
    n = min(n, probs.shape[1] - exclude.size)
    part = np.argpartition(-probs, n - 1, axis=1)[:, :n]
    rows = np.arange(len(probs))[:, None]
    return part[rows, np.argsort(-probs[rows, part], axis=1, kind="stable")]


def encode_clicks(bundle: ModelBundle, clicks) -> tuple[np.ndarray, np.ndarray | None]:
    """Clicks (B, I) dense or CSR -> (z_mean, z_log_var) for Mult-VAE, (code, None) for Mult-DAE."""
    x = clicks.toarray() if sp.issparse(clicks) else np.asarray(clicks)
    out = bundle.encoder(x.astype(np.float32, copy=False), training=False)
    if not bundle.spec.is_vae:
        return np.asarray(out), None
    return np.asarray(out[0]), np.asarray(out[1])


# ---------------------------------------------------------------- the lists
def recommend(bundle: ModelBundle, picks: Sequence[int], n: int = 10) -> Recommendations:
    """Top n for a set of picks with z = z_mean (the paper's prediction); picks never come back."""
    x = _clicks(picks, bundle.spec.n_items)
    z, _ = encode_clicks(bundle, x)
    probs = np.asarray(bundle.decoder(z, training=False))
    top = _ranked(probs, np.flatnonzero(x[0]), n)[0]
    return Recommendations(top, probs[0, top])


def sampled_recommendations(
    bundle: ModelBundle, picks: Sequence[int], n: int = 10, samples: int = 20, seed: int = 0
) -> SampledLists:
    """`samples` lists, each from one z = z_mean + sigma * eps (all in one decoder call), and how
    often each item appears and at which ranks, next to the z_mean list."""
    if not bundle.spec.is_vae:
        raise UserError("A Mult-DAE has no z to sample; choose a Mult-VAE.")
    if not 1 <= samples <= 1000:
        raise UserError("Draw between 1 and 1000 samples of z.")
    x = _clicks(picks, bundle.spec.n_items)
    exclude = np.flatnonzero(x[0])
    z_mean, z_log_var = encode_clicks(bundle, x)
    eps = np.random.default_rng(seed).standard_normal((samples, z_mean.shape[1]))
    z = (z_mean + np.exp(0.5 * z_log_var) * eps).astype(np.float32)
    probs = np.asarray(bundle.decoder(np.concatenate([z_mean, z]), training=False))
    ranked = _ranked(probs, exclude, n)
    mean_list, lists = ranked[0], ranked[1:]
    ranks = np.broadcast_to(np.arange(1, lists.shape[1] + 1), lists.shape)
    items, inverse, counts = np.unique(lists, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(lists.shape)
    best = np.full(len(items), np.iinfo(np.int64).max)
    worst = np.zeros(len(items), dtype=np.int64)
    np.minimum.at(best, inverse, ranks)
    np.maximum.at(worst, inverse, ranks)
    mean_rank = np.bincount(inverse.ravel(), ranks.ravel(), len(items)) / counts
    order = np.lexsort((mean_rank, -counts))  # most frequent first, then best average rank
    overlap = np.isin(lists, mean_list).mean(axis=1)
    return SampledLists(
        Recommendations(mean_list, probs[0, mean_list]),
        lists,
        items[order],
        counts[order],
        best[order],
        worst[order],
        mean_rank[order],
        overlap,
    )


# ---------------------------------------------------------------- the users' map
@dataclass
class Pca2D:
    """A 2-D PCA of latent vectors; `transform` puts new ones (the current picks) on the same axes."""

    mean: np.ndarray  # (D,)
    components: np.ndarray  # (2, D)
    explained: np.ndarray  # (2,) share of the variance each axis holds

    def transform(self, z: np.ndarray) -> np.ndarray:
        return (np.atleast_2d(z) - self.mean) @ self.components.T


def pca_2d(z: np.ndarray) -> Pca2D:
    """The two directions along which the users' z_mean vary most."""
    z = np.asarray(z, dtype=np.float64)
    mean = z.mean(axis=0)
    _, s, vt = np.linalg.svd(z - mean, full_matrices=False)
    var = s**2
    # Fix each axis's sign (largest loading positive) so the map does not flip between runs.
    comps = (
        vt[:2] * np.sign(vt[:2][np.arange(min(2, len(vt))), np.abs(vt[:2]).argmax(axis=1)])[:, None]
    )
    return Pca2D(mean, comps, var[:2] / var.sum())


def user_latents(bundle: ModelBundle, clicks: sp.csr_matrix, batch_size: int = 1000) -> np.ndarray:
    """z_mean (the DAE: its code) for every row of a click matrix, in batches."""
    parts = [
        encode_clicks(bundle, clicks[lo : lo + batch_size])[0]
        for lo in range(0, clicks.shape[0], batch_size)
    ]
    return np.concatenate(parts) if parts else np.zeros((0, bundle.spec.latent_dim), np.float32)


def picks_z_mean(bundle: ModelBundle, picks: Sequence[int]) -> np.ndarray:
    """(1, D) z_mean (a Mult-DAE: its code) of a set of picks: where they put a user on the map."""
    return encode_clicks(bundle, _clicks(picks, bundle.spec.n_items))[0]


def favourite_genres(clicks: sp.csr_matrix, items: Movies, relative: bool = False) -> list[str]:
    """Per user (row): the genre of most of their clicked movies ("" if none has a genre).

    relative=True picks the genre they click most *compared with the catalogue's share of it*, so
    Drama, the commonest genre, does not colour every user the same.
    """
    names = sorted({g for gs in items.genres for g in gs})
    if not names:
        return [""] * clicks.shape[0]
    col = {g: i for i, g in enumerate(names)}
    item_genre = sp.lil_matrix((len(items), len(names)), dtype=np.float32)
    for i, gs in enumerate(items.genres):
        for g in gs:
            item_genre[i, col[g]] = 1.0
    counts = np.asarray((sp.csr_matrix(clicks) @ item_genre.tocsr()).todense())
    if relative:
        share = np.asarray(item_genre.sum(axis=0)).ravel() / max(len(items), 1)
        counts = counts / np.maximum(share, 1e-9)
    best = counts.argmax(axis=1)
    return [names[b] if counts[u, b] > 0 else "" for u, b in enumerate(best)]


def search_titles(
    items: Movies, query: str, limit: int = 20, popularity: np.ndarray | None = None
) -> np.ndarray:
    """Columns whose title contains every word of `query` (any case), most popular first if given."""
    words = query.casefold().split()
    if not words:
        return np.zeros(0, dtype=np.int64)
    hits = np.array(
        [i for i, t in enumerate(items.titles) if all(w in t.casefold() for w in words)],
        dtype=np.int64,
    )
    if popularity is not None and hits.size:
        hits = hits[np.argsort(-np.asarray(popularity)[hits], kind="stable")]
    return hits[:limit]


# ---------------------------------------------------------------- the page's words and tables
def picks_from_text(items: Movies, text: str | None) -> tuple[list[int], list[str]]:
    """Columns of the MovieLens ids in "1,296,318" (how a page address keeps picks), each once in
    the given order, and the parts that name no movie of `items` (unreadable or unknown ids)."""
    columns: list[int] = []
    dropped: list[str] = []
    for part in (p.strip() for p in (text or "").split(",")):
        if not part:
            continue
        try:
            movie_id = int(part)
        except ValueError:
            dropped.append(part)
            continue
        column = int(items.positions(np.array([movie_id]))[0]) if len(items) else -1
        if column < 0:
            dropped.append(part)
        elif column not in columns:
            columns.append(column)
    return columns, dropped


def picks_text(items: Movies, columns: Sequence[int]) -> str:
    """The MovieLens ids of some columns as "1,296,318" (the inverse of picks_from_text)."""
    return ",".join(str(int(items.ids[c])) for c in columns)


def plain_title(title: str) -> str:
    """A GroupLens title without its trailing year: "Toy Story (1995)" -> "Toy Story"."""
    return _YEAR.sub("", title).rstrip() or title


def example_titles(
    clicks: sp.csr_matrix, items: Movies, k: int = 3, seed: int = 0
) -> list[list[str]]:
    """Up to k of each user's (row's) movies, chosen at random with `seed`: what a hover shows."""
    clicks = sp.csr_matrix(clicks)
    rng = np.random.default_rng(seed)
    out = []
    for u in range(clicks.shape[0]):
        cols = clicks.indices[clicks.indptr[u] : clicks.indptr[u + 1]]
        chosen = rng.choice(cols, size=min(k, cols.size), replace=False) if cols.size else cols
        out.append([items.titles[c] for c in chosen])
    return out


# The test scores a recommender run records (vae_core.recsys.task): the model's own, then each
# baseline's under its prefix; what each is called in a table.
SCORE_NAMES = {"recall@20": "Recall@20", "recall@50": "Recall@50", "ndcg@100": "NDCG@100"}
BASELINES = {"ease": "EASE (item-item ridge regression)", "popularity": "Popularity (most liked)"}


def scores_table(metrics: dict | None, model_label: str) -> list[dict]:
    """One row per method with test scores in `metrics` (the model first, then the other
    recommenders measured on the same users, e.g. "mult_vae_ndcg@100", then EASE, popularity);
    a method none of whose scores were recorded has no row."""
    metrics = metrics or {}
    others = [(f"{k}_", kinds.label(k)) for k in kinds.for_page("recommend")]
    baselines = [(f"{k}_", v) for k, v in BASELINES.items()]
    rows = []
    for prefix, label in (("", model_label), *others, *baselines):
        row = {"method": label}
        for key, name in SCORE_NAMES.items():
            value = metrics.get(prefix + key)
            ok = isinstance(value, int | float) and not isinstance(value, bool) and value == value
            row[name] = float(value) if ok else None
        if any(row[name] is not None for name in SCORE_NAMES.values()):
            rows.append(row)
    return rows


# ---------------------------------------------------------------- RecVAE's prior, for one user
@dataclass
class PriorPicture:
    """RecVAE's composite prior along one latent dimension, for one set of picks."""

    grid: np.ndarray  # z values along the dimension
    parts: dict[str, np.ndarray]  # each part's weighted density on the grid, by its name
    mixture: np.ndarray  # their sum: the prior's density
    dim: int  # which dimension (the one where the encoder is surest about these picks)
    mean: float  # where the encoder puts the picks on it (z_mean)
    std: float


def has_composite_prior(bundle: ModelBundle) -> bool:
    """Whether the model learned with RecVAE's composite prior (the page's lesson on it)."""
    from vae_core.recsys import recvae

    return recvae.is_rec_vae(bundle.spec)


def prior_picture(bundle: ModelBundle, picks: Sequence[int], points: int = 301) -> PriorPicture:
    """What RecVAE's prior looks like for these picks: the frozen copy of the encoder is, at the end
    of training, the encoder itself, so its posterior for the picks is the prior's middle part."""
    from vae_core.recsys import recvae

    if not picks:
        raise UserError("Pick at least one movie to see the prior it gives you.")
    x = np.zeros((1, bundle.spec.n_items), np.float32)
    x[0, list(picks)] = 1.0
    z_mean, z_log_var = (np.asarray(t)[0] for t in bundle.run("encoder", x)[:2])
    dim = int(np.argmin(z_log_var))
    mean, std = float(z_mean[dim]), float(np.exp(0.5 * z_log_var[dim]))
    reach = max(3.0, abs(mean) + 4 * std)
    grid = np.linspace(-reach, reach, points)

    def density(m: float, s: float, w: float) -> np.ndarray:
        return w * np.exp(-0.5 * ((grid - m) / s) ** 2) / (s * np.sqrt(2 * np.pi))

    parts = {
        "N(0, 1)": density(0.0, 1.0, recvae.STANDARD),
        "last epoch's encoder, for you": density(mean, std, recvae.OLD_POSTERIOR),
        "wide Gaussian": density(0.0, float(np.exp(recvae.WIDE_LOG_VAR / 2)), recvae.WIDE),
    }
    return PriorPicture(grid, parts, sum(parts.values()), dim, mean, std)
