"""Datasets: MNIST and Fashion-MNIST from IDX files, mnist.npz or Keras; the bundled sample; noise.

Everything returns uint8 arrays shaped (N, 28, 28); `to_float` and `make_tf_dataset` turn them into
what the models eat. Nothing here downloads unless `load_dataset` is allowed to and nothing is found.
"""

from __future__ import annotations

import gzip
import os
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from vae_core import kinds
from vae_core.errors import DataError, UserError
from vae_core.images import as_batch
from vae_core.paths import DATA_DIR_ENV, downloads_allowed
from vae_core.specs import MIXED_NOISE, NOISE_KINDS, TRAIN_NOISE_KINDS

if TYPE_CHECKING:
    import tensorflow as tf

DATASET_NAMES = kinds.DIGIT_DATASETS
SAMPLE_PATH = Path(__file__).parent / "sample_data" / "mnist_sample.npz"
# MNIST itself ships with VAE Lab (licence and attribution in its README.md): the last place looked,
# so every page and preset works offline while a user's own folder or Keras's cache still comes first.
SHIPPED_MNIST_DIR = Path(__file__).parent / "mnist"
SAMPLE_TRAIN_FRACTION = 0.8
# "mnist_binary": MNIST as log-likelihood papers use it. The test digits are binarized once, with
# this seed, so every model is scored on the same {0, 1} pixels; training redraws them every epoch.
BINARIZE_SEED = 20160601

# The four canonical files, in the order (x_train, y_train, x_test, y_test).
IDX_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
_TITLES = {
    "mnist": "MNIST",
    "mnist_binary": "Binarized MNIST",
    "fashion_mnist": "Fashion-MNIST",
    "sample": "The MNIST sample",
}
# Keras's own folder names, so a Keras cache copied by hand is found as it is.
_FASHION_DIRS = ("fashion-mnist", "fashion_mnist")
_IMAGE_MAGIC = 0x0803  # unsigned bytes, 3 dimensions
_LABEL_MAGIC = 0x0801  # unsigned bytes, 1 dimension

# Parsed arrays keyed by (path, mtime_ns, size): the app calls load_dataset on every rerun.
_CACHE: dict[tuple[str, int, int], object] = {}


@dataclass
class Dataset:
    """A train/test split of 28x28 uint8 images with uint8 labels, and where it came from."""

    name: str
    x_train: np.ndarray  # (N, 28, 28) uint8, 0 = background
    y_train: np.ndarray  # (N,) uint8 class labels 0..9
    x_test: np.ndarray
    y_test: np.ndarray
    source: str  # a sentence for people: where it was read from
    dynamic_binarization: bool = False  # training pixels are redrawn in {0, 1} every epoch


# ---------------------------------------------------------------------------------------------
# Finding files


def _keras_home() -> Path:
    # Keras honours KERAS_HOME; its cache is where a previous download left the files.
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")


def _user_dir(data_dir: str | Path | None) -> Path | None:
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get(DATA_DIR_ENV, "").strip()
    return Path(env).expanduser() if env else None


