"""RecVAE (Shenbin et al., WSDM 2020): Mult-VAE with a denser encoder, a composite prior, a KL
weight per user and alternating training. Built as the authors' code (ilya-shenbin/RecVAE) does it.

- Encoder: the L2-normalised clicks (dropout 0.5 while training the encoder) go through five dense
  layers of 600, each fed the sum of all the layers before it, each followed by swish and layer
  normalisation (epsilon 0.1); then z_mean, z_log_var and z, VAE Lab's Sampling as for Mult-VAE.
- Decoder: its own Input, one Dense from z to the items' logits, softmax (no hidden layer).
- Composite prior p(z | x): per latent dimension, a mixture of N(0, 1) (weight 3/20), the posterior
  that a frozen copy of the previous epoch's encoder gives this user (3/4), and a wide Gaussian,
  log-variance 10 (1/10). The middle part keeps a user's z from drifting between epochs.
- KL weight per user: beta(x) = gamma x (the user's clicks), the KL estimated at the sampled z.
- Alternating training: each epoch is three passes updating the encoder only, then the frozen copy
  takes the encoder's weights, then one pass updating the decoder only (no dropout); each part's
  Adam steps count only its own updates, as with the authors' two optimizers.
The composite that is saved is decoder(encoder(x)[2]) as for Mult-VAE: built-in layers and Sampling,
loadable in safe mode; the frozen copy is training state (in the run's checkpoints) and not saved.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf
from keras import layers, ops

from vae_core import kinds
from vae_core.layers import LOG_2PI, Sampling
from vae_core.models import (
    DECODER_INPUT,
    ENCODER_INPUT,
    LOGITS,
    ModelBundle,
    replica_share,
)
from vae_core.recsys.model import (
    HIDDEN,
    INPUT_DROPOUT,
    ClickTrainer,
    RecSpec,
    SparseEncoder,
    build_composite,
    multinomial_nll,
    normalise_and_drop,
)

DENSE_LAYERS = 5  # the encoder's densely connected layers
NORM_EPSILON = 0.1  # the authors' LayerNorm epsilon
# The composite prior's parts: (weight, what it is), in the authors' order.
STANDARD, OLD_POSTERIOR, WIDE = 3 / 20, 3 / 4, 1 / 10
WIDE_LOG_VAR = 10.0
ENCODER_PASSES, DECODER_PASSES = 3, 1  # per epoch (the authors' n_enc_epochs, n_dec_epochs)


# ---------------------------------------------------------------- the encoder
def build_encoder(spec: RecSpec, seed: int | None = None) -> keras.Model:
    """Clicks (B, I) -> z_mean, z_log_var, z through five densely connected swish + LayerNorm layers."""
    clicks = keras.Input(shape=(spec.n_items,), name=ENCODER_INPUT)
    h = layers.UnitNormalization(name="l2_normalised")(clicks)
    h = layers.Dropout(spec.dropout, seed=seed, name=INPUT_DROPOUT)(h)
    # The first layer takes the clicks (sparse in training: named HIDDEN, as Mult-VAE's).
    pre = layers.Dense(spec.hidden, name=HIDDEN)(h)
    outputs: list = []
    for i in range(1, DENSE_LAYERS + 1):
        if i > 1:  # "dense": this layer's output plus every earlier layer's
            pre = layers.Dense(spec.hidden, name=f"encoder_dense_{i}")(outputs[-1])
            pre = layers.Add(name=f"encoder_sum_{i}")([pre, *outputs])
        h = layers.Activation("swish", name=f"encoder_swish_{i}")(pre)
        outputs.append(layers.LayerNormalization(epsilon=NORM_EPSILON, name=f"encoder_norm_{i}")(h))
    z_mean = layers.Dense(spec.latent_dim, name="z_mean")(outputs[-1])
    z_log_var = layers.Dense(spec.latent_dim, name="z_log_var")(outputs[-1])
    z = Sampling(always_sample=spec.always_sample, seed=seed, name="z")([z_mean, z_log_var])
    return keras.Model(clicks, [z_mean, z_log_var, z], name="encoder")


# ---------------------------------------------------------------- the decoder
def build_decoder(spec: RecSpec) -> keras.Model:
    """Its own Input, z -> pi(z): one Dense to the items' logits, then a softmax."""
    latent = keras.Input(shape=(spec.latent_dim,), name=DECODER_INPUT)
    logits = layers.Dense(spec.n_items, name=LOGITS)(latent)
    probs = layers.Softmax(dtype="float32", name="decoder_output")(logits)
    return keras.Model(latent, probs, name="decoder")


