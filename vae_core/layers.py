"""The Sampling layer: the reparameterisation trick, and the one place sampling is switched.

With `training=True` it draws z = z_mean + exp(z_log_var / 2) * eps; with `training=False` it returns
z_mean, as Mult-VAE (Liang et al. 2018) prescribes for prediction. `always_sample=True` keeps the
keras-io example's behaviour (it samples even at prediction) so the app can show both side by side.
No Lambda layers anywhere: they cannot be loaded in safe mode.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="vae_lab")
class Sampling(keras.layers.Layer):
    """(z_mean, z_log_var) -> z; samples while training, returns the mean at prediction."""

    def __init__(self, always_sample: bool = False, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.always_sample = bool(always_sample)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        z_mean, z_log_var = inputs
        if not (training or self.always_sample):
            return z_mean
        eps = keras.random.normal(ops.shape(z_mean), dtype=z_mean.dtype, seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * eps

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "always_sample": self.always_sample, "seed": self.seed}
