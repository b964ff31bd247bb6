"""Mult-VAE and Mult-DAE (Liang et al. 2018): autoencoders over a user's clicks on I items.

Mult-VAE: [I -> 600 -> 200 -> 600 -> I], tanh, and dropout 0.5 on the L2-normalised clicks. The
encoder ends in z_mean, z_log_var and z through VAE Lab's own Sampling layer (z sampled while
training, z = z_mean at prediction, the paper's rule); the decoder is its own keras.Model with its own
Input and outputs pi(z), a softmax over the items; the composite is decoder(encoder(x)[2]), as for the
digit models. Mult-DAE: [I -> 200 -> I], the same input dropout, no sampling.
The loss is the multinomial log-likelihood (log-softmax over items, summed over the clicks) plus the
KL term weighted by beta, annealed linearly from 0 to a cap (the paper: 0.2 over 200,000 updates).
Only built-in layers and Sampling: the composite loads in Keras's safe mode.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import keras
import tensorflow as tf
from keras import layers, ops

from vae_core import kinds
from vae_core.errors import UserError
from vae_core.layers import Sampling
from vae_core.models import (
    DECODER_INPUT,
    ENCODER_INPUT,
    LOGITS,
    ModelBundle,
    kl_divergence,
    replica_share,
    skip_symbolic_build,
    step_results,
)

KINDS = tuple(k for k in kinds.names() if kinds.get(k).domain == kinds.ITEMS)
HIDDEN = "encoder_hidden"  # the encoder's first Dense: training feeds it sparse clicks directly
INPUT_DROPOUT = "input_dropout"


@dataclass
class RecSpec:
    """What a Mult-VAE/DAE is: enough to rebuild one from scratch."""

    kind: str = "mult_vae"  # one of KINDS
    n_items: int = 1  # the click vector's length (the split's item count)
    hidden: int = 600  # tanh layer between the clicks and z (Mult-VAE only; the DAE has none)
    latent_dim: int = 200  # size of z (the DAE's tanh code)
    dropout: float = 0.5  # on the L2-normalised clicks, while training
    always_sample: bool = False  # True: sample z at prediction too (for comparison; not the paper)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise UserError(f"Unknown recommender {self.kind!r}; choose one of {', '.join(KINDS)}.")
        if int(self.n_items) < 2:
            raise UserError("A recommender needs at least two items to choose between.")
        if not 1 <= int(self.latent_dim) <= 2048 or not 1 <= int(self.hidden) <= 8192:
            raise UserError("The latent size must be 1-2048 and the hidden size 1-8192.")
        if not 0 <= float(self.dropout) < 1:
            raise UserError("Dropout must be at least 0 and below 1.")

    @property
    def is_vae(self) -> bool:
        return kinds.get(self.kind).variational

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RecSpec:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


# ---------------------------------------------------------------- the encoder
def build_encoder(spec: RecSpec, seed: int | None = None) -> keras.Model:
    """Clicks (B, I) -> z_mean, z_log_var, z (Mult-VAE) or the tanh code (Mult-DAE)."""
    clicks = keras.Input(shape=(spec.n_items,), name=ENCODER_INPUT)
    h = layers.UnitNormalization(name="l2_normalised")(clicks)
    h = layers.Dropout(spec.dropout, seed=seed, name=INPUT_DROPOUT)(h)
    if not spec.is_vae:
        code = layers.Dense(spec.latent_dim, activation="tanh", name=HIDDEN)(h)
        return keras.Model(clicks, code, name="encoder")
    h = layers.Dense(spec.hidden, activation="tanh", name=HIDDEN)(h)
    z_mean = layers.Dense(spec.latent_dim, name="z_mean")(h)
    z_log_var = layers.Dense(spec.latent_dim, name="z_log_var")(h)
    z = Sampling(always_sample=spec.always_sample, seed=seed, name="z")([z_mean, z_log_var])
    return keras.Model(clicks, [z_mean, z_log_var, z], name="encoder")


# ---------------------------------------------------------------- the decoder
def build_decoder(spec: RecSpec) -> keras.Model:
    """Its own Input, the latent vector -> pi(z): a probability for every item (softmax)."""
    latent = keras.Input(shape=(spec.latent_dim,), name=DECODER_INPUT)
    h = latent
    if spec.is_vae:
        h = layers.Dense(spec.hidden, activation="tanh", name="decoder_hidden")(h)
    logits = layers.Dense(spec.n_items, name=LOGITS)(h)
    # Softmax in float32 whatever the policy: 20k items in bfloat16 would round most of them to 0.
    probs = layers.Softmax(dtype="float32", name="decoder_output")(logits)
    return keras.Model(latent, probs, name="decoder")


# ---------------------------------------------------------------- the composite
def build_composite(spec: RecSpec, encoder: keras.Model, decoder: keras.Model) -> keras.Model:
    """decoder(encoder(x)[2]) for Mult-VAE, decoder(encoder(x)) for Mult-DAE; weights shared."""
    clicks = keras.Input(shape=(spec.n_items,), name=ENCODER_INPUT)
    z = encoder(clicks)[2] if spec.is_vae else encoder(clicks)
    return keras.Model(clicks, decoder(z), name=spec.kind)


def build_recommender(spec: RecSpec, seed: int | None = None) -> ModelBundle:
    """A fresh, untrained Mult-VAE/DAE as a ModelBundle (encoder, decoder, composite)."""
    encoder, decoder = build_encoder(spec, seed), build_decoder(spec)
    return ModelBundle(spec, encoder, decoder, build_composite(spec, encoder, decoder))  # type: ignore[arg-type]


def recommender_from_composite(composite: keras.Model, meta: dict | None = None) -> ModelBundle:
    """Split a loaded composite back into its encoder and decoder, and recover its RecSpec.

    As stored: a file kept in float16 or int8 stays so (the store's load hands out float32 copies).
    """
    encoder, decoder = composite.get_layer("encoder"), composite.get_layer("decoder")
    names = {layer.name for layer in encoder.layers}
    is_vae = "z_mean" in names
    is_rec_vae = "encoder_norm_1" in names  # RecVAE's layer-normalised dense encoder (recvae.py)
    sampling = [layer for layer in encoder.layers if isinstance(layer, Sampling)]
    spec = RecSpec(
        kind="rec_vae" if is_rec_vae else "mult_vae" if is_vae else "mult_dae",
        n_items=int(encoder.inputs[0].shape[-1]),
        hidden=int(encoder.get_layer(HIDDEN).units) if is_vae else RecSpec.hidden,
        latent_dim=int(decoder.inputs[0].shape[-1]),
        dropout=float(encoder.get_layer(INPUT_DROPOUT).rate),
        always_sample=bool(sampling and sampling[0].always_sample),
    )
    return ModelBundle(spec, encoder, decoder, composite, dict(meta or {}))  # type: ignore[arg-type]


# ---------------------------------------------------------------- sparse clicks
def sparse_batch(clicks) -> tf.SparseTensor:
    """A scipy CSR batch -> a tf.SparseTensor (float32), rows and columns in canonical order."""
    coo = clicks.tocoo()
    indices = tf.stack([tf.constant(coo.row, tf.int64), tf.constant(coo.col, tf.int64)], axis=1)
    return tf.SparseTensor(indices, tf.constant(coo.data, tf.float32), coo.shape)


def normalise_and_drop(x: tf.SparseTensor, rate: float, seed, training: bool) -> tf.SparseTensor:
    """The encoder's UnitNormalization + Dropout, on the clicks only: a zero stays zero under both,
    so a batch of 500 x 20k clicks costs its ~36k non-zeros, not 10M multiplications."""
    rows = x.indices[:, 0]
    norms = tf.sqrt(tf.math.unsorted_segment_sum(tf.square(x.values), rows, x.dense_shape[0]))
    values = x.values / tf.maximum(tf.gather(norms, rows), 1e-12)
    if training and rate > 0:
        values = keras.random.dropout(values, rate, seed=seed)
    return tf.SparseTensor(x.indices, values, x.dense_shape)


def _csr(x: tf.SparseTensor):
    return tf.raw_ops.SparseTensorToCSRSparseMatrix(
        indices=x.indices, values=x.values, dense_shape=x.dense_shape
    )


def sparse_matmul(x: tf.SparseTensor, kernel) -> tf.Tensor:
    """x @ kernel in float32 by TensorFlow's CSR kernels, and kernel's gradient (x^T @ upstream) the
    same way. tf.sparse.sparse_dense_matmul, which Dense uses on a tf.SparseTensor, runs on one
    thread and is ~9x slower here for a 500-user batch on 20k items (benchmarks/RESULTS.md, Scale).
    x's rows and columns must be in canonical order (sparse_batch's are); no gradient reaches x."""
    units = kernel.shape[-1]

    @tf.custom_gradient
    def product(kernel):
        def grad(upstream):
            x_t = tf.sparse.reorder(tf.sparse.transpose(x))
            return tf.raw_ops.SparseMatrixMatMul(a=_csr(x_t), b=ops.cast(upstream, "float32"))

        out = tf.raw_ops.SparseMatrixMatMul(a=_csr(x), b=kernel)
        out.set_shape([None, units])
        return out, grad

    return product(ops.cast(kernel, "float32"))


class SparseEncoder:
    """An encoder fed a tf.SparseTensor of clicks: its first Dense (HIDDEN) by sparse_matmul, the
    layers after it as they are. Called as the encoder is, on normalise_and_drop's output."""

    def __init__(self, encoder: keras.Model):
        self.first = encoder.get_layer(HIDDEN)
        outputs = encoder.outputs if len(encoder.outputs) > 1 else encoder.outputs[0]
        after = self.first.output is outputs  # Mult-DAE: the first Dense's output is the code
        self.rest = None if after else keras.Model(self.first.output, outputs, name="after_first")

    def __call__(self, x: tf.SparseTensor, training=False):
        first = self.first
        h = first.activation(sparse_matmul(x, first.kernel) + ops.cast(first.bias, "float32"))
        h = ops.cast(h, first.compute_dtype)
        return h if self.rest is None else self.rest(h, training=training)


