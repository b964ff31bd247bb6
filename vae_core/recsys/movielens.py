"""MovieLens in GroupLens's own formats: ratings (user, movie, stars) and movies (title, year, genres).

Three layouts cover every MovieLens release:
- ml-latest-small, ml-20m, ml-25m, ml-latest: `ratings.csv` and `movies.csv` (UTF-8, a header row);
- ml-1m, ml-10m: `ratings.dat` and `movies.dat`, fields separated by `::`, no header;
- ml-100k: `u.data` (tab-separated) and `u.item` (`|`-separated, Latin-1, 19 genre flags).
A dataset is found by name inside VAE_LAB_DATA_DIR (or a folder given), as a folder or GroupLens's .zip;
ml-latest-small also ships inside VAE Lab (recsys/data/), so it loads offline on a first start.
Ratings are parsed with numpy's C reader (loadtxt) in 32 MB chunks: ml-20m's 20M lines never sit in memory as text.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import os
import re
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from vae_core.errors import DataError
from vae_core.paths import DATA_DIR_ENV, OFFLINE_ENV, downloads_allowed

SHIPPED_DIR = Path(__file__).parent / "data" / "ml-latest-small"
SHIPPED_RATINGS, SHIPPED_MOVIES = "ratings.npz", "movies.csv.gz"


@dataclass(frozen=True)
class Layout:
    """Where a release keeps its two files and how they are written."""

    ratings: str
    movies: str
    separator: str  # between the fields of a ratings line
    encoding: str  # of the movies file
    folders: tuple[str, ...] = ()  # other names the release's folder goes by once unzipped


CSV = dict(ratings="ratings.csv", movies="movies.csv", separator=",", encoding="utf-8")
DAT = dict(ratings="ratings.dat", movies="movies.dat", separator="::", encoding="latin-1")
LAYOUTS: dict[str, Layout] = {
    "ml-latest-small": Layout(**CSV),
    "ml-20m": Layout(**CSV),
    "ml-25m": Layout(**CSV),
    "ml-latest": Layout(**CSV),
    "ml-1m": Layout(**DAT),
    "ml-10m": Layout(**DAT, folders=("ml-10M100K",)),
    "ml-100k": Layout("u.data", "u.item", "\t", "latin-1"),
}
DATASETS = tuple(LAYOUTS)
# GroupLens's download page for each release (used only when a person asks for a download).
GROUPLENS_URLS = {
    name: f"https://files.grouplens.org/datasets/movielens/{name}.zip" for name in DATASETS
}
# Each zip's size in MB, as GroupLens's site lists it (told to a person before they download).
DOWNLOAD_MB = {
    "ml-latest-small": 1,
    "ml-100k": 5,
    "ml-1m": 6,
    "ml-10m": 63,
    "ml-20m": 198,
    "ml-25m": 250,
    "ml-latest": 335,
}
# ml-100k's u.genre, in the order of u.item's 19 flags (used when u.genre is not beside u.item).
ML100K_GENRES = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)
NO_GENRES = "(no genres listed)"
RATING_FIELDS = np.dtype([("user", np.int32), ("movie", np.int32), ("stars", np.float32)])
CHUNK_BYTES = 32 << 20  # ratings text parsed per call: bounded memory, and fast
_YEAR = re.compile(r"\((\d{4})(?:\s*[-\u2013]\s*\d{0,4})?\)\s*$")


# ---------------------------------------------------------------- what a dataset is
@dataclass
class Movies:
    """The catalogue: one entry per MovieLens movie id, in the file's order."""

    ids: np.ndarray  # (M,) int32 MovieLens movieId
    titles: list[str]  # as GroupLens writes them, year included ("Toy Story (1995)")
    years: np.ndarray  # (M,) int16 year parsed from the title, 0 where the title has none
    genres: list[tuple[str, ...]]  # () for "(no genres listed)"

    def __len__(self) -> int:
        return len(self.ids)

    def positions(self, movie_ids: np.ndarray) -> np.ndarray:
        """Index into this catalogue for each movie id; -1 where the catalogue lacks it."""
        order = np.argsort(self.ids, kind="stable")
        where = np.searchsorted(self.ids, movie_ids, sorter=order)
        where = np.minimum(where, len(self.ids) - 1)
        pos = order[where]
        return np.where(self.ids[pos] == movie_ids, pos, -1)


