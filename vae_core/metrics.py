"""Quality numbers: negative ELBO in nats per image, PSNR and SSIM."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from vae_core.models import LOGITS, ModelBundle, kl_divergence, reconstruction_loss


def psnr(clean: np.ndarray, restored: np.ndarray) -> np.ndarray:
    """Peak signal-to-noise ratio in dB per image, for images in [0, 1]."""
    clean, restored = _as_batch(clean), _as_batch(restored)
    mse = np.mean((clean - restored) ** 2, axis=(1, 2, 3))
    # A perfect match would be infinite; 100 dB is "identical" for any display.
    return np.minimum(10.0 * np.log10(1.0 / np.maximum(mse, 1e-10)), 100.0)


def ssim(clean: np.ndarray, restored: np.ndarray) -> np.ndarray:
    """Structural similarity per image (Gaussian window 11, sigma 1.5, as Wang et al. 2004)."""
    clean, restored = _as_batch(clean), _as_batch(restored)
    return tf.image.ssim(clean, restored, max_val=1.0).numpy().astype(np.float64)


def _as_batch(images: np.ndarray) -> np.ndarray:
    """(28,28), (N,28,28) or (N,28,28,1) -> float32 (N,28,28,1)."""
    a = np.asarray(images, dtype=np.float32)
    if a.ndim == 2:
        a = a[None]
    if a.ndim == 3:
        a = a[..., None]
    return a


def _logits_model(bundle: ModelBundle):
    decoder = bundle.decoder
    return tf.keras.Model(decoder.inputs, decoder.get_layer(LOGITS).output)


def negative_elbo(
    bundle: ModelBundle,
    x: np.ndarray,
    y: np.ndarray | None = None,
    *,
    batch_size: int = 1000,
    seed: int = 0,
) -> dict[str, float]:
    """Test negative ELBO in nats per image (one z sample per image, seeded), and its two terms."""
    spec, logits_of = bundle.spec, _logits_model(bundle)
    rng = np.random.default_rng(seed)
    x = _as_batch(x)
    rec_sum = kl_sum = 0.0
    for start in range(0, len(x), batch_size):
        xb = x[start : start + batch_size]
        inputs = [xb, y[start : start + batch_size].astype("int32")] if spec.is_conditional else xb
        z_mean, z_log_var, _ = bundle.encoder(inputs, training=False)
        eps = rng.standard_normal(z_mean.shape).astype(np.float32)
        z = z_mean + tf.exp(0.5 * z_log_var) * eps
        dec_in = [z, tf.convert_to_tensor(inputs[1])] if spec.is_conditional else z
        rec_sum += float(tf.reduce_sum(reconstruction_loss(spec, xb, logits_of(dec_in))))
        kl_sum += float(tf.reduce_sum(kl_divergence(z_mean, z_log_var)))
    n = len(x)
    return {"neg_elbo": (rec_sum + kl_sum) / n, "reconstruction": rec_sum / n, "kl": kl_sum / n}


def denoising_scores(
    bundle: ModelBundle, clean: np.ndarray, noisy: np.ndarray, *, batch_size: int = 1000
) -> dict[str, float]:
    """PSNR and SSIM of the denoised images against the clean ones (and of the noisy input, to compare)."""
    clean, noisy = _as_batch(clean), _as_batch(noisy)
    restored = np.concatenate(
        [
            np.asarray(bundle.composite(noisy[i : i + batch_size], training=False))
            for i in range(0, len(noisy), batch_size)
        ]
    )
    return {
        "psnr": float(np.mean(psnr(clean, restored))),
        "ssim": float(np.mean(ssim(clean, restored))),
        "noisy_psnr": float(np.mean(psnr(clean, noisy))),
        "noisy_ssim": float(np.mean(ssim(clean, noisy))),
    }


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
    x = _as_batch(x)
    if bundle.spec.is_vae:
        return negative_elbo(bundle, x, y, batch_size=batch_size, seed=seed)
    from vae_core.data import add_noise  # data pulls in tf.data; only the DAE needs it here

    kind, strength = noise or ("keras", 0.5)
    noisy = add_noise(x, kind, strength, seed=seed)
    return denoising_scores(bundle, x, noisy, batch_size=batch_size)
