"""One formula for both sides: test negative ELBO from decoder probabilities; DAE PSNR/SSIM.

The reference decoder ends in a sigmoid (no logits), so both models are scored from probabilities,
clipped as Keras's binary cross-entropy clips them; VAE Lab's own figure (from logits) is reported
beside it by the worker as a cross-check.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-7  # keras.backend.epsilon(): what binary_crossentropy clips probabilities to


def neg_elbo_probs(
    encoder, decoder, x: np.ndarray, *, batch_size: int = 1000, seed: int = 0
) -> dict:
    """Negative ELBO in nats per image: BCE summed over 784 pixels + KL, one seeded z per image."""
    rng = np.random.default_rng(seed)
    rec_sum = kl_sum = 0.0
    for start in range(0, len(x), batch_size):
        xb = x[start : start + batch_size]
        z_mean, z_log_var = (np.asarray(t, np.float64) for t in encoder(xb, training=False)[:2])
        z = z_mean + np.exp(0.5 * z_log_var) * rng.standard_normal(z_mean.shape)
        p = np.clip(
            np.asarray(decoder(z.astype(np.float32), training=False), np.float64), EPS, 1 - EPS
        )
        t = xb.astype(np.float64)
        rec_sum += float(-np.sum(t * np.log(p) + (1 - t) * np.log(1 - p)))
        kl_sum += float(-0.5 * np.sum(1 + z_log_var - z_mean**2 - np.exp(z_log_var)))
    n = len(x)
    return {"neg_elbo": (rec_sum + kl_sum) / n, "reconstruction": rec_sum / n, "kl": kl_sum / n}


def dae_scores(predict, x: np.ndarray, *, batch_size: int = 1000, seed: int = 0) -> dict:
    """PSNR/SSIM (and MSE) of predict(noisy test images) against the clean ones; Keras-example noise."""
    from benchmarks.reference import keras_example_noise
    from vae_core import metrics

    noisy = keras_example_noise(x, seed=seed + 12345)  # not the training noise's seed
    restored = np.concatenate(
        [np.asarray(predict(noisy[i : i + batch_size])) for i in range(0, len(x), batch_size)]
    )
    return {
        "psnr": float(np.mean(metrics.psnr(x, restored))),
        "ssim": float(np.mean(metrics.ssim(x, restored))),
        "mse": float(np.mean((x - restored) ** 2)),
        "noisy_psnr": float(np.mean(metrics.psnr(x, noisy))),
        "noisy_ssim": float(np.mean(metrics.ssim(x, noisy))),
    }


def emit_targets(rec) -> None:
    """The quality section: targets read off the timed runs, and the shipped models' own metadata."""
    by_name = {r["name"]: r for r in rec.records if r["section"] == "training"}
    for latent, target in ((2, 150.0), (32, 102.0)):
        row = by_name.get(f"mlp_vae_latent{latent}")
        if row is None:
            continue
        rec.emit(
            "quality",
            f"mlp_vae_latent{latent}_neg_elbo",
            epochs=row["epochs"],
            ours=row["ours_test"]["neg_elbo"],
            ours_vae_core_metric=row["ours_test"].get("vae_core_neg_elbo"),
            reference=row["reference_test"]["neg_elbo"],
            target=target,
            ours_config=row["ours_config"],
            n_test=row["ours_test"]["n_test"],
        )
    row = by_name.get("conv_dae")
    if row is not None:
        rec.emit(
            "quality",
            "conv_dae_psnr",
            epochs=row["epochs"],
            ours_psnr=row["ours_test"]["psnr"],
            ours_ssim=row["ours_test"]["ssim"],
            reference_psnr=row["reference_test"]["psnr"],
            reference_ssim=row["reference_test"]["ssim"],
            noisy_psnr=row["ours_test"]["noisy_psnr"],
            noisy_ssim=row["ours_test"]["noisy_ssim"],
            target_psnr=20.0,
            n_test=row["ours_test"]["n_test"],
        )
    rec.emit("quality", "best_shipped_vae", **shipped_vae_metrics(), target=90.0)


def shipped_vae_metrics() -> dict:
    """The lowest test negative ELBO among the shipped VAEs, as their metadata records it."""
    import tempfile

    from vae_core import paths
    from vae_core.store import Store

    store = Store(
        root=tempfile.mkdtemp(prefix="vae_bench_store_"), shipped_root=paths.SHIPPED_MODELS_DIR
    )
    rows = []
    for e in store.list():
        if not e.shipped:
            continue
        m = (e.meta or {}).get("test_metrics") or {}
        value = next((m[k] for k in ("neg_elbo", "negative_elbo", "nelbo") if k in m), None)
        rows.append(
            {
                "name": e.name,
                "kind": e.kind,
                "latent_dim": e.latent_dim,
                "neg_elbo": value,
                "psnr": m.get("psnr"),
                "ssim": m.get("ssim"),
                "epochs": e.meta.get("epochs"),
                "dataset": e.meta.get("dataset"),
                "error": e.error,
            }
        )
    vaes = [r for r in rows if r["neg_elbo"] is not None and r["error"] is None]
    best = min(vaes, key=lambda r: r["neg_elbo"]) if vaes else None
    return {
        "best": best["neg_elbo"] if best else None,
        "best_model": best,
        "shipped": rows,
        "note": None if rows else f"no shipped models in {paths.SHIPPED_MODELS_DIR}",
    }