def _idx_path(folder: Path, gz_name: str) -> Path | None:
    """The .gz file, or the uncompressed file of the same name, if either exists."""
    for candidate in (folder / gz_name, folder / gz_name.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    return None


def _candidates(name: str, data_dir: str | Path | None) -> list[Path]:
    """Folders and npz files to try, best first."""
    out: list[Path] = []
    user = _user_dir(data_dir)
    cache = _keras_home() / "datasets"
    if name == "mnist":
        if user is not None:
            # A folder called "fashion..." holds Fashion-MNIST: never pass it off as digits.
            if "fashion" not in user.name.lower():
                out += [user, user / "mnist.npz"]
            out += [user / "mnist", user / "mnist" / "mnist.npz"]
        out += [cache / "mnist.npz", cache / "mnist", SHIPPED_MNIST_DIR]
    elif name == "fashion_mnist":
        if user is not None:
            if "fashion" in user.name.lower():
                out.append(user)
            out += [user / d for d in _FASHION_DIRS]
        out += [cache / d for d in _FASHION_DIRS]
    return out


def _complete(candidate: Path) -> bool:
    if candidate.suffix == ".npz":
        return candidate.is_file()
    return candidate.is_dir() and all(_idx_path(candidate, f) for f in IDX_FILES)


def find_dataset_files(name: str, data_dir: str | Path | None = None) -> Path | None:
    """Where `name` would be read from without downloading: an IDX folder or an .npz file, or None."""
    _check_name(name)
    if name == "sample":
        return SAMPLE_PATH if SAMPLE_PATH.is_file() else None
    if name == "mnist_binary":  # MNIST's own files, binarized when read
        name = "mnist"
    return next((c for c in _candidates(name, data_dir) if _complete(c)), None)


def dataset_available(name: str) -> bool:
    """True when `name` can be loaded right now without a download."""
    return find_dataset_files(name) is not None


def available(name: str) -> bool:
    """Can a run train on this dataset here (digits or MovieLens) without downloading?"""
    if name == "sample":
        return True
    if name in DATASET_NAMES:
        return dataset_available(name)
    from vae_core.recsys.movielens import movielens_available  # MovieLens: its own module

    return name == "ml-latest-small" or movielens_available(name)  # the small one is shipped


def _check_name(name: str) -> None:
    if name not in DATASET_NAMES:
        raise DataError(f"Unknown dataset {name!r}; choose one of {', '.join(DATASET_NAMES)}.")


# ---------------------------------------------------------------------------------------------
# Parsing


def _cached(path: Path, parse):
    st = path.stat()
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    if key not in _CACHE:
        value = parse(path)
        # A changed file replaces its old entry instead of piling up next to it.
        for old in [k for k in _CACHE if k[0] == key[0]]:
            del _CACHE[old]
        _CACHE[key] = value
    return _CACHE[key]


def _read_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    # Decide by content, not name: people gunzip files and keep the name, or the other way round.
    if raw[:2] != b"\x1f\x8b":
        if path.suffix == ".gz":
            raise DataError(
                f"{path} is not a gzip file although its name ends in .gz; download it again."
            )
        return raw
    try:
        return gzip.decompress(raw)
    except (gzip.BadGzipFile, EOFError, zlib.error) as err:
        raise DataError(
            f"{path} is a damaged or incomplete gzip file ({err}); download it again."
        ) from err


def _parse_idx(path: Path, labels: bool) -> np.ndarray:
    """One IDX file as a read-only uint8 array, checked against what MNIST files look like."""
    raw = _read_bytes(path)
    want_magic, ndim = (_LABEL_MAGIC, 1) if labels else (_IMAGE_MAGIC, 3)
    kind = "label" if labels else "image"
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path} is too short to be an IDX {kind} file; download it again.")
    (magic,) = struct.unpack(">I", raw[:4])
    if magic != want_magic:
        raise DataError(
            f"{path} has the wrong magic number 0x{magic:08X} (an IDX {kind} file starts with "
            f"0x{want_magic:08X}); check that the file is the one its name says, or download it again."
        )
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    if not labels and dims[1:] != (28, 28):
        raise DataError(
            f"{path} holds {dims[1]}x{dims[2]} images, not 28x28; use the MNIST-format files."
        )
    expected = int(np.prod(dims, dtype=np.int64))
    payload = len(raw) - header
    if payload != expected:
        what = "is truncated" if payload < expected else "has extra bytes at the end"
        raise DataError(
            f"{path} {what}: its header promises {expected} bytes of data but it holds {payload}; "
            "download it again."
        )
    arr = np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)
    if labels and arr.size and arr.max() > 9:
        raise DataError(f"{path} contains labels above 9; it is not an MNIST label file.")
    return arr  # frombuffer over bytes is read-only, which protects the cache


def _check_pair(x: np.ndarray, y: np.ndarray, where: str) -> None:
    if len(x) != len(y):
        raise DataError(
            f"{where} has {len(x)} images but {len(y)} labels; the files do not belong together, "
            "download them again."
        )


def _parse_npz(path: Path) -> tuple[np.ndarray, ...]:
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in NPZ_KEYS if k not in f.files]
            if missing:
                raise DataError(
                    f"{path} does not contain {', '.join(missing)}; use Keras's mnist.npz file."
                )
            arrays = tuple(np.asarray(f[k]) for k in NPZ_KEYS)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, zlib.error) as err:
        raise DataError(f"{path} is not a readable .npz file ({err}); download it again.") from err
    out = []
    for key, arr in zip(NPZ_KEYS, arrays, strict=True):
        if key.startswith("x") and (arr.dtype != np.uint8 or arr.shape[1:] != (28, 28)):
            raise DataError(
                f"{path}: {key} should be 28x28 uint8 images but is {arr.dtype} {arr.shape}."
            )
        if key.startswith("y"):
            if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
                raise DataError(f"{path}: {key} should be a list of whole-number labels.")
            if arr.size and (arr.min() < 0 or arr.max() > 9):
                raise DataError(f"{path}: {key} has labels outside 0..9.")
            arr = arr.astype(np.uint8)
        arr.setflags(write=False)
        out.append(arr)
    _check_pair(out[0], out[1], f"{path} (training part)")
    _check_pair(out[2], out[3], f"{path} (test part)")
    return tuple(out)