def build_rec_vae(spec: RecSpec, seed: int | None = None) -> ModelBundle:
    """A fresh, untrained RecVAE as a ModelBundle (encoder, decoder, composite)."""
    encoder, decoder = build_encoder(spec, seed), build_decoder(spec)
    return ModelBundle(spec, encoder, decoder, build_composite(spec, encoder, decoder))  # type: ignore[arg-type]


def load(composite: keras.Model, spec=None, meta: dict | None = None) -> ModelBundle:
    """A stored RecVAE as a ModelBundle, its RecSpec recovered from the layers if none is given."""
    from vae_core.specs import ModelSpec

    encoder, decoder = composite.get_layer("encoder"), composite.get_layer("decoder")
    if spec is None:
        sampling = [layer for layer in encoder.layers if isinstance(layer, Sampling)]
        spec = ModelSpec(
            kind="rec_vae",
            n_items=int(encoder.inputs[0].shape[-1]),
            hidden=int(encoder.get_layer(HIDDEN).units),
            latent_dim=int(decoder.inputs[0].shape[-1]),
            dropout=float(encoder.get_layer(INPUT_DROPOUT).rate),
            always_sample=bool(sampling and sampling[0].always_sample),
            reconstruction="multinomial",
        )
    return ModelBundle(spec, encoder, decoder, composite, dict(meta or {}))


def is_rec_vae(spec) -> bool:
    """Whether a spec's kind is built here (its registry entry names this module's builder)."""
    return kinds.known(spec.kind) and kinds.get(spec.kind).build.startswith(__name__ + ":")


# ---------------------------------------------------------------- the composite prior
def log_normal(z, mean, log_var):
    """log N(z; mean, exp(log_var)), per dimension (nats)."""
    return -0.5 * (log_var + LOG_2PI + ops.square(z - mean) * ops.exp(-log_var))


def composite_log_prior(z, old_mean, old_log_var):
    """log p(z | x) per dimension: the three-part mixture, old_* from the frozen encoder."""
    zero = ops.zeros_like(z)
    parts = [
        log_normal(z, zero, zero) + math.log(STANDARD),
        log_normal(z, old_mean, old_log_var) + math.log(OLD_POSTERIOR),
        log_normal(z, zero, zero + WIDE_LOG_VAR) + math.log(WIDE),
    ]
    return ops.logsumexp(ops.stack(parts, axis=-1), axis=-1)


def kl_estimate(z, z_mean, z_log_var, old_mean, old_log_var):
    """Per user: log q(z | x) - log p(z | x) at the sampled z, summed over dimensions (a one-sample
    estimate of KL(q || p); the composite prior has no closed form)."""
    z, z_mean, z_log_var, old_mean, old_log_var = (
        ops.cast(t, "float32") for t in (z, z_mean, z_log_var, old_mean, old_log_var)
    )
    log_q = log_normal(z, z_mean, z_log_var)
    return ops.sum(log_q - composite_log_prior(z, old_mean, old_log_var), axis=-1)


def clicks_per_user(x: tf.SparseTensor):
    """Each row's sum of clicks (B,), from a sparse batch."""
    return tf.math.unsorted_segment_sum(x.values, x.indices[:, 0], x.dense_shape[0])


