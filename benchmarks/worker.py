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
        """What vae_core.train does for this kind by default (its preset, machine.compile_options,
        `make_optimizer`, the dtype policy), unless the config overrides one setting to measure
        it: jit, steps_per_execution, drop_remainder, precision, lr, schedule, reconstruction."""
        from vae_core import data, kinds, machine, models
        from vae_core.specs import ModelSpec, TrainSpec, preset

        kind, cfg = self.cfg["model"], self.cfg
        m0, t0 = preset(kind)
        spec = ModelSpec.from_dict(
            {
                **m0.to_dict(),
                "latent_dim": int(cfg["latent_dim"]),
                "reconstruction": cfg.get("reconstruction", m0.reconstruction),
            }
        )
        train_over = {"epochs": int(cfg.get("epochs", t0.epochs)), "batch_size": self.batch}
        for key, field in (("lr", "learning_rate"), ("schedule", "lr_schedule")):
            if key in cfg:
                train_over[field] = cfg[key]
        if "precision" in cfg:
            train_over["precision"] = cfg["precision"]
        tspec = TrainSpec.from_dict({**t0.to_dict(), **train_over})
        devices = {"gpus": len(self.tf.config.list_logical_devices("GPU"))}
        opts = machine.compile_options(spec, tspec, devices, n_train=len(self.x_train))
        for key, field in (
            ("jit", "jit_compile"),
            ("steps_per_execution", "steps_per_execution"),
            ("drop_remainder", "drop_remainder"),
        ):
            if key in cfg:
                opts[field] = cfg[key]
        drop = bool(opts["drop_remainder"])
        steps = len(self.x_train) // self.batch if drop else -(-len(self.x_train) // self.batch)
        self.keras.config.set_dtype_policy(opts["precision"])
        self.bundle = kinds.build(spec)
        self.model = models.Trainer(self.bundle)
        self.model.compile(
            optimizer=machine.make_optimizer(tspec, steps),
            jit_compile=opts["jit_compile"],
            steps_per_execution=int(opts["steps_per_execution"]),
        )
        self.keras.config.set_dtype_policy("float32")
        self.ours_settings = {
            **opts,
            "learning_rate": tspec.learning_rate,
            "lr_schedule": tspec.lr_schedule,
            "latent_dim": spec.latent_dim,
            "reconstruction": spec.reconstruction,
        }
        ds = data.make_tf_dataset(
            self.x_train,
            batch_size=self.batch,
            seed=int(cfg.get("seed", 0)),
            noise=noise,
            drop_remainder=drop,
        )
        self.fit_args = {"x": ds}
        self.samples_per_epoch = steps * self.batch if drop else len(self.x_train)

    def _scored_bundle(self):
        """The float32 copy vae_core.train evaluates and saves (the model itself under float32)."""
        from vae_core import machine

        return machine.float32_bundle(self.bundle)

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

        ours = self.cfg["impl"] == "ours"
        bundle = self._scored_bundle() if ours else None
        from vae_core import kinds

        if not kinds.get(self.cfg["model"]).variational:
            model = bundle.composite if ours else self.model
            out = quality.dae_scores(lambda x: model(x, training=False), self.x_test)
        else:
            encoder, decoder = (
                (bundle.encoder, bundle.decoder) if ours else (self.encoder, self.decoder)
            )
            out = quality.neg_elbo_probs(encoder, decoder, self.x_test)
            if ours:  # the library's own number (from logits), to cross-check
                from vae_core import metrics

                out["vae_core_neg_elbo"] = metrics.negative_elbo(bundle, self.x_test)["neg_elbo"]
        out["epochs"] = self.epochs_done
        out["n_test"] = len(self.x_test)
        return out


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
            "ours_settings": getattr(job, "ours_settings", None),
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
