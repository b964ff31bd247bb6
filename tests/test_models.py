"""Models: the three-model wiring, Sampling in both modes, losses, one training step, save/load."""

import json
import zipfile

import keras
import numpy as np
import pytest
import tensorflow as tf

from vae_core import kinds
from vae_core.errors import UserError
from vae_core.layers import Sampling
from vae_core.models import (
    DECODER_INPUT,
    ENCODER_INPUT,
    Trainer,
    build_model,
    bundle_from_composite,
    infer_spec,
    kl_divergence,
    reconstruction_loss,
)
from vae_core.specs import ModelSpec, TrainSpec

MODEL_KINDS = kinds.names()

RNG = np.random.default_rng(0)
X = RNG.random((6, 28, 28, 1), dtype=np.float32)
Y = np.arange(6, dtype=np.int32) % 10


def small(kind: str, **kw) -> ModelSpec:
    return ModelSpec(kind, latent_dim=kw.pop("latent_dim", 3), hidden=32, **kw)


def inputs_for(spec: ModelSpec):
    return [X, Y] if spec.is_conditional else X


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_three_models_share_weights_and_carry_readers_names(kind):
    bundle = build_model(small(kind))
    enc, dec, comp = bundle.encoder, bundle.decoder, bundle.composite
    assert (enc.name, dec.name) == ("encoder", "decoder")
    assert enc.inputs[0].name.startswith(ENCODER_INPUT)
    # The decoder has its own Input: the latent vector, not the image.
    assert dec.inputs[0].name.startswith(DECODER_INPUT)
    assert tuple(dec.inputs[0].shape) == (None, 3)
    layer_names = {layer.name for layer in comp.layers}
    assert {"encoder", "decoder"} <= layer_names
    if bundle.spec.is_vae:
        produced_by = [t._keras_history.operation.name for t in enc.outputs]
        assert produced_by == ["z_mean", "z_log_var", "z"]
    else:
        assert len(enc.outputs) == 1
    # Shared weights: every composite weight is an encoder or decoder weight, by identity.
    ids = {id(w) for w in enc.weights + dec.weights}
    assert all(id(w) in ids for w in comp.weights)
    out = np.asarray(comp(inputs_for(bundle.spec), training=False))
    assert out.shape == (6, 28, 28, 1) and out.min() >= 0 and out.max() <= 1


def test_sampling_follows_the_training_flag():
    layer = Sampling(seed=1)
    mean = np.full((4, 2), 3.0, np.float32)
    log_var = np.zeros((4, 2), np.float32)  # sigma = 1
    np.testing.assert_array_equal(np.asarray(layer([mean, log_var], training=False)), mean)
    drawn = np.asarray(layer([mean, log_var], training=True))
    assert not np.allclose(drawn, mean)
    big = np.asarray(
        layer([np.zeros((20000, 1), np.float32), np.zeros((20000, 1), np.float32)], training=True)
    )
    assert abs(big.std() - 1.0) < 0.05 and abs(big.mean()) < 0.05
    keras_io = Sampling(always_sample=True, seed=1)
    assert not np.allclose(np.asarray(keras_io([mean, log_var], training=False)), mean)


@pytest.mark.parametrize("kind", ["mlp_vae", "conv_vae", "cvae"])
def test_composite_in_inference_mode_equals_decoder_of_z_mean(kind):
    bundle = build_model(small(kind))
    spec = bundle.spec
    z_mean, _, _ = bundle.encoder(inputs_for(spec), training=False)
    dec_in = [z_mean, tf.constant(Y)] if spec.is_conditional else z_mean
    expected = np.asarray(bundle.decoder(dec_in, training=False))
    got = np.asarray(bundle.composite(inputs_for(spec), training=False))
    np.testing.assert_allclose(got, expected, atol=1e-6)
    # Training mode samples z, so it is a different image.
    sampled = np.asarray(bundle.composite(inputs_for(spec), training=True))
    assert np.abs(sampled - expected).max() > 1e-4


def test_keras_example_sampling_switch_samples_at_prediction_too():
    bundle = build_model(small("mlp_vae", always_sample=True))
    a = np.asarray(bundle.composite(X, training=False))
    b = np.asarray(bundle.composite(X, training=False))
    assert np.abs(a - b).max() > 1e-4


