"""Quality numbers: negative ELBO in nats per image, PSNR and SSIM."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from vae_core.images import as_batch
from vae_core.models import ModelBundle, elbo_terms, prior_of, with_label


def psnr(clean: np.ndarray, restored: np.ndarray) -> np.ndarray:
    """Peak signal-to-noise ratio in dB per image, for images in [0, 1]."""
    clean, restored = as_batch(clean), as_batch(restored)
    mse = np.mean((clean - restored) ** 2, axis=(1, 2, 3))
    # A perfect match would be infinite; 100 dB is "identical" for any display.
    return np.minimum(10.0 * np.log10(1.0 / np.maximum(mse, 1e-10)), 100.0)


SSIM_WINDOW, SSIM_SIGMA, SSIM_K1, SSIM_K2 = 11, 1.5, 0.01, 0.03


def _gaussian_valid(n: int) -> np.ndarray:
    """(n - 10, n): row i is the normalised 11-tap Gaussian placed at i, so M @ x is a 'valid' blur."""
    taps = np.arange(SSIM_WINDOW) - (SSIM_WINDOW - 1) / 2
    g = np.exp(-(taps**2) / (2 * SSIM_SIGMA**2))
    g /= g.sum()
    m = np.zeros((n - SSIM_WINDOW + 1, n))
    for i in range(m.shape[0]):
        m[i, i : i + SSIM_WINDOW] = g
    return m


def ssim(clean: np.ndarray, restored: np.ndarray) -> np.ndarray:
    """Structural similarity per image (Gaussian window 11, sigma 1.5, as Wang et al. 2004).

    The same numbers as `tf.image.ssim(clean, restored, max_val=1.0)` (tested; channels averaged
    as there), in NumPy: each Gaussian blur is two small matrix products, far cheaper per click
    than TensorFlow's eager ops (benchmarks/RESULTS.md).
    """
    try:
        x, y = np.broadcast_arrays(as_batch(clean), as_batch(restored))
    except ValueError:
        raise ValueError(
            f"SSIM compares images of the same size, not {np.shape(clean)} and {np.shape(restored)}"
        ) from None
    h, w = x.shape[1:3]
    if min(h, w) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels")
    # (N, H, W, C) -> (N, C, H, W): the products below broadcast over images and channels.
    x, y = (np.moveaxis(a, -1, 1).astype(np.float64) for a in (x, y))
    mh, mw_t = _gaussian_valid(h), _gaussian_valid(w).T
    blur = lambda a: mh @ a @ mw_t  # noqa: E731
    c1, c2 = SSIM_K1**2, SSIM_K2**2  # max_val = 1
    mx, my = blur(x), blur(y)
    num0, den0 = 2 * mx * my, mx**2 + my**2
    luminance = (num0 + c1) / (den0 + c1)
    cs = (2 * blur(x * y) - num0 + c2) / (blur(x**2 + y**2) - den0 + c2)
    return (luminance * cs).mean(axis=(2, 3)).mean(axis=1)


def negative_elbo(
    bundle: ModelBundle,
    x: np.ndarray,
    y: np.ndarray | None = None,
    *,
    batch_size: int = 1000,
    seed: int = 0,
) -> dict[str, float]:
    """Test negative ELBO in nats per image (one z sample per image, seeded), and its two terms."""
    spec = bundle.spec
    prior = prior_of(bundle.decoder)
    rng = np.random.default_rng(seed)
    x = as_batch(x)
    rec_sum = kl_sum = 0.0
    for start in range(0, len(x), batch_size):
        xb = tf.constant(x[start : start + batch_size])  # Keras refuses arrays mixed with tensors
        yb = None if y is None else tf.constant(y[start : start + batch_size], tf.int32)
        z_mean, z_log_var, _ = bundle.run("encoder", with_label(spec, xb, yb))
        eps = rng.standard_normal(z_mean.shape).astype(np.float32)
        z = z_mean + tf.exp(0.5 * z_log_var) * eps
        logits = bundle.run("logits", with_label(spec, z, yb))
        rec, kl = elbo_terms(spec, xb, logits, z_mean, z_log_var, z, prior)
        rec_sum += float(tf.reduce_sum(rec))
        kl_sum += float(tf.reduce_sum(kl))
    n = len(x)
    return {"neg_elbo": (rec_sum + kl_sum) / n, "reconstruction": rec_sum / n, "kl": kl_sum / n}


# ---------------------------------------------------------------- log p(x), as papers report it
# Importance sampling (Burda, Grosse & Salakhutdinov 2016): with z_k ~ q(z|x) and the log-weights
# log w_k = log p(x, z_k) - log q(z_k|x), log p(x) ~= log (1/K) sum_k w_k. One weight's mean is the
# ELBO; the estimate rises towards log p(x) as K grows.


WEIGHT_ROWS = 8000  # samples x digits per decoder call in log_weights (~25 MB of logits)


def _log_weight_chunks(z_mean, z_log_var, log_joint, k: int, chunk: int, rng):
    """Log-weights (c, N), `chunk` samples at a time: memory stays that of one chunk."""
    mu, log_var = np.asarray(z_mean, np.float64), np.asarray(z_log_var, np.float64)
    sigma = np.exp(0.5 * log_var)
    for start in range(0, k, chunk):
        eps = rng.standard_normal((min(chunk, k - start), *mu.shape))
        log_q = -0.5 * np.sum(np.log(2 * np.pi) + log_var + eps**2, axis=-1)
        yield np.asarray(log_joint(mu + sigma * eps), np.float64) - log_q


def importance_log_likelihood(
    z_mean: np.ndarray,
    z_log_var: np.ndarray,
    log_joint,
    *,
    k: int,
    chunk: int = 100,
    rng: np.random.Generator,
) -> np.ndarray:
    """log p(x) per row, from K samples of q(z|x) = N(z_mean, sigma^2). `log_joint(z)` takes z
    (c, N, D) and returns log p(x, z) (c, N); the chunks are combined by a running logsumexp, so
    K in the thousands costs no memory."""
    total = np.full(np.shape(z_mean)[0], -np.inf)
    for log_w in _log_weight_chunks(z_mean, z_log_var, log_joint, k, chunk, rng):
        total = np.logaddexp(total, _logsumexp(log_w, axis=0))
    return total - np.log(k)


def _logsumexp(a: np.ndarray, axis: int) -> np.ndarray:
    top = np.max(a, axis=axis, keepdims=True)
    return np.squeeze(top, axis) + np.log(np.sum(np.exp(a - top), axis=axis))


def _bundle_posterior(bundle: ModelBundle, xb: np.ndarray, yb):
    """(z_mean, z_log_var, log_joint) of a VAE on a batch: its Bernoulli decoder and own prior."""
    if not bundle.spec.is_vae:
        raise ValueError("Only a VAE has a likelihood to estimate.")
    spec = bundle.spec
    prior = prior_of(bundle.decoder)
    enc_in = with_label(spec, tf.constant(xb), None if yb is None else tf.constant(yb))
    z_mean, z_log_var, _ = bundle.run("encoder", enc_in)
    target = tf.constant(xb.reshape(len(xb), -1))

    def log_joint(z):
        c, n, d = z.shape
        flat = tf.constant(z.reshape(c * n, d), tf.float32)
        labels = None if yb is None else tf.constant(np.tile(yb, c))
        logits = tf.reshape(bundle.run("logits", with_label(spec, flat, labels)), (c, n, -1))
        log_px = -tf.reduce_sum(
            tf.nn.sigmoid_cross_entropy_with_logits(
                labels=tf.broadcast_to(target, logits.shape), logits=logits
            ),
            axis=-1,
        )
        if prior is None:
            log_pz = -0.5 * np.sum(np.log(2 * np.pi) + z**2, axis=-1)
        else:
            log_pz = np.asarray(prior.log_prob(flat)).reshape(c, n)
        return np.asarray(log_px, np.float64) + log_pz

    return z_mean, z_log_var, log_joint


def log_likelihood(
    bundle: ModelBundle,
    x: np.ndarray,
    y: np.ndarray | None = None,
    *,
    k: int = 1000,
    batch_size: int = 100,
    chunk: int = 50,
    seed: int = 0,
) -> np.ndarray:
    """Importance-sampled log p(x) in nats per image (log p(x|y) for a conditional VAE, given y)
    under the model's Bernoulli decoder and its own prior (N(0, I) or its mixture). On binarized
    digits this is the figure papers report (as its negative, the NLL)."""
    rng = np.random.default_rng(seed)
    x = as_batch(x)
    out = []
    for start in range(0, len(x), batch_size):
        yb = None if y is None else np.asarray(y[start : start + batch_size], np.int32)
        z_mean, z_log_var, log_joint = _bundle_posterior(bundle, x[start : start + batch_size], yb)
        out.append(
            importance_log_likelihood(z_mean, z_log_var, log_joint, k=k, chunk=chunk, rng=rng)
        )
    return np.concatenate(out)


def log_weights(
    bundle: ModelBundle, x: np.ndarray, y: np.ndarray | None = None, *, k: int = 1000, seed: int = 0
) -> np.ndarray:
    """All K log-weights per image, (N, K), for a handful of images (a page's digits): their mean is
    the ELBO, and `estimates_by_k` turns them into the log p(x) estimate for every K at once."""
    x = as_batch(x)
    yb = None if y is None else np.asarray(y, np.int32)
    z_mean, z_log_var, log_joint = _bundle_posterior(bundle, x, yb)
    rng = np.random.default_rng(seed)
    # As many samples per decoder call as fit in ~8,000 rows: each call has a fixed cost.
    chunk = max(1, min(k, WEIGHT_ROWS // len(x)))
    return np.concatenate(list(_log_weight_chunks(z_mean, z_log_var, log_joint, k, chunk, rng))).T


def estimates_by_k(log_w: np.ndarray, ks) -> np.ndarray:
    """(len(ks), N): the log p(x) estimate from the first K log-weights of each row, for each K."""
    return np.stack([_logsumexp(log_w[:, :k], axis=1) - np.log(k) for k in ks])


def denoising_scores(
    bundle: ModelBundle, clean: np.ndarray, noisy: np.ndarray, *, batch_size: int = 1000
) -> dict[str, float]:
    """PSNR and SSIM of the denoised images against the clean ones (and of the noisy input, to compare)."""
    clean, noisy = as_batch(clean), as_batch(noisy)
    restored = np.concatenate(
        [
            np.asarray(bundle.run("composite", noisy[i : i + batch_size]))
            for i in range(0, len(noisy), batch_size)
        ]
    )
    return {
        "psnr": float(np.mean(psnr(clean, restored))),
        "ssim": float(np.mean(ssim(clean, restored))),
        "noisy_psnr": float(np.mean(psnr(clean, noisy))),
        "noisy_ssim": float(np.mean(ssim(clean, noisy))),
    }


# The denoiser's report card: clean digits, the Keras fog (it has no strength), and every other noise
# the Denoise page offers at a weak, the default and a strong setting.
NOISE_CASES = (
    ("none", 0.0),
    ("keras", 0.5),
    *((kind, s) for kind in ("gaussian", "salt_pepper", "mask") for s in (0.1, 0.3, 0.5)),
)


def scores_by_noise(
    bundle: ModelBundle,
    clean: np.ndarray,
    cases=NOISE_CASES,
    *,
    seed: int = 0,
    batch_size: int = 1000,
) -> list[dict]:
    """denoising_scores for each (noise kind, strength) of `cases`; "none" gives the clean digits."""
    from vae_core.data import add_noise  # data pulls in tf.data; only the DAE needs it here

    clean = as_batch(clean)
    rows = []
    for kind, strength in cases:
        noisy = clean if kind == "none" else add_noise(clean, kind, strength, seed=seed)
        scores = denoising_scores(bundle, clean, noisy, batch_size=batch_size)
        rows.append({"noise": kind, "strength": float(strength), **scores})
    return rows


def evaluate(
    bundle: ModelBundle,
    x: np.ndarray,
    y: np.ndarray | None = None,
    *,
    noise: tuple[str, float] | None = ("keras", 0.5),
    batch_size: int = 1000,
    seed: int = 0,
) -> dict[str, float]:
    """Test metrics for the store: negative ELBO for a VAE; PSNR/SSIM on noisy inputs for the DAE."""
    x = as_batch(x)
    if bundle.spec.is_vae:
        return negative_elbo(bundle, x, y, batch_size=batch_size, seed=seed)
    from vae_core.data import add_noise  # data pulls in tf.data; only the DAE needs it here

    kind, strength = noise or ("keras", 0.5)
    noisy = add_noise(x, kind, strength, seed=seed)
    return denoising_scores(bundle, x, noisy, batch_size=batch_size)
