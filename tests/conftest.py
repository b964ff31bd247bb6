"""Shared fixtures: an isolated VAE_LAB_HOME, and a store holding one small model of each kind.

The models are built once per test session and trained for one short epoch on the bundled sample,
so pictures are digit-like enough for tests to notice changes, yet building them takes seconds.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

# Small but real: each kind, with latent sizes that exercise 2-D plots (mlp, cvae), a slice of a
# bigger space (conv_vae) and the DAE's latent vector.
STORE_SPECS = {
    "mlp_vae": dict(kind="mlp_vae", latent_dim=2, hidden=64),
    "conv_vae": dict(kind="conv_vae", latent_dim=4, hidden=32),
    "conv_dae": dict(kind="conv_dae", latent_dim=8, hidden=32),
    "cvae": dict(kind="cvae", latent_dim=2, hidden=64),
}


# Read before any test's monkeypatch hides it (sample_only removes it for the page tests).
MNIST_DIR = os.environ.get("VAE_LAB_DATA_DIR")


@pytest.fixture
def sample_only(monkeypatch, tmp_path):
    """No full MNIST unless a test asks for it: no data dir, no Keras cache in HOME and no shipped
    copy."""
    from vae_core import data

    monkeypatch.setattr(data, "SHIPPED_MNIST_DIR", tmp_path / "no-shipped-mnist")
    monkeypatch.delenv("VAE_LAB_DATA_DIR", raising=False)
    monkeypatch.delenv("KERAS_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))


@pytest.fixture(autouse=True)
def thawed_heap():
    """Every test leaves the collector unfrozen (the app's model loads freeze it: shared.settle_heap)."""
    yield
    if gc.get_freeze_count():
        gc.unfreeze()


@pytest.fixture
def children():
    """Child processes a test starts (directly, through runs, or as workers); each leads its own
    session, and every one still alive is killed with its group at the end."""
    started: list[subprocess.Popen] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _train_briefly(bundle, x: np.ndarray, y: np.ndarray, epochs: int = 1) -> None:
    import keras
    import tensorflow as tf

    from vae_core.data import add_noise
    from vae_core.models import Trainer

    xf = (x.astype(np.float32) / 255.0)[..., None]
    if not bundle.spec.is_vae:
        data = (add_noise(xf, "keras", 0.5, seed=0).astype(np.float32), xf)
    elif bundle.spec.is_conditional:
        data = (xf, y.astype(np.int32))
    else:
        data = xf
    ds = tf.data.Dataset.from_tensor_slices(data).batch(50)
    trainer = Trainer(bundle)
    trainer.compile(optimizer=keras.optimizers.Adam(2e-3))
    trainer.fit(ds, epochs=epochs, verbose=0, shuffle=False)


@pytest.fixture(scope="session")
def trained_home(tmp_path_factory) -> Path:
    """A VAE_LAB_HOME whose store holds STORE_SPECS' models (names = their kinds), built once."""
    import keras

    from vae_core.data import load_sample
    from vae_core.models import build_model
    from vae_core.specs import ModelSpec
    from vae_core.store import Store

    home = tmp_path_factory.mktemp("vae_lab_home")
    store = Store(home / "models", shipped_root=None)
    x, y = load_sample()
    for name, fields in STORE_SPECS.items():
        keras.utils.set_random_seed(0)
        bundle = build_model(ModelSpec(**fields))
        _train_briefly(bundle, x, y)
        store.save(name, bundle, {"dataset": "sample", "epochs": 1})
    return home


@pytest.fixture
def no_shipped_models(monkeypatch):
    """Hide the models shipped in vae_core/pretrained, so a test sees only its own store."""
    from vae_core import store as store_mod

    def only_user_store():
        return store_mod.Store(shipped_root=None)

    # The pages reach the store through store_mod.default_store, so this one patch covers them.
    monkeypatch.setattr(store_mod, "default_store", only_user_store)


@pytest.fixture
def empty_lab_home(tmp_path, monkeypatch, no_shipped_models) -> Path:
    """VAE_LAB_HOME in a fresh temporary folder: no models, no runs; nothing downloads."""
    home = tmp_path / "vae_lab_home"
    home.mkdir()
    monkeypatch.setenv("VAE_LAB_HOME", str(home))
    monkeypatch.setenv("VAE_LAB_OFFLINE", "1")
    return home


@pytest.fixture
def lab_home(trained_home, monkeypatch) -> Path:
    """VAE_LAB_HOME pointing at the shared store of small models (treat it as read-only)."""
    monkeypatch.setenv("VAE_LAB_HOME", str(trained_home))
    monkeypatch.setenv("VAE_LAB_OFFLINE", "1")
    return trained_home


@pytest.fixture
def own_store(tmp_path, monkeypatch, trained_home, no_shipped_models) -> Path:
    """A writable store holding a copy of the small trained models (no shipped ones)."""
    from benchmarks.serve import copy_models

    home = tmp_path / "home"
    copy_models(trained_home / "models", home / "models")
    monkeypatch.setenv("VAE_LAB_HOME", str(home))
    monkeypatch.setenv("VAE_LAB_OFFLINE", "1")
    return home / "models"


@pytest.fixture(scope="session")
def full_mnist():
    """The full MNIST: from VAE_LAB_DATA_DIR when it is set, else the copy shipped with VAE Lab."""
    from vae_core import data

    return data.load_dataset("mnist", MNIST_DIR, allow_download=False)


@dataclass
class DigitReader:
    """A small CNN that reads digits, and its accuracy on MNIST's 10,000 test digits."""

    model: object
    test_accuracy: float

    def read(self, digits: np.ndarray) -> np.ndarray:
        """The label it reads in each digit ((N, 28, 28), uint8 or float in [0, 1])."""
        from benchmarks.photos import read_digits

        return read_digits(self.model, np.asarray(digits))


@pytest.fixture(scope="session")
def digit_reader(full_mnist, tmp_path_factory) -> DigitReader:
    """The CNN, trained once per test session on MNIST's 60,000 training digits (~30 s) and kept in
    pytest's temporary folder, never in the repository."""
    import keras

    from benchmarks.photos import read_digits, train_classifier

    folder = tmp_path_factory.getbasetemp() / "digit_reader"
    path, facts = folder / "reader.keras", folder / "reader.json"
    if path.exists() and facts.exists():
        return DigitReader(keras.saving.load_model(path), json.loads(facts.read_text())["acc"])
    model = train_classifier(full_mnist.x_train, full_mnist.y_train)
    accuracy = float(np.mean(read_digits(model, full_mnist.x_test) == full_mnist.y_test))
    folder.mkdir(exist_ok=True)
    model.save(path)
    facts.write_text(json.dumps({"acc": accuracy}))
    return DigitReader(model, accuracy)


# A Mult-VAE small enough to train in seconds, through the real run (so its metadata holds the
# split's settings and the test scores beside EASE and popularity), with an item floor so the page
# has to rebuild a split that differs from the paper's default.
RECOMMENDER_SPEC = dict(kind="mult_vae", latent_dim=16, hidden=64)
RECOMMENDER_TRAIN = dict(
    dataset="ml-latest-small", epochs=3, batch_size=500, learning_rate=3e-3, kl_anneal_steps=4,
    min_item_users=5,
)  # fmt: skip


@pytest.fixture(scope="session")
def recommender_home(tmp_path_factory) -> Path:
    """A VAE_LAB_HOME whose store holds "mult_vae" (trained briefly on the shipped MovieLens) and
    "digits" (an untrained digit VAE, for the pages' guards), built once."""
    import os

    import keras

    from vae_core.models import build_model
    from vae_core.specs import ModelSpec, TrainSpec
    from vae_core.store import Store
    from vae_core.train import run_training

    home = tmp_path_factory.mktemp("recommender_home")
    store = Store(home / "models", shipped_root=None)
    data_dir = os.environ.pop("VAE_LAB_DATA_DIR", None)  # the shipped ml-latest-small
    try:
        run_training(home / "runs" / "mv", ModelSpec(**RECOMMENDER_SPEC),
                     TrainSpec(**RECOMMENDER_TRAIN), save_as="mult_vae", store=store)  # fmt: skip
    finally:
        if data_dir is not None:
            os.environ["VAE_LAB_DATA_DIR"] = data_dir
    keras.utils.set_random_seed(0)
    store.save("digits", build_model(ModelSpec("mlp_vae", latent_dim=2, hidden=16)), {})
    return home


@pytest.fixture
def recommender_lab(recommender_home, monkeypatch, no_shipped_models) -> Path:
    """VAE_LAB_HOME pointing at the recommender store (treat it as read-only); nothing downloads."""
    monkeypatch.setenv("VAE_LAB_HOME", str(recommender_home))
    monkeypatch.setenv("VAE_LAB_OFFLINE", "1")
    monkeypatch.delenv("VAE_LAB_DATA_DIR", raising=False)
    return recommender_home