def _load_found(name: str, found: Path) -> Dataset:
    title = _TITLES[name]
    cache_note = " (Keras's cache)" if _keras_home() in found.parents else ""
    if found == SHIPPED_MNIST_DIR:
        cache_note = " (the copy shipped with VAE Lab)"
    if found.suffix == ".npz":
        arrays = _cached(found, _parse_npz)
        return Dataset(name, *arrays, source=f"{title} read from {found}{cache_note}.")
    arrays = []
    for fname in IDX_FILES:
        path = _idx_path(found, fname)
        assert path is not None  # _complete() checked all four
        arrays.append(_cached(path, lambda p, lab="labels" in fname: _parse_idx(p, lab)))
    _check_pair(arrays[0], arrays[1], f"{found} (train-images and train-labels)")
    _check_pair(arrays[2], arrays[3], f"{found} (t10k-images and t10k-labels)")
    return Dataset(name, *arrays, source=f"{title} read from the IDX files in {found}{cache_note}.")


# ---------------------------------------------------------------------------------------------
# Public loaders


def load_sample() -> tuple[np.ndarray, np.ndarray]:
    """The bundled 500 real MNIST test digits (50 per class) as uint8 (x, y)."""
    if not SAMPLE_PATH.is_file():
        raise DataError(
            f"The bundled sample {SAMPLE_PATH} is missing; reinstall VAE Lab or run "
            "scripts/make_sample.py."
        )
    arrays = _cached(SAMPLE_PATH, _parse_npz_sample)
    return arrays[0], arrays[1]


