"""Training speed and quality: VAE Lab against the plain Keras references, side by side.

Each configuration trains in its own worker process; the coordinator alternates them epoch by epoch
in ABBA order (A B, B A, A B, ...), so slow spells on this shared machine hit both sides alike. The
first epoch of each is the warm-up (tracing, XLA compilation) and is not timed. The same runs then
report test quality, so "speed must not cost quality" is checked on exactly the models that were
timed.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time

from benchmarks.common import REPO, child_env, log, median

# VAE Lab's side runs exactly what vae_core/train.py does by default for the kind: its preset
# (specs.preset: learning rate, schedule, latent, loss) and machine.compile_options (precision, XLA,
# steps per execution, static batches); the worker reports the settings it derived ("ours_settings").
# Entries added here override one setting, to measure what it is worth (see benchmarks/worker.py).
MLP = "mlp_vae"
OURS_MLP = {"impl": "ours"}
OURS_CONV = {"impl": "ours"}
REFERENCE = {"impl": "reference"}


def dae_latent() -> int:
    """The benchmarked DAE's latent size: the conv_dae preset's, for both sides."""
    from vae_core.specs import preset

    return preset("conv_dae")[0].latent_dim


class Worker:
    """A `benchmarks.worker` child process and a line reader that never blocks the coordinator."""

    def __init__(self, name: str, cfg: dict, env: dict | None = None):
        self.name, self.cfg = name, cfg
        self.stderr_tail: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.worker", json.dumps(cfg)],
            cwd=REPO,
            env=child_env(**(env or {})),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._pump, args=(self.proc.stdout, True), daemon=True).start()
        threading.Thread(target=self._pump, args=(self.proc.stderr, False), daemon=True).start()

    def _pump(self, stream, is_stdout: bool) -> None:
        for line in stream:
            if is_stdout and line.startswith("@@"):
                self.lines.put(line[2:])
            else:
                self.stderr_tail = (self.stderr_tail + [line.rstrip()])[-20:]
        if is_stdout:
            self.lines.put(None)

    def read(self, timeout: float) -> dict:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty as err:
            raise RuntimeError(f"{self.name}: no answer in {timeout:.0f} s") from err
        if line is None:
            tail = "\n".join(self.stderr_tail[-8:])
            raise RuntimeError(f"{self.name} ended unexpectedly:\n{tail}")
        kind, _, payload = line.partition(" ")
        value = json.loads(payload)
        if kind == "ERROR":
            raise RuntimeError(f"{self.name}: {value}")
        return value

    def ask(self, cmd: str, timeout: float = 900) -> dict:
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()
        return self.read(timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


def start(specs: dict[str, tuple[dict, dict | None]]) -> dict[str, Worker]:
    """Start the workers together (set-up is not timed) and wait until each is ready."""
    workers = {name: Worker(name, cfg, env) for name, (cfg, env) in specs.items()}
    try:
        for w in workers.values():
            w.ready = w.read(timeout=600)
    except BaseException:
        for w in workers.values():
            w.close()
        raise
    return workers


def alternate(workers: dict[str, Worker], epochs: int) -> dict[str, list[dict]]:
    """Run `epochs` epochs of each worker, interleaved; the order flips every round (ABBA)."""
    names = list(workers)
    out: dict[str, list[dict]] = {n: [] for n in names}
    for e in range(epochs):
        k = e % len(names)
        order = names[k:] + names[:k] if len(names) > 2 else (names if e % 2 == 0 else names[::-1])
        for n in order:
            res = workers[n].ask("epoch")
            out[n].append(res)
            log(
                f"  {n} epoch {res['epoch']}: {res['seconds']:.2f} s ({res['samples_per_s']:.0f}/s)"
            )
    return out


def timed(epochs: list[dict]) -> list[dict]:
    """The epochs after warm-up (all of them when there is only one)."""
    return epochs[1:] if len(epochs) > 1 else epochs


def speed_summary(a: list[dict], b: list[dict]) -> dict:
    """Medians of samples/s after warm-up, their ratio B/A, and the median of paired ratios."""
    ta, tb = timed(a), timed(b)
    sa, sb = [e["samples_per_s"] for e in ta], [e["samples_per_s"] for e in tb]
    pairs = [y / x for x, y in zip(sa, sb, strict=False)]
    return {
        "reference_samples_per_s": median(sa),
        "ours_samples_per_s": median(sb),
        "ratio": median(sb) / median(sa),
        "paired_ratio_median": median(pairs),
        "paired_ratio_min": min(pairs) if pairs else None,
        "paired_ratio_max": max(pairs) if pairs else None,
        "reference_epoch_s": [round(e["seconds"], 3) for e in a],
        "ours_epoch_s": [round(e["seconds"], 3) for e in b],
        "timed_epochs": len(ta),
    }


def pair(model: str, latent: int, epochs: int, common: dict, ours: dict) -> dict:
    """The two worker specs of a comparison: the reference (A) and VAE Lab (B)."""
    base = {"model": model, "latent_dim": latent, "batch_size": 128, "epochs": epochs, **common}
    return {"reference": ({**base, **REFERENCE}, None), "ours": ({**base, **ours}, None)}


def compare(
    rec, name: str, model: str, latent: int, epochs: int, common: dict, ours: dict, workers=None
) -> dict:
    """Reference (A) against VAE Lab (B): alternating epochs, then both evaluated on the test set."""
    log(f"training: {name} ({epochs} epochs each, alternating)")
    workers = workers or start(pair(model, latent, epochs, common, ours))
    try:
        runs = alternate(workers, epochs)
        summary = speed_summary(runs["reference"], runs["ours"])
        evals = {n: w.ask("eval") for n, w in workers.items()}
    finally:
        for w in workers.values():
            w.close()
    cfg = {
        **workers["ours"].ready.get("ours_settings", {}),
        **{k: v for k, v in ours.items() if k != "impl"},
    }
    return rec.emit(
        "training",
        name,
        model=model,
        latent_dim=latent,
        batch_size=128,
        epochs=epochs,
        samples_per_epoch=workers["ours"].ready["samples_per_epoch"],
        reference_samples_per_epoch=workers["reference"].ready["samples_per_epoch"],
        ours_config=cfg,
        **summary,
        reference_test=evals["reference"],
        ours_test=evals["ours"],
        reference_final_train_loss=runs["reference"][-1]["train_loss"],
        ours_final_train_loss=runs["ours"][-1]["train_loss"],
    )


def variants(
    rec, name: str, model: str, latent: int, epochs: int, common: dict, configs: dict
) -> dict:
    """Several configurations of one model, round-robin; what each option is worth on this machine."""
    log(f"training: {name} ({len(configs)} configurations, {epochs} epochs each)")
    base = {"model": model, "latent_dim": latent, "batch_size": 128, **common}
    specs = {n: ({**base, **cfg}, env) for n, (cfg, env) in configs.items()}
    workers = start(specs)
    try:
        runs = alternate(workers, epochs)
    finally:
        for w in workers.values():
            w.close()
    rows = {}
    for n, eps in runs.items():
        sps = [e["samples_per_s"] for e in timed(eps)]
        rows[n] = {
            "samples_per_s": median(sps),
            "epoch_s": [round(e["seconds"], 3) for e in eps],
            "config": specs[n][0],
            "env": specs[n][1] or {},
        }
    base_name = next(iter(configs))
    for row in rows.values():
        row["vs_first"] = row["samples_per_s"] / rows[base_name]["samples_per_s"]
    return rec.emit(
        "training",
        name,
        model=model,
        latent_dim=latent,
        epochs=epochs,
        baseline=base_name,
        variants=rows,
    )


def matmul_peak(rec, quick: bool) -> dict:
    """float32 GEMM throughput on this machine, measured in the same run as the training numbers.

    Peak = the best of several timings (a peak is what the machine can do, not what it usually does
    while shared); each timing runs the product several times inside one tf.function call so that
    Python and dispatch overhead do not count.
    """
    import tensorflow as tf

    reps = 3 if quick else 8

    def gflops(a, b, inner: int) -> float:
        @tf.function
        def many():
            acc = tf.zeros((), a.dtype)
            for _ in tf.range(inner):
                acc += tf.reduce_sum(tf.matmul(a + acc * 0, b))
            return acc

        many().numpy()  # warm-up and tracing
        best = float("inf")
        for _ in range(reps):
            t0 = time.perf_counter()
            many().numpy()
            best = min(best, time.perf_counter() - t0)
        m, k = a.shape
        n = b.shape[1]
        return 2 * m * k * n * inner / best / 1e9

    def gflops_xla(a, b, inner: int) -> float:
        """The same under XLA (how VAE Lab's dense models run), where bfloat16 GEMMs are native."""

        @tf.function(jit_compile=True)
        def many(a, b):
            acc = tf.zeros((), a.dtype)
            for _ in range(inner):  # unrolled: XLA wants static loops
                acc += tf.reduce_sum(tf.matmul(a + acc * 0, b))
            return acc

        many(a, b).numpy()
        best = float("inf")
        for _ in range(reps):
            t0 = time.perf_counter()
            many(a, b).numpy()
            best = min(best, time.perf_counter() - t0)
        m, k = a.shape
        n = b.shape[1]
        return 2 * m * k * n * inner / best / 1e9

    shapes = {
        "1024x1024x1024": (1024, 1024, 1024, 4),
        "128x784x512 (the MLP's GEMM)": (128, 784, 512, 40),
    }
    if not quick:
        shapes["2048x2048x2048"] = (2048, 2048, 2048, 2)
    out, bf16 = {}, {}
    for name, (m, k, n, inner) in shapes.items():
        a, b = tf.random.normal((m, k)), tf.random.normal((k, n))
        out[name] = gflops(a, b, inner)
        if "2048" in name:
            continue  # float32 only: the bfloat16 figures are for the shapes VAE Lab multiplies
        a16, b16 = tf.cast(a, tf.bfloat16), tf.cast(b, tf.bfloat16)
        bf16[f"{name}, bfloat16, TF kernels"] = gflops(a16, b16, inner)
        bf16[f"{name}, bfloat16, XLA"] = gflops_xla(a16, b16, inner)
        bf16[f"{name}, float32, XLA"] = gflops_xla(a, b, inner)
    return rec.emit(
        "training",
        "matmul_peak",
        peak_gflops=max(out.values()),
        gflops=out,
        bf16_peak_gflops=max((v for k, v in bf16.items() if "bfloat16" in k), default=None),
        more_gflops=bf16,
    )


def mlp_train_flops(latent: int, hidden: int = 512) -> float:
    """FLOPs per training sample of the MLP VAE: ~3x the forward multiply-adds, 2 FLOPs each."""
    macs = 784 * hidden + hidden * 2 * latent + latent * hidden + hidden * 784
    return 2 * 3 * macs


def run(rec, quick: bool) -> None:
    common = {"dataset": "sample", "n_train": 384, "n_test": 100} if quick else {"dataset": "mnist"}
    if quick and _full_mnist():
        common["dataset"] = "mnist"
        common["n_train"], common["n_test"] = 512, 500
    vae_epochs, dae_epochs = (2, 2) if quick else (10, 5)
    latents = (2,) if quick else (2, 32)
    jobs = {f"mlp_vae_latent{d}": ("mlp_vae", d, vae_epochs, dict(OURS_MLP)) for d in latents}
    jobs["conv_dae"] = ("conv_dae", dae_latent(), dae_epochs, dict(OURS_CONV))
    # The smoke run starts every worker at once (its timings mean nothing anyway); the full run
    # starts each pair only when its turn comes, so no start-up competes with a timed epoch.
    early = {}
    if quick:
        specs = {
            f"{n}/{side}": spec
            for n, (model, latent, epochs, ours) in jobs.items()
            for side, spec in pair(model, latent, epochs, common, ours).items()
        }
        started = start(specs)
        early = {n: {side: started[f"{n}/{side}"] for side in ("reference", "ours")} for n in jobs}

    peak = matmul_peak(rec, quick)
    for name, (model, latent, epochs, ours) in jobs.items():
        row = compare(rec, name, model, latent, epochs, common, ours, early.get(name))
        if model != MLP:  # the FLOP count below is the MLP VAE's
            continue
        flops = mlp_train_flops(latent)
        gf = {side: row[f"{side}_samples_per_s"] * flops / 1e9 for side in ("ours", "reference")}
        bf16_peak = peak.get("bf16_peak_gflops")
        rec.emit(
            "training",
            f"{name}_peak_fraction",
            train_gflop_per_sample=flops / 1e9,
            ours_gflops=gf["ours"],
            reference_gflops=gf["reference"],
            ours_fraction_of_peak=gf["ours"] / peak["peak_gflops"],
            reference_fraction_of_peak=gf["reference"] / peak["peak_gflops"],
            ours_fraction_of_bf16_peak=gf["ours"] / bf16_peak if bf16_peak else None,
        )
    if quick:
        return
    vcommon = {**common, "epochs": 10}
    before = {
        "jit": False,
        "steps_per_execution": 16,
        "drop_remainder": False,
        "precision": "float32",
    }
    f32 = {"precision": "float32", "jit": True, "steps_per_execution": 1, "drop_remainder": True}
    variants(
        rec,
        "mlp_vae_options",
        "mlp_vae",
        2,
        3,
        vcommon,
        {
            "ours, vae_core/train.py's default (benchmarked above)": (dict(OURS_MLP), None),
            "ours, bfloat16, XLA on, 1 step/execution": (
                {**OURS_MLP, "jit": True, "steps_per_execution": 1},
                None,
            ),
            "ours, float32, XLA on, 1 step/execution (the float32 default)": (
                {**OURS_MLP, **f32},
                None,
            ),
            "ours, float32, XLA off, 16 steps/execution, partial last batch (the old default)": (
                {**OURS_MLP, **before},
                None,
            ),
            "reference, default compile": (dict(REFERENCE), None),
        },
    )
    variants(
        rec,
        "conv_dae_options",
        "conv_dae",
        dae_latent(),
        3,
        {**common, "n_train": 128 * 100},
        {
            "ours, vae_core/train.py's default (benchmarked above)": (dict(OURS_CONV), None),
            "ours, float32": ({**OURS_CONV, "precision": "float32"}, None),
            "ours, 16 steps/execution": ({**OURS_CONV, "steps_per_execution": 16}, None),
            "reference, default compile": (dict(REFERENCE), None),
        },
    )


def _full_mnist() -> bool:
    """Quick mode reads the full MNIST only when VAE_LAB_DATA_DIR points at it; else the sample."""
    from vae_core import data, paths

    return bool(os.environ.get(paths.DATA_DIR_ENV)) and data.find_dataset_files("mnist") is not None
