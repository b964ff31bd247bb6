"""What a kind's data brings to a training run: its data, batches, model, extra callbacks, the
picture after each epoch and the test scores. vae_core.train runs any task the same way (progress,
Stop, checkpoints, the store); the registry (vae_core.kinds) names each kind's task.

The digit task lives here; the recommender's is vae_core.recsys.task.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import keras
import numpy as np
import tensorflow as tf

from vae_core import kinds, machine
from vae_core.data import add_noise, load_dataset, make_tf_dataset, to_float
from vae_core.errors import RunError
from vae_core.explore import draw_prior
from vae_core.images import tile, to_png
from vae_core.metrics import evaluate
from vae_core.models import ModelBundle, Trainer, prior_of, with_label
from vae_core.specs import TrainSpec

if TYPE_CHECKING:
    from vae_core.run_context import Run

MAX_VALIDATION = 10_000  # images validated after each epoch (all of MNIST's test split)
GRID_DIGITS, GRID_SAMPLES, GRID_SEED = 8, 16, 1234
PLACE_BOOST, PLACE_MIN_EPOCHS = 20.0, 3  # see PlaceDigitsFirst

# After each epoch: PNG bytes for the run folder's picture (or None) and numbers for its line.
Preview = Callable[[], tuple[bytes | None, dict]]


@dataclass
class Batches:
    """What fit() is given: training batches, validation batches (None: the task validates in a
    callback of its own) and how many training steps make an epoch."""

    train: tf.data.Dataset
    val: tf.data.Dataset | None
    steps_per_epoch: int


class Task(Protocol):
    """The steps a kind's data takes in a run, called in this order by vae_core.train."""

    n_train: int  # training samples (the machine's compile choices depend on it)

    def __init__(self, run: Run) -> None: ...  # loads the data
    def batches(self, drop_remainder: bool) -> Batches: ...
    def trainer(self, options: dict, steps_per_epoch: int) -> keras.Model: ...  # compiled, built
    def callbacks(self) -> list[keras.callbacks.Callback]: ...
    def preview(self, trainer: keras.Model) -> Preview: ...
    def test(self, trainer: keras.Model) -> tuple[ModelBundle, dict[str, float]]: ...


# ---------------------------------------------------------------- digits
class DigitTask:
    """28x28 digits: train on x_train (capped), validate after each epoch on the test split
    (capped), test on all of it. A VAE redraws the digits (and the conditional VAE is given their
    labels); the DAE is given noisy digits and asked for the clean ones."""

    def __init__(self, run: Run):
        self.run, self.spec, self.train_spec = run, run.model_spec, run.train_spec
        data = load_dataset(self.train_spec.dataset)
        cap = self.train_spec.max_train_samples
        if cap is not None and cap < 1:
            raise RunError("The cap on training samples must be at least 1 (or no cap at all).")
        self.x_train, self.y_train = to_float(data.x_train[:cap]), np.asarray(data.y_train[:cap])
        self.x_test, self.y_test = to_float(data.x_test), np.asarray(data.y_test)
        self.labels = self.spec.learns_from_labels
        noise = (self.train_spec.noise, self.train_spec.noise_strength)
        self.noise = None if self.spec.is_vae else noise
        self.n_train = len(self.x_train)
        self.binarize = data.dynamic_binarization

    def batches(self, drop_remainder: bool) -> Batches:
        train = self.train_spec
        common = dict(batch_size=train.batch_size, noise=self.noise)
        x_val, y_val = self.x_test[:MAX_VALIDATION], self.y_test[:MAX_VALIDATION]
        val = make_tf_dataset(
            x_val, y_val if self.labels else None, shuffle=False, seed=train.seed + 1, **common
        )
        shuffled = make_tf_dataset(
            self.x_train,
            self.y_train if self.labels else None,
            shuffle=True,
            seed=train.seed,
            drop_remainder=drop_remainder,
            binarize=self.binarize,
            **common,
        )
        n, size = self.n_train, train.batch_size
        steps = n // size if drop_remainder else math.ceil(n / size)
        return Batches(shuffled, val, steps)

    def trainer(self, options: dict, steps_per_epoch: int) -> Trainer:
        trainer = Trainer(kinds.build(self.spec))
        trainer.compile(
            optimizer=machine.make_optimizer(self.train_spec, steps_per_epoch),
            jit_compile=options["jit_compile"],
            steps_per_execution=options["steps_per_execution"],
        )
        label = self.y_test[:1].astype(np.int32)
        trainer(with_label(self.spec, self.x_test[:1], label))  # creates the variables
        return trainer

    def callbacks(self) -> list[keras.callbacks.Callback]:
        if self.spec.is_vae and self.train_spec.kl_warmup_epochs > 0:
            return [KLWarmup(self.spec.beta, self.train_spec.kl_warmup_epochs)]
        if self.spec.prior == "class_mixture" and self.train_spec.epochs >= PLACE_MIN_EPOCHS:
            return [PlaceDigitsFirst(self.spec.beta)]
        return []

    def preview(self, trainer: Trainer) -> Preview:
        return DigitGrid(trainer.bundle, self.x_test, self.y_test, self.train_spec)

    def test(self, trainer: Trainer) -> tuple[ModelBundle, dict[str, float]]:
        bundle = machine.float32_bundle(trainer.bundle)
        return bundle, digit_test_scores(bundle, self.x_test, self.y_test, self.train_spec)


