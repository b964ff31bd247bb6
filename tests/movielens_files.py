"""Tiny MovieLens releases written in GroupLens's own formats, for the recommender's tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vae_core.recsys.movielens import LAYOUTS, ML100K_GENRES

GENRES = ("Action", "Comedy", "Drama", "Romance", "Thriller", "Sci-Fi")


def synthetic_ratings(
    n_users: int, n_items: int, seed: int = 0, groups: int = 3, per_user: tuple[int, int] = (8, 30)
) -> tuple[list[tuple[int, int, float, int]], list[tuple[int, str, tuple[str, ...]]]]:
    """Ratings with structure a recommender can learn: users of a taste group like its movies.

    Returns (ratings sorted by user then movie, as GroupLens sorts them; movies). Movie ids are
    1, 3, 5, ... (MovieLens ids have gaps); user ids 1..n_users.
    """
    rng = np.random.default_rng(seed)
    movie_ids = 1 + 2 * np.arange(n_items)
    group_of_movie = np.arange(n_items) % groups
    ratings = []
    for user in range(1, n_users + 1):
        g = rng.integers(groups)
        k = int(rng.integers(*per_user))
        liked = rng.choice(
            np.flatnonzero(group_of_movie == g), size=min(k, n_items // groups), replace=False
        )
        other = rng.choice(n_items, size=k // 3, replace=False)
        stars = {int(m): float(rng.choice([4.0, 4.5, 5.0])) for m in liked}
        for m in other:
            stars.setdefault(int(m), float(rng.choice([1.0, 2.5, 3.0, 3.5, 4.0])))
        for m in sorted(stars):
            ratings.append((user, int(movie_ids[m]), stars[m], 1_000_000_000 + len(ratings)))
    movies = [
        (
            int(mid),
            f"Movie {mid} ({1950 + mid % 70})",
            (GENRES[g % len(GENRES)], GENRES[(g + 3) % len(GENRES)]),
        )
        for mid, g in zip(movie_ids, group_of_movie, strict=True)
    ]
    return ratings, movies


def write_release(folder: Path, name: str, ratings, movies) -> Path:
    """Write `ratings` [(user, movie, stars, time)] and `movies` [(id, title, genres)] as release
    `name` lays them out, into folder/name/; returns that folder."""
    layout = LAYOUTS[name]
    out = Path(folder) / name
    out.mkdir(parents=True, exist_ok=True)
    if layout.ratings == "ratings.csv":
        lines = ["userId,movieId,rating,timestamp"] + [
            f"{u},{m},{r:.1f},{t}" for u, m, r, t in ratings
        ]
        (out / "ratings.csv").write_text("\n".join(lines) + "\n")
        rows = ["movieId,title,genres"]
        for mid, title, genres in movies:
            quoted = f'"{title}"' if "," in title else title
            rows.append(f"{mid},{quoted},{'|'.join(genres) or '(no genres listed)'}")
        (out / "movies.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    elif layout.ratings == "ratings.dat":
        # ml-1m and ml-10m: whole stars in ml-1m, half stars in ml-10m; both separated by '::'
        lines = [f"{u}::{m}::{r:g}::{t}" for u, m, r, t in ratings]
        (out / "ratings.dat").write_text("\n".join(lines) + "\n")
        rows = [f"{mid}::{title}::{'|'.join(genres)}" for mid, title, genres in movies]
        (out / "movies.dat").write_bytes(("\n".join(rows) + "\n").encode("latin-1"))
    else:  # ml-100k
        lines = [f"{u}\t{m}\t{int(r)}\t{t}" for u, m, r, t in ratings]
        (out / "u.data").write_text("\n".join(lines) + "\n")
        rows = []
        for mid, title, genres in movies:
            flags = "|".join("1" if g in genres else "0" for g in ML100K_GENRES)
            rows.append(f"{mid}|{title}|01-Jan-1995||http://us.imdb.com/M/title-exact?x|{flags}")
        (out / "u.item").write_bytes(("\n".join(rows) + "\n").encode("latin-1"))
    return out