def test_losses_match_their_definitions():
    spec = small("mlp_vae")
    target = RNG.random((2, 28, 28, 1)).astype(np.float32)
    logits = RNG.normal(size=(2, 784)).astype(np.float32)
    p = 1 / (1 + np.exp(-logits.astype(np.float64)))
    t = target.reshape(2, -1)
    bce = -(t * np.log(p) + (1 - t) * np.log(1 - p)).sum(axis=1)
    np.testing.assert_allclose(
        np.asarray(reconstruction_loss(spec, target, logits)), bce, rtol=1e-4
    )
    mse_spec = small("mlp_vae", reconstruction="mse")
    np.testing.assert_allclose(
        np.asarray(reconstruction_loss(mse_spec, target, logits)),
        ((t - p) ** 2).sum(axis=1),
        rtol=1e-4,
    )
    mean = np.array([[1.0, 0.0]], np.float32)
    log_var = np.array([[0.0, np.log(4.0)]], np.float32)
    # 0.5 * sum(mu^2 + sigma^2 - 1 - log sigma^2) per dimension
    expected = 0.5 * ((1 + 1 - 1 - 0) + (0 + 4 - 1 - np.log(4.0)))
    np.testing.assert_allclose(np.asarray(kl_divergence(mean, log_var)), [expected], rtol=1e-5)


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_one_training_step_lowers_nothing_but_changes_weights(kind):
    bundle = build_model(small(kind))
    trainer = Trainer(bundle)
    trainer.compile(optimizer=keras.optimizers.Adam(1e-2))
    if kind == "cvae":
        data = (X, Y)
    elif kind == "conv_dae":
        data = (np.clip(X + 0.3, 0, 1), X)
    else:
        data = X
    before = [np.array(w) for w in bundle.decoder.weights]
    history = trainer.fit(tf.data.Dataset.from_tensor_slices(data).batch(3), epochs=1, verbose=0)
    keys = set(history.history)
    assert {"loss", "reconstruction_loss"} <= keys
    assert ("kl_loss" in keys) == bundle.spec.is_vae
    assert all(np.isfinite(v[-1]) for v in history.history.values())
    after = [np.array(w) for w in bundle.decoder.weights]
    assert any(np.abs(a - b).max() > 0 for a, b in zip(after, before, strict=True))


def test_kl_weight_scales_the_kl_term():
    bundle = build_model(small("mlp_vae"))
    trainer = Trainer(bundle)
    keras.utils.set_random_seed(3)
    total1, rec1, kl1 = trainer.compute_losses(X, training=False)
    trainer.kl_weight.assign(0.0)
    keras.utils.set_random_seed(3)
    total0, rec0, _ = trainer.compute_losses(X, training=False)
    np.testing.assert_allclose(float(total0), float(rec0), rtol=1e-6)
    np.testing.assert_allclose(float(total1), float(rec1) + float(kl1), rtol=1e-5)


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_save_and_safe_load_keep_outputs(tmp_path, kind):
    bundle = build_model(small(kind))
    path = tmp_path / "m.keras"
    bundle.composite.save(path)
    with zipfile.ZipFile(path) as zf:
        assert "Lambda" not in zf.read("config.json").decode()
    loaded = bundle_from_composite(keras.saving.load_model(path, safe_mode=True, compile=False))
    assert loaded.spec.kind == kind and loaded.spec.latent_dim == 3
    np.testing.assert_allclose(
        np.asarray(loaded.composite(inputs_for(bundle.spec), training=False)),
        np.asarray(bundle.composite(inputs_for(bundle.spec), training=False)),
        atol=1e-6,
    )
    # The loaded decoder is still a model of its own: it decodes a latent vector directly.
    z = np.zeros((2, 3), np.float32)
    dec_in = [z, np.array([1, 2], np.int32)] if bundle.spec.is_conditional else z
    np.testing.assert_allclose(
        np.asarray(loaded.decoder(dec_in)), np.asarray(bundle.decoder(dec_in)), atol=1e-6
    )


def test_infer_spec_recovers_kind_and_sizes():
    for kind in MODEL_KINDS:
        spec = small(kind, latent_dim=5)
        got = infer_spec(build_model(spec).composite)
        assert (got.kind, got.latent_dim) == (kind, 5)


def test_specs_reject_nonsense_with_sentences_and_round_trip_as_json():
    with pytest.raises(UserError, match="latent size"):
        ModelSpec("mlp_vae", latent_dim=0)
    with pytest.raises(UserError, match="Unknown model kind"):
        ModelSpec("gan")
    with pytest.raises(UserError, match="Epochs"):
        TrainSpec(epochs=0)
    spec = ModelSpec("cvae", latent_dim=4)
    assert ModelSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    train = TrainSpec(dataset="sample", epochs=3)
    assert TrainSpec.from_dict(json.loads(json.dumps(train.to_dict()))) == train