@dataclass
class Ratings:
    """Every rating, in the file's order (the order the paper's split depends on)."""

    users: np.ndarray  # (N,) int32 userId
    items: np.ndarray  # (N,) int32 movieId
    stars: np.ndarray  # (N,) float32, 0.5..5

    def __len__(self) -> int:
        return len(self.users)


@dataclass
class MovieLens:
    """One MovieLens release, read: its ratings, its movies, and where they came from."""

    name: str
    ratings: Ratings
    movies: Movies
    source: str  # a sentence for people


# ---------------------------------------------------------------- finding the files
def _data_dir(data_dir: str | Path | None) -> Path | None:
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get(DATA_DIR_ENV, "").strip()
    return Path(env).expanduser() if env else None


def _check_name(name: str) -> Layout:
    if name not in LAYOUTS:
        raise DataError(f"Unknown MovieLens dataset {name!r}; choose one of {', '.join(DATASETS)}.")
    return LAYOUTS[name]


def _downloads_dir() -> Path:
    # Where download_movielens leaves files (Keras's cache, as for MNIST).
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras") / "datasets"


def find_movielens(name: str, data_dir: str | Path | None = None) -> Path | None:
    """The folder or .zip holding `name`'s two files in the data folder (or the downloads), or None.

    Looked for: <data dir>/<name>/, the data dir itself when it is named so, <data dir>/<name>.zip,
    and the same in Keras's datasets folder. The shipped ml-latest-small is not looked for here.
    """
    layout = _check_name(name)
    names = (name, *layout.folders)
    roots = [r for r in (_data_dir(data_dir), _downloads_dir()) if r is not None]
    for root in roots:
        folders = ([root] if root.name in names else []) + [root / n for n in names]
        for folder in folders:
            if (folder / layout.ratings).is_file() and (folder / layout.movies).is_file():
                return folder
        if (root / f"{name}.zip").is_file():
            return root / f"{name}.zip"
    return None


def movielens_available(name: str, data_dir: str | Path | None = None) -> bool:
    """True when `name` can be read now, without a download (ml-latest-small always can)."""
    return find_movielens(name, data_dir) is not None or (
        name == "ml-latest-small" and (SHIPPED_DIR / SHIPPED_RATINGS).is_file()
    )


@contextlib.contextmanager
def _open(where: Path, filename: str) -> Iterator[tuple[BinaryIO, str]]:
    """(binary file, a name for messages) for `filename` in a folder or in GroupLens's zip."""
    if where.suffix != ".zip":
        path = where / filename
        try:
            f = open(path, "rb")  # noqa: SIM115 -- closed below
        except OSError as err:
            raise DataError(f"{path} cannot be opened ({err.strerror or err}).") from err
        with f:
            yield f, str(path)
        return
    try:
        archive = zipfile.ZipFile(where)
    except (zipfile.BadZipFile, OSError) as err:
        raise DataError(f"{where} is not a readable zip file ({err}); download it again.") from err
    with archive:
        member = next((m for m in archive.namelist() if m.split("/")[-1] == filename), None)
        if member is None:
            raise DataError(f"{where} holds no {filename}; is it the MovieLens zip it says it is?")
        try:
            with archive.open(member) as f:
                yield f, f"{where}:{member}"
        except (zipfile.BadZipFile, EOFError, zlib.error) as err:
            raise DataError(f"{where}:{member} is damaged ({err}); download it again.") from err


