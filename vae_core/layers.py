"""The Sampling layer: the reparameterisation trick, and the one place sampling is switched; and the
learned prior a VAE may draw from instead of N(0, I).

With `training=True` it draws z = z_mean + exp(z_log_var / 2) * eps; with `training=False` it returns
z_mean, as Mult-VAE (Liang et al. 2018) prescribes for prediction. `always_sample=True` keeps the
keras-io example's behaviour (it samples even at prediction) so the app can show both side by side.
No Lambda layers anywhere: they cannot be loaded in safe mode.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

LOG_2PI = math.log(2 * math.pi)


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


@keras.saving.register_keras_serializable(package="vae_lab")
class MixturePrior(keras.layers.Layer):
    """p(z) as an equal-weight mixture of Gaussians (one per digit class by default), learned or
    (`learned=False`) kept where it starts.

    N(0, I) leaves "holes" between where the encoder puts real digits, and in two dimensions the ten
    digits pile on top of each other; a mixture lets each kind of digit keep its own place, and
    draws from it land where digits are. The decoder carries it -- p(z) and p(x|z) are the
    generative model together -- as a pass-through layer after its Input, so it is saved with it.
    """

    def __init__(self, components: int = 10, spread: float = 4.0, learned: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.components, self.spread, self.learned = int(components), float(spread), bool(learned)
        if not self.learned:  # Keras re-marks a trainable layer's weights trainable
            self.trainable = False

    def build(self, input_shape):
        dim = int(input_shape[-1])
        self.means = self.add_weight(
            (self.components, dim), initializer=self._spread_out, name="means"
        )
        self.log_vars = self.add_weight(
            (self.components, dim), initializer="zeros", name="log_vars"
        )

    def _spread_out(self, shape, dtype=None):
        """Starting means far enough apart that each component keeps its own digits: on a circle of
        radius `spread` in two dimensions (a clock of digits on the map), else at random."""
        k, dim = shape
        if dim == 2:
            angle = 2 * np.pi * np.arange(k) / k
            means = self.spread * np.stack([np.sin(angle), np.cos(angle)], axis=1)
        else:
            means = np.random.default_rng(0).standard_normal(shape) * self.spread / np.sqrt(dim)
        return ops.convert_to_tensor(means, dtype=dtype or "float32")

    def call(self, z):
        return z

    def log_prob(self, z, component=None):
        """log p(z) per row of z (N, D), in nats; with `component` (N,) ints, log N(z; that
        component) (how much it costs the code to sit in its own digit's Gaussian)."""
        z = ops.cast(z, "float32")
        means, log_vars = ops.cast(self.means, "float32"), ops.cast(self.log_vars, "float32")
        diff = ops.expand_dims(z, 1) - ops.expand_dims(means, 0)  # (N, K, D)
        per_dim = LOG_2PI + log_vars + ops.square(diff) / ops.exp(log_vars)
        per_component = -0.5 * ops.sum(per_dim, axis=-1)  # (N, K)
        if component is not None:
            onehot = ops.one_hot(ops.cast(component, "int32"), self.components)
            return ops.sum(per_component * onehot, axis=1)
        return ops.logsumexp(per_component, axis=1) - math.log(self.components)

    def sample(self, n: int, rng, temperature: float = 1.0, component=None):
        """n draws as numpy: a component each (equal weights, or the one given), then its Gaussian,
        its spread scaled by the temperature."""
        means = np.asarray(self.means, np.float64)
        sigma = np.exp(0.5 * np.asarray(self.log_vars, np.float64))
        k = rng.integers(self.components, size=n) if component is None else np.full(n, component)
        eps = rng.standard_normal((n, means.shape[1]))
        return means[k] + temperature * sigma[k] * eps

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "components": self.components,
            "spread": self.spread,
            "learned": self.learned,
        }
