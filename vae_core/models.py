"""Model builders: every model is an encoder, a decoder with its OWN Input, and the composite.

The composite is wired exactly as in the Keras examples, `decoder(encoder(x)[2])` for a VAE and
`decoder(encoder(x))` for the denoising autoencoder, so the three models share their weights and the
app can show each one. Training goes through `Trainer`, a thin keras.Model with a custom train_step
that tracks reconstruction and KL separately; what is saved is the composite (a functional model,
loadable in safe mode).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import keras
import tensorflow as tf
from keras import layers, ops

from vae_core import kinds
from vae_core.layers import LOG_2PI, MixturePrior, Sampling
from vae_core.specs import ModelSpec

# Names a reader meets in summaries, diagrams and the app.
ENCODER_INPUT, DECODER_INPUT, LABEL_INPUT = "encoder_input", "decoder_input", "label_input"
LOGITS = "decoder_logits"  # the last layer before the sigmoid: the trainer takes its loss from here
PRIOR = "prior"  # a learned prior's layer in the decoder (absent: N(0, I))
# One Gaussian per digit stays where it starts, unit-wide, far enough from the others that each
# digit keeps a place of its own (left free, they drift together and the digits mix again).
PRIOR_LAYOUT = {"class_mixture": dict(spread=6.0, learned=False)}


def across_workers(strategy: tf.distribute.Strategy) -> bool:
    """Does `strategy` train across worker processes? Keras's own test, so that both agree."""
    extended = getattr(strategy, "extended", None)
    return bool(getattr(extended, "_in_multi_worker_mode", lambda: False)())


def replica_share(loss: tf.Tensor) -> tf.Tensor:
    """This replica's share of `loss`, to take gradients of: under tf.distribute the replicas'
    gradients are summed, so each one divides by their number."""
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return loss / replicas if replicas > 1 else loss


def step_results(metrics: list[keras.metrics.Metric]) -> dict:
    """A train or test step's {name: value}, shaped for Keras's reduction across replicas.

    Under MultiWorkerMirroredStrategy Keras 3 averages each replica's value along axis 0, which a
    scalar lacks ("Invalid reduction dimension 0", tensorflow/tensorflow#72388): there each value
    gets that axis, of length 1, and the mean over it is the scalar again.
    """
    results = {m.name: m.result() for m in metrics}
    if across_workers(tf.distribute.get_strategy()):
        results = {name: ops.reshape(value, (1,)) for name, value in results.items()}
    return results


def skip_symbolic_build(model: keras.Model, iterator=None, data_batch=None) -> None:
    """fit()'s first look at the data, for a trainer that is built before fit (ours all are).

    Keras 3 takes one batch and averages it across replicas to build the model symbolically; under
    MultiWorkerMirroredStrategy that fails on a batch that is a tuple (the DAE's (noisy, clean),
    the conditional VAE's (x, label)). A built model needs none of it; an unbuilt one goes on to
    Keras.
    """
    if all(layer.built for layer in model._flatten_layers()) and model.optimizer.built:
        return
    keras.Model._maybe_symbolic_build(model, iterator, data_batch)


@dataclass
class ModelBundle:
    """The three models of one autoencoder, sharing weights, plus what it is."""

    spec: ModelSpec
    encoder: keras.Model
    decoder: keras.Model
    composite: keras.Model
    meta: dict[str, Any] = field(default_factory=dict)
    _graphs: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def run(self, part: str, inputs, *, training: bool = False):
        """`part`'s output for `inputs` ("encoder", "decoder", "composite", or "logits": the
        decoder up to its logits), through one compiled TF graph per part and mode.

        Called eagerly, a small batch costs a millisecond per layer in Python, and each app click
        runs on a fresh thread whose first eager ops are several times slower again; the graph
        runs on TensorFlow's own threads and is traced once per model (reduce_retracing: any
        batch size after the second)."""
        graph = self._graphs.get((part, training))
        if graph is None:
            model = logits_model(self.decoder) if part == "logits" else getattr(self, part)
            graph = tf.function(
                lambda v: model(v, training=training), reduce_retracing=True, autograph=False
            )
            self._graphs[(part, training)] = graph
        return graph(inputs)


