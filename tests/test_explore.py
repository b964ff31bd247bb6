"""Exploration API: shapes, the mean/sample distinction, one-call manifolds, metrics."""

import numpy as np
import pytest

from vae_core import explore, metrics
from vae_core.data import load_sample
from vae_core.errors import UserError
from vae_core.models import build_model
from vae_core.specs import ModelSpec

RNG = np.random.default_rng(1)
X = (RNG.random((4, 28, 28)) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def vae():
    return build_model(ModelSpec("mlp_vae", latent_dim=2, hidden=32))


@pytest.fixture(scope="module")
def cvae():
    return build_model(ModelSpec("cvae", latent_dim=3, hidden=32))


@pytest.fixture(scope="module")
def dae():
    return build_model(ModelSpec("conv_dae", latent_dim=8, hidden=32))


def test_round_trip_shows_mean_samples_and_both_modes(vae):
    rt = explore.round_trip(vae, X, n_samples=5, seed=2)
    assert rt.inputs.shape == (4, 28, 28) and rt.inputs.max() <= 1.0
    assert rt.z_mean.shape == rt.sigma.shape == (4, 2) and (rt.sigma > 0).all()
    assert rt.z_samples.shape == (4, 5, 2) and rt.decoded_samples.shape == (4, 5, 28, 28)
    # Inference mode is decoder(z_mean); training mode samples, so it differs.
    np.testing.assert_allclose(rt.composite_inference, rt.decoded_mean, atol=1e-6)
    assert np.abs(rt.composite_training - rt.decoded_mean).max() > 1e-4
    assert set(rt.errors) == {
        "decoder(z_mean)",
        "decoder(z)",
        "vae(x, training=True)",
        "vae(x, training=False)",
    }
    assert rt.errors["decoder(z)"].shape == (4, 5)
    # Seeded: the same seed gives the same samples.
    again = explore.round_trip(vae, X, n_samples=5, seed=2)
    np.testing.assert_array_equal(again.z_samples, rt.z_samples)


def test_round_trip_for_the_dae_has_no_sampling(dae):
    rt = explore.round_trip(dae, X)
    assert rt.sigma is None and rt.z_samples is None and rt.z_mean.shape == (4, 8)
    np.testing.assert_allclose(rt.composite_training, rt.composite_inference, atol=1e-6)


def test_conditional_model_needs_labels(cvae):
    with pytest.raises(UserError, match="which digit"):
        explore.sample_prior(cvae, 4)
    z, images = explore.sample_prior(cvae, 4, label=7, seed=0)
    assert images.shape == (4, 28, 28)
    _, other = explore.sample_prior(cvae, 4, label=1, seed=0)
    assert np.abs(images - other).max() > 1e-4  # same z, another label: another image
    with pytest.raises(UserError, match="between 0 and 9"):
        explore.sample_prior(cvae, 4, label=12)


def test_sample_prior_temperature_and_seed(vae):
    z1, im1 = explore.sample_prior(vae, 64, seed=5)
    z2, im2 = explore.sample_prior(vae, 64, seed=5)
    np.testing.assert_array_equal(im1, im2)
    z0, _ = explore.sample_prior(vae, 64, seed=5, temperature=0.0)
    assert np.all(z0 == 0)
    zh, _ = explore.sample_prior(vae, 64, seed=5, temperature=0.5)
    np.testing.assert_allclose(zh, z1 * 0.5, rtol=1e-6)


def test_prior_sampling_refused_for_the_dae(dae):
    with pytest.raises(UserError, match="no prior"):
        explore.sample_prior(dae, 4)


def test_latent_grid_is_one_batched_decoder_call(vae, monkeypatch):
    calls = []
    monkeypatch.setattr(explore, "decode", _counting_decode(calls))
    xs, ys, grid = explore.latent_grid(vae, 30, extent=1.5)
    assert grid.shape == (30, 30, 28, 28)
    assert len(calls) == 1 and calls[0] == (900, 2)
    assert xs[0] == -1.5 and xs[-1] == 1.5 and ys[0] == 1.5  # top row is the high end of y


def _counting_decode(calls):
    real = explore.decode

    def decode(bundle, z, labels=None):
        calls.append(np.shape(z))
        return real(bundle, z, labels)

    return decode


def test_latent_grid_slice_for_bigger_latent(cvae):
    base = np.array([0.0, 0.0, 0.7], np.float32)
    xs, ys, grid = explore.latent_grid(cvae, 4, dims=(0, 2), base=base, label=3)
    assert grid.shape == (4, 4, 28, 28)
    with pytest.raises(UserError, match="two different"):
        explore.latent_grid(cvae, 4, dims=(1, 1), label=3)


def test_interpolation_ends_at_the_two_digits(vae):
    for method in ("linear", "spherical"):
        path, images = explore.interpolate(vae, X[0], X[1], steps=7, method=method)
        z_mean, _ = explore.encode(vae, X[:2])
        np.testing.assert_allclose(path[0], z_mean[0], atol=1e-5)
        np.testing.assert_allclose(path[-1], z_mean[1], atol=1e-5)
        assert images.shape == (7, 28, 28)
    a, b = np.array([1.0, 0.0]), np.array([0.0, 2.0])
    mid = explore.slerp(a, b, np.array([0.5]))[0]
    np.testing.assert_allclose(mid, np.sin(np.pi / 4) * (a + b), rtol=1e-6)  # omega = 90 degrees


def test_decode_checks_latent_size(vae):
    with pytest.raises(UserError, match="2 dimensions"):
        explore.decode(vae, np.zeros((1, 5)))


def test_denoise_returns_images_in_range(dae):
    out = explore.denoise(dae, X)
    assert out.shape == (4, 28, 28) and 0 <= out.min() and out.max() <= 1


def test_psnr_and_ssim_behave():
    clean = RNG.random((3, 28, 28)).astype(np.float32)
    assert np.all(metrics.psnr(clean, clean) == 100.0)
    np.testing.assert_allclose(metrics.ssim(clean, clean), 1.0, atol=1e-5)
    noisy = np.clip(clean + 0.1, 0, 1)
    mse = np.mean((clean - noisy) ** 2, axis=(1, 2))
    np.testing.assert_allclose(metrics.psnr(clean, noisy), 10 * np.log10(1 / mse), rtol=1e-5)
    very_noisy = np.clip(clean + RNG.normal(0, 0.5, clean.shape), 0, 1)
    assert np.all(metrics.ssim(clean, very_noisy) < metrics.ssim(clean, noisy))


def test_ssim_gives_tensorflows_numbers():
    import tensorflow as tf

    clean = RNG.random((4, 28, 28)).astype(np.float32)
    clean[0] = (
        load_sample()[0][0].reshape(28, 28) / 255
    )  # a real digit, then noisy/random/dim/blank
    restored = np.stack(
        [
            np.clip(clean[0] + RNG.normal(0, 0.2, (28, 28)), 0, 1),
            RNG.random((28, 28)),
            clean[2] * 0.5,
            np.zeros((28, 28)),
        ]
    ).astype(np.float32)
    want = tf.image.ssim(clean[..., None], restored[..., None], max_val=1.0).numpy()
    np.testing.assert_allclose(metrics.ssim(clean, restored), want, atol=2e-5)
    wide = RNG.random((2, 20, 33)).astype(np.float32)  # not square, not 28
    want = tf.image.ssim(wide[..., None], wide[::-1, ..., None], max_val=1.0).numpy()
    np.testing.assert_allclose(metrics.ssim(wide, wide[::-1]), want, atol=2e-5)
    rgb = RNG.random((2, 16, 16, 3)).astype(np.float32)  # channels are averaged, as TF does
    want = tf.image.ssim(rgb, rgb[::-1], max_val=1.0).numpy()
    np.testing.assert_allclose(metrics.ssim(rgb, rgb[::-1]), want, atol=2e-5)
    # One image, with or without the channel axis, against a batch of the same shape.
    one = metrics.ssim(clean[0], restored[0])
    np.testing.assert_allclose(one, metrics.ssim(clean[:1, ..., None], restored[:1, ..., None]))
    np.testing.assert_allclose(one, metrics.ssim(clean, restored)[:1], atol=1e-12)
    with pytest.raises(ValueError, match="at least 11x11"):
        metrics.ssim(np.zeros((1, 8, 8)), np.zeros((1, 8, 8)))
    with pytest.raises(ValueError, match="same size"):
        metrics.ssim(np.zeros((1, 28, 28)), np.zeros((1, 20, 20)))


def test_negative_elbo_is_reconstruction_plus_kl_and_seeded(vae):
    x = X.astype(np.float32) / 255
    a = metrics.negative_elbo(vae, x, seed=1)
    b = metrics.negative_elbo(vae, x, seed=1)
    assert a == b
    assert a["neg_elbo"] == pytest.approx(a["reconstruction"] + a["kl"])
    assert 0 < a["neg_elbo"] < 784 * 10  # an untrained model is near 784 * ln 2 per image


def test_evaluate_reports_denoising_scores_for_the_dae(dae):
    scores = metrics.evaluate(dae, X.astype(np.float32) / 255)
    assert set(scores) == {"psnr", "ssim", "noisy_psnr", "noisy_ssim"}


def test_latent_codes_as_csv_one_row_per_digit(vae, dae):
    import csv
    import io

    rt = explore.round_trip(vae, X[:3], n_samples=2, seed=0)
    rows = list(csv.reader(io.StringIO(explore.codes_csv(rt, ["#4", "#9", "upload"], [4, 9, 1]))))
    assert rows[0] == ["digit", "label", "z_mean[0]", "z_mean[1]", "sigma[0]", "sigma[1]"]
    assert [r[:2] for r in rows[1:]] == [["#4", "4"], ["#9", "9"], ["upload", "1"]]
    np.testing.assert_allclose(np.array(rows[2][2:4], float), rt.z_mean[1], rtol=1e-5)
    np.testing.assert_allclose(np.array(rows[3][4:6], float), rt.sigma[2], rtol=1e-5)
    rt = explore.round_trip(dae, X[:1])
    rows = list(csv.reader(io.StringIO(explore.codes_csv(rt, ["upload"]))))
    assert rows[0][2:] == [f"latent[{j}]" for j in range(8)] and rows[1][:2] == ["upload", ""]
    np.testing.assert_allclose(np.array(rows[1][2:], float), rt.z_mean[0], rtol=1e-5)


def test_restyle_keeps_the_style_and_draws_every_label(cvae):
    x, y = load_sample()
    redrawn = explore.restyle(cvae, x[:3], y[:3])
    assert redrawn.shape == (3, 10, 28, 28) and 0 <= redrawn.min() and redrawn.max() <= 1
    # Told its own label, the style comes back as decoder(z_mean) of the round trip.
    rt = explore.round_trip(cvae, x[:3], y[:3], n_samples=1)
    for i in range(3):
        np.testing.assert_allclose(redrawn[i, y[i]], rt.decoded_mean[i], atol=1e-5)
    assert np.abs(redrawn[0, 0] - redrawn[0, 1]).max() > 1e-4  # another label, another picture


def test_restyle_needs_the_conditional_vae(vae):
    with pytest.raises(UserError, match="conditional VAE"):
        explore.restyle(vae, X[:1], [3])
