"""Mixture priors: their density, the KL estimate they train with, saving, drawing, the presets."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from vae_core import explore, figures
from vae_core.errors import UserError
from vae_core.layers import MixturePrior
from vae_core.models import Trainer, build_model, kl_divergence, prior_of
from vae_core.specs import ModelSpec, TrainSpec, named_preset
from vae_core.store import Store
from vae_core.tasks import PLACE_BOOST, PlaceDigitsFirst


def _prior(k=3, d=2, seed=0) -> MixturePrior:
    prior = MixturePrior(k)
    prior.build((None, d))
    rng = np.random.default_rng(seed)
    prior.means.assign(rng.normal(size=(k, d)) * 2)
    prior.log_vars.assign(rng.normal(size=(k, d)) * 0.5)
    return prior


def test_the_mixture_density_is_an_equal_weight_mixture_of_gaussians():
    prior = _prior()
    means, var = np.asarray(prior.means), np.exp(np.asarray(prior.log_vars))
    z = np.random.default_rng(1).normal(size=(5, 2)).astype(np.float32)
    per = np.stack(
        [multivariate_normal(means[k], np.diag(var[k])).logpdf(z) for k in range(3)], axis=1
    )
    np.testing.assert_allclose(prior.log_prob(z), logsumexp(per, axis=1) - np.log(3), rtol=1e-5)
    # One component: that Gaussian alone (what a digit pays to sit in its own digit's Gaussian).
    comp = np.array([2, 0, 1, 1, 2])
    np.testing.assert_allclose(prior.log_prob(z, comp), per[np.arange(5), comp], rtol=1e-5)


def test_the_kl_estimate_is_unbiased_and_matches_the_exact_kl_for_a_standard_normal_prior():
    prior = MixturePrior(1)
    prior.build((None, 2))
    prior.means.assign(np.zeros((1, 2)))
    prior.log_vars.assign(np.zeros((1, 2)))
    z_mean = np.tile(np.array([[0.7, -1.2]], np.float32), (20000, 1))
    z_log_var = np.tile(np.array([[-1.0, 0.3]], np.float32), (20000, 1))
    z = z_mean + np.exp(0.5 * z_log_var) * np.random.default_rng(0).standard_normal(z_mean.shape)
    exact = np.asarray(kl_divergence(z_mean[:1], z_log_var[:1]))[0]
    estimate = np.asarray(kl_divergence(z_mean, z_log_var, z.astype(np.float32), prior))
    assert abs(estimate.mean() - exact) < 0.03
    assert estimate.std() > 0.1  # an estimate per sample, not the closed form in disguise


def test_kinds_allow_only_their_priors():
    ModelSpec("conv_vae", prior="mixture")
    for kind in ("conv_dae", "cvae", "mult_vae"):
        with pytest.raises(UserError, match="prior"):
            ModelSpec(kind, prior="mixture")
    # One Gaussian per digit means as many Gaussians as digits.
    assert ModelSpec("mlp_vae", prior="class_mixture", prior_components=3).prior_components == 10


def test_a_class_mixture_model_keeps_its_gaussians_apart_and_fixed(tmp_path):
    spec = ModelSpec("mlp_vae", latent_dim=2, hidden=32, prior="class_mixture")
    bundle = build_model(spec)
    prior = prior_of(bundle.decoder)
    means = np.asarray(prior.means)
    # On a circle, neighbours more than 3.5 standard deviations apart.
    gaps = np.linalg.norm(means - np.roll(means, 1, axis=0), axis=1)
    assert gaps.min() > 3.5 * np.exp(0.5 * np.asarray(prior.log_vars)).max()
    trainer = Trainer(bundle)
    assert not any("prior" in w.path for w in trainer.trainable_weights)
    # Trained with labels: the data is (x, label), and the KL is to the label's own Gaussian.
    x = np.random.default_rng(0).random((8, 28, 28, 1)).astype(np.float32)
    y = np.arange(8, dtype=np.int32)
    _, _, kl_own = trainer.compute_losses((tf.constant(x), tf.constant(y)), training=True)
    _, _, kl_wrong = trainer.compute_losses((tf.constant(x), tf.constant(y[::-1])), training=True)
    assert float(kl_own) != pytest.approx(float(kl_wrong))

    store = Store(tmp_path / "models", shipped_root=None)
    store.save("cm", bundle)
    loaded = store.load("cm")
    assert loaded.spec.prior == "class_mixture"
    np.testing.assert_allclose(np.asarray(prior_of(loaded.decoder).means), means)
    # Generate draws from the mixture: every draw lies near one of the ten Gaussians.
    z, images = explore.sample_prior(loaded, 200, temperature=1.0, seed=3)
    nearest = np.linalg.norm(z[:, None, :] - means[None], axis=2).min(axis=1)
    assert images.shape == (200, 28, 28) and np.percentile(nearest, 95) < 3.0
    assert explore.prior_reach(loaded) > 6.0
    cold, _ = explore.sample_prior(loaded, 50, temperature=0.0, seed=3)
    assert np.linalg.norm(cold[:, None, :] - means[None], axis=2).min(axis=1).max() < 1e-5


def test_the_first_epoch_places_digits_then_the_true_kl_weight_returns():
    bundle = build_model(ModelSpec("mlp_vae", latent_dim=2, hidden=16, prior="class_mixture"))
    trainer = Trainer(bundle)
    cb = PlaceDigitsFirst(beta=1.0)
    cb.set_model(trainer)
    cb.on_epoch_begin(0)
    assert float(trainer.kl_weight.numpy()) == PLACE_BOOST
    cb.on_epoch_begin(1)
    assert float(trainer.kl_weight.numpy()) == 1.0


def test_the_quick_preset_names_its_kind_data_and_prior():
    model, train = named_preset("quick")
    assert (model.kind, model.latent_dim, model.prior) == ("mlp_vae", 2, "class_mixture")
    assert train.dataset == "mnist" and train.epochs <= 10
    with pytest.raises(UserError, match="preset"):
        named_preset("slow")


def test_the_cli_takes_the_quick_preset_and_refuses_another_kind(tmp_path, capsys):
    from vae_core.train import _parser, main, specs_from_args

    model, train = specs_from_args(_parser().parse_args(["--run-dir", "r", "--preset", "quick"]))
    assert (model, train) == named_preset("quick")
    args = ["--run-dir", "r", "--preset", "quick", "--epochs", "2"]
    assert specs_from_args(_parser().parse_args(args))[1].epochs == 2
    code = main(["--run-dir", str(tmp_path / "r"), "--preset", "quick", "--model", "conv_vae"])
    assert code == 2
    assert "quick preset trains a mlp_vae" in capsys.readouterr().err


def test_the_prior_map_shows_digits_and_both_priors():
    z = np.random.default_rng(0).normal(size=(30, 2))
    y = np.arange(30) % 10
    plain = figures.prior_map(z, y)
    names = [t.name for t in plain.data]
    assert "N(0, I): 1 sigma" in names and "N(0, I): 2 sigma" in names
    assert not any("learned" in n for n in names)
    means, sigmas = np.ones((10, 2)), np.full((10, 2), 0.5)
    mixed = [t.name for t in figures.prior_map(z, y, means, sigmas).data]
    assert "its prior: 2 sigma of each Gaussian" in mixed
    # Above two dimensions: the codes' principal axes; N(0, I) stays a unit circle around 0's image.
    z32 = np.random.default_rng(1).normal(size=(50, 32)) + 3.0
    fig = figures.prior_map(z32, np.arange(50) % 10, np.zeros((10, 32)), np.ones((10, 32)))
    circle = next(t for t in fig.data if t.name == "N(0, I): 1 sigma")
    xs = np.array([v for v in circle.x if v is not None])
    assert xs.max() - xs.min() == pytest.approx(2.0, abs=0.01)
    assert "principal axis 1" in fig.layout.xaxis.title.text
    assert TrainSpec().dataset == "mnist"
