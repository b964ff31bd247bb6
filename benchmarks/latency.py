"""Interaction latency: what a click on each page asks of the engine, timed after warm-up.

Models are the shipped ones (vae_core/pretrained) when there are any; otherwise freshly built models
of the presets' architectures stand in -- the time of a forward pass does not depend on the weights.
"""

from __future__ import annotations

import io
import time

import numpy as np

from benchmarks.common import log, median, p95

TARGET_MS = {
    "round_trip_16": 50,
    "prior_64": 50,
    "manifold_30x30": 100,
    "denoise_photo": 50,
    "log_px_16_k1000": 1000,
}


def _models() -> tuple[dict, str]:
    """kind -> (name, bundle): the first shipped model of each kind, else an untrained preset."""
    import tempfile

    from vae_core import models, paths
    from vae_core.specs import preset
    from vae_core.store import Store

    store = Store(
        root=tempfile.mkdtemp(prefix="vae_bench_store_"), shipped_root=paths.SHIPPED_MODELS_DIR
    )
    shipped = [e for e in store.list() if e.shipped and e.error is None]
    out = {}
    source = (
        "shipped where one of the kind exists, else an untrained preset (named so in each row)"
        if shipped
        else "untrained presets (no shipped models found)"
    )
    for kind in ("mlp_vae", "conv_vae", "conv_dae"):
        # Prefer the 2-D MLP VAE for the manifold: a 2-D latent space is what it draws.
        cands = sorted(
            (e for e in shipped if e.kind == kind),
            key=lambda e: (e.latent_dim != 2, e.name),
        )
        if cands:
            out[kind] = (cands[0].name, store.load(cands[0].name))
        else:
            out[kind] = (f"untrained {kind}", models.build_model(preset(kind)[0]))
    return out, source


def photo_bytes(seed: int = 0) -> bytes:
    """A phone-photo-like JPEG (1280x960): a dark hand-drawn 7 on uneven grey paper, with grain."""
    from PIL import Image, ImageDraw, ImageFilter

    rng = np.random.default_rng(seed)
    h, w = 960, 1280
    yy, xx = np.mgrid[0:h, 0:w]
    paper = 190 + 40 * (xx / w) - 25 * (yy / h) + rng.normal(0, 6, (h, w))
    img = Image.fromarray(np.clip(paper, 0, 255).astype(np.uint8)).convert("RGB")
    draw = ImageDraw.Draw(img)
    draw.line([(480, 260), (820, 250), (600, 720)], fill=(40, 38, 45), width=38, joint="curve")
    draw.line([(560, 480), (740, 470)], fill=(40, 38, 45), width=30)
    img = img.filter(ImageFilter.GaussianBlur(2))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=88)
    return buf.getvalue()


