"""Render the records of a run as RESULTS.md: machine, versions, date, medians, ratios, targets."""

from __future__ import annotations

import json
import math
import time

from benchmarks.training import OURS_CONV, OURS_MLP, QUALITY


def _f(value, fmt: str = ".2f", unit: str = "") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return f"{value:{fmt}}{unit}"


def _status(ok: bool | None, gap: str = "") -> str:
    if ok is None:
        return "not measured"
    return "met" if ok else f"**not met**{' — ' + gap if gap else ''}"


def render(records: list[dict], *, quick: bool, seconds: float) -> str:
    by = {(r["section"], r["name"]): r for r in records}
    meta = by.get(("meta", "machine"), {})
    g = lambda s, n: by.get((s, n))  # noqa: E731
    out: list[str] = []
    w = out.append
    w("# VAE Lab benchmarks — results\n")
    if quick:
        w("> **Quick smoke run** (tiny data, 2 epochs, few repetitions): the numbers only show the "
          "command works. The real figures are in benchmarks/RESULTS.md.\n")  # fmt: skip
    w("Produced by `python -m benchmarks.run` (every figure below comes from this one run; raw JSON "
      "lines in `benchmarks/results.jsonl`).\n")  # fmt: skip
    date = time.strftime("%Y-%m-%d %H:%M %Z", time.localtime(meta.get("t", time.time())))
    w(f"- Date: {date}; the run took {seconds / 60:.1f} min.")
    w(f"- Machine: {meta.get('cpu', '?')}, {meta.get('cpus_allowed', meta.get('cores', '?'))} CPU cores "
      f"({', '.join(meta.get('simd', []))}), {meta.get('memory_gib', '?')} GiB RAM, no GPU; "
      f"load average at start {', '.join(f'{x:.1f}' for x in meta.get('loadavg', []))} "
      "(the machine is shared, hence A/B alternation and medians).")  # fmt: skip
    w(f"- Versions: Python {meta.get('python')}, TensorFlow {meta.get('tensorflow')}, Keras {meta.get('keras')}, "
      f"Streamlit {meta.get('streamlit')}, NumPy {meta.get('numpy')}, Playwright {meta.get('playwright')}, "
      f"{meta.get('chromium') or 'Chromium ?'}.")  # fmt: skip
    w(f"- Platform: {meta.get('platform')}\n")

    # ------------------------------------------------------------ targets
    w("## Targets\n")
    w("| Figure | Target | Result | Status |")
    w("|---|---|---|---|")
    rows = []
    for latent in (2, 32):
        r = g("training", f"mlp_vae_latent{latent}")
        if r:
            target = 1.5 if latent == 2 else None
            res = (f"{_f(r['ours_samples_per_s'], '.0f')} vs {_f(r['reference_samples_per_s'], '.0f')} samples/s: "
                   f"**{_f(r['ratio'])}x** (paired {_f(r['paired_ratio_min'])}–{_f(r['paired_ratio_max'])}x, "
                   f"{r['timed_epochs']} epochs each)")  # fmt: skip
            ok = r["ratio"] >= target if target else None
            rows.append((f"Training speed, MLP VAE 784-512-{latent}, batch 128", f">= {target}x" if target else "(info)",
                         res, _status(ok, f"{r['ratio']:.2f}x") if target else "—"))  # fmt: skip
    pf = g("training", "mlp_vae_latent2_peak_fraction")
    peak = g("training", "matmul_peak")
    if pf and peak:
        rows.append(("MLP VAE training vs this machine's matmul peak", "report",
                     f"{_f(pf['ours_gflops'], '.0f')} GFLOP/s = **{_f(100 * pf['ours_fraction_of_peak'], '.0f')}%** of "
                     f"{_f(peak['peak_gflops'], '.0f')} GFLOP/s (reference {_f(100 * pf['reference_fraction_of_peak'], '.0f')}%)", "reported"))  # fmt: skip
    r = g("training", "conv_dae")
    if r:
        rows.append(("Training speed, convolutional DAE, batch 128", ">= 1.3x",
                     f"{_f(r['ours_samples_per_s'], '.0f')} vs {_f(r['reference_samples_per_s'], '.0f')} samples/s: **{_f(r['ratio'])}x** "
                     f"(paired {_f(r['paired_ratio_min'])}–{_f(r['paired_ratio_max'])}x)", _status(r["ratio"] >= 1.3, f"{r['ratio']:.2f}x")))  # fmt: skip
    for latent in (2, 32):
        r = g("training", f"mlp_vae_latent{latent}")
        if r:
            a, b = r["reference_test"]["neg_elbo"], r["ours_test"]["neg_elbo"]
            rows.append((f"Speed costs no quality: MLP latent {latent}, {r['epochs']} epochs, test −ELBO",
                         "ours <= reference", f"{_f(b, '.1f')} vs {_f(a, '.1f')} nats", _status(b <= a)))  # fmt: skip
    r = g("training", "conv_dae")
    if r:
        a, b = r["reference_test"]["mse"], r["ours_test"]["mse"]
        rows.append((f"Speed costs no quality: DAE, {r['epochs']} epochs, test MSE", "ours <= reference",
                     f"{_f(b, '.4f')} vs {_f(a, '.4f')}", _status(b <= a)))  # fmt: skip
    for latent, target in ((2, 150), (32, 102)):
        q = g("quality", f"mlp_vae_latent{latent}_neg_elbo")
        if q:
            rows.append((f"`mlp_vae` latent {latent}, {q['epochs']} epochs: test −ELBO (nats/image)", f"<= {target}",
                         f"**{_f(q['ours'], '.1f')}** (reference {_f(q['reference'], '.1f')})",
                         _status(q["ours"] <= target, f"{q['ours'] - target:+.1f} nats")))  # fmt: skip
    q = g("quality", "best_shipped_vae")
    if q:
        best = q.get("best")
        res = (
            f"**{_f(best, '.1f')}** ({q['best_model']['name']})"
            if best is not None
            else (q.get("note") or "no shipped VAE with test metrics")
        )
        rows.append(("Best shipped VAE: test −ELBO", "<= 90", res, _status(None if best is None else best <= 90, f"{(best or 0) - 90:+.1f} nats")))  # fmt: skip
    q = g("quality", "conv_dae_psnr")
    if q:
        rows.append((f"DAE, Keras-example noise, {q['epochs']} epochs: test PSNR / SSIM", ">= 20 dB; SSIM reported",
                     f"**{_f(q['ours_psnr'], '.1f')} dB / {_f(q['ours_ssim'], '.3f')}** (reference {_f(q['reference_psnr'], '.1f')} dB / "
                     f"{_f(q['reference_ssim'], '.3f')}; noisy input {_f(q['noisy_psnr'], '.1f')} dB)", _status(q["ours_psnr"] >= 20)))  # fmt: skip
    for name, label in (("round_trip_16", "Round trip of 16 digits"), ("prior_64", "64 prior samples"),
                        ("manifold_30x30", "30x30 manifold (one batched call)"), ("denoise_photo", "Denoise one uploaded photo, incl. preprocessing")):  # fmt: skip
        r = g("latency", name)
        if r:
            t = r["target_ms"]
            rows.append((label, f"median <= {t} ms", f"median **{_f(r['median_ms'], '.1f')} ms**, p95 {_f(r['p95_ms'], '.1f')} ms",
                         _status(r["median_ms"] <= t, f"{r['median_ms']:.0f} ms")))  # fmt: skip
    r = g("app", "cold_start")
    if r:
        rows.append(("App cold start to first page rendered", "<= 8 s", f"**{_f(r['seconds'])} s** (server answering after {_f(r['server_ready_s'])} s)",
                     _status(r["seconds"] <= 8, f"{r['seconds']:.1f} s")))  # fmt: skip
    r = g("app", "page_switch")
    if r:
        rows.append(("Switching pages", "<= 1.5 s", f"median **{_f(r['median_s'])} s**, p95 {_f(r['p95_s'])} s ({r['n']} switches)",
                     _status(r["median_s"] <= 1.5, f"{r['median_s']:.2f} s")))  # fmt: skip
    r = g("app", "server_memory")
    if r:
        rows.append(("Server memory, every model loaded", "<= 1.5 GB", f"**{_f(r['rss_mb'], '.0f')} MB** ({len(r['models'])} models: {r['models_from']})",
                     _status(r["rss_mb"] <= 1536, f"{r['rss_mb']:.0f} MB")))  # fmt: skip
    for row in rows:
        w("| " + " | ".join(row) + " |")
    errors = [r for r in records if r["name"] == "error"]
    for e in errors:
        w(f"\n**Section `{e['section']}` failed:** `{e['error']}`")
    w("")

    # ------------------------------------------------------------ training detail
    w("## Training speed and quality, in detail\n")
    w("Each configuration trains in its own process; epochs alternate A, B, B, A, A, B, ... so both "
      "sides meet the same background load. The first epoch (tracing, XLA compilation) is the warm-up "
      "and is not timed; samples/s is the median over the remaining epochs, the ratio is ours/reference "
      "of those medians, and *paired* ratios compare the two epochs of each round. Epoch time is the "
      "epoch loop alone (a Keras callback), the same for both sides. The timed models are then scored on "
      "the 10,000 test images with one formula for both (BCE from probabilities clipped at 1e-7 summed "
      "over 784 pixels + KL, one seeded z per image).\n")  # fmt: skip
    w("- **Reference**: `benchmarks/reference.py` — keras-io `vae.py` style (custom `train_step`, "
      "`compile(optimizer=Adam())`, `fit` on the numpy array, sigmoid output + `keras.losses.binary_crossentropy`) "
      "with the MLP body 784-512-latent; the DAE is the Keras denoising example (`compile(loss='mse', optimizer='adam')`, "
      "noise drawn once with numpy).")  # fmt: skip
    w(f"- **Ours (MLP)**: `vae_core.models.Trainer` (BCE fused from logits) + `vae_core.data.make_tf_dataset` "
      f"(cache, shuffle, batch, prefetch), `compile(jit_compile={OURS_MLP['jit']}, steps_per_execution={OURS_MLP['steps_per_execution']})`, "
      f"`drop_remainder={OURS_MLP['drop_remainder']}`, Adam lr {QUALITY['lr']:g} with {QUALITY['schedule']} decay to 0 over the run.")  # fmt: skip
    w(f"- **Ours (DAE)**: the same Trainer, noise drawn inside tf.data (fresh each epoch), "
      f"`jit_compile={OURS_CONV['jit']}`, `drop_remainder={OURS_CONV['drop_remainder']}`, Adam lr 1e-3, BCE from logits.\n")  # fmt: skip
    w(
        "| Run | Samples/epoch (ours / ref) | Epoch seconds, reference | Epoch seconds, ours | Final train loss (ours / ref) | Test (ours / ref) |"
    )
    w("|---|---|---|---|---|---|")
    for name in ("mlp_vae_latent2", "mlp_vae_latent32", "conv_dae"):
        r = g("training", name)
        if not r:
            continue
        ot, rt = r["ours_test"], r["reference_test"]
        test = (f"−ELBO {_f(ot['neg_elbo'], '.1f')} / {_f(rt['neg_elbo'], '.1f')} (rec {_f(ot['reconstruction'], '.1f')} / {_f(rt['reconstruction'], '.1f')}, "
                f"KL {_f(ot['kl'], '.1f')} / {_f(rt['kl'], '.1f')}; vae_core.metrics: {_f(ot.get('vae_core_neg_elbo'), '.1f')})"
                if "neg_elbo" in ot else f"PSNR {_f(ot['psnr'], '.2f')} / {_f(rt['psnr'], '.2f')} dB, SSIM {_f(ot['ssim'], '.3f')} / {_f(rt['ssim'], '.3f')}")  # fmt: skip
        w(f"| {name} | {r['samples_per_epoch']} / {r['reference_samples_per_epoch']} | {', '.join(_f(x) for x in r['reference_epoch_s'])} | "
          f"{', '.join(_f(x) for x in r['ours_epoch_s'])} | {_f(r['ours_final_train_loss'].get('loss'), '.2f')} / "
          f"{_f(r['reference_final_train_loss'].get('loss', r['reference_final_train_loss'].get('total_loss')), '.4g')} | {test} |")  # fmt: skip
    w("")
    if peak:
        gf = peak["gflops"]
        w("Matrix-multiply peak measured in this run (float32, GFLOP/s): "
          + ", ".join(f"{k} {_f(v, '.0f')}" for k, v in gf.items())
          + f". Peak = best large GEMM = {_f(peak['peak_gflops'], '.0f')} GFLOP/s. ")  # fmt: skip
        if pf:
            w(f"An MLP VAE (latent 2) training sample costs ~{_f(pf['train_gflop_per_sample'] * 1e3, '.2f')} MFLOP "
              "(3x the forward multiply-adds, 2 FLOPs each), so the samples/s above correspond to "
              f"{_f(pf['ours_gflops'], '.0f')} GFLOP/s for ours and {_f(pf['reference_gflops'], '.0f')} GFLOP/s for the reference. "
              "The GEMM at the model's own shape (128x784 @ 784x512) is the practical ceiling at batch 128.")  # fmt: skip
            ceiling = peak["peak_gflops"] / pf["train_gflop_per_sample"]  # samples/s
            ref = g("training", "mlp_vae_latent2")
            w(f"\n**Ceiling.** At 100% of the measured peak, training would run at {_f(ceiling, '.0f')} samples/s "
              f"({_f(60000 / ceiling)} s per 60,000-image epoch): "
              f"**{_f(ceiling / ref['reference_samples_per_s'])}x** the reference's median in this run. The reference "
              f"already runs at {_f(100 * pf['reference_fraction_of_peak'], '.0f')}% of peak here; on an idle machine "
              "(2.7-3.1 s per epoch, the figure quoted in the issue) it runs at about 75-85%, which caps any "
              "implementation of this architecture at batch 128 at roughly 1.2-1.3x -- a 1.5x target is above "
              "this machine's matrix-multiply peak.\n")  # fmt: skip
    for name, title in (("mlp_vae_options", "MLP VAE (latent 2): what each option is worth"),
                        ("conv_dae_options", "Convolutional DAE (12,800-sample epochs): what each option is worth")):  # fmt: skip
        r = g("training", name)
        if not r:
            continue
        w(f"### {title}\n")
        w(
            f"All configurations in one round-robin ({r['epochs']} epochs each, first one untimed).\n"
        )
        w("| Configuration | Samples/s (median) | vs first row | Epoch seconds |")
        w("|---|---|---|---|")
        for n, row in r["variants"].items():
            w(
                f"| {n} | {_f(row['samples_per_s'], '.0f')} | {_f(row['vs_first'])}x | {', '.join(_f(x) for x in row['epoch_s'])} |"
            )
        w("")

    # ------------------------------------------------------------ latency
    lat = [r for r in records if r["section"] == "latency" and r["name"] != "error"]
    if lat:
        w("## Interaction latency\n")
        src = next((r.get("models_from") for r in lat if r.get("models_from")), "?")
        w(
            f"Engine calls the pages make (`vae_core.explore`, `vae_core.images`), timed after 3 warm-up calls; models: {src}.\n"
        )
        w("| Interaction | Model | Median | p95 | Repetitions |")
        w("|---|---|---|---|---|")
        for r in lat:
            if "keras_io" in r["name"]:
                continue
            w(
                f"| {r['name']} | {r['model']} | {_f(r['median_ms'], '.1f')} ms | {_f(r['p95_ms'], '.1f')} ms | {r['reps']} |"
            )
        k = next((r for r in lat if "keras_io" in r["name"]), None)
        if k:
            w(f"\nThe keras-io way (`plot_latent_space`: one `decoder.predict` per cell), {k['name'].split('_')[1]}: "
              f"median {_f(k['median_ms'] / 1000, '.1f')} s per grid ({_f(k['per_call_ms'], '.1f')} ms per `predict`, {k['reps']} grids) — "
              f"the batched 30x30 is **{_f(k['speedup_of_batched_30x30'], '.0f')}x** faster.\n")  # fmt: skip

    # ------------------------------------------------------------ app
    app = [r for r in records if r["section"] == "app"]
    if app:
        w("## The app\n")
        c = g("app", "cold_start")
        if c:
            w(f"`{c['command']}` with `VAE_LAB_HOME` set to an empty temporary folder, Chromium already running "
              "(headless, `--no-sandbox --disable-gpu --disable-background-networking`). Cold start = from "
              "starting the process to the first page's title visible and Streamlit's script state "
              f"`notRunning` (the running indicator gone): first page \"{c['first_page']}\". The README's "
              "command also creates a venv and installs requirements; that one-off install is not timed.\n")  # fmt: skip
        s = g("app", "page_switch")
        if s:
            w("Page switches: clicking each sidebar link in turn until the new page's title is shown and the "
              "run is finished; the first visit to each page is a warm-up. Per page (median s): "
              + ", ".join(f"{k} {_f(v)}" for k, v in s["per_page_median_s"].items()) + ".\n")  # fmt: skip
        m = g("app", "server_memory")
        if m:
            w(f"Memory: RSS of the Streamlit process and its children (/proc VmRSS) after opening every page "
              f"({', '.join(p or '(default)' for p in m['pages'])}) with every model selected via `?model=` "
              f"({m['page_visits']} page loads; models: {', '.join(m['models'])}; {m['models_from']}).\n")  # fmt: skip
        e = g("app", "server_log_errors")
        if e:
            w("Errors in the server log:\n\n```\n" + "\n".join(e["lines"]) + "\n```\n")

    if not quick:
        w(NOTES)
    w("## Raw records\n")
    w("<details><summary>JSON lines of this run</summary>\n\n```json")
    for r in records:
        w(json.dumps({k: v for k, v in r.items() if k != "traceback"}, default=str))
    w("```\n</details>\n")
    return "\n".join(out) + "\n"


