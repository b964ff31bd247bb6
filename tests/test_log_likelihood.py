"""Importance-sampled log p(x): exact on a model whose p(x) is known, a bound that tightens with K."""

from __future__ import annotations

import numpy as np
import pytest

from vae_core.metrics import importance_log_likelihood, log_likelihood, negative_elbo

# Probabilistic PCA: z ~ N(0, I_2), x | z ~ N(W z + b, s^2 I_5), so p(x) = N(b, W W^T + s^2 I).
RNG = np.random.default_rng(7)
W, B, S = RNG.normal(size=(5, 2)), RNG.normal(size=5), 0.5
X = RNG.multivariate_normal(B, W @ W.T + S**2 * np.eye(5), size=6)


def _exact_log_px(x: np.ndarray) -> np.ndarray:
    cov = W @ W.T + S**2 * np.eye(5)
    diff = x - B
    _, logdet = np.linalg.slogdet(cov)
    return -0.5 * (5 * np.log(2 * np.pi) + logdet + np.sum(diff @ np.linalg.inv(cov) * diff, 1))


def _log_joint(z: np.ndarray) -> np.ndarray:
    """log p(x, z) for z (c, N, 2) against X (N, 5)."""
    mean = z @ W.T + B
    log_px_z = -0.5 * np.sum(np.log(2 * np.pi * S**2) + (X - mean) ** 2 / S**2, axis=-1)
    return log_px_z - 0.5 * np.sum(np.log(2 * np.pi) + z**2, axis=-1)


def _rough_posterior() -> tuple[np.ndarray, np.ndarray]:
    """q(z|x): the true posterior's mean, nudged, with too wide a diagonal spread (K matters)."""
    cov = np.linalg.inv(np.eye(2) + W.T @ W / S**2)
    mean = (X - B) @ W @ cov.T / S**2
    return mean + 0.2, np.log(np.diag(cov) * 1.5) * np.ones_like(mean)


def _estimate(k: int, seed: int) -> np.ndarray:
    mean, log_var = _rough_posterior()
    rng = np.random.default_rng(seed)
    return importance_log_likelihood(mean, log_var, _log_joint, k=k, chunk=64, rng=rng)


def test_the_estimate_converges_to_the_exact_log_likelihood():
    exact = _exact_log_px(X)
    errors = [np.abs(_estimate(k, seed=1) - exact).mean() for k in (1, 30, 5000)]
    assert errors[-1] < 0.02
    assert errors[0] > errors[1] > errors[-1]


def test_one_sample_is_the_elbo_in_expectation_and_more_samples_never_lower_it():
    mean, log_var = _rough_posterior()
    # The ELBO by a very long plain average of log p(x, z) - log q(z|x).
    rng = np.random.default_rng(3)
    eps = rng.standard_normal((20000, *mean.shape))
    z = mean + np.exp(0.5 * log_var) * eps
    log_q = -0.5 * np.sum(np.log(2 * np.pi) + log_var + eps**2, axis=-1)
    elbo = np.mean(_log_joint(z) - log_q, axis=0)
    one = np.mean([_estimate(1, seed) for seed in range(2000)], axis=0)
    np.testing.assert_allclose(one, elbo, atol=0.15)
    averages = [np.mean([_estimate(k, seed) for seed in range(40)]) for k in (1, 4, 32, 256)]
    assert averages == sorted(averages)
    assert averages[-1] <= _exact_log_px(X).mean() + 0.05  # a bound from below, in expectation


def test_a_vae_s_log_likelihood_is_above_its_elbo_and_k1_matches_it(trained_home):
    from vae_core.data import load_sample, to_float
    from vae_core.store import Store

    store = Store(trained_home / "models", shipped_root=None)
    bundle = store.load("mlp_vae")
    x, _ = load_sample()
    binary = (to_float(x[:40]) > 0.5).astype(np.float32)  # Bernoulli pixels, as papers score
    bound = -negative_elbo(bundle, binary, seed=0)["neg_elbo"]
    k1 = np.mean([log_likelihood(bundle, binary, k=1, seed=s).mean() for s in range(8)])
    k200 = log_likelihood(bundle, binary, k=200, seed=0)
    assert np.all(np.isfinite(k200))
    assert abs(k1 - bound) < 0.03 * abs(bound)
    assert k200.mean() > bound
    # Conditional models are given their labels; a DAE has no likelihood.
    cvae = store.load("cvae")
    _, y = load_sample()
    assert np.isfinite(log_likelihood(cvae, binary[:8], y[:8], k=20)).all()
    with pytest.raises(ValueError):
        log_likelihood(store.load("conv_dae"), binary[:2], k=2)