def _parse_npz_sample(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as f:
            x, y = np.asarray(f["x"]), np.asarray(f["y"])
    except (zipfile.BadZipFile, ValueError, OSError, KeyError, EOFError, zlib.error) as err:
        raise DataError(
            f"The bundled sample {path} is damaged ({err}); run scripts/make_sample.py."
        ) from err
    _check_pair(x, y, str(path))
    x, y = x.astype(np.uint8, copy=False), y.astype(np.uint8, copy=False)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def _missing_message(name: str, data_dir: str | Path | None, reason: str) -> str:
    title = _TITLES[name]
    files = ", ".join(IDX_FILES[:-1]) + " and " + IDX_FILES[-1]
    user = _user_dir(data_dir)
    partial = ""
    for cand in _candidates(name, data_dir):
        if cand.is_dir():
            have = [f for f in IDX_FILES if _idx_path(cand, f)]
            if have and len(have) < len(IDX_FILES):
                lacking = ", ".join(f for f in IDX_FILES if f not in have)
                partial = f" In {cand} some files are there but {lacking} is missing."
                break
    if name == "mnist":
        where = "in one folder (or Keras's mnist.npz)"
    else:
        where = "in a folder named fashion-mnist inside your data folder"
    looked = f" (it is set to {user})" if user is not None else ""
    return (
        f"{title} is not on this computer and {reason}.{partial} Put the four files {files} "
        f"{where} and set the environment variable {DATA_DIR_ENV} to that data folder{looked}, "
        "or choose the bundled sample."
    )


def _download(name: str) -> tuple[np.ndarray, ...]:
    import keras  # lazy: importing Keras costs seconds and is only needed here

    loader = keras.datasets.mnist if name == "mnist" else keras.datasets.fashion_mnist
    (x_train, y_train), (x_test, y_test) = loader.load_data()
    return tuple(np.asarray(a, dtype=np.uint8) for a in (x_train, y_train, x_test, y_test))


def load_dataset(
    name: str = "mnist", data_dir: str | Path | None = None, allow_download: bool = True
) -> Dataset:
    """Load a dataset from `data_dir`, $VAE_LAB_DATA_DIR or Keras's cache, downloading as a last resort."""
    _check_name(name)
    if name == "mnist_binary":
        grey = load_dataset("mnist", data_dir, allow_download)
        return Dataset(
            name,
            grey.x_train,
            grey.y_train,
            binarize_once(grey.x_test),
            grey.y_test,
            source=f"{grey.source} Test digits binarized once (seed {BINARIZE_SEED}); training "
            "digits redrawn as black and white every epoch.",
            dynamic_binarization=True,
        )
    if name == "sample":
        x, y = load_sample()
        n_train = int(round(len(x) * SAMPLE_TRAIN_FRACTION))
        return Dataset(
            "sample",
            x[:n_train],
            y[:n_train],
            x[n_train:],
            y[n_train:],
            source=(
                f"The bundled sample of {len(x)} real MNIST test digits "
                f"({n_train} for training, {len(x) - n_train} for testing)."
            ),
        )
    found = find_dataset_files(name, data_dir)
    if found is not None:
        return _load_found(name, found)
    if not allow_download or not downloads_allowed():
        reason = "downloading is switched off"
        raise DataError(_missing_message(name, data_dir, reason))
    try:
        arrays = _download(name)
    # Keras's get_file raises a bare Exception for network failures, so nothing narrower catches
    # "offline"; the cause is chained and shown, and a bug here still surfaces in the message.
    except Exception as err:  # noqa: BLE001
        reason = f"downloading it failed ({err})"
        raise DataError(_missing_message(name, data_dir, reason)) from err
    for arr in arrays:
        arr.setflags(write=False)
    where = _keras_home() / "datasets"
    return Dataset(name, *arrays, source=f"{_TITLES[name]} downloaded by Keras into {where}.")


# ---------------------------------------------------------------------------------------------
# Arrays for models


def to_float(x: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 (N, 28, 28, 1) in [0, 1]."""
    x = np.asarray(x)
    if x.dtype != np.uint8:
        raise ValueError(f"to_float expects uint8 images, got {x.dtype}")
    return as_batch(x)


# The "mixed" noise draws, per image, one of these ("none": the clean digit, so a blind denoiser
# learns to leave clean digits alone) in these shares, and a strength uniform in [0, noise strength].
# The fog comes twice as often: it is the strongest noise and has no weak setting (one share each
# left a 20-epoch blind DAE at 19.8 dB on it, against 20.1 dB for one trained on the fog alone).
MIX_KINDS = ("none", *NOISE_KINDS)
MIX_SHARES = (1, 2, 1, 1, 1)
_MIX_EDGES = tuple(float(e) for e in np.cumsum(MIX_SHARES)[:-1] / sum(MIX_SHARES))


def _check_noise(kind: str, strength: float) -> None:
    if kind not in TRAIN_NOISE_KINDS:
        raise UserError(f"Unknown noise {kind!r}; choose one of {', '.join(TRAIN_NOISE_KINDS)}.")
    if not 0.0 <= float(strength) <= 1.0:  # also refuses NaN
        raise UserError("The noise strength must be between 0 and 1.")


def add_noise(
    x: np.ndarray, kind: str = "keras", strength: float = 0.5, seed: int | None = None
) -> np.ndarray:
    """A noisy copy of float images in [0, 1], clipped to [0, 1]; the same seed gives the same noise.

    "keras": x + N(0.5, 0.5), the old Keras denoising example (strength is ignored); "gaussian":
    x + N(0, strength); "salt_pepper": a `strength` fraction of pixels set to 0 or 1; "mask": set to 0;
    "mixed": per image one of MIX_KINDS at a strength uniform in [0, strength] (images on axis 0).
    """
    _check_noise(kind, strength)
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"add_noise expects float images in [0, 1], got {x.dtype}; use to_float")
    x = x.astype(np.float32, copy=False)
    rng = np.random.default_rng(seed)
    if kind != MIXED_NOISE:
        return _spoil(x, kind, strength, rng)
    per_image = (len(x),) + (1,) * (x.ndim - 1)
    pick = np.searchsorted(_MIX_EDGES, rng.random(per_image), side="right")
    strengths = rng.uniform(0.0, strength, size=per_image).astype(np.float32)
    noisy = x
    for i, each in enumerate(MIX_KINDS[1:], start=1):
        noisy = np.where(pick == i, _spoil(x, each, strengths, rng), noisy)
    return noisy


def _spoil(x: np.ndarray, kind: str, strength, rng: np.random.Generator) -> np.ndarray:
    """One noise kind; `strength` is a number or per-image values that broadcast against x."""
    if kind == "keras":
        noisy = x + rng.normal(loc=0.5, scale=0.5, size=x.shape)
    elif kind == "gaussian":
        noisy = x + rng.normal(size=x.shape) * strength
    elif kind == "salt_pepper":
        hit = rng.random(x.shape) < strength
        salt = rng.random(x.shape) < 0.5
        noisy = np.where(hit, salt.astype(np.float32), x)
    else:  # mask
        noisy = np.where(rng.random(x.shape) < strength, np.float32(0.0), x)
    return np.clip(noisy, 0.0, 1.0).astype(np.float32)


def _tf_noise(x: tf.Tensor, kind: str, strength, seed: tf.Tensor) -> tf.Tensor:
    """add_noise's definitions with stateless TF ops, so a tf.data map can run them in parallel."""
    import tensorflow as tf

    shape = tf.shape(x)
    if kind == MIXED_NOISE:
        # seeds: the pick, the strengths, then one per kind (MIX_KINDS[0] is "none")
        seeds = tf.random.experimental.stateless_split(seed, num=1 + len(MIX_KINDS))
        per_image = tf.concat([shape[:1], tf.ones_like(shape[1:])], axis=0)
        u = tf.random.stateless_uniform(per_image, seeds[0])
        pick = tf.reduce_sum(tf.cast(u[..., None] >= _MIX_EDGES, tf.int32), axis=-1)
        strengths = tf.random.stateless_uniform(per_image, seeds[1], maxval=strength)
        noisy = x
        for i, each in enumerate(MIX_KINDS[1:], start=1):
            noisy = tf.where(pick == i, _tf_noise(x, each, strengths, seeds[1 + i]), noisy)
        return noisy
    seeds = tf.random.experimental.stateless_split(seed, num=2)
    if kind == "keras":
        noisy = x + tf.random.stateless_normal(shape, seeds[0], mean=0.5, stddev=0.5)
    elif kind == "gaussian":
        noisy = x + tf.random.stateless_normal(shape, seeds[0]) * strength
    elif kind == "salt_pepper":
        hit = tf.random.stateless_uniform(shape, seeds[0]) < strength
        salt = tf.cast(tf.random.stateless_uniform(shape, seeds[1]) < 0.5, x.dtype)
        noisy = tf.where(hit, salt, x)
    else:  # mask
        noisy = tf.where(tf.random.stateless_uniform(shape, seeds[0]) < strength, 0.0, x)
    return tf.clip_by_value(noisy, 0.0, 1.0)


def _tf_binarize(batch, seed):
    """Images (or (images, labels)) with each pixel drawn from Bernoulli(its grey level)."""
    import tensorflow as tf

    x = batch[0] if isinstance(batch, tuple) else batch
    drawn = tf.cast(tf.random.stateless_uniform(tf.shape(x), seed) < x, x.dtype)
    return (drawn, batch[1]) if isinstance(batch, tuple) else drawn


def binarize_once(x: np.ndarray, seed: int = BINARIZE_SEED) -> np.ndarray:
    """uint8 images with each pixel 255 with probability its grey level, else 0 (a fixed draw)."""
    p = np.asarray(x, np.float32) / 255.0
    return np.where(np.random.default_rng(seed).random(p.shape) < p, 255, 0).astype(np.uint8)


def make_tf_dataset(
    x: np.ndarray,
    y: np.ndarray | None = None,
    *,
    batch_size: int = 128,
    shuffle: bool = True,
    seed: int = 0,
    noise: tuple[str, float] | None = None,
    drop_remainder: bool = False,
    binarize: bool = False,
) -> tf.data.Dataset:
    """Batches of `x`, `(x, y)` with int32 labels, or `(noisy, clean)` pairs when `noise` is given.

    Noise is drawn inside the pipeline, fresh every epoch and reproducible for a given seed; so is
    `binarize`'s dynamic binarization (each pixel 1 with probability its grey level, redrawn every
    epoch: the literature's convention for log-likelihoods on MNIST).
    """
    import tensorflow as tf

    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"make_tf_dataset expects float images in [0, 1], got {x.dtype}")
    if y is not None and noise is not None:
        raise ValueError("make_tf_dataset takes labels or noise, not both")
    if y is not None and len(y) != len(x):
        raise ValueError(f"{len(x)} images but {len(y)} labels")
    if noise is not None:
        _check_noise(*noise)
    x = x.astype(np.float32, copy=False)
    if y is None:
        ds = tf.data.Dataset.from_tensor_slices(x)
    else:
        ds = tf.data.Dataset.from_tensor_slices((x, np.asarray(y).astype(np.int32)))
    ds = ds.cache()
    if shuffle and len(x) > 1:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    if binarize:
        seeds = tf.data.Dataset.random(seed=seed + 7, rerandomize_each_iteration=True)
        ds = tf.data.Dataset.zip(ds, seeds).map(
            lambda batch, s: _tf_binarize(batch, tf.stack([s, 1])),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    if noise is not None:
        kind, strength = noise[0], float(noise[1])
        # One seed per batch from a seeded stream that re-randomises each epoch: fresh noise
        # every epoch, yet the whole run repeats exactly for the same seed.
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        ds = tf.data.Dataset.zip(ds, seeds).map(
            lambda clean, s: (_tf_noise(clean, kind, strength, tf.stack([s, 0])), clean),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    return ds.prefetch(tf.data.AUTOTUNE)