# ---------------------------------------------------------------- the encoder
def _latent_head(h, spec: ModelSpec):
    """Dense features -> (z_mean, z_log_var, z) for a VAE, or the latent vector for the DAE."""
    if not spec.is_vae:
        return layers.Dense(spec.latent_dim, name="latent_vector")(h)
    z_mean = layers.Dense(spec.latent_dim, name="z_mean")(h)
    z_log_var = layers.Dense(spec.latent_dim, name="z_log_var")(h)
    z = Sampling(always_sample=spec.always_sample, name="z")([z_mean, z_log_var])
    return [z_mean, z_log_var, z]


def build_encoder(spec: ModelSpec) -> keras.Model:
    """Image (and, for the conditional VAE, its label) -> z_mean, z_log_var, z (DAE: one vector)."""
    image = keras.Input(shape=spec.image_shape, name=ENCODER_INPUT)
    inputs = [image]
    if not spec.kind_info.dense:
        h = layers.Conv2D(32, 3, strides=2, padding="same", activation="relu", name="conv_1")(image)
        h = layers.Conv2D(64, 3, strides=2, padding="same", activation="relu", name="conv_2")(h)
        h = layers.Flatten(name="flatten")(h)
        if spec.is_vae:  # the DAE goes straight from the conv features to its latent vector
            h = layers.Dense(spec.hidden, activation="relu", name="dense")(h)
    else:
        h = layers.Flatten(name="flatten")(image)
        if spec.is_conditional:
            label = keras.Input(shape=(), dtype="int32", name=LABEL_INPUT)
            inputs.append(label)
            onehot = layers.CategoryEncoding(spec.num_classes, "one_hot", name="label_onehot")(
                label
            )
            h = layers.Concatenate(name="image_and_label")([h, onehot])
        h = layers.Dense(spec.hidden, activation="relu", name="dense")(h)
    return keras.Model(inputs if len(inputs) > 1 else image, _latent_head(h, spec), name="encoder")


