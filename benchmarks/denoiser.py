"""The shipped denoiser, noise by noise: test PSNR/SSIM of the noisy input and of its output.

One row per noise the Denoise page offers (and clean digits) at a few strengths
(`vae_core.metrics.NOISE_CASES`), on the MNIST test set (the bundled sample with `--quick` or when
MNIST is not here). The targets: the output beats its input on every row, >= 20 dB on the Keras
fog, >= 24 dB on clean digits (the denoiser must leave them alone).
"""

from __future__ import annotations

import tempfile

from benchmarks.common import log

MODEL = "conv_dae"
FOG_TARGET_DB, CLEAN_TARGET_DB = 20.0, 24.0


def _test_digits(quick: bool):
    from vae_core import data

    if not quick and data.dataset_available("mnist"):
        ds = data.load_dataset("mnist", allow_download=False)
        return data.to_float(ds.x_test), "the MNIST test set"
    x, _ = data.load_sample()
    return data.to_float(x), "the bundled sample (500 MNIST test digits)"


def run(rec, quick: bool) -> None:
    from vae_core import metrics, paths
    from vae_core.store import Store

    store = Store(
        root=tempfile.mkdtemp(prefix="vae_bench_store_"), shipped_root=paths.SHIPPED_MODELS_DIR
    )
    bundle = store.load(MODEL)
    x, where = _test_digits(quick)
    train = bundle.meta.get("train") or {}
    log(f"scoring the shipped {MODEL} on {len(x)} digits of {where}")
    rows = metrics.scores_by_noise(bundle, x, seed=2024)  # not a seed the training noise used
    for row in rows:
        rec.emit("denoiser", f"{row['noise']}_{row['strength']:g}", **row)
    noisy_rows = [r for r in rows if r["noise"] != "none"]
    fog = next(r for r in rows if r["noise"] == "keras")
    clean = next(r for r in rows if r["noise"] == "none")
    rec.emit(
        "denoiser",
        "summary",
        model=MODEL,
        epochs=bundle.meta.get("epochs"),
        latent_dim=bundle.spec.latent_dim,
        trained_noise=train.get("noise"),
        trained_strength=train.get("noise_strength"),
        n_test=len(x),
        test_digits=where,
        beats_input_everywhere=all(r["psnr"] > r["noisy_psnr"] for r in noisy_rows),
        worst_gain_db=min(r["psnr"] - r["noisy_psnr"] for r in noisy_rows),
        fog_psnr=fog["psnr"],
        fog_target=FOG_TARGET_DB,
        clean_psnr=clean["psnr"],
        clean_target=CLEAN_TARGET_DB,
    )
