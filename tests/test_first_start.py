"""The offline first start: no dataset, no network, an empty home; the shipped models do the work."""

from __future__ import annotations

import json
import socket

import keras
import numpy as np
import pytest

from tests.apptest import open_app
from vae_core import data, explore
from vae_core.paths import SHIPPED_MODELS_DIR as SHIPPED_DIR
from vae_core.store import Store

SHIPPED = {
    "mlp_vae_2d": "mlp_vae",
    "conv_vae_32d": "conv_vae",
    "conv_dae": "conv_dae",
    "cvae_2d": "cvae",
}
PAGES = [
    "app_pages/train.py",
    "app_pages/round_trip.py",
    "app_pages/denoise.py",
    "app_pages/generate.py",
    "app_pages/recommend.py",
]


@pytest.fixture
def first_start(tmp_path, monkeypatch):
    """A fresh user: empty HOME, no VAE_LAB_HOME, no data folder, and any network use is a failure."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for var in ("VAE_LAB_HOME", "VAE_LAB_DATA_DIR", "KERAS_HOME", "VAE_LAB_OFFLINE"):
        monkeypatch.delenv(var, raising=False)

    def no_network(*args, **kwargs):
        raise AssertionError(f"the first start tried to reach the network: {args}")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(keras.datasets.mnist, "load_data", no_network)
    return home


def test_the_shipped_models_are_listed_read_only_with_their_provenance(first_start):
    entries = {e.name: e for e in Store().list()}
    assert set(SHIPPED) <= set(entries)
    for name, kind in SHIPPED.items():
        entry = entries[name]
        assert entry.shipped and entry.error is None and entry.kind == kind
        meta = entry.meta
        assert meta["dataset"] == "mnist" and meta["epochs"] >= 5 and "seed" in meta
        assert "python -m vae_core.train" in json.dumps(meta["command"])
        metrics = meta["test_metrics"]
        assert (
            ("neg_elbo" in metrics)
            if kind != "conv_dae"
            else ("psnr" in metrics and "ssim" in metrics)
        )
    # The whole folder, the recommender and the descriptions included, within its 15 MB budget:
    # digit models in float16, the recommender's kernels in int8, every file's weights compressed.
    assert sum(p.stat().st_size for p in SHIPPED_DIR.iterdir()) < 15e6
    # Nothing was written into the empty home just by listing.
    assert not any(first_start.iterdir())


def test_the_shipped_models_work_offline_on_the_bundled_sample(first_start):
    # All of MNIST ships too, read from the repository's own copy.
    assert data.find_dataset_files("mnist") == data.SHIPPED_MNIST_DIR
    x, y = data.load_sample()
    store = Store()
    vae = store.load("mlp_vae_2d")
    # Kept in float16 to save space; the store hands it out in float32, as the pages expect.
    assert vae.meta["stored_as"] == "float16"
    assert {w.dtype for w in vae.composite.weights} == {"float32"}
    rt = explore.round_trip(vae, x[:8])
    # A trained model redraws real digits far better than an untrained one (error ~0.1 or more).
    assert float(np.mean(rt.errors["decoder(z_mean)"])) < 0.06
    dae = store.load("conv_dae")
    noisy = data.add_noise(data.to_float(x[:32]), "keras", seed=0)
    restored = explore.denoise(dae, noisy)
    assert (
        np.mean((restored - x[:32] / 255.0) ** 2)
        < np.mean((noisy[..., 0] - x[:32] / 255.0) ** 2) / 3
    )
    _, sevens = explore.sample_prior(store.load("cvae_2d"), 4, label=7, seed=0)
    assert sevens.shape == (4, 28, 28)


@pytest.mark.parametrize("page", PAGES)
def test_every_page_works_on_first_start(first_start, page):
    at = open_app(page, timeout=90)
    assert not at.error, [e.value for e in at.error]
    text = " ".join(m.value for m in at.markdown) + " ".join(i.value for i in at.info)
    if page.endswith("train.py"):
        # All 60,000 digits are there from the first start and are the default data; the quick
        # demo is offered.
        data_choice = next(r for r in at.radio if r.label == "Data")
        assert data_choice.value == "mnist"
        assert any(b.label.startswith("Start the quick demo") for b in at.button)
    else:
        assert "no trained model" not in text.lower()


def test_shipped_models_record_a_command_that_retrains_them_and_no_temporary_paths():
    for meta_file in SHIPPED_DIR.glob("*.json"):
        meta = json.loads(meta_file.read_text())
        assert "/tmp" not in json.dumps(meta), meta_file.name
        assert meta["command"].startswith(("python -m vae_core.train", "python scripts/")), (
            meta_file
        )