def _time(fn, reps: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def _post_run_gc(rec, reps: int, work) -> None:
    """What Streamlit adds to every script run: a full garbage collection, heap settled or not.

    After each run Streamlit collects twice (`runner.postScriptGC`, and `keras.backend.clear_session()`
    in its Keras clean-up). With TensorFlow and models loaded, as here and in the app server, each
    walks every tracked object unless `app_pages.shared.settle_heap()` has frozen them, as the app
    does once per model load. Blocks alternate: unfrozen, then settled once followed by a few runs'
    worth of `work()` (a round trip, as a click asks for) and its collection, as the server sees them.
    """
    import gc

    from app_pages.shared import settle_heap

    plain, frozen = [], []

    def timed_runs(out: list, n: int) -> None:
        for _ in range(n):
            work()
            t0 = time.perf_counter()
            gc.collect()
            out.append((time.perf_counter() - t0) * 1000)

    try:
        for _ in range(max(2, reps // 8)):
            gc.unfreeze()
            timed_runs(plain, 4)
            tracked = len(gc.get_objects())
            settle_heap()
            work()  # the first run after a load is not special: skip it
            gc.collect()
            timed_runs(frozen, 4)
    finally:
        gc.unfreeze()
    rec.emit(
        "latency",
        "post_run_gc",
        model="TensorFlow + the models above",
        median_ms=median(frozen),
        p95_ms=p95(frozen),
        reps=len(frozen),
        unfrozen_median_ms=median(plain),
        tracked_objects=tracked,
        ratio=median(plain) / max(median(frozen), 1e-3),
    )
    log(f"  post-run gc: {median(plain):.1f} ms unfrozen, {median(frozen):.3f} ms settled")


def run(rec, quick: bool) -> None:
    from benchmarks import reference
    from vae_core import data, explore, images

    reps = 5 if quick else 40
    models, source = _models()
    log(f"latency: models from {source}")
    x = data.to_float(data.load_sample()[0][:16])[..., 0]
    mlp_name, mlp = models["mlp_vae"]
    dae_name, dae = models["conv_dae"]
    photo = photo_bytes()

    def denoise_photo():
        pre = images.prepare_upload(photo, "photo.jpg")
        clean = pre.digit[None]
        noisy = data.add_noise(clean, "keras", 0.5, seed=1)
        report = explore.denoise_report({"dae": dae, "vae": mlp}, noisy, clean)
        for img in [report.noisy[0], *(o[0] for o in report.outputs.values())]:
            images.to_png(img, scale=3)

    cases = {
        "round_trip_16": (mlp_name, lambda: explore.round_trip(mlp, x)),
        "prior_64": (mlp_name, lambda: explore.sample_prior(mlp, 64)),
        "manifold_30x30": (mlp_name, lambda: explore.latent_grid(mlp, 30)),
        "denoise_photo": (f"{dae_name} + {mlp_name}", denoise_photo),
    }
    clean8 = data.to_float(data.load_sample()[0][16:24])[..., 0]
    noisy8 = data.add_noise(clean8, "keras", 0.5, seed=1)
    cases["denoise_8_digits"] = (  # the Denoise page's default: scores included
        f"{dae_name} + {mlp_name}",
        lambda: explore.denoise_report({"dae": dae, "vae": mlp}, noisy8, clean8),
    )
    conv_name, conv = models["conv_vae"]
    cases["round_trip_16_conv_vae"] = (conv_name, lambda: explore.round_trip(conv, x))
    cases["prior_64_conv_vae"] = (conv_name, lambda: explore.sample_prior(conv, 64))
    # Round trip's bound section: 1,000 samples of z for each of 16 digits (issue 17: <= 1 s).
    cases["log_px_16_k1000"] = (mlp_name, lambda: explore.likelihood_bound(mlp, x))
    for name, (model_name, fn) in cases.items():
        times = _time(fn, reps)
        rec.emit(
            "latency",
            name,
            model=model_name,
            models_from=source,
            median_ms=median(times),
            p95_ms=p95(times),
            reps=reps,
            target_ms=TARGET_MS.get(name),
        )
        log(f"  {name}: median {median(times):.1f} ms, p95 {p95(times):.1f} ms")

    _post_run_gc(rec, reps, cases["round_trip_16"][1])

    # The keras-io way: one decoder.predict per cell; it takes about a minute, so fewer repetitions.
    n = 3 if quick else 30
    grid_reps = 1 if quick else 2
    for _ in range(10):
        mlp.decoder.predict(np.zeros((1, mlp.spec.latent_dim), np.float32), verbose=0)
    times = []
    for _ in range(grid_reps):
        t0 = time.perf_counter()
        reference.keras_io_manifold(mlp.decoder, n)
        times.append((time.perf_counter() - t0) * 1000)
    ours = next(r for r in rec.records if r["name"] == "manifold_30x30")
    rec.emit(
        "latency",
        f"manifold_{n}x{n}_keras_io",
        model=mlp_name,
        median_ms=median(times),
        per_call_ms=median(times) / (n * n),
        reps=grid_reps,
        times_ms=times,
        speedup_of_batched_30x30=(median(times) / (n * n) * 900) / ours["median_ms"],
    )
    log(f"  keras-io manifold {n}x{n}: {median(times):.0f} ms")
