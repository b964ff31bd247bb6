"""What the pages ask of a trained model: round trips, prior samples, manifolds, interpolation, denoising.

Everything is batched: a 30x30 manifold is ONE decoder call (the keras-io example makes 900), and the
models are called directly rather than through `predict`, whose per-call set-up dominates small batches.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import numpy as np

from vae_core.data import MIX_KINDS
from vae_core.errors import UserError
from vae_core.images import as_batch
from vae_core.metrics import estimates_by_k, log_weights
from vae_core.models import ModelBundle, prior_of, with_label
from vae_core.specs import MIXED_NOISE, NOISE_KINDS


def _labels(bundle: ModelBundle, labels, n: int) -> np.ndarray | None:
    """The conditional VAE needs a label per image; the others ignore it."""
    if not bundle.spec.is_conditional:
        return None
    if labels is None:
        raise UserError("The conditional VAE needs to know which digit to draw: pick a label 0-9.")
    y = np.broadcast_to(np.asarray(labels, dtype=np.int32), (n,)).copy()
    if y.min() < 0 or y.max() >= bundle.spec.num_classes:
        raise UserError(f"Labels must be between 0 and {bundle.spec.num_classes - 1}.")
    return y


def _require_vae(bundle: ModelBundle, what: str) -> None:
    if not bundle.spec.is_vae:
        raise UserError(
            f"A denoising autoencoder has no prior over its latent space, so it cannot {what}; "
            "choose a VAE model in the sidebar."
        )


def encode(bundle: ModelBundle, x: np.ndarray, labels=None) -> tuple[np.ndarray, np.ndarray | None]:
    """Images -> (z_mean, z_log_var); for the DAE -> (latent vector, None)."""
    xb = as_batch(x)
    y = _labels(bundle, labels, len(xb))
    out = bundle.run("encoder", with_label(bundle.spec, xb, y))
    if not bundle.spec.is_vae:
        return np.asarray(out), None
    return np.asarray(out[0]), np.asarray(out[1])


def decode(bundle: ModelBundle, z: np.ndarray, labels=None) -> np.ndarray:
    """Latent vectors (N, latent_dim) -> images (N, 28, 28) in [0, 1], in one decoder call."""
    z = np.atleast_2d(np.asarray(z, dtype=np.float32))
    if z.shape[1] != bundle.spec.latent_dim:
        raise UserError(
            f"This model's latent space has {bundle.spec.latent_dim} dimensions, not {z.shape[1]}."
        )
    y = _labels(bundle, labels, len(z))
    out = bundle.run("decoder", with_label(bundle.spec, z, y))
    return np.asarray(out)[..., 0]


def reconstruction_error(x: np.ndarray, recon: np.ndarray) -> np.ndarray:
    """Mean squared pixel error per image (0 = identical, 1 = opposite)."""
    x, recon = as_batch(x), as_batch(recon)
    return np.mean((x - recon) ** 2, axis=(1, 2, 3))


@dataclass
class RoundTrip:
    """Everything the round-trip page shows for a batch of N digits (K samples each)."""

    inputs: np.ndarray  # (N,28,28)
    z_mean: np.ndarray  # (N,D): for the DAE, its latent vector
    sigma: np.ndarray | None  # (N,D) exp(z_log_var / 2); None for the DAE
    z_samples: np.ndarray | None  # (N,K,D) z = z_mean + sigma * eps
    decoded_mean: np.ndarray  # (N,28,28) decoder(z_mean)
    decoded_samples: np.ndarray | None  # (N,K,28,28) decoder(z) for each sample
    composite_training: (
        np.ndarray
    )  # (N,28,28) vae(x, training=True): samples z (DAE: same as below)
    composite_inference: (
        np.ndarray
    )  # (N,28,28) vae(x, training=False): the mean (unless always_sample)
    errors: dict[
        str, np.ndarray
    ]  # name -> (N,) mean squared error against the input (samples: (N,K))


def round_trip(
    bundle: ModelBundle,
    x: np.ndarray,
    labels=None,
    *,
    n_samples: int = 6,
    seed: int = 0,
    widen: float = 1.0,
) -> RoundTrip:
    """Encoder -> (z_mean, sigma, samples of z) -> decoder, and the composite in both modes.

    `widen` draws the samples of z `widen` times as far from z_mean as the model does (1: as it
    does): a confident encoder's samples decode nearly alike, and a wider cloud makes the
    difference sampling makes visible. The composite samples as the model does, whatever `widen`."""
    xb = as_batch(x)
    n = len(xb)
    y = _labels(bundle, labels, n)
    comp_in = with_label(bundle.spec, xb, y)
    composite_train = np.asarray(bundle.run("composite", comp_in, training=True))[..., 0]
    composite_infer = np.asarray(bundle.run("composite", comp_in))[..., 0]
    z_mean, z_log_var = encode(bundle, xb, y)
    decoded_mean = decode(bundle, z_mean, y)
    errors = {
        "decoder(z_mean)": reconstruction_error(xb, decoded_mean),
        "vae(x, training=True)": reconstruction_error(xb, composite_train),
        "vae(x, training=False)": reconstruction_error(xb, composite_infer),
    }
    if z_log_var is None:
        return RoundTrip(
            xb[..., 0],
            z_mean,
            None,
            None,
            decoded_mean,
            None,
            composite_train,
            composite_infer,
            errors,
        )
    sigma = np.exp(0.5 * z_log_var)
    eps = np.random.default_rng(seed).standard_normal((n, n_samples, z_mean.shape[1]))
    z_samples = (z_mean[:, None] + widen * sigma[:, None] * eps).astype(np.float32)
    # All N*K samples go through the decoder at once.
    flat = decode(
        bundle, z_samples.reshape(n * n_samples, -1), None if y is None else np.repeat(y, n_samples)
    )
    decoded_samples = flat.reshape(n, n_samples, *flat.shape[1:])
    errors["decoder(z)"] = np.mean((xb[:, None, ..., 0] - decoded_samples) ** 2, axis=(2, 3))
    return RoundTrip(
        xb[..., 0],
        z_mean,
        sigma,
        z_samples,
        decoded_mean,
        decoded_samples,
        composite_train,
        composite_infer,
        errors,
    )


def codes_csv(rt: RoundTrip, names: list[str], labels=None) -> str:
    """The latent codes of a round trip as CSV: one row per digit, z_mean (and sigma) per column.

    A DAE's single latent vector is written as latent[i]; `labels` (what was written) may be None.
    """
    d = rt.z_mean.shape[1]
    head = ["digit", "label"]
    if rt.sigma is None:
        head += [f"latent[{j}]" for j in range(d)]
    else:
        head += [f"z_mean[{j}]" for j in range(d)] + [f"sigma[{j}]" for j in range(d)]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(head)
    for i, name in enumerate(names):
        values = list(rt.z_mean[i]) + ([] if rt.sigma is None else list(rt.sigma[i]))
        label = "" if labels is None else int(np.asarray(labels)[i])
        writer.writerow([name, label, *(f"{float(v):.6g}" for v in values)])
    return out.getvalue()


def sample_prior(
    bundle: ModelBundle, n: int = 16, *, temperature: float = 1.0, seed: int = 0, label=None
) -> tuple[np.ndarray, np.ndarray]:
    """n draws from the model's prior, decoded -> (z (n,D), images (n,28,28)). N(0, I) draws are
    scaled by the temperature; a learned mixture's draws keep their component's mean and scale its
    spread."""
    _require_vae(bundle, "draw new digits from the prior")
    if not 1 <= n <= 1024:
        raise UserError("Ask for between 1 and 1024 digits.")
    if not 0 <= temperature <= 5:
        raise UserError("The temperature must be between 0 and 5.")
    z = draw_prior(bundle, n, np.random.default_rng(seed), temperature)
    return z, decode(bundle, z, label)


BOUND_KS = (1, 3, 10, 30, 100, 300, 1000)
ELBO_DRAWS = 100  # the ELBO shown is the mean of this many log-weights, whatever K is chosen


@dataclass
class BoundReport:
    """The ELBO and the importance-sampled log p(x) of a few digits, for every K in `ks`."""

    ks: tuple[int, ...]
    elbo: np.ndarray  # (N,) nats: the mean log-weight, the bound a VAE trains on
    estimates: np.ndarray  # (len(ks), N) nats: log p(x) from the first K samples

    @property
    def gap(self) -> float:
        """How far the K = max estimate sits above the ELBO, averaged over the digits (nats)."""
        return float(np.mean(self.estimates[-1] - self.elbo))


def likelihood_bound(
    bundle: ModelBundle, x: np.ndarray, labels=None, *, k: int = BOUND_KS[-1], seed: int = 0
):
    """For the digits on a page: the ELBO beside log p(x) estimated with K = 1 ... k samples (at
    least ELBO_DRAWS). The
    draws are one stream per seed, so a larger k extends the same curve (its first K draws are the
    same), and the ELBO is always the mean of the first ELBO_DRAWS log-weights."""
    _require_vae(bundle, "estimate how likely a digit is")
    xb = as_batch(x)
    y = _labels(bundle, labels, len(xb))
    drawn = max(k, ELBO_DRAWS)
    ks = tuple(kk for kk in BOUND_KS if kk <= drawn)
    log_w = log_weights(bundle, xb, y, k=drawn, seed=seed)
    return BoundReport(ks, log_w[:, :ELBO_DRAWS].mean(axis=1), estimates_by_k(log_w, ks))


def draw_prior(bundle: ModelBundle, n: int, rng: np.random.Generator, temperature: float = 1.0):
    """n latent vectors (n, D) float32 from the model's p(z)."""
    prior = prior_of(bundle.decoder)
    if prior is None:
        z = rng.standard_normal((n, bundle.spec.latent_dim)) * temperature
    else:
        z = prior.sample(n, rng, temperature)
    return z.astype(np.float32)


