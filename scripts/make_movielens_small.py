"""Regenerate vae_core/recsys/data/ml-latest-small/: the MovieLens copy VAE Lab ships.

ratings.npz holds the ratings' user, movie and stars (as whole half-stars, uint8) in the file's order,
without timestamps (the recommender does not use them); movies.csv.gz is movies.csv byte for byte;
README.txt is GroupLens's, verbatim, as its licence asks of anyone who redistributes the data.

Usage: python scripts/make_movielens_small.py [ML_LATEST_SMALL_DIR]   (default: ../shared/data/ml-latest-small)
"""

from __future__ import annotations

import gzip
import shutil
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vae_core.recsys.movielens import (  # noqa: E402
    SHIPPED_DIR,
    SHIPPED_MOVIES,
    SHIPPED_RATINGS,
    load_shipped_small,
    read_movielens,
)

DEFAULT_SOURCE = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-latest-small"


def main(argv: list[str]) -> int:
    source = Path(argv[1]) if len(argv) > 1 else DEFAULT_SOURCE
    data = read_movielens(source, "ml-latest-small")
    half_stars = np.round(data.ratings.stars * 2)
    assert np.array_equal(half_stars / 2, data.ratings.stars), "stars not in half-star steps"
    SHIPPED_DIR.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        SHIPPED_DIR / SHIPPED_RATINGS,
        users=data.ratings.users,
        items=data.ratings.items,
        half_stars=half_stars.astype(np.uint8),
    )
    # mtime=0: the same input gives the same bytes, so a rerun leaves git with nothing to commit.
    (SHIPPED_DIR / SHIPPED_MOVIES).write_bytes(
        gzip.compress((source / "movies.csv").read_bytes(), compresslevel=9, mtime=0)
    )
    shutil.copyfile(source / "README.txt", SHIPPED_DIR / "README.txt")
    shipped = load_shipped_small()  # what the app will read back must be what was read
    assert np.array_equal(shipped.ratings.users, data.ratings.users)
    assert np.array_equal(shipped.ratings.items, data.ratings.items)
    assert np.array_equal(shipped.ratings.stars, data.ratings.stars)
    assert shipped.movies.titles == data.movies.titles
    print(f"wrote {SHIPPED_DIR}: {len(data.ratings):,} ratings, {len(data.movies):,} movies")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