def test_a_run_on_binarized_mnist_trains_on_black_and_white_digits(tmp_path, monkeypatch):
    from vae_core import data
    from vae_core.specs import ModelSpec, TrainSpec
    from vae_core.store import Store
    from vae_core.tasks import DigitTask
    from vae_core.train import run_training

    monkeypatch.setenv("VAE_LAB_HOME", str(tmp_path / "home"))
    store = Store(tmp_path / "store", shipped_root=None)
    model = ModelSpec("mlp_vae", latent_dim=4, hidden=32, prior="class_mixture")
    train = TrainSpec("mnist_binary", epochs=1, batch_size=64, max_train_samples=256, log_every_s=0)
    status = run_training(tmp_path / "run", model, train, store=store, save_as="binary")
    assert status["state"] == "completed"

    # What the trainer was fed: pixels in {0, 1} only, from grey training digits.
    class _Run:  # the little of a Run that a DigitTask reads
        model_spec, train_spec = model, train

    task = DigitTask(_Run())
    x, y = next(iter(task.batches(drop_remainder=True).train))
    assert set(np.unique(x.numpy())) <= {0.0, 1.0} and y.shape == (64,)
    assert set(np.unique(task.x_test)) <= {0.0, 1.0}
    assert not set(np.unique(data.load_dataset("mnist").x_train[:256])) <= {0, 255}
    # Its test -ELBO is measured on the binarized test digits, and log p(x) sits above it.
    bundle = store.load("binary")
    ll = log_likelihood(bundle, task.x_test[:20], k=50)
    assert ll.mean() > -negative_elbo(bundle, task.x_test[:20])["neg_elbo"]


def test_the_page_s_estimates_for_every_k_are_the_same_estimator(trained_home):
    from vae_core import explore
    from vae_core.data import load_sample, to_float
    from vae_core.metrics import estimates_by_k, log_weights
    from vae_core.store import Store

    bundle = Store(trained_home / "models", shipped_root=None).load("mlp_vae")
    x = to_float(load_sample()[0][:5])
    log_w = log_weights(bundle, x, k=200, seed=4)
    same = log_likelihood(bundle, x, k=200, batch_size=5, chunk=100, seed=4)
    np.testing.assert_allclose(estimates_by_k(log_w, [200])[0], same, rtol=1e-6)
    bound = explore.likelihood_bound(bundle, x, seed=4)
    assert bound.ks[0] == 1 and bound.ks[-1] == 1000
    # The estimate climbs with K (on average over the digits) and stays above the ELBO.
    means = bound.estimates.mean(axis=1)
    assert means[-1] > means[0] and means[-1] > bound.elbo.mean()
    assert bound.gap > 0


def test_a_larger_k_extends_the_same_curve(trained_home):
    """The page draws only the K asked for: K = 100 then K = 1,000 give the same first estimates
    and the same ELBO (one stream of draws), so the curve only grows."""
    from vae_core import explore
    from vae_core.data import load_sample, to_float
    from vae_core.store import Store

    bundle = Store(trained_home / "models", shipped_root=None).load("mlp_vae")
    x = to_float(load_sample()[0][:6])
    few, many = (explore.likelihood_bound(bundle, x, k=k, seed=2) for k in (100, 1000))
    one = explore.likelihood_bound(bundle, x, k=1, seed=2)
    assert few.ks == (1, 3, 10, 30, 100) and many.ks[-1] == 1000 and one.ks == few.ks
    np.testing.assert_allclose(many.estimates[: len(few.ks)], few.estimates, rtol=1e-6)
    np.testing.assert_allclose(many.elbo, few.elbo, rtol=1e-6)
    np.testing.assert_allclose(one.estimates, few.estimates, rtol=1e-6)
