"""Mult-VAE / Mult-DAE: the three models and their wiring, sampling modes, safe-mode files, the loss."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import scipy.sparse as sp
import tensorflow as tf

from vae_core.errors import UserError
from vae_core.layers import Sampling
from vae_core.models import DECODER_INPUT, ENCODER_INPUT
from vae_core.recsys.fit import FitConfig, Float32Scorer, make_trainer
from vae_core.recsys.model import (
    RecSpec,
    RecTrainer,
    SparseEncoder,
    build_recommender,
    multinomial_nll,
    normalise_and_drop,
    recommender_from_composite,
    sparse_batch,
    sparse_matmul,
)

I = 50  # noqa: E741 -- the paper's name for the number of items


def _clicks(users=8, seed=0) -> sp.csr_matrix:
    x = sp.random(users, I, density=0.2, format="csr", random_state=seed, dtype=np.float32)
    x.data[:] = 1.0
    return x


@pytest.fixture(scope="module")
def vae():
    keras.utils.set_random_seed(0)
    return build_recommender(RecSpec(n_items=I, hidden=16, latent_dim=4), seed=0)


def test_the_paper_architecture_and_names():
    bundle = build_recommender(RecSpec(n_items=300))
    enc, dec = bundle.encoder, bundle.decoder
    assert enc.inputs[0].name == ENCODER_INPUT and dec.inputs[0].name == DECODER_INPUT
    assert [o.shape[-1] for o in enc.outputs] == [200, 200, 200]  # z_mean, z_log_var, z
    assert (
        enc.get_layer("encoder_hidden").units == 600
        and dec.get_layer("decoder_hidden").units == 600
    )
    assert dec.output.shape[-1] == 300
    assert isinstance(enc.get_layer("z"), Sampling)
    assert enc.get_layer("input_dropout").rate == 0.5
    assert (
        bundle.composite.layers[1] is enc and bundle.composite.layers[2] is dec
    )  # decoder(encoder(x)[2])
    dae = build_recommender(RecSpec(kind="mult_dae", n_items=300))
    assert dae.encoder.output.shape[-1] == 200 and "decoder_hidden" not in [
        layer.name for layer in dae.decoder.layers
    ]


def test_decoder_gives_a_distribution_over_items(vae):
    probs = np.asarray(
        vae.decoder(np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32))
    )
    assert (
        probs.shape == (3, I) and np.allclose(probs.sum(axis=1), 1, atol=1e-5) and (probs > 0).all()
    )


def test_prediction_uses_z_mean_and_training_samples(vae):
    x = _clicks().toarray()
    z_mean, z_log_var, z = (np.asarray(t) for t in vae.encoder(x, training=False))
    assert np.array_equal(z, z_mean)
    predicted = np.asarray(vae.composite(x, training=False))
    assert np.allclose(predicted, np.asarray(vae.decoder(z_mean)), atol=1e-6)
    assert np.array_equal(predicted, np.asarray(vae.composite(x, training=False)))  # deterministic
    assert not np.allclose(np.asarray(vae.composite(x, training=True)), predicted, atol=1e-6)


def test_always_sample_switch_samples_at_prediction_too():
    keras.utils.set_random_seed(0)
    bundle = build_recommender(RecSpec(n_items=I, hidden=16, latent_dim=4, always_sample=True))
    x = _clicks().toarray()
    a, b = (np.asarray(bundle.composite(x, training=False)) for _ in range(2))
    assert not np.allclose(a, b)


def test_composite_saves_and_loads_in_safe_mode(vae, tmp_path):
    path = tmp_path / "mult_vae.keras"
    vae.composite.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True, compile=False)
    x = _clicks().toarray()
    assert np.allclose(
        np.asarray(loaded(x, training=False)),
        np.asarray(vae.composite(x, training=False)),
        atol=1e-6,
    )
    back = recommender_from_composite(loaded)
    assert back.spec == vae.spec
    assert not any(type(layer).__name__ == "Lambda" for layer in loaded._flatten_layers())


def test_the_sparse_product_and_its_gradient_are_the_dense_ones():
    x = sparse_batch(_clicks(users=30, seed=3))
    x = tf.SparseTensor(x.indices, x.values * np.linspace(0.5, 2, x.values.shape[0]), x.dense_shape)
    kernel = tf.Variable(np.random.default_rng(0).normal(size=(I, 7)).astype("f4"))
    upstream = np.random.default_rng(1).normal(size=(30, 7)).astype("f4")
    with tf.GradientTape(persistent=True) as tape:
        ours = sparse_matmul(x, kernel)
        dense = tf.sparse.to_dense(x) @ kernel
        ours_sum, dense_sum = tf.reduce_sum(ours * upstream), tf.reduce_sum(dense * upstream)
    assert ours.shape == (30, 7) and np.allclose(ours, dense, atol=1e-5)
    assert np.allclose(tape.gradient(ours_sum, kernel), tape.gradient(dense_sum, kernel), atol=1e-5)


def test_the_dae_encoder_on_sparse_clicks_is_its_first_layer():
    dae = build_recommender(RecSpec(kind="mult_dae", n_items=I, latent_dim=6), seed=0)
    x = _clicks()
    h = normalise_and_drop(sparse_batch(x), 0.5, None, training=False)
    assert np.allclose(SparseEncoder(dae.encoder)(h), dae.encoder(x.toarray()), atol=1e-5)


def test_sparse_training_path_is_the_encoder_on_dense_clicks(vae):
    x = _clicks()
    trainer = RecTrainer(vae)
    h = normalise_and_drop(sparse_batch(x), 0.5, None, training=False)
    sparse_out = trainer.encoder_body(h, training=False)
    dense_out = vae.encoder(x.toarray(), training=False)
    for a, b in zip(sparse_out, dense_out, strict=True):
        assert np.allclose(np.asarray(a), np.asarray(b), atol=1e-5)
    # dropout on the clicks drops about half of them and doubles the rest, as keras.layers.Dropout
    dropped = normalise_and_drop(sparse_batch(x), 0.5, keras.random.SeedGenerator(1), training=True)
    kept = np.asarray(dropped.values) != 0
    assert 0.3 < kept.mean() < 0.7
    assert np.allclose(np.asarray(dropped.values)[kept], 2 * np.asarray(h.values)[kept], atol=1e-6)


def test_multinomial_nll_is_minus_clicks_dot_log_softmax():
    x = _clicks()
    logits = np.random.default_rng(0).standard_normal(x.shape).astype(np.float32)
    expected = -(x.toarray() * np.asarray(tf.nn.log_softmax(logits))).sum(axis=1)
    assert np.allclose(np.asarray(multinomial_nll(logits, sparse_batch(x))), expected, atol=1e-4)


def test_kl_weight_rises_linearly_to_its_cap():
    keras.utils.set_random_seed(0)
    bundle = build_recommender(RecSpec(n_items=I, hidden=16, latent_dim=4))
    trainer = RecTrainer(bundle, anneal_cap=0.2, anneal_steps=10)
    trainer.compile(optimizer=keras.optimizers.Adam(1e-3))
    batch = sparse_batch(_clicks())
    betas = []
    for _ in range(4):
        logs = trainer.train_on_batch(batch, return_dict=True)
        betas.append(logs["kl_weight"])
    assert np.allclose(betas, [0.0, 0.1, 0.2, 0.2], atol=1e-6)  # 0, 1/10, then capped at 0.2
    assert {"loss", "reconstruction_loss", "kl_loss"} <= logs.keys()


def test_mixed_precision_training_scores_in_float32():
    config = FitConfig(precision="mixed_bfloat16", seed=0)
    bundle, trainer, options = make_trainer(RecSpec(n_items=I, hidden=16, latent_dim=4), config)
    assert keras.config.dtype_policy().name == "float32"  # the caller's policy is back ...
    assert options["precision"] == "mixed_bfloat16"
    assert (
        bundle.decoder.get_layer("decoder_logits").dtype_policy.name == "mixed_bfloat16"
    )  # ... not the model's
    trainer.train_on_batch(sparse_batch(_clicks()))
    scores = Float32Scorer(bundle.spec).sync(bundle)(_clicks())
    assert scores.dtype == np.float32 and len(np.unique(scores[0])) == I  # no bfloat16 ties


def test_bad_specs_are_sentences():
    with pytest.raises(UserError, match="Unknown recommender"):
        RecSpec(kind="mult_xyz", n_items=10)
    with pytest.raises(UserError, match="two items"):
        RecSpec(n_items=1)


def test_fused_adam_takes_the_same_steps_as_keras_adam():
    from vae_core.recsys.fit import FusedAdam

    rng = np.random.default_rng(0)
    start = rng.standard_normal((30, 20)).astype(np.float32)
    grads = [rng.standard_normal((30, 20)).astype(np.float32) for _ in range(5)]
    results = []
    for opt in (keras.optimizers.Adam(1e-2), FusedAdam(1e-2)):
        w = keras.Variable(start)
        for g in grads:
            opt.apply_gradients([(tf.constant(g), w)])
        results.append(np.asarray(w))
    assert not np.allclose(results[0], start)
    assert np.allclose(results[0], results[1], atol=1e-6)


def test_float16_storage_halves_the_file_and_loads_back_as_float32(tmp_path):
    from vae_core.machine import float32_bundle, stored_as

    vae = build_recommender(RecSpec(n_items=2000, hidden=64, latent_dim=8), seed=0)
    full, half = tmp_path / "full.keras", tmp_path / "half.keras"
    vae.composite.save(full)
    stored_as(vae, "float16").composite.save(half)
    assert half.stat().st_size < 0.75 * full.stat().st_size
    loaded = keras.saving.load_model(half, safe_mode=True, compile=False)
    assert recommender_from_composite(loaded).composite.weights[0].dtype == "float16"
    back = float32_bundle(recommender_from_composite(loaded))
    assert all(w.dtype == "float32" for w in back.composite.weights) and back.spec == vae.spec
    x = (np.random.default_rng(0).random((4, 2000)) < 0.02).astype(np.float32)
    ours = np.asarray(back.composite(x, training=False))
    assert ours.dtype == np.float32
    assert np.allclose(ours, np.asarray(vae.composite(x, training=False)), rtol=1e-2, atol=1e-4)


@pytest.mark.parametrize("kind", ["mult_vae", "rec_vae"])
def test_int8_storage_keeps_each_kernel_within_half_a_step_and_loads_back_as_float32(
    tmp_path, kind
):
    """How the shipped recommender is kept: Dense kernels in int8 (one scale per column), compressed."""
    from vae_core import kinds
    from vae_core.machine import float32_bundle, stored_as
    from vae_core.recsys.task import load
    from vae_core.store import compressed_keras

    keras.utils.set_random_seed(0)
    vae = kinds.build(RecSpec(kind=kind, n_items=2000, hidden=64, latent_dim=8))
    rng = np.random.default_rng(0)  # biases and layer norms away from their zeros and ones too
    vae.composite.set_weights([rng.normal(0, 0.1, w.shape) for w in vae.composite.get_weights()])
    half, kept = tmp_path / "half.keras", tmp_path / "int8.keras"
    stored_as(vae, "float16").composite.save(half)
    kept.write_bytes(compressed_keras(stored_as(vae, "int8").composite))
    assert kept.stat().st_size < 0.75 * half.stat().st_size  # the shipped one: half
    loaded = keras.saving.load_model(kept, safe_mode=True, compile=False)
    dense = [la for la in loaded.get_layer("decoder").layers if isinstance(la, keras.layers.Dense)]
    assert dense and all(la.quantization_mode == "int8" for la in dense)
    back = float32_bundle(load(loaded, None, {}))
    assert all(w.dtype == "float32" for w in back.composite.weights)
    assert back.spec.kind == kind and back.spec.n_items == 2000
    for variable, original in zip(back.composite.weights, vae.composite.weights, strict=True):
        ours, theirs = np.asarray(variable), np.asarray(original)
        if original.path.endswith("kernel"):
            step = np.abs(theirs).max(axis=0) / 127  # per output column
            assert np.all(np.abs(ours - theirs) <= step / 2 + 1e-6)
            assert not np.array_equal(ours, theirs)  # it was rounded, not kept
        else:
            assert np.array_equal(ours, theirs)  # biases and layer norms stay as they were
    x = (np.random.default_rng(0).random((4, 2000)) < 0.02).astype(np.float32)
    ours = np.asarray(back.composite(x, training=False))
    assert np.allclose(ours, np.asarray(vae.composite(x, training=False)), rtol=0.05, atol=1e-3)
