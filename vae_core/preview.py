"""What a training run shows after each epoch: the kind's picture (and numbers) of how it is doing.

A kind names its preview in the registry (vae_core.kinds). A preview is made once per run from the
model and the validation data and called after every completed epoch; it returns PNG bytes for
epochs/epoch_NNN.png (or None) and numbers to add to that epoch's progress line.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from vae_core.data import add_noise
from vae_core.images import tile, to_png
from vae_core.models import ModelBundle, with_label
from vae_core.specs import TrainSpec

GRID_DIGITS, GRID_SAMPLES, GRID_SEED = 8, 16, 1234


class DigitGrid:
    """The same test digits and the same z every epoch, so the grids show learning, not luck.

    A VAE: 8 test digits, decoder(z_mean) of each, then 16 prior samples from fixed z. The DAE:
    noisy digits, its clean-up, the clean originals.
    """

    def __init__(self, bundle: ModelBundle, x_val: np.ndarray, y_val: np.ndarray, train: TrainSpec):
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
        rng = np.random.default_rng(GRID_SEED)
        self.z = tf.constant(rng.standard_normal((GRID_SAMPLES, spec.latent_dim)), tf.float32)
        self.z_labels = tf.constant(np.arange(GRID_SAMPLES) % spec.num_classes, tf.int32)

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
                b.decoder(with_label(spec, self.z, self.z_labels), training=False),
            ]
        images = np.concatenate([np.asarray(r, dtype=np.float32) for r in rows])
        return to_png(tile(images, ncols=GRID_DIGITS), scale=2), {}