# ---------------------------------------------------------------- ratings
def _chunks(f: BinaryIO, label: str) -> Iterator[tuple[bytes, int]]:
    """Whole lines in ~CHUNK_BYTES blocks, with the number of lines before each block."""
    carry, line = b"", 0
    while True:
        try:
            block = f.read(CHUNK_BYTES)
        except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as err:
            raise DataError(
                f"{label} cannot be read to its end ({err}); download it again."
            ) from err
        if not block:
            break
        block = carry + block
        cut = block.rfind(b"\n") + 1
        carry = block[cut:]
        if cut:
            yield block[:cut], line
            line += block.count(b"\n", 0, cut)
    if carry.strip():
        yield carry, line  # a last line without its newline: checked like the others


def _parse_ratings(f: BinaryIO, label: str, separator: str, header: bool) -> Ratings:
    """user, movie, stars from each line; a line that is not three numbers and more is an error."""
    users, items, stars = [], [], []
    sep = separator.encode()
    first = True
    for text, line0 in _chunks(f, label):
        text = text.replace(b"\r", b"")
        if sep != b"," and sep != b"\t":
            text = text.replace(sep, b",")  # numpy's reader takes one character
        if first and header:
            head, _, text = text.partition(b"\n")
            if not head.lower().startswith(b"userid,movieid,rating"):
                raise DataError(
                    f"{label} does not start with the header userId,movieId,rating,timestamp; "
                    "it is not a MovieLens ratings file."
                )
            line0 += 1
        first = False
        if not text.strip():
            continue
        # Every line has four fields (user, movie, stars, time): count the separators at C speed.
        delim = b"\t" if sep == b"\t" else b","
        lines = text.count(b"\n") + (0 if text.endswith(b"\n") else 1)
        if text.count(delim) != 3 * lines:
            raise DataError(_bad_fields(label, line0, text, delim))
        try:
            rows = np.loadtxt(
                io.BytesIO(text),
                delimiter="\t" if sep == b"\t" else ",",
                usecols=(0, 1, 2),
                dtype=RATING_FIELDS,  # ids parsed straight into int32: half the time of floats
                ndmin=1,
                encoding=None,
            )
        except ValueError as err:  # not a number, an id with a fraction, an id beyond int32
            raise DataError(_bad_line(label, line0, err)) from err
        if rows["user"].min() < 0 or rows["movie"].min() < 0:
            raise DataError(f"{label} has negative user or movie ids.")
        if rows["stars"].min() < 0 or rows["stars"].max() > 10:
            raise DataError(f"{label} has ratings outside 0-10 stars; it is not a MovieLens file.")
        users.append(rows["user"])
        items.append(rows["movie"])
        stars.append(rows["stars"])
    if not users:
        raise DataError(f"{label} holds no ratings.")
    return Ratings(np.concatenate(users), np.concatenate(items), np.concatenate(stars))


def _bad_fields(label: str, line0: int, text: bytes, delim: bytes) -> str:
    """The first line without four fields, in one sentence (a cut-off last line says so)."""
    lines = text.split(b"\n")
    for n, line in enumerate(lines):
        if line.count(delim) != 3:
            if n == len(lines) - 1:
                return f"{label} ends in the middle of a line: it is truncated, download it again."
            return (
                f"{label} line {line0 + n + 1:,} does not have four fields (user, movie, stars, "
                "time); the file is damaged or not a MovieLens ratings file."
            )
    return f"{label} is not a MovieLens ratings file."


def _bad_line(label: str, line0: int, err: ValueError) -> str:
    """One sentence naming the file and, where numpy says it, the line."""
    m = re.search(r"row (\d+)", str(err))
    where = f" line {line0 + int(m.group(1)) + 1:,}" if m else ""
    return (
        f"{label}{where} is not a rating line (user, movie, stars, time); the file is damaged or "
        "not a MovieLens ratings file."
    )


# ---------------------------------------------------------------- movies
def _year(title: str) -> int:
    m = _YEAR.search(title)
    return int(m.group(1)) if m else 0