# ---------------------------------------------------------------- training
class RecVAETrainer(ClickTrainer):
    """Trains a RecVAE bundle on sparse click batches, encoder and decoder by turns.

    An epoch is PASSES passes over the users (`steps_per_pass` batches each): the first
    ENCODER_PASSES update the encoder only (input dropout on), then the frozen copy takes the
    encoder's weights, then DECODER_PASSES update the decoder only (no dropout). Each phase is its
    own compiled step, chosen before each batch from the optimizer's step counter, so a
    checkpointed run resumes in its phase and no optimizer update sits inside a tf.cond (which
    tf.distribute cannot synchronise). One Adam serves both parts as the authors' two do (one per
    part): each part's moments move only in its own passes, and with FusedAdam each part's bias
    correction counts only its own updates.
    """

    PASSES = ENCODER_PASSES + DECODER_PASSES

    def __init__(
        self, bundle: ModelBundle, gamma: float = 0.005, steps_per_pass: int = 1, seed=None, **kw
    ):
        super().__init__(bundle, seed, **kw)
        self.gamma = float(gamma)
        # An epoch's steps, and how many of them (the first) update the encoder.
        self.epoch_steps = self.PASSES * int(steps_per_pass)
        self.encoder_steps = ENCODER_PASSES * int(steps_per_pass)
        # The frozen copy: starts as the encoder (the authors' starts as a second random one), then
        # takes its weights after each encoder phase; its weights are in the run's checkpoints.
        self.old_encoder = keras.models.clone_model(bundle.encoder)
        self.old_encoder.name = "old_encoder"
        self.old_encoder.set_weights(bundle.encoder.get_weights())
        self.old_encoder.trainable = False
        self.old_body = SparseEncoder(self.old_encoder)

    @classmethod
    def from_settings(cls, bundle, *, beta, anneal_steps, l2, seed, steps_per_pass):
        """The run's settings: beta is the KL weight per click (gamma); no annealing, no l2."""
        return cls(bundle, gamma=beta, steps_per_pass=steps_per_pass, seed=seed)

    def compute_losses(self, x: tf.SparseTensor, training: bool, dropout=0.0, fresh=False):
        """(total, reconstruction, KL, beta), each the mean over the batch's users. `fresh`: the
        frozen copy equals the encoder and dropout is off (the decoder passes), so its posterior is
        the encoder's, not computed twice."""
        h = normalise_and_drop(x, dropout, self.dropout_seed, training)
        z_mean, z_log_var, z = self.encoder_body(h, training=training)
        if fresh:
            old_mean, old_log_var = z_mean, z_log_var
        else:
            clean = normalise_and_drop(x, 0.0, None, training=False)
            old_mean, old_log_var = self.old_body(clean, training=False)[:2]
        nll = multinomial_nll(self.decoder_logits(z, training=training), x)
        kl = kl_estimate(z, z_mean, z_log_var, old_mean, old_log_var)
        beta = self.gamma * clicks_per_user(x)
        return ops.mean(nll + beta * kl), ops.mean(nll), ops.mean(kl), ops.mean(beta)

    def _update(self, x, weights, dropout: float, fresh=False):
        with tf.GradientTape() as tape:
            losses = self.compute_losses(x, training=True, dropout=dropout, fresh=fresh)
            share = replica_share(losses[0])  # inside the tape, which records it
        grads = tape.gradient(share, weights)
        self.optimizer.apply(grads, weights)
        return self._track(*losses)

    def encoder_step(self, data):
        """One update of the encoder, input dropout on; the decoder's weights get no gradient."""
        x = keras.utils.unpack_x_y_sample_weight(data)[0]
        return self._update(x, self.encoder.trainable_weights, self.spec.dropout)

    def decoder_step(self, data):
        """One update of the decoder, no dropout; the frozen copy was just refreshed."""
        x = keras.utils.unpack_x_y_sample_weight(data)[0]
        return self._update(x, self.decoder.trainable_weights, 0.0, fresh=True)

    def refresh_old_encoder(self):
        """The frozen copy takes the encoder's current weights."""
        for old, new in zip(self.old_encoder.weights, self.encoder.weights, strict=True):
            old.assign(new)

    def compile(self, *args, **kwargs):
        """keras.Model's, and FusedAdam's bias correction counting each part's own updates."""
        super().compile(*args, **kwargs)
        if hasattr(self.optimizer, "updates_so_far"):
            self.optimizer.updates_so_far = self.updates_so_far

    def updates_so_far(self, index: int):
        """How many updates the optimizer's index-th weight has had, this one included: an encoder
        weight's encoder steps, a decoder weight's decoder steps, from the step counter. The
        authors keep one Adam per part, whose bias correction counts only that part's steps;
        counting every step would give the decoder up to ~1.6x larger steps on the small set."""
        decoder = {self.optimizer._get_variable_index(w) for w in self.decoder.trainable_weights}
        step, encoder_steps = self.optimizer.iterations, self.encoder_steps
        epochs, into = step // self.epoch_steps, step % self.epoch_steps
        if index in decoder:
            done = epochs * (self.epoch_steps - encoder_steps) + ops.maximum(
                into - encoder_steps, 0
            )
        else:
            done = epochs * encoder_steps + ops.minimum(into, encoder_steps)
        return done + 1

    def encoder_phase(self, step: int) -> bool:
        """True while `step` (0-based, counted over the run) is in an epoch's encoder passes."""
        return step % self.epoch_steps < self.encoder_steps

    def make_train_function(self, force=False):
        """fit's step: the encoder's or the decoder's compiled step, by the step counter (read once
        per batch), the frozen copy refreshed as the decoder passes begin."""
        if self.train_function is not None and not force:
            return self.train_function
        if self.steps_per_execution != 1:
            raise ValueError(
                "RecVAE's phases change between batches: steps_per_execution must be 1."
            )
        # Keras's own wrapping of a step (its TensorFlow trainer's, private): tf.function, strategy.run
        # and the reduction across replicas, as for train_step.
        encoder_fn = self._make_function(self.encoder_step)
        decoder_fn = self._make_function(self.decoder_step)

        def train_function(iterator):
            step = int(self.optimizer.iterations.numpy())
            if step % self.epoch_steps == self.encoder_steps:
                self.refresh_old_encoder()
            return (encoder_fn if self.encoder_phase(step) else decoder_fn)(iterator)

        self.train_function = train_function
        return train_function
