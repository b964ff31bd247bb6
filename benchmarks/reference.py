"""The plain Keras 3 references, written the way the Keras examples write them.

- `build_vae`: keras-io `examples/generative/vae.py` (custom `train_step`, default `compile`, `fit` on a
  numpy array), with the MLP 784-512-latent body VAE Lab's `mlp_vae` uses, so speed and quality are
  compared on the same architecture, batch size and data.
- `build_dae`: the Keras denoising example (`examples/mnist_denoising_autoencoder.py`): the same
  conv/deconv stack as VAE Lab's `conv_dae`, `compile(loss="mse", optimizer="adam")`, `fit` on
  numpy arrays, noise x + N(0.5, 0.5) clipped, drawn once before training.

Kept deliberately plain: no tf.data, no XLA, no fused loss -- that is what is being compared against.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops


class Sampling(layers.Layer):
    """keras-io's Sampling: always samples (it ignores `training`)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(1337)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        batch, dim = ops.shape(z_mean)[0], ops.shape(z_mean)[1]
        epsilon = keras.random.normal(shape=(batch, dim), seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * epsilon


class VAE(keras.Model):
    """keras-io's VAE model: encoder, decoder and a custom train_step with three loss trackers."""

    def __init__(self, encoder, decoder, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.total_loss_tracker = keras.metrics.Mean(name="total_loss")
        self.reconstruction_loss_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")

    @property
    def metrics(self):
        return [self.total_loss_tracker, self.reconstruction_loss_tracker, self.kl_loss_tracker]

    def train_step(self, data):
        with tf.GradientTape() as tape:
            z_mean, z_log_var, z = self.encoder(data)
            reconstruction = self.decoder(z)
            reconstruction_loss = ops.mean(
                ops.sum(keras.losses.binary_crossentropy(data, reconstruction), axis=(1, 2))
            )
            kl_loss = -0.5 * (1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))
            kl_loss = ops.mean(ops.sum(kl_loss, axis=1))
            total_loss = reconstruction_loss + kl_loss
        grads = tape.gradient(total_loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights, strict=True))
        self.total_loss_tracker.update_state(total_loss)
        self.reconstruction_loss_tracker.update_state(reconstruction_loss)
        self.kl_loss_tracker.update_state(kl_loss)
        return {
            "loss": self.total_loss_tracker.result(),
            "reconstruction_loss": self.reconstruction_loss_tracker.result(),
            "kl_loss": self.kl_loss_tracker.result(),
        }


def build_vae(latent_dim: int = 2, hidden: int = 512) -> tuple[VAE, keras.Model, keras.Model]:
    """The MLP VAE 784-hidden-latent, keras-io style -> (vae, encoder, decoder)."""
    encoder_inputs = keras.Input(shape=(28, 28, 1))
    x = layers.Flatten()(encoder_inputs)
    x = layers.Dense(hidden, activation="relu")(x)
    z_mean = layers.Dense(latent_dim, name="z_mean")(x)
    z_log_var = layers.Dense(latent_dim, name="z_log_var")(x)
    z = Sampling()([z_mean, z_log_var])
    encoder = keras.Model(encoder_inputs, [z_mean, z_log_var, z], name="encoder")

    latent_inputs = keras.Input(shape=(latent_dim,))
    x = layers.Dense(hidden, activation="relu")(latent_inputs)
    x = layers.Dense(28 * 28, activation="sigmoid")(x)
    decoder_outputs = layers.Reshape((28, 28, 1))(x)
    decoder = keras.Model(latent_inputs, decoder_outputs, name="decoder")

    vae = VAE(encoder, decoder)
    vae.compile(optimizer=keras.optimizers.Adam())
    return vae, encoder, decoder


def build_dae(latent_dim: int = 16) -> keras.Model:
    """The Keras denoising example's convolutional autoencoder, compiled as the example does."""
    inputs = keras.Input(shape=(28, 28, 1), name="encoder_input")
    x = inputs
    for filters in (32, 64):
        x = layers.Conv2D(filters, 3, strides=2, activation="relu", padding="same")(x)
    x = layers.Flatten()(x)
    latent = layers.Dense(latent_dim, name="latent_vector")(x)
    encoder = keras.Model(inputs, latent, name="encoder")

    latent_inputs = keras.Input(shape=(latent_dim,), name="decoder_input")
    x = layers.Dense(7 * 7 * 64)(latent_inputs)
    x = layers.Reshape((7, 7, 64))(x)
    for filters in (64, 32):
        x = layers.Conv2DTranspose(filters, 3, strides=2, activation="relu", padding="same")(x)
    x = layers.Conv2DTranspose(1, 3, padding="same")(x)
    outputs = layers.Activation("sigmoid", name="decoder_output")(x)
    decoder = keras.Model(latent_inputs, outputs, name="decoder")

    autoencoder = keras.Model(inputs, decoder(encoder(inputs)), name="autoencoder")
    autoencoder.compile(loss="mse", optimizer="adam")
    return autoencoder


def keras_example_noise(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """The example's noise, drawn once: x + N(0.5, 0.5), clipped to [0, 1]."""
    rng = np.random.default_rng(seed)
    return np.clip(x + rng.normal(loc=0.5, scale=0.5, size=x.shape), 0.0, 1.0).astype(np.float32)


def keras_io_manifold(decoder: keras.Model, n: int = 30, scale: float = 1.0) -> np.ndarray:
    """keras-io's `plot_latent_space`: one `decoder.predict` per grid cell (n*n calls)."""
    digit_size = 28
    figure = np.zeros((digit_size * n, digit_size * n))
    grid_x = np.linspace(-scale, scale, n)
    grid_y = np.linspace(-scale, scale, n)[::-1]
    latent_dim = int(decoder.inputs[0].shape[-1])
    for i, yi in enumerate(grid_y):
        for j, xi in enumerate(grid_x):
            z_sample = np.zeros((1, latent_dim), np.float32)
            z_sample[0, :2] = [xi, yi]
            x_decoded = decoder.predict(z_sample, verbose=0)
            digit = x_decoded[0].reshape(digit_size, digit_size)
            figure[i * digit_size : (i + 1) * digit_size, j * digit_size : (j + 1) * digit_size] = (
                digit
            )
    return figure