def prior_gaussians(bundle: ModelBundle) -> tuple[np.ndarray, np.ndarray] | None:
    """(means (K, D), sigmas (K, D)) of a model's mixture prior; None when p(z) is N(0, I)."""
    prior = prior_of(bundle.decoder)
    if prior is None:
        return None
    return np.asarray(prior.means, np.float64), np.exp(0.5 * np.asarray(prior.log_vars, np.float64))


def prior_reach(bundle: ModelBundle, dims: tuple[int, int] = (0, 1)) -> float:
    """How far from 0 the prior puts its mass (2 sigma) along two latent dimensions: the manifold's
    natural extent (2 for N(0, I))."""
    gaussians = prior_gaussians(bundle)
    if gaussians is None:
        return 2.0
    means, sigmas = gaussians
    d = [k for k in dims if k < means.shape[1]]
    return float(np.max(np.abs(means[:, d]) + 2 * sigmas[:, d]))


def latent_grid(
    bundle: ModelBundle,
    n: int = 15,
    *,
    extent: float = 2.0,
    dims: tuple[int, int] = (0, 1),
    base: np.ndarray | None = None,
    label=None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An n x n manifold over two latent dimensions (others fixed at `base`, default 0), ONE call.

    Returns (values along dims[0] (n,), values along dims[1] (n,), images (n, n, 28, 28)), row i
    holding dims[1] = values[i] from top (high) to bottom (low), as a plot's y axis reads.
    """
    _require_vae(bundle, "draw a latent manifold")
    d = bundle.spec.latent_dim
    if not 2 <= n <= 50:
        raise UserError("The grid size must be between 2 and 50.")
    if d < 2:
        dims = (0, 0)
    elif dims[0] == dims[1] or not all(0 <= k < d for k in dims):
        raise UserError(f"Pick two different latent dimensions between 0 and {d - 1}.")
    xs = np.linspace(-extent, extent, n, dtype=np.float32)
    ys = xs[::-1]
    z = np.tile(
        np.zeros(d, np.float32) if base is None else np.asarray(base, np.float32), (n * n, 1)
    )
    gy, gx = np.meshgrid(ys, xs, indexing="ij")
    z[:, dims[0]] = gx.ravel()
    z[:, dims[1]] = gy.ravel()
    images = decode(bundle, z, label)
    return xs, ys, images.reshape(n, n, *images.shape[1:])


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation (Shoemake 1985); falls back to linear when a and b are parallel."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    cos = np.dot(a, b) / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12)
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if omega < 1e-6:
        return (1 - t)[:, None] * a + t[:, None] * b
    return (np.sin((1 - t) * omega)[:, None] * a + np.sin(t * omega)[:, None] * b) / np.sin(omega)


def interpolate(
    bundle: ModelBundle,
    x_a: np.ndarray,
    x_b: np.ndarray,
    *,
    steps: int = 10,
    method: str = "linear",
    labels=None,
    draw_as: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Walk the latent space from digit a to digit b (through their means) -> (z path, images).

    The conditional VAE encodes each end with its own label (`labels`); every step is then drawn
    as label a for the first half and b for the rest, or, with `draw_as`, all as that one digit:
    only the style walks, so the digits morph instead of switching at the midpoint."""
    if not 2 <= steps <= 64:
        raise UserError("Use between 2 and 64 interpolation steps.")
    if method not in ("linear", "spherical"):
        raise UserError("Interpolation is 'linear' or 'spherical'.")
    y = None if labels is None else np.broadcast_to(np.asarray(labels, np.int32), (2,))
    z_mean, _ = encode(bundle, np.concatenate([as_batch(x_a), as_batch(x_b)]), y)
    t = np.linspace(0.0, 1.0, steps)
    if method == "linear":
        path = (1 - t)[:, None] * z_mean[0] + t[:, None] * z_mean[1]
    else:
        path = slerp(z_mean[0], z_mean[1], t)
    # The conditional VAE blends the two labels' codes at the midpoint: first half a, second half b.
    path_labels = None if y is None else np.where(t < 0.5, y[0], y[1])
    if y is not None and draw_as is not None:
        path_labels = np.full(steps, int(draw_as), np.int32)
    return path.astype(np.float32), decode(bundle, path, path_labels)


def denoise(bundle: ModelBundle, noisy: np.ndarray, labels=None) -> np.ndarray:
    """The composite at prediction: noisy images -> restored images (N,28,28)."""
    xb = as_batch(noisy)
    y = _labels(bundle, labels, len(xb))
    return np.asarray(bundle.run("composite", with_label(bundle.spec, xb, y)))[..., 0]


@dataclass
class DenoiseReport:
    """What the denoise page compares: the noisy input, each model's output and their scores."""

    noisy: np.ndarray  # (N,28,28) what the models were given
    clean: np.ndarray | None  # (N,28,28) the reference; None when the input came noisy
    outputs: dict[str, np.ndarray]  # model label -> (N,28,28) its output for the noisy input
    psnr: dict[str, np.ndarray]  # "noisy" and each label -> (N,) dB against clean (empty: no clean)
    ssim: dict[str, np.ndarray]  # likewise, structural similarity in [-1, 1]


def denoise_report(
    models: dict[str, ModelBundle], noisy: np.ndarray, clean: np.ndarray | None = None
) -> DenoiseReport:
    """Run each model on the noisy images and score every output (and the noisy input) against clean."""
    from vae_core import metrics  # metrics pulls in TF ops the other functions here never need

    noisy_b = as_batch(noisy)
    outputs = {}
    for label, bundle in models.items():
        if bundle.spec.is_conditional:
            raise UserError(
                "The conditional VAE needs each digit's label, so it cannot clean up an image "
                "on its own; compare with an MLP or convolutional VAE instead."
            )
        outputs[label] = denoise(bundle, noisy_b)
    psnr, ssim = {}, {}
    clean_b = None if clean is None else as_batch(clean)
    if clean_b is not None:
        if clean_b.shape != noisy_b.shape:
            raise UserError("The clean and noisy images must be the same number and size.")
        for label, images in {"noisy": noisy_b[..., 0], **outputs}.items():
            psnr[label] = metrics.psnr(clean_b, images)
            ssim[label] = metrics.ssim(clean_b, images)
    return DenoiseReport(
        noisy_b[..., 0], None if clean_b is None else clean_b[..., 0], outputs, psnr, ssim
    )


def chain_report(
    report: DenoiseReport, label: str, bundle: ModelBundle, after: str
) -> DenoiseReport:
    """The report with one more row: `bundle` run on the output of `after`, scored like the others."""
    more = denoise_report({label: bundle}, report.outputs[after], report.clean)
    return DenoiseReport(
        report.noisy,
        report.clean,
        {**report.outputs, label: more.outputs[label]},
        {**report.psnr, **{k: v for k, v in more.psnr.items() if k == label}},
        {**report.ssim, **{k: v for k, v in more.ssim.items() if k == label}},
    )


@dataclass(frozen=True)
class NoiseSeen:
    """The noise a denoiser met in training, as its metadata records it."""

    kinds: tuple[str, ...]  # noise kinds it saw; "none" too when clean digits were in the mix
    strength: float  # the strength it trained at ("mixed": strengths were drawn from 0 to this)
    mixed: bool  # one blind denoiser for every kind (the "mixed" training noise)


def noise_seen(meta: dict) -> NoiseSeen | None:
    """What noise a denoiser trained on, from its store metadata; None when the file does not say."""
    train = meta.get("train") if isinstance(meta, dict) else None
    kind = train.get("noise") if isinstance(train, dict) else None
    strength = train.get("noise_strength") if isinstance(train, dict) else None
    if not isinstance(strength, int | float) or isinstance(strength, bool):
        return None
    if kind == MIXED_NOISE:
        return NoiseSeen(MIX_KINDS, float(strength), mixed=True)
    if kind in NOISE_KINDS:
        return NoiseSeen((kind,), float(strength), mixed=False)
    return None


READ_K = 100  # importance samples of z per digit and label when the conditional VAE reads a digit


def read_digits(
    bundle: ModelBundle, x: np.ndarray, *, k: int = READ_K, seed: int = 0
) -> np.ndarray:
    """The conditional VAE as a classifier, by Bayes' rule: p(y|x) is proportional to p(x|y) p(y),
    with log p(x|y) estimated by importance sampling for every label and p(y) even (MNIST's ten
    digits are nearly equally common). (N, num_classes) probabilities, each row summing to 1."""
    from vae_core.metrics import log_likelihood  # its TF ops only when a digit is read

    if not bundle.spec.is_conditional:
        raise UserError("Only the conditional VAE can read a digit: it is the one told labels.")
    xb = as_batch(x)
    n, classes = len(xb), bundle.spec.num_classes
    # Every label for every digit in one batch: digit i with label y is row y * n + i.
    tiled = np.concatenate([xb] * classes)
    ys = np.repeat(np.arange(classes, dtype=np.int32), n)
    log_px = log_likelihood(bundle, tiled, ys, k=k, batch_size=len(tiled), seed=seed)
    log_px = log_px.reshape(classes, n).T
    log_px -= log_px.max(axis=1, keepdims=True)
    p = np.exp(log_px)
    return p / p.sum(axis=1, keepdims=True)


def restyle(bundle: ModelBundle, x: np.ndarray, labels) -> np.ndarray:
    """The conditional VAE keeps each digit's style (its z_mean, given its label) and redraws it as
    every digit 0-9: (N, num_classes, 28, 28), one decoder call."""
    if not bundle.spec.is_conditional:
        raise UserError("Only the conditional VAE can redraw a digit as another one.")
    z_mean, _ = encode(bundle, x, labels)
    k = bundle.spec.num_classes
    flat = decode(bundle, np.repeat(z_mean, k, axis=0), np.tile(np.arange(k), len(z_mean)))
    return flat.reshape(len(z_mean), k, *flat.shape[1:])
