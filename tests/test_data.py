"""Datasets, the bundled sample, noise and the tf.data pipeline, on small synthetic files."""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest

from vae_core import data
from vae_core.data import (
    IDX_FILES,
    SAMPLE_PATH,
    add_noise,
    dataset_available,
    find_dataset_files,
    load_dataset,
    load_sample,
    make_tf_dataset,
    to_float,
)
from vae_core.errors import DataError, UserError
from vae_core.specs import NOISE_KINDS


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No downloads, no real Keras cache, no shipped MNIST (tests that want it ask for it), no
    leftovers from other tests in the parse cache."""
    monkeypatch.setattr(data, "SHIPPED_MNIST_DIR", tmp_path / "no-shipped-mnist")
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("KERAS_HOME", raising=False)
    monkeypatch.setenv("VAE_LAB_OFFLINE", "1")
    real = os.environ.get("VAE_LAB_DATA_DIR")
    monkeypatch.delenv("VAE_LAB_DATA_DIR", raising=False)
    data._CACHE.clear()
    yield real
    data._CACHE.clear()


def idx_bytes(arr: np.ndarray) -> bytes:
    magic = 0x0800 | arr.ndim
    return struct.pack(">I", magic) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()


def fake_split(n_train: int = 12, n_test: int = 5, seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    return (
        rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, n_train, dtype=np.uint8),
        rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, n_test, dtype=np.uint8),
    )


def write_idx(folder: Path, arrays, compressed: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, arr in zip(IDX_FILES, arrays, strict=True):
        raw = idx_bytes(arr)
        if compressed:
            (folder / name).write_bytes(gzip.compress(raw))
        else:
            (folder / name.removesuffix(".gz")).write_bytes(raw)
    return folder


def assert_same(ds, arrays) -> None:
    for got, want in zip((ds.x_train, ds.y_train, ds.x_test, ds.y_test), arrays, strict=True):
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, want)


# --- reading files ----------------------------------------------------------------------------


SHIPPED_COPY = Path(data.__file__).parent / "mnist"


def test_the_shipped_mnist_is_the_offline_fallback(monkeypatch):
    monkeypatch.setattr(data, "SHIPPED_MNIST_DIR", SHIPPED_COPY)
    # No data folder, no Keras cache, downloads off: the copy shipped in the repository is read.
    assert find_dataset_files("mnist") == SHIPPED_COPY
    ds = load_dataset("mnist")
    assert ds.x_train.shape == (60000, 28, 28) and ds.x_test.shape == (10000, 28, 28)
    assert np.bincount(ds.y_test, minlength=10).min() > 800  # all ten digits, real labels
    assert "shipped with VAE Lab" in ds.source
    # Its licence and attribution travel with it.
    readme = (SHIPPED_COPY / "README.md").read_text()
    assert "CC BY-SA 3.0" in readme and "Yann LeCun" in readme


def test_a_data_folder_or_keras_cache_comes_before_the_shipped_copy(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "SHIPPED_MNIST_DIR", SHIPPED_COPY)
    arrays = fake_split()
    cache = write_idx(tmp_path / "home" / ".keras" / "datasets" / "mnist", arrays)
    assert find_dataset_files("mnist") == cache
    mine = write_idx(tmp_path / "mine", fake_split(seed=1))
    monkeypatch.setenv("VAE_LAB_DATA_DIR", str(mine))
    assert find_dataset_files("mnist") == mine


def test_idx_gz_and_uncompressed_read_back_identical(tmp_path):
    arrays = fake_split()
    gz = load_dataset("mnist", write_idx(tmp_path / "gz", arrays))
    raw = load_dataset("mnist", write_idx(tmp_path / "raw", arrays, compressed=False))
    assert_same(gz, arrays)
    assert_same(raw, arrays)
    assert gz.x_train.shape == (12, 28, 28) and gz.y_test.shape == (5,)
    assert str(tmp_path / "gz") in gz.source


def test_env_var_is_used_and_repeat_calls_are_cached(tmp_path, monkeypatch):
    arrays = fake_split()
    monkeypatch.setenv("VAE_LAB_DATA_DIR", str(write_idx(tmp_path / "d", arrays)))
    first = load_dataset("mnist")
    second = load_dataset("mnist")
    assert_same(first, arrays)
    assert second.x_train is first.x_train  # served from the cache, not parsed again
    assert not first.x_train.flags.writeable  # so nobody can change the cached copy by accident
    assert dataset_available("mnist")
    assert find_dataset_files("mnist") == tmp_path / "d"


def test_changed_file_is_read_again(tmp_path):
    folder = write_idx(tmp_path / "d", fake_split(seed=0))
    load_dataset("mnist", folder)
    newer = fake_split(seed=1)
    write_idx(folder, newer)
    os.utime(folder / IDX_FILES[0], ns=(1, 10**18))  # force a different mtime
    assert_same(load_dataset("mnist", folder), newer)


def test_mnist_npz_is_read(tmp_path):
    arrays = fake_split()
    np.savez(tmp_path / "mnist.npz", **dict(zip(data.NPZ_KEYS, arrays, strict=True)))
    ds = load_dataset("mnist", tmp_path)
    assert_same(ds, arrays)
    assert "mnist.npz" in ds.source


def test_keras_cache_is_found(tmp_path):
    arrays = fake_split()
    cache = Path(os.environ["HOME"]) / ".keras" / "datasets"
    cache.mkdir(parents=True)
    np.savez(cache / "mnist.npz", **dict(zip(data.NPZ_KEYS, arrays, strict=True)))
    ds = load_dataset("mnist")
    assert_same(ds, arrays)
    assert "Keras" in ds.source


def test_fashion_mnist_from_keras_folder_not_confused_with_digits(tmp_path):
    digits, fashion = fake_split(seed=0), fake_split(seed=1)
    root = write_idx(tmp_path / "data", digits)
    write_idx(root / "fashion-mnist", fashion)
    assert_same(load_dataset("mnist", root), digits)
    assert_same(load_dataset("fashion_mnist", root), fashion)
    assert find_dataset_files("fashion_mnist", tmp_path / "nowhere") is None


@pytest.mark.parametrize(
    ("which", "corrupt", "words"),
    [
        (0, lambda raw: gzip.compress(b"\x00\x00\x08\x01" + gzip.decompress(raw)[4:]), "magic"),
        (0, lambda raw: gzip.compress(gzip.decompress(raw)[:-100]), "truncated"),
        (1, lambda raw: raw[:-9], "gzip"),  # cut-off gzip stream
        (3, lambda raw: b"<html>not a gzip</html>", "gzip"),
    ],
    ids=["wrong-magic", "truncated-payload", "truncated-gzip", "not-gzip"],
)
def test_corrupt_idx_names_the_file(tmp_path, which, corrupt, words):
    folder = write_idx(tmp_path / "d", fake_split())
    path = folder / IDX_FILES[which]
    path.write_bytes(corrupt(path.read_bytes()))
    with pytest.raises(DataError) as exc:
        load_dataset("mnist", folder)
    assert IDX_FILES[which] in str(exc.value)
    assert words in str(exc.value).lower()


def test_wrong_image_size_is_refused(tmp_path):
    folder = write_idx(tmp_path / "d", fake_split())
    (folder / IDX_FILES[2]).write_bytes(gzip.compress(idx_bytes(np.zeros((5, 32, 32), np.uint8))))
    with pytest.raises(DataError, match="32x32"):
        load_dataset("mnist", folder)


def test_label_count_mismatch_names_the_files(tmp_path):
    x_tr, y_tr, x_te, y_te = fake_split()
    folder = write_idx(tmp_path / "d", (x_tr, y_tr[:-1], x_te, y_te))
    with pytest.raises(DataError) as exc:
        load_dataset("mnist", folder)
    assert "train-labels" in str(exc.value) and "12 images but 11 labels" in str(exc.value)


def test_broken_npz_is_a_data_error(tmp_path):
    (tmp_path / "mnist.npz").write_bytes(b"PK\x03\x04 definitely not a zip")
    with pytest.raises(DataError, match="mnist.npz"):
        load_dataset("mnist", tmp_path)


def test_nothing_anywhere_says_what_to_do(tmp_path):
    with pytest.raises(DataError) as exc:
        load_dataset("mnist", tmp_path / "empty")
    msg = str(exc.value)
    assert "VAE_LAB_DATA_DIR" in msg
    assert all(name in msg for name in IDX_FILES)
    assert not dataset_available("mnist")
    assert find_dataset_files("mnist") is None


def test_partial_folder_is_reported(tmp_path):
    folder = write_idx(tmp_path / "d", fake_split())
    (folder / IDX_FILES[3]).unlink()
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz is missing"):
        load_dataset("mnist", folder)


def test_no_download_when_not_allowed(monkeypatch, tmp_path):
    monkeypatch.delenv("VAE_LAB_OFFLINE")

    def boom(name):
        raise AssertionError("must not download")

    monkeypatch.setattr(data, "_download", boom)
    with pytest.raises(DataError, match="switched off"):
        load_dataset("mnist", tmp_path, allow_download=False)


def test_failed_download_becomes_data_error(monkeypatch, tmp_path):
    monkeypatch.delenv("VAE_LAB_OFFLINE")

    def offline(name):
        raise Exception("URL fetch failure on https://example: None -- no network")

    monkeypatch.setattr(data, "_download", offline)
    with pytest.raises(DataError, match="no network") as exc:
        load_dataset("mnist", tmp_path)
    assert "VAE_LAB_DATA_DIR" in str(exc.value)


def test_unknown_dataset():
    with pytest.raises(DataError, match="fashion_mnist"):
        load_dataset("cifar")


def test_real_mnist(isolated, monkeypatch):
    if not isolated:
        pytest.skip("VAE_LAB_DATA_DIR is not set")
    monkeypatch.setenv("VAE_LAB_DATA_DIR", isolated)
    ds = load_dataset("mnist")
    assert ds.x_train.shape == (60000, 28, 28) and ds.y_train.shape == (60000,)
    assert ds.x_test.shape == (10000, 28, 28) and ds.y_test.shape == (10000,)
    assert ds.x_train.dtype == np.uint8 and set(np.unique(ds.y_test)) == set(range(10))


# --- the bundled sample -----------------------------------------------------------------------


def test_sample_is_500_balanced_uint8_digits():
    x, y = load_sample()
    assert x.shape == (500, 28, 28) and y.shape == (500,)
    assert x.dtype == np.uint8 and y.dtype == np.uint8
    assert np.bincount(y, minlength=10).tolist() == [50] * 10
    assert x.max() == 255 and x.mean() < 60  # white digits on black, like MNIST
    assert SAMPLE_PATH.stat().st_size < 300 * 1024


def test_sample_dataset_split_is_balanced():
    ds = load_dataset("sample")
    assert len(ds.x_train) == 400 and len(ds.x_test) == 100
    assert np.bincount(ds.y_train, minlength=10).tolist() == [40] * 10
    assert np.bincount(ds.y_test, minlength=10).tolist() == [10] * 10
    assert "sample" in ds.source


def test_to_float():
    x = np.array([[[0, 255]] * 28] * 2, dtype=np.uint8).repeat(14, axis=2)
    f = to_float(x)
    assert f.shape == (2, 28, 28, 1) and f.dtype == np.float32
    assert f.min() == 0.0 and f.max() == 1.0


# --- noise ------------------------------------------------------------------------------------


@pytest.fixture
def clean() -> np.ndarray:
    return to_float(load_sample()[0][:20])


@pytest.mark.parametrize("kind", NOISE_KINDS)
def test_add_noise_shape_range_determinism(clean, kind):
    a = add_noise(clean, kind, 0.3, seed=1)
    b = add_noise(clean, kind, 0.3, seed=1)
    c = add_noise(clean, kind, 0.3, seed=2)
    assert a.shape == clean.shape and a.dtype == np.float32
    assert a.min() >= 0.0 and a.max() <= 1.0
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert not np.array_equal(a, clean)


def test_mask_zeroes_about_strength_of_pixels(clean):
    ones = np.ones_like(clean)
    noisy = add_noise(ones, "mask", 0.3, seed=0)
    assert abs((noisy == 0).mean() - 0.3) < 0.01
    assert set(np.unique(noisy)) == {0.0, 1.0}


def test_salt_pepper_sets_about_strength_of_pixels_to_extremes():
    half = np.full((50, 28, 28, 1), 0.5, np.float32)
    noisy = add_noise(half, "salt_pepper", 0.2, seed=0)
    changed = noisy != 0.5
    assert abs(changed.mean() - 0.2) < 0.01
    assert set(np.unique(noisy[changed])) == {0.0, 1.0}
    assert abs((noisy[changed] == 1.0).mean() - 0.5) < 0.05


def test_gaussian_and_keras_noise_statistics():
    mid = np.full((50, 28, 28, 1), 0.5, np.float32)
    g = add_noise(mid, "gaussian", 0.1, seed=0)
    assert abs(float((g - mid).std()) - 0.1) < 0.005
    zeros = np.zeros((50, 28, 28, 1), np.float32)
    k = add_noise(zeros, "keras", 0.0, seed=0)  # strength is ignored for the Keras noise
    assert abs(float(np.median(k)) - 0.5) < 0.02  # N(0.5, 0.5), clipped
    assert 0.0 < k.mean() < 1.0 and (k == 1.0).any() and (k == 0.0).any()


@pytest.mark.parametrize(("kind", "strength"), [("blur", 0.5), ("mask", 1.5), ("mask", -0.1)])
def test_add_noise_refuses_bad_settings(clean, kind, strength):
    with pytest.raises(UserError):
        add_noise(clean, kind, strength)


# --- tf.data ----------------------------------------------------------------------------------


def test_make_tf_dataset_images_and_labels(clean):
    y = np.arange(20, dtype=np.uint8) % 10
    batches = list(make_tf_dataset(clean, batch_size=8, shuffle=False))
    assert [b.shape[0] for b in batches] == [8, 8, 4]
    assert batches[0].dtype.name == "float32" and tuple(batches[0].shape[1:]) == (28, 28, 1)
    np.testing.assert_array_equal(batches[0].numpy(), clean[:8])

    xb, yb = next(iter(make_tf_dataset(clean, y, batch_size=8, drop_remainder=True, seed=3)))
    assert yb.dtype.name == "int32" and tuple(xb.shape) == (8, 28, 28, 1)
    pairs = make_tf_dataset(clean, y, batch_size=20)
    assert len(list(pairs)) == 1


def test_make_tf_dataset_noisy_pairs(clean):
    ds = make_tf_dataset(clean, batch_size=10, shuffle=True, seed=0, noise=("mask", 0.5))
    epoch1 = [(n.numpy(), c.numpy()) for n, c in ds]
    epoch2 = [(n.numpy(), c.numpy()) for n, c in ds]
    noisy, target = epoch1[0]
    assert noisy.shape == target.shape == (10, 28, 28, 1)
    assert not np.array_equal(noisy, target)
    assert np.all((noisy == 0) | (noisy == target))  # mask only ever zeroes pixels
    assert noisy.min() >= 0 and noisy.max() <= 1
    assert not np.array_equal(epoch1[0][0], epoch2[0][0])  # fresh noise each epoch
    again = [
        n.numpy() for n, _ in make_tf_dataset(clean, batch_size=10, seed=0, noise=("mask", 0.5))
    ]
    np.testing.assert_array_equal(again[0], noisy)  # same seed, same run


@pytest.mark.parametrize("kind", NOISE_KINDS)
def test_tf_noise_matches_numpy_definition(kind):
    mid = np.full((64, 28, 28, 1), 0.5, np.float32)
    (noisy, _) = next(iter(make_tf_dataset(mid, batch_size=64, noise=(kind, 0.2))))
    ref = add_noise(mid, kind, 0.2, seed=0)
    noisy = noisy.numpy()
    assert abs(float(noisy.mean()) - float(ref.mean())) < 0.02
    assert abs(float(noisy.std()) - float(ref.std())) < 0.02


def test_make_tf_dataset_refuses_labels_with_noise(clean):
    with pytest.raises(ValueError):
        make_tf_dataset(clean, np.zeros(20, np.uint8), noise=("keras", 0.5))


# --- the mixed noise: one blind denoiser for every kind ------------------------------------------


def test_mixed_noise_gives_each_digit_one_kind_and_leaves_some_clean():
    mid = np.full((400, 28, 28, 1), 0.5, np.float32)
    noisy = add_noise(mid, "mixed", 0.6, seed=0)
    np.testing.assert_array_equal(noisy, add_noise(mid, "mixed", 0.6, seed=0))
    clean = np.all(noisy == 0.5, axis=(1, 2, 3))
    assert 0.12 < clean.mean() < 0.3  # "none" is one of five, plus a few near-zero strengths
    changed = noisy[~clean] != 0.5
    only_extremes = np.all(np.isin(noisy[~clean], (0.0, 0.5, 1.0)), axis=(1, 2, 3))
    has_black_only = np.all(np.isin(noisy[~clean], (0.0, 0.5)), axis=(1, 2, 3))
    # Gaussian and fog change (nearly) every pixel; salt & pepper and masking only some.
    assert (changed.mean(axis=(1, 2, 3)) > 0.9).sum() > 80
    assert (only_extremes & ~has_black_only).sum() > 30  # salt & pepper
    assert has_black_only.sum() > 30  # masking
    strengths = [(n != 0.5).mean() for n in noisy[~clean][has_black_only]]
    assert max(strengths) < 0.66  # masking's fraction stays under the 0.6 asked for


def test_mixed_noise_in_tf_data_matches_the_numpy_mix():
    mid = np.full((500, 28, 28, 1), 0.5, np.float32)
    (noisy, target) = next(iter(make_tf_dataset(mid, batch_size=500, noise=("mixed", 0.6))))
    noisy, ref = noisy.numpy(), add_noise(mid, "mixed", 0.6, seed=0)
    np.testing.assert_array_equal(target.numpy(), mid)
    for n in (noisy, ref):
        assert 0.12 < np.all(n == 0.5, axis=(1, 2, 3)).mean() < 0.3
    assert abs(float(noisy.mean()) - float(ref.mean())) < 0.02


def test_mixed_is_a_training_noise_not_one_the_page_offers():
    from vae_core.specs import TRAIN_NOISE_KINDS, TrainSpec
    from vae_core.train import _parser, specs_from_args

    assert "mixed" in TRAIN_NOISE_KINDS and "mixed" not in NOISE_KINDS
    args = _parser().parse_args(["--run-dir", "r", "--model", "conv_dae", "--noise", "mixed"])
    assert specs_from_args(args)[1].noise == "mixed"
    with pytest.raises(UserError, match="noise"):
        TrainSpec(noise="blur")


def test_binarized_mnist_is_black_and_white_on_test_and_redrawn_every_epoch_in_training(tmp_path):
    arrays = fake_split(n_train=64, n_test=20)
    folder = write_idx(tmp_path / "d", arrays)
    ds = load_dataset("mnist_binary", folder)
    assert set(np.unique(ds.x_test)) <= {0, 255} and ds.dynamic_binarization
    # The test digits are binarized once, the same way every time: every model meets the same pixels.
    np.testing.assert_array_equal(ds.x_test, load_dataset("mnist_binary", folder).x_test)
    np.testing.assert_array_equal(ds.x_train, arrays[0])  # training digits stay grey until batched
    # ...and are drawn in {0, 1} in the pipeline, afresh each epoch, as often as their grey level.
    pipeline = make_tf_dataset(to_float(ds.x_train), batch_size=64, shuffle=False, binarize=True)
    first, second = (next(iter(pipeline)).numpy() for _ in range(2))
    assert set(np.unique(first)) <= {0.0, 1.0}
    assert not np.array_equal(first, second)
    assert abs(first.mean() - to_float(ds.x_train).mean()) < 0.02
