"""The shipped denoiser works on every noise the Denoise page offers, and leaves clean digits alone.

Scored on the bundled sample (500 real MNIST test digits) with the same code as the benchmark
(benchmarks/denoiser.py, which runs the whole MNIST test set for benchmarks/RESULTS.md).
"""

from __future__ import annotations

import numpy as np
import pytest

from vae_core import data, explore, metrics, paths
from vae_core.store import Store

CASES = (("none", 0.0), ("keras", 0.5), ("gaussian", 0.3), ("salt_pepper", 0.3), ("mask", 0.3))


@pytest.fixture(scope="module")
def shipped_dae(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("store"), shipped_root=paths.SHIPPED_MODELS_DIR)
    return store.load("conv_dae")


@pytest.fixture(scope="module")
def sample():
    x, y = data.load_sample()
    return data.to_float(x[:300]), y[:300]


def test_clean_digits_come_back_the_same(shipped_dae, sample):
    x, _ = sample
    (clean,) = metrics.scores_by_noise(shipped_dae, x, [("none", 0.0)])
    assert clean["psnr"] >= 24.0, clean
    # Every digit stays itself: none is erased (the old fog-only denoiser blanked clean digits).
    out = explore.denoise(shipped_dae, x)
    ink_in, ink_out = x[..., 0].sum(axis=(1, 2)), out.sum(axis=(1, 2))
    assert np.all(ink_out > 0.6 * ink_in)
    assert np.min(metrics.psnr(x, out[..., None])) > 15.0


def test_the_output_beats_the_input_for_every_noise_the_page_offers(shipped_dae, sample):
    x, _ = sample
    rows = metrics.scores_by_noise(shipped_dae, x, CASES[1:], seed=7)
    for row in rows:
        assert row["psnr"] > row["noisy_psnr"] + 1.0, row
        assert row["ssim"] > row["noisy_ssim"], row
    fog = next(r for r in rows if r["noise"] == "keras")
    assert fog["psnr"] >= 19.5  # 20 dB and more on the whole test set (benchmarks/RESULTS.md)


def test_its_metadata_says_what_it_learned(shipped_dae):
    meta = shipped_dae.meta
    seen = explore.noise_seen(meta)
    assert seen is not None and seen.mixed
    assert set(seen.kinds) == {"none", *data.NOISE_KINDS}
    assert "--noise mixed" in meta["command"] and meta["seed"] == 0
    assert meta["epochs"] >= 10 and meta["dataset"] == "mnist"
    assert {"psnr", "ssim", "noisy_psnr"} <= set(meta["test_metrics"])