# ---------------------------------------------------------------- the decoder
def build_decoder(spec: ModelSpec) -> keras.Model:
    """Its own Input: the latent vector (and the label, conditional VAE) -> an image in [0, 1]."""
    latent = keras.Input(shape=(spec.latent_dim,), name=DECODER_INPUT)
    inputs = [latent]
    h = latent
    if spec.prior != "normal":  # z passes through unchanged; the layer holds p(z)'s weights
        h = MixturePrior(spec.prior_components, **PRIOR_LAYOUT.get(spec.prior, {}), name=PRIOR)(
            latent
        )
    if spec.is_conditional:
        label = keras.Input(shape=(), dtype="int32", name=LABEL_INPUT)
        inputs.append(label)
        onehot = layers.CategoryEncoding(spec.num_classes, "one_hot", name="label_onehot")(label)
        h = layers.Concatenate(name="latent_and_label")([h, onehot])
    height, width, channels = spec.image_shape
    if not spec.kind_info.dense:
        h = layers.Dense((height // 4) * (width // 4) * 64, activation="relu", name="dense")(h)
        h = layers.Reshape((height // 4, width // 4, 64), name="reshape")(h)
        h = layers.Conv2DTranspose(
            64, 3, strides=2, padding="same", activation="relu", name="deconv_1"
        )(h)
        h = layers.Conv2DTranspose(
            32, 3, strides=2, padding="same", activation="relu", name="deconv_2"
        )(h)
        logits = layers.Conv2DTranspose(channels, 3, padding="same", name=LOGITS)(h)
    else:
        h = layers.Dense(spec.hidden, activation="relu", name="dense")(h)
        h = layers.Dense(height * width * channels, name=LOGITS)(h)
        logits = layers.Reshape(spec.image_shape, name="reshape")(h)
        # Reshape comes after the logits Dense; the trainer reads LOGITS and reshapes itself.
    image = layers.Activation("sigmoid", name="decoder_output")(logits)
    return keras.Model(inputs if len(inputs) > 1 else latent, image, name="decoder")


# ---------------------------------------------------------------- the composite
def build_composite(spec: ModelSpec, encoder: keras.Model, decoder: keras.Model) -> keras.Model:
    """decoder(encoder(x)[2]) for a VAE, decoder(encoder(x)) for the DAE; weights are shared."""
    image = keras.Input(shape=spec.image_shape, name=ENCODER_INPUT)
    if spec.is_conditional:
        label = keras.Input(shape=(), dtype="int32", name=LABEL_INPUT)
        z = encoder([image, label])[2]
        return keras.Model([image, label], decoder([z, label]), name="vae")
    if spec.is_vae:
        return keras.Model(image, decoder(encoder(image)[2]), name="vae")
    return keras.Model(image, decoder(encoder(image)), name="dae")


def build_model(spec: ModelSpec) -> ModelBundle:
    """A fresh, untrained model of the given spec."""
    encoder, decoder = build_encoder(spec), build_decoder(spec)
    return ModelBundle(spec, encoder, decoder, build_composite(spec, encoder, decoder))


def bundle_from_composite(
    composite: keras.Model, spec: ModelSpec | None = None, meta: dict | None = None
) -> ModelBundle:
    """Split a loaded composite back into its encoder and decoder (they are its nested models)."""
    encoder, decoder = composite.get_layer("encoder"), composite.get_layer("decoder")
    spec = spec or infer_spec(composite)
    return ModelBundle(spec, encoder, decoder, composite, dict(meta or {}))


def infer_spec(composite: keras.Model) -> ModelSpec:
    """Recover a ModelSpec from a composite's structure (for imported files without metadata)."""
    encoder, decoder = composite.get_layer("encoder"), composite.get_layer("decoder")
    names = {layer.name for layer in encoder.layers}
    kind = kinds.find(
        kinds.DIGITS,
        variational="z_mean" in names,
        conditional=len(encoder.inputs) == 2,
        dense="conv_1" not in names,
    )
    latent_dim = int(decoder.inputs[0].shape[-1])
    hidden = encoder.get_layer("dense").units if "dense" in names else 256
    sampling = [layer for layer in encoder.layers if isinstance(layer, Sampling)]
    prior = prior_of(decoder)
    return ModelSpec(
        kind=kind,
        prior="normal" if prior is None else "mixture",
        prior_components=10 if prior is None else prior.components,
        latent_dim=latent_dim,
        hidden=int(hidden),
        always_sample=bool(sampling and sampling[0].always_sample),
        image_shape=tuple(int(d) for d in encoder.inputs[0].shape[1:]),
    )


def prior_of(decoder: keras.Model) -> MixturePrior | None:
    """The decoder's learned prior, or None when p(z) is N(0, I)."""
    found = [layer for layer in decoder.layers if isinstance(layer, MixturePrior)]
    return found[0] if found else None


# ---------------------------------------------------------------- losses
def reconstruction_loss(spec: ModelSpec, target, logits):
    """Per image: BCE summed over pixels (from logits: fused and stable), or summed squared error."""
    # Losses are summed over 784 pixels: do it in float32 even when the layers compute in bfloat16.
    target = ops.cast(ops.reshape(target, (ops.shape(target)[0], -1)), "float32")
    logits = ops.cast(ops.reshape(logits, (ops.shape(logits)[0], -1)), "float32")
    if spec.reconstruction == "mse":
        return ops.sum(ops.square(target - ops.sigmoid(logits)), axis=1)
    return ops.sum(tf.nn.sigmoid_cross_entropy_with_logits(labels=target, logits=logits), axis=1)


def kl_divergence(z_mean, z_log_var, z=None, prior: MixturePrior | None = None, component=None):
    """Per image: KL(q(z|x) || p(z)) in nats: exact for N(0, I); for a learned prior, q's exact
    negative entropy minus log p(z) at the sampled z (an unbiased one-sample estimate), p being
    the `component` given (each digit's own Gaussian, while training) or the whole mixture."""
    z_mean, z_log_var = ops.cast(z_mean, "float32"), ops.cast(z_log_var, "float32")
    if prior is None:
        return -0.5 * ops.sum(1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=1)
    neg_entropy = -0.5 * ops.sum(1.0 + LOG_2PI + z_log_var, axis=1)
    return neg_entropy - prior.log_prob(z, component)


def elbo_terms(spec: ModelSpec, target, logits, z_mean, z_log_var, z=None, prior=None, label=None):
    """Per image: (reconstruction, KL) in nats; the negative ELBO is their sum (beta weighs KL).
    With `label` and a class_mixture prior, the KL is to that digit's own Gaussian."""
    component = label if spec.prior == "class_mixture" else None
    rec = reconstruction_loss(spec, target, logits)
    return rec, kl_divergence(z_mean, z_log_var, z, prior, component)


def with_label(spec: ModelSpec, tensor, labels):
    """What an encoder or decoder is called with: the tensor, plus the labels for a conditional kind."""
    return [tensor, labels] if spec.is_conditional else tensor


def logits_model(decoder: keras.Model) -> keras.Model:
    """The decoder's weights, ending at the logits, so losses can fuse the sigmoid."""
    return keras.Model(decoder.inputs, decoder.get_layer(LOGITS).output, name="decoder_logits")


# ---------------------------------------------------------------- training
class Trainer(keras.Model):
    """Trains a ModelBundle with the loss terms tracked separately (as the keras-io VAE does).

    Data: VAE `x` (or `(x, label)` when it learns from labels); DAE `(noisy, clean)`.
    """

    def __init__(self, bundle: ModelBundle, **kwargs):
        super().__init__(**kwargs)
        self.bundle, self.spec = bundle, bundle.spec
        self.encoder, self.decoder = bundle.encoder, bundle.decoder
        self.decoder_logits = logits_model(bundle.decoder)
        self.prior = prior_of(bundle.decoder)
        # The KL weight (beta, ramped during warm-up); a variable so fit() need not retrace.
        self.kl_weight = keras.Variable(float(bundle.spec.beta), trainable=False, name="kl_weight")
        self.total_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_tracker = keras.metrics.Mean(name="kl_loss")

    @property
    def metrics(self):
        trackers = [self.total_tracker, self.reconstruction_tracker]
        return trackers + [self.kl_tracker] if self.spec.is_vae else trackers

    def _split(self, data):
        """-> (encoder inputs, labels or None, target)."""
        if not self.spec.is_vae:
            noisy, clean = data
            return noisy, None, clean
        x, label = data if self.spec.learns_from_labels else (data, None)
        return with_label(self.spec, x, label), label, x

    def compute_losses(self, data, training: bool):
        enc_in, label, target = self._split(data)
        if not self.spec.is_vae:
            rec = reconstruction_loss(self.spec, target, self.decoder_logits(self.encoder(enc_in)))
            rec = ops.mean(rec)
            return rec, rec, None
        # z is sampled in evaluation too: the ELBO is an expectation over q(z|x).
        z_mean, z_log_var, z = self.encoder(enc_in, training=True)
        logits = self.decoder_logits(with_label(self.spec, z, label), training=training)
        rec, kl = elbo_terms(self.spec, target, logits, z_mean, z_log_var, z, self.prior, label)
        rec, kl = ops.mean(rec), ops.mean(kl)
        return rec + self.kl_weight * kl, rec, kl

    def _track(self, total, rec, kl):
        self.total_tracker.update_state(total)
        self.reconstruction_tracker.update_state(rec)
        if kl is not None:
            self.kl_tracker.update_state(kl)
        return step_results(self.metrics)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        skip_symbolic_build(self, iterator, data_batch)

    def train_step(self, data):
        with tf.GradientTape() as tape:
            total, rec, kl = self.compute_losses(data, training=True)
            share = replica_share(total)  # inside the tape, which records it
        grads = tape.gradient(share, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights, strict=True))
        return self._track(total, rec, kl)

    def test_step(self, data):
        return self._track(*self.compute_losses(data, training=False))

    def call(self, inputs, training=None):
        enc_out = self.encoder(inputs, training=training)
        z = enc_out[2] if self.spec.is_vae else enc_out
        label = inputs[1] if self.spec.is_conditional else None
        return self.decoder(with_label(self.spec, z, label), training=training)