# What was tried beyond this run's own sweeps (earlier probes on this machine, same data, batch 128,
# 10 epochs, XLA on, one seed each; the figures vary by about +-1 nat from seed to seed).
NOTES = """## Gaps, and what was tried

**ELBO targets (latent 2 <= 150, latent 32 <= 102).** Same architecture (784-512-latent), batch 128,
10 epochs; the only free levers are the optimiser and its schedule. Probes before this run (test
−ELBO in nats, `vae_core.metrics.negative_elbo`):

| Adam | latent 2 | latent 32 |
|---|---|---|
| lr 1e-3 constant (the keras-io default, and TrainSpec's) | 156.0 | 105.4 |
| lr 2e-3 constant | 153.1 | 105.1 |
| lr 3e-3, cosine decay to 0 over the run (used above) | 153.9 | 103.3 |

The fused loss changes speed and numerical safety, not the optimum, so at equal settings ours and the
reference land within a nat of each other; the better schedule buys 2-3 nats. The remaining gap to
150 / 102 is a capacity-and-epochs gap for a one-hidden-layer MLP: closing it needs a bigger `mlp_vae`
(e.g. a second hidden layer), more epochs, or importance-weighted training -- model changes, not
benchmark settings, and not tried here.

**Training speed.** The MLP step is a handful of small GEMMs; what costs is the per-step overhead
(Python, op dispatch, a dozen small element-wise kernels). Either XLA (`jit_compile=True`, which fuses
the Dense/ReLU/BCE/Adam updates) or `steps_per_execution=16` removes most of it; without both the
Trainer runs at about half speed (see the option table). The plain reference on this machine already
reaches the same level: Keras 3's `fit` on numpy arrays is itself a tf.data pipeline, and at batch 128
the three big GEMMs dominate, so there is little left above it (see *Ceiling*). The 1.5x target
assumes a slower reference than Keras 3.15 on this CPU. For the convolutional DAE, XLA and oneDNN-off
both halve the speed (XLA's CPU convolutions lose to oneDNN's); the conv models keep XLA off and
oneDNN on, and then match the reference, not beat it. Ours uses BCE from logits for the DAE where the
example uses MSE; PSNR is an MSE measure, hence its 0.1 dB edge on the example. Reaching 20 dB needs a
wider bottleneck or more epochs than the example's 16-d latent gets in 5 epochs (not tried here).

**Noise.** Other engineers ran test suites throughout this run (load average 4-7 on 2 cores): absolute
epoch times are about twice the idle figures, paired ratios spread from 0.5x to 1.4x, and the option
tables (2 timed epochs per configuration) separate only differences of about 1.5x or more.
"""
