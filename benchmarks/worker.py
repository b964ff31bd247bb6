"""One training configuration in its own process, driven epoch by epoch over stdin/stdout.

The coordinator (`benchmarks.training`) starts one worker per configuration and alternates them:
"epoch" trains one epoch and answers its wall time, "eval" answers test metrics, "quit" ends. A
process per configuration keeps each framework setting (XLA, oneDNN, threads) to itself, and
alternating epochs spreads the machine's noise evenly over A and B.

Protocol lines start with `@@` so stray library output on stdout cannot be mistaken for an answer.
"""

from __future__ import annotations

import json
import os
import sys
import time

PREFIX = "@@"


def _say(kind: str, payload: dict) -> None:
    sys.stdout.write(f"{PREFIX}{kind} {json.dumps(payload)}\n")
    sys.stdout.flush()


def _load_data(cfg: dict):
    from vae_core import data

    ds = data.load_dataset(cfg.get("dataset", "mnist"), allow_download=False)
    x_train, x_test = data.to_float(ds.x_train), data.to_float(ds.x_test)
    if cfg.get("n_train"):
        x_train = x_train[: cfg["n_train"]]
    if cfg.get("n_test"):
        x_test = x_test[: cfg["n_test"]]
    return x_train, x_test, ds.source


class Job:
    """A model, its data and how it is fitted; `epoch()` runs one more epoch."""

    def __init__(self, cfg: dict):
        import keras
        import tensorflow as tf

        threads = cfg.get("threads")
        if threads:
            tf.config.threading.set_intra_op_parallelism_threads(int(threads[0]))
            tf.config.threading.set_inter_op_parallelism_threads(int(threads[1]))
        keras.utils.set_random_seed(int(cfg.get("seed", 0)))
        self.cfg = cfg
        self.keras, self.tf = keras, tf
        self.x_train, self.x_test, self.source = _load_data(cfg)
        self.batch = int(cfg.get("batch_size", 128))
        self.epochs_done = 0
        self.timer = _EpochTimer()
        getattr(self, f"_setup_{cfg['impl']}_{cfg['model']}")()

    # ------------------------------------------------------------ the references
    def _setup_reference_mlp_vae(self):
        from benchmarks import reference

        self.model, self.encoder, self.decoder = reference.build_vae(int(self.cfg["latent_dim"]))
        if self.cfg.get("jit"):  # only as an experiment: the reference proper keeps the default
            self.model.compile(optimizer=self.keras.optimizers.Adam(), jit_compile=True)
        self.fit_args = {"x": self.x_train, "batch_size": self.batch}
        self.samples_per_epoch = len(self.x_train)

    def _setup_reference_conv_dae(self):
        from benchmarks import reference

        self.model = reference.build_dae(int(self.cfg["latent_dim"]))
        if self.cfg.get("jit"):
            self.model.compile(loss="mse", optimizer="adam", jit_compile=True)
        noisy = reference.keras_example_noise(self.x_train, seed=int(self.cfg.get("seed", 0)))
        self.fit_args = {"x": noisy, "y": self.x_train, "batch_size": self.batch}
        self.samples_per_epoch = len(self.x_train)

    # ------------------------------------------------------------ VAE Lab
    def _setup_ours(self, noise):
        from vae_core import data, models
        from vae_core.specs import ModelSpec

        kind = self.cfg["model"]
        spec = ModelSpec(
            kind, latent_dim=int(self.cfg["latent_dim"]), hidden=512 if kind == "mlp_vae" else 256
        )
        self.bundle = models.build_model(spec)
        self.model = models.Trainer(self.bundle)
        lr = float(self.cfg.get("lr", 1e-3))
        drop = bool(self.cfg.get("drop_remainder", True))
        steps = len(self.x_train) // self.batch if drop else -(-len(self.x_train) // self.batch)
        if self.cfg.get("schedule") == "cosine":
            total = steps * int(self.cfg.get("epochs", 10))
            lr = self.keras.optimizers.schedules.CosineDecay(lr, total, alpha=0.0)
        self.model.compile(
            optimizer=self.keras.optimizers.Adam(lr),
            jit_compile=bool(self.cfg.get("jit", False)),
            steps_per_execution=int(self.cfg.get("steps_per_execution", 1)),
        )
        ds = data.make_tf_dataset(
            self.x_train,
            batch_size=self.batch,
            seed=int(self.cfg.get("seed", 0)),
            noise=noise,
            drop_remainder=drop,
        )
        self.fit_args = {"x": ds}
        self.samples_per_epoch = steps * self.batch if drop else len(self.x_train)
        self.encoder, self.decoder = self.bundle.encoder, self.bundle.decoder

    def _setup_ours_mlp_vae(self):
        self._setup_ours(None)

    def _setup_ours_conv_dae(self):
        self._setup_ours(("keras", 0.5))

    # ------------------------------------------------------------ commands
    def epoch(self) -> dict:
        t0 = time.perf_counter()
        history = self.model.fit(
            **self.fit_args,
            epochs=self.epochs_done + 1,
            initial_epoch=self.epochs_done,
            verbose=0,
            callbacks=[self.timer],
        )
        wall = time.perf_counter() - t0
        self.epochs_done += 1
        loss = {k: float(v[-1]) for k, v in history.history.items()}
        seconds = self.timer.seconds
        return {
            "epoch": self.epochs_done,
            "seconds": seconds,
            "fit_call_seconds": wall,
            "samples": self.samples_per_epoch,
            "samples_per_s": self.samples_per_epoch / seconds,
            "train_loss": loss,
        }

    def evaluate(self) -> dict:
        from benchmarks import quality

        if self.cfg["model"] == "conv_dae":
            out = quality.dae_scores(self._predict, self.x_test)
        else:
            out = quality.neg_elbo_probs(self.encoder, self.decoder, self.x_test)
            if self.cfg["impl"] == "ours":  # the library's own number (from logits), to cross-check
                from vae_core import metrics

                out["vae_core_neg_elbo"] = metrics.negative_elbo(self.bundle, self.x_test)[
                    "neg_elbo"
                ]
        out["epochs"] = self.epochs_done
        out["n_test"] = len(self.x_test)
        return out

    def _predict(self, x):
        model = self.bundle.composite if self.cfg["impl"] == "ours" else self.model
        return model(x, training=False)


class _EpochTimer:
    """A Keras callback timing the epoch loop only (fit's set-up and tear-down are left out)."""

    def __new__(cls):
        import keras

        class Timer(keras.callbacks.Callback):
            seconds = float("nan")

            def on_epoch_begin(self, epoch, logs=None):
                self._t0 = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                self.seconds = time.perf_counter() - self._t0

        return Timer()


def main() -> None:
    cfg = json.loads(sys.argv[1])
    t0 = time.perf_counter()
    job = Job(cfg)
    import keras
    import tensorflow as tf

    _say(
        "READY",
        {
            "setup_s": time.perf_counter() - t0,
            "samples_per_epoch": job.samples_per_epoch,
            "data": job.source,
            "tf": tf.__version__,
            "keras": keras.__version__,
            "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default"),
        },
    )
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "epoch":
            _say("EPOCH", job.epoch())
        elif cmd == "eval":
            _say("EVAL", job.evaluate())
        elif cmd == "quit":
            break
        else:
            _say("ERROR", {"error": f"unknown command {cmd!r}"})


if __name__ == "__main__":
    main()