def multinomial_nll(logits, x: tf.SparseTensor):
    """Per user: -sum over the clicked items of log softmax(logits) (in float32)."""
    log_probs = tf.nn.log_softmax(ops.cast(logits, "float32"))
    picked = tf.gather_nd(log_probs, x.indices) * x.values
    return -tf.math.unsorted_segment_sum(picked, x.indices[:, 0], x.dense_shape[0])


# ---------------------------------------------------------------- training
class ClickTrainer(keras.Model):
    """What the recommenders' trainers share: the encoder fed sparse clicks (SparseEncoder), the
    decoder up to its logits (so the loss can fuse the softmax), the input dropout's seed, and the
    loss terms tracked separately. A trainer adds compute_losses(x, training) -> (total,
    reconstruction, KL or None, beta) and its train step."""

    PASSES = 1  # passes over the users per epoch

    def __init__(self, bundle: ModelBundle, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.spec: RecSpec = bundle.spec  # type: ignore[assignment]
        self.encoder, self.decoder = bundle.encoder, bundle.decoder
        self.encoder_body = SparseEncoder(bundle.encoder)
        self.decoder_logits = keras.Model(
            bundle.decoder.inputs, bundle.decoder.get_layer(LOGITS).output, name="decoder_logits"
        )
        self.dropout_seed = keras.random.SeedGenerator(seed)
        self.total_tracker = keras.metrics.Mean(name="loss")
        self.nll_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_tracker = keras.metrics.Mean(name="kl_loss")
        self.beta_tracker = keras.metrics.Mean(name="kl_weight")

    @property
    def metrics(self):
        extra = [self.kl_tracker, self.beta_tracker] if self.spec.is_vae else []
        return [self.total_tracker, self.nll_tracker, *extra]

    def _track(self, total, nll, kl, beta):
        self.total_tracker.update_state(total)
        self.nll_tracker.update_state(nll)
        if kl is not None:
            self.kl_tracker.update_state(kl)
            self.beta_tracker.update_state(beta)
        return step_results(self.metrics)  # shaped for several workers

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        skip_symbolic_build(self, iterator, data_batch)

    def test_step(self, data):
        x = keras.utils.unpack_x_y_sample_weight(data)[0]
        return self._track(*self.compute_losses(x, training=False))

    def call(self, inputs, training=None):
        z = self.encoder(inputs, training=training)
        return self.decoder(z[2] if self.spec.is_vae else z, training=training)


class RecTrainer(ClickTrainer):
    """Trains a Mult-VAE/DAE bundle on sparse click batches.

    beta = min(anneal_cap, updates / anneal_steps) is read from the optimizer's step counter, so a
    checkpointed run resumes its annealing where it stopped.
    """

    def __init__(
        self,
        bundle: ModelBundle,
        anneal_cap: float = 0.2,
        anneal_steps: int = 200_000,
        l2: float = 0.0,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(bundle, seed, **kwargs)
        self.anneal_cap, self.anneal_steps, self.l2 = (
            float(anneal_cap),
            int(anneal_steps),
            float(l2),
        )

    @classmethod
    def from_settings(cls, bundle, *, beta, anneal_steps, l2, seed, steps_per_pass):
        """The run's settings: beta is the KL weight's cap, reached after anneal_steps updates."""
        return cls(bundle, beta, anneal_steps, l2, seed=seed)

    def kl_weight(self):
        """beta for the next update: linear from 0 to the cap over anneal_steps updates."""
        if self.anneal_steps <= 0:
            return ops.convert_to_tensor(self.anneal_cap, "float32")
        step = ops.cast(self.optimizer.iterations, "float32")
        return ops.minimum(self.anneal_cap, step / float(self.anneal_steps))

    def compute_losses(self, x: tf.SparseTensor, training: bool):
        h = normalise_and_drop(x, self.spec.dropout, self.dropout_seed, training)
        if self.spec.is_vae:
            z_mean, z_log_var, z = self.encoder_body(h, training=training)
            kl = ops.mean(kl_divergence(z_mean, z_log_var))
        else:
            z, kl = self.encoder_body(h, training=training), None
        nll = ops.mean(multinomial_nll(self.decoder_logits(z, training=training), x))
        beta = self.kl_weight()
        total = nll + (beta * kl if kl is not None else 0.0)
        if self.l2:  # vae_cf's 2 * tf l2_regularizer(lam) = lam * sum of squared weights
            kernels = [w for w in self.trainable_weights if "kernel" in w.path]
            total = total + self.l2 * ops.sum([ops.sum(ops.square(w)) for w in kernels])
        return total, nll, kl, beta

    def train_step(self, data):
        x = keras.utils.unpack_x_y_sample_weight(data)[0]  # train_on_batch hands (x, None, None)
        with tf.GradientTape() as tape:
            total, nll, kl, beta = self.compute_losses(x, training=True)
            share = replica_share(total)  # inside the tape, which records it
        grads = tape.gradient(share, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights, strict=True))
        return self._track(total, nll, kl, beta)