def digit_test_scores(
    bundle: ModelBundle, x_test: np.ndarray, y_test: np.ndarray, train: TrainSpec
) -> dict[str, float]:
    """The test metrics a digit run stores: -ELBO for a VAE (given the labels when conditional),
    PSNR/SSIM for the DAE on the run's own noise, drawn from the run's seed."""
    spec = bundle.spec
    scores = evaluate(
        bundle,
        x_test,
        y_test if spec.is_conditional else None,
        noise=None if spec.is_vae else (train.noise, train.noise_strength),
        batch_size=500,
        seed=train.seed,
    )
    return {k: float(v) for k, v in scores.items()}


class PlaceDigitsFirst(keras.callbacks.Callback):
    """With one Gaussian per digit, the first epoch weighs the KL term PLACE_BOOST times: each digit
    moves into its own Gaussian before the decoder settles on a layout. Without it, digits that
    start in the middle stay there, mixed with the others (benchmarks/RESULTS.md)."""

    def __init__(self, beta: float):
        super().__init__()
        self.beta = float(beta)

    def on_epoch_begin(self, epoch, logs=None):
        self.model.kl_weight.assign(self.beta * (PLACE_BOOST if epoch == 0 else 1.0))


class KLWarmup(keras.callbacks.Callback):
    """KL weight = beta * min(1, epoch / warmup_epochs) from each epoch's start (epoch 0-based)."""

    def __init__(self, beta: float, warmup_epochs: int):
        super().__init__()
        self.beta, self.warmup_epochs = float(beta), int(warmup_epochs)

    def on_epoch_begin(self, epoch, logs=None):
        self.model.kl_weight.assign(self.beta * min(1.0, epoch / self.warmup_epochs))


class DigitGrid:
    """The same test digits and the same z every epoch, so the grids show learning, not luck.

    A VAE: 8 test digits, decoder(z_mean) of each, then 16 prior samples from fixed z. The DAE:
    noisy digits, its clean-up, the clean originals.
    """

    def __init__(self, bundle: ModelBundle, x_val: np.ndarray, y_val: np.ndarray, train) -> None:
        self.bundle, spec = bundle, bundle.spec
        # One of each digit 0..7 when the split has them: easier to read than 8 random ones.
        picks = [int(np.argmax(y_val == d)) for d in range(GRID_DIGITS) if np.any(y_val == d)]
        if len(picks) < GRID_DIGITS:
            picks = list(range(min(GRID_DIGITS, len(x_val))))
        self.clean = x_val[picks]
        # Tensors, not arrays: Keras refuses a list that mixes the two (z_mean and labels).
        self.labels = tf.constant(y_val[picks], tf.int32)
        if not spec.is_vae:
            self.noisy = add_noise(self.clean, train.noise, train.noise_strength, seed=GRID_SEED)
            return
        self.z = None if prior_of(bundle.decoder) else self._prior_z()
        self.z_labels = tf.constant(np.arange(GRID_SAMPLES) % spec.num_classes, tf.int32)

    def _prior_z(self):
        # A learned prior moves while training: its draws are taken afresh (from the same seed).
        rng = np.random.default_rng(GRID_SEED)
        return tf.constant(draw_prior(self.bundle, GRID_SAMPLES, rng))

    def __call__(self) -> tuple[bytes | None, dict]:
        b, spec = self.bundle, self.bundle.spec
        if not spec.is_vae:
            rows = [self.noisy, b.composite(self.noisy, training=False), self.clean]
        else:
            clean = tf.constant(self.clean)
            z_mean = b.encoder(with_label(spec, clean, self.labels), training=False)[0]
            rows = [
                self.clean,
                b.decoder(with_label(spec, z_mean, self.labels), training=False),
                b.decoder(
                    with_label(spec, self._prior_z() if self.z is None else self.z, self.z_labels),
                    training=False,
                ),
            ]
        images = np.concatenate([np.asarray(r, dtype=np.float32) for r in rows])
        return to_png(tile(images, ncols=GRID_DIGITS), scale=2), {}