def _decode(raw: bytes, encoding: str, label: str) -> str:
    try:
        return raw.decode("utf-8")  # ml-10m's movies.dat is UTF-8 though ml-1m's is Latin-1
    except UnicodeDecodeError:
        if encoding == "utf-8":
            raise DataError(f"{label} is not UTF-8 text; download it again.") from None
        return raw.decode(encoding)


def _movie_rows(text: str, name: str, label: str) -> Iterator[tuple[str, str, list[str]]]:
    """(id, title, genres) per movie line, for each layout."""
    if name in ("ml-1m", "ml-10m"):
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                parts = line.split("::")
                if len(parts) != 3:
                    raise DataError(f"{label} line {n} is not movieId::title::genres.")
                yield parts[0], parts[1], parts[2].split("|")
        return
    if name == "ml-100k":
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                parts = line.split("|")
                if len(parts) != 5 + len(ML100K_GENRES):
                    raise DataError(f"{label} line {n} does not have u.item's 24 fields.")
                flags = parts[5:]
                yield (
                    parts[0],
                    parts[1],
                    [g for g, on in zip(ML100K_GENRES, flags, strict=True) if on == "1"],
                )
        return
    rows = csv.reader(io.StringIO(text))
    head = next(rows, None)
    if head != ["movieId", "title", "genres"]:
        raise DataError(f"{label} does not start with the header movieId,title,genres.")
    for n, row in enumerate(rows, 2):
        if row:
            if len(row) != 3:
                raise DataError(f"{label} line {n} is not movieId,title,genres.")
            yield row[0], row[1], row[2].split("|")


def _parse_movies(raw: bytes, name: str, label: str, encoding: str) -> Movies:
    ids, titles, genres = [], [], []
    for movie_id, title, gen in _movie_rows(_decode(raw, encoding, label), name, label):
        try:
            ids.append(int(movie_id))
        except ValueError:
            raise DataError(f"{label} has a movie id {movie_id!r} that is not a number.") from None
        titles.append(title.strip())
        genres.append(tuple(g for g in gen if g and g != NO_GENRES and g != "unknown"))
    if not ids:
        raise DataError(f"{label} lists no movies.")
    years = np.array([_year(t) for t in titles], dtype=np.int16)
    return Movies(np.array(ids, dtype=np.int32), titles, years, genres)


# ---------------------------------------------------------------- loading
def read_movielens(where: str | Path, name: str) -> MovieLens:
    """Read release `name` from a folder (or GroupLens's .zip) holding its two files."""
    layout = _check_name(name)
    where = Path(where)
    with _open(where, layout.movies) as (f, label):
        try:
            raw = f.read()
        except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as err:
            raise DataError(f"{label} cannot be read to its end ({err}).") from err
        movies = _parse_movies(raw, name, label, layout.encoding)
    with _open(where, layout.ratings) as (f, label):
        ratings = _parse_ratings(f, label, layout.separator, header=layout.ratings.endswith(".csv"))
    _check_known_movies(ratings, movies, label)
    return MovieLens(name, ratings, movies, f"MovieLens {name} read from {where}.")


def _check_known_movies(ratings: Ratings, movies: Movies, label: str) -> None:
    unknown = np.setdiff1d(np.unique(ratings.items), movies.ids)
    if unknown.size:
        raise DataError(
            f"{label} rates {unknown.size} movies that the movies file does not list (e.g. id "
            f"{unknown[0]}); the two files do not belong together."
        )


