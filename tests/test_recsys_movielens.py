"""MovieLens readers: every GroupLens layout, the shipped copy, and one sentence for broken files."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from tests.movielens_files import write_release
from vae_core.errors import DataError
from vae_core.recsys import movielens as ml

RATINGS = [
    (1, 10, 4.5, 964982703),
    (1, 20, 3.0, 964981247),
    (2, 10, 5.0, 964982224),
    (7, 30, 0.5, 1),
]
MOVIES = [
    (10, "Toy Story (1995)", ("Adventure", "Comedy")),
    (20, "Misérables, Les (1995)", ("Drama",)),
    (30, "Hyena Road", ()),
]


@pytest.fixture
def no_data_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("VAE_LAB_DATA_DIR", raising=False)
    monkeypatch.delenv("KERAS_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


@pytest.mark.parametrize(
    "name", ["ml-latest-small", "ml-20m", "ml-25m", "ml-1m", "ml-10m", "ml-100k"]
)
def test_each_layout_reads_ratings_titles_years_and_genres(tmp_path, no_data_dir, name):
    whole = name in ("ml-1m", "ml-100k")  # these releases have whole stars only
    ratings = [(u, m, float(round(r)) if whole else r, t) for u, m, r, t in RATINGS]
    if whole:
        ratings[-1] = (7, 30, 1.0, 1)
    write_release(tmp_path, name, ratings, MOVIES)
    data = ml.load_movielens(name, data_dir=tmp_path)
    assert data.ratings.users.tolist() == [1, 1, 2, 7]
    assert data.ratings.items.tolist() == [10, 20, 10, 30]
    assert data.ratings.stars.tolist() == [r for _, _, r, _ in ratings]
    assert data.movies.ids.tolist() == [10, 20, 30]
    assert (
        data.movies.titles[1] == "Misérables, Les (1995)"
    )  # a comma in a quoted CSV title, accents
    assert data.movies.years.tolist() == [1995, 1995, 0]
    assert data.movies.genres[0] == ("Adventure", "Comedy") and data.movies.genres[2] == ()
    assert name in data.source and str(tmp_path) in data.source


def test_found_by_name_in_the_data_dir_env_and_as_the_dir_itself(
    tmp_path, no_data_dir, monkeypatch
):
    folder = write_release(tmp_path, "ml-20m", RATINGS, MOVIES)
    monkeypatch.setenv("VAE_LAB_DATA_DIR", str(tmp_path))
    assert ml.find_movielens("ml-20m") == folder
    monkeypatch.setenv("VAE_LAB_DATA_DIR", str(folder))  # pointing at the release's own folder
    assert ml.find_movielens("ml-20m") == folder
    assert ml.find_movielens("ml-1m") is None and not ml.movielens_available("ml-1m")


def test_ml10m_unzips_to_its_own_folder_name(tmp_path, no_data_dir):
    write_release(tmp_path, "ml-10m", RATINGS, MOVIES).rename(tmp_path / "ml-10M100K")
    assert ml.load_movielens("ml-10m", data_dir=tmp_path).ratings.users.size == 4


def test_grouplens_zip_is_read_without_unpacking(tmp_path, no_data_dir):
    folder = write_release(tmp_path / "src", "ml-1m", [(1, 10, 4.0, 1), (2, 20, 5.0, 2)], MOVIES)
    with zipfile.ZipFile(tmp_path / "ml-1m.zip", "w") as z:
        for f in folder.iterdir():
            z.write(f, f"ml-1m/{f.name}")
    data = ml.load_movielens("ml-1m", data_dir=tmp_path)
    assert data.ratings.items.tolist() == [10, 20] and "ml-1m.zip" in data.source


def test_shipped_small_set_loads_offline_with_its_licence(no_data_dir):
    data = ml.load_movielens("ml-latest-small")
    assert "shipped" in data.source
    assert len(data.ratings) == 100_004 and len(data.movies) == 9_125
    assert len(np.unique(data.ratings.users)) == 671
    assert set(np.unique(data.ratings.stars * 2).astype(int)) <= set(range(1, 11))
    assert data.movies.titles[0] == "Toy Story (1995)" and data.movies.years[0] == 1995
    readme = (ml.SHIPPED_DIR / "README.txt").read_text()
    assert "Usage License" in readme and "redistribute" in readme


def test_the_users_own_small_set_wins_over_the_shipped_one(tmp_path, no_data_dir):
    write_release(tmp_path, "ml-latest-small", RATINGS, MOVIES)
    assert len(ml.load_movielens("ml-latest-small", data_dir=tmp_path).ratings) == 4


def _one_sentence_naming(err: pytest.ExceptionInfo, filename: str) -> None:
    message = str(err.value)
    assert filename in message, message
    assert message.count(". ") == 0 and message.endswith("."), message  # one sentence
    assert "Traceback" not in message


@pytest.mark.parametrize(
    ("name", "filename", "damage"),
    [
        ("ml-20m", "ratings.csv", lambda t: t.replace("2,10,5.0", "2,ten,5.0")),
        ("ml-20m", "ratings.csv", lambda t: t.replace("2,10,5.0", "2.5,10,5.0")),  # a fractional id
        ("ml-20m", "ratings.csv", lambda t: t.replace("2,10,5.0", "2,10,55.0")),
        ("ml-20m", "ratings.csv", lambda t: t.replace("1,20,3.0,964981247", "1,20")),
        ("ml-20m", "ratings.csv", lambda t: t[: t.rindex("\n", 0, -1)] + "\n7,3"),  # cut mid-line
        ("ml-20m", "ratings.csv", lambda t: "user,item\n" + t.split("\n", 1)[1]),
        ("ml-20m", "ratings.csv", lambda t: ""),
        ("ml-20m", "movies.csv", lambda t: t.replace("20,", "twenty,")),
        ("ml-20m", "movies.csv", lambda t: t.replace("movieId,title,genres", "id;title")),
        ("ml-1m", "ratings.dat", lambda t: t.replace("2::10::5", "2::10")),
        ("ml-1m", "movies.dat", lambda t: t.replace("::Drama", "")),
        ("ml-100k", "u.data", lambda t: t.replace("\t", " ", 1)),
        ("ml-100k", "u.item", lambda t: t.replace("|0|", "|", 1)),
    ],
)
def test_malformed_and_truncated_files_raise_one_sentence_naming_the_file(
    tmp_path, no_data_dir, name, filename, damage
):
    whole = [(u, m, float(round(r)) or 1.0, t) for u, m, r, t in RATINGS]
    folder = write_release(tmp_path, name, whole, MOVIES)
    path = folder / filename
    path.write_bytes(damage(path.read_bytes().decode("latin-1")).encode("latin-1"))
    with pytest.raises(DataError) as err:
        ml.load_movielens(name, data_dir=tmp_path)
    _one_sentence_naming(err, filename)


def test_a_missing_file_or_release_says_where_to_put_it(tmp_path, no_data_dir):
    with pytest.raises(DataError) as err:
        ml.load_movielens("ml-20m", data_dir=tmp_path)
    assert (
        "ml-20m" in str(err.value)
        and "ratings.csv" in str(err.value)
        and str(tmp_path) in str(err.value)
    )
    folder = write_release(tmp_path, "ml-25m", RATINGS, MOVIES)
    (folder / "movies.csv").unlink()
    with pytest.raises(DataError):  # only ratings.csv there: not a release
        ml.load_movielens("ml-25m", data_dir=tmp_path)
    with pytest.raises(DataError) as err:
        ml.read_movielens(folder, "ml-25m")
    _one_sentence_naming(err, "movies.csv")


def test_ratings_of_movies_the_catalogue_lacks_are_refused(tmp_path, no_data_dir):
    write_release(tmp_path, "ml-20m", [*RATINGS, (9, 99, 4.0, 1)], MOVIES)
    with pytest.raises(DataError) as err:
        ml.load_movielens("ml-20m", data_dir=tmp_path)
    assert "99" in str(err.value) and "ratings.csv" in str(err.value)


def test_chunked_reading_gives_the_same_ratings(tmp_path, no_data_dir, monkeypatch):
    rng = np.random.default_rng(0)
    ratings = [
        (int(u), int(m), float(r), 5)
        for u, m, r in zip(
            np.sort(rng.integers(1, 500, 3000)),
            rng.choice([10, 20, 30], 3000),
            rng.integers(1, 11, 3000) / 2,
            strict=True,
        )
    ]
    write_release(tmp_path, "ml-20m", ratings, MOVIES)
    monkeypatch.setattr(ml, "CHUNK_BYTES", 1000)  # ~70 lines per chunk, cut mid-line
    data = ml.load_movielens("ml-20m", data_dir=tmp_path)
    assert data.ratings.users.tolist() == [r[0] for r in ratings]
    assert data.ratings.stars.tolist() == [r[2] for r in ratings]


def test_download_is_atomic_and_reports_progress(tmp_path, no_data_dir):
    folder = write_release(tmp_path / "src", "ml-100k", [(1, 10, 4.0, 1)], MOVIES)
    with zipfile.ZipFile(tmp_path / "served.zip", "w") as z:
        for f in folder.iterdir():
            z.write(f, f"ml-100k/{f.name}")
    seen = []
    dest = tmp_path / "downloads"
    path = ml.download_movielens(
        "ml-100k",
        dest,
        lambda done, total: seen.append((done, total)),
        url=(tmp_path / "served.zip").as_uri(),
    )
    assert path == dest / "ml-100k.zip" and seen and seen[-1][0] == path.stat().st_size
    assert ml.load_movielens("ml-100k", data_dir=dest).ratings.items.tolist() == [10]
    (tmp_path / "broken.zip").write_bytes(b"PK not really")
    with pytest.raises(DataError):
        ml.download_movielens("ml-1m", dest, url=(tmp_path / "broken.zip").as_uri())
    assert sorted(p.name for p in dest.iterdir()) == ["ml-100k.zip"]  # nothing half-written