def load_shipped_small() -> MovieLens:
    """The ml-latest-small copy inside VAE Lab (ratings without timestamps; README.txt beside it)."""
    ratings_path, movies_path = SHIPPED_DIR / SHIPPED_RATINGS, SHIPPED_DIR / SHIPPED_MOVIES
    try:
        with np.load(ratings_path, allow_pickle=False) as f:
            users, items = f["users"].astype(np.int32), f["items"].astype(np.int32)
            stars = f["half_stars"].astype(np.float32) / 2  # stored as whole half-stars
        raw = gzip.decompress(movies_path.read_bytes())
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise DataError(
            f"The shipped MovieLens copy in {SHIPPED_DIR} is missing or damaged ({err}); reinstall "
            "VAE Lab or run scripts/make_movielens_small.py."
        ) from err
    movies = _parse_movies(raw, "ml-latest-small", str(movies_path), "utf-8")
    ratings = Ratings(users, items, stars)
    _check_known_movies(ratings, movies, str(ratings_path))
    return MovieLens(
        "ml-latest-small", ratings, movies, "MovieLens ml-latest-small (shipped with VAE Lab)."
    )


def load_movielens(name: str, data_dir: str | Path | None = None) -> MovieLens:
    """Release `name` from the data folder; ml-latest-small falls back to the shipped copy."""
    _check_name(name)
    found = find_movielens(name, data_dir)
    if found is not None:
        return read_movielens(found, name)
    if name == "ml-latest-small":
        return load_shipped_small()
    layout = LAYOUTS[name]
    where = _data_dir(data_dir)
    raise DataError(
        f"MovieLens {name} is not here: put GroupLens's folder {name}/ (with {layout.ratings} and "
        f"{layout.movies}) or {name}.zip in "
        + (f"{where}" if where else f"a folder and set {DATA_DIR_ENV} to it")
        + "."
    )


def licence_text() -> str:
    """GroupLens's usage licence, from the README.txt shipped beside ml-latest-small (every
    MovieLens release carries the same terms): shown before a download."""
    text = (SHIPPED_DIR / "README.txt").read_text(encoding="utf-8")
    start = text.index("Usage License")
    body = text[start:].split("\n", 2)[2]  # past the title and its underline
    return body[: body.index("\nCitation\n")].strip()


def download_movielens(
    name: str,
    dest_dir: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    url: str | None = None,
) -> Path:
    """Fetch GroupLens's zip for `name` into dest_dir (default Keras's datasets folder); returns it.

    Written to a temporary name and renamed when complete, so nothing half-written is ever found.
    `progress(bytes_done, bytes_total)` is called as it goes (total 0 when the server does not say).
    """
    _check_name(name)
    if not downloads_allowed():
        raise DataError(f"Downloads are switched off here ({OFFLINE_ENV} is set).")
    url = url or GROUPLENS_URLS[name]
    host = urllib.parse.urlsplit(url).hostname or "the server"
    dest = Path(dest_dir) if dest_dir is not None else _downloads_dir()
    target = dest / f"{name}.zip"
    tmp = dest / f".{name}.zip.part"
    try:
        dest.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(url, timeout=30) as resp:
            total = int(resp.headers.get("Content-Length") or 0)
            done = 0
            with open(tmp, "wb") as out:
                while block := resp.read(1 << 20):
                    out.write(block)
                    done += len(block)
                    if progress:
                        progress(done, total)
        if total and done != total:
            raise DataError(f"The download of {name} stopped after {done:,} of {total:,} bytes.")
        with zipfile.ZipFile(tmp) as archive:  # a complete zip, or BadZipFile
            inside = {m.split("/")[-1] for m in archive.namelist()}
        layout = LAYOUTS[name]
        for wanted in (layout.ratings, layout.movies):
            if wanted not in inside:
                raise DataError(
                    f"The download of {name} holds no {wanted}: it is not that release."
                )
        os.replace(tmp, target)
    except urllib.error.HTTPError as err:
        raise DataError(
            f"MovieLens {name} could not be downloaded: {host} answered {err.code} ({err.reason})."
        ) from err
    except urllib.error.URLError as err:
        raise DataError(
            f"MovieLens {name} could not be downloaded: {host} cannot be reached from this "
            f"machine ({err.reason})."
        ) from err
    except (OSError, zipfile.BadZipFile, ValueError) as err:
        raise DataError(f"MovieLens {name} could not be downloaded ({err}).") from err
    finally:
        tmp.unlink(missing_ok=True)
    return target
