"""RecVAE: its composite prior and per-user KL weight against hand-computed values, its alternating
training freezing what it says, and a short run that stops, resumes and lands in the store."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import scipy.sparse as sp

from tests.stops import StopAfter
from vae_core import kinds, rundir
from vae_core.recsys.fit import FusedAdam
from vae_core.recsys.model import RecSpec, sparse_batch
from vae_core.recsys.recvae import (
    ENCODER_PASSES,
    RecVAETrainer,
    build_rec_vae,
    clicks_per_user,
    composite_log_prior,
    kl_estimate,
)
from vae_core.specs import ModelSpec, TrainSpec, preset
from vae_core.store import Store


def _normal_pdf(z, mean, var):
    return math.exp(-((z - mean) ** 2) / (2 * var)) / math.sqrt(2 * math.pi * var)


def test_the_composite_prior_is_the_three_part_mixture_per_dimension():
    z, old_mean, old_log_var = (
        np.array([[0.5, -2.0]]),
        np.array([[1.0, 0.0]]),
        np.array([[0.0, 1.0]]),
    )
    got = np.asarray(composite_log_prior(z, old_mean, old_log_var))
    for d in range(2):
        by_hand = (
            3 / 20 * _normal_pdf(z[0, d], 0.0, 1.0)
            + 3 / 4 * _normal_pdf(z[0, d], old_mean[0, d], math.exp(old_log_var[0, d]))
            + 1 / 10 * _normal_pdf(z[0, d], 0.0, math.exp(10.0))
        )
        assert got[0, d] == pytest.approx(math.log(by_hand), abs=1e-5)


def test_the_kl_estimate_is_log_q_minus_log_prior_summed_over_dimensions():
    z = np.array([[0.3, -0.4]], np.float32)
    z_mean, z_log_var = np.array([[0.1, -0.2]], np.float32), np.array([[-1.0, 0.5]], np.float32)
    old_mean, old_log_var = np.zeros((1, 2), np.float32), np.zeros((1, 2), np.float32)
    log_q = sum(
        math.log(_normal_pdf(z[0, d], z_mean[0, d], math.exp(z_log_var[0, d]))) for d in range(2)
    )
    log_p = sum(
        math.log(
            (3 / 20 + 3 / 4) * _normal_pdf(z[0, d], 0.0, 1.0)
            + 1 / 10 * _normal_pdf(z[0, d], 0.0, math.exp(10.0))
        )
        for d in range(2)
    )
    got = np.asarray(kl_estimate(z, z_mean, z_log_var, old_mean, old_log_var))
    assert got.shape == (1,) and got[0] == pytest.approx(log_q - log_p, abs=1e-4)


def test_each_users_kl_weight_is_gamma_times_their_clicks():
    x = sp.csr_matrix(np.array([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 0], [0, 0, 0, 0, 0, 1]], "f4"))
    beta = 0.005 * np.asarray(clicks_per_user(sparse_batch(x)))
    assert np.allclose(beta, [0.015, 0.025, 0.005])


def _weights(model):
    return [w.copy() for w in model.get_weights()]


def _same(a, b):
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_alternating_training_freezes_what_it_says():
    """steps_per_pass 2: steps 1-6 move the encoder only (the frozen copy stays put), then the copy
    takes the encoder's weights and steps 7-8 move the decoder only."""
    keras.config.set_dtype_policy("float32")
    keras.utils.set_random_seed(0)
    spec = RecSpec(kind="rec_vae", n_items=40, hidden=16, latent_dim=4)
    bundle = build_rec_vae(spec, seed=1)
    trainer = RecVAETrainer(bundle, gamma=0.005, steps_per_pass=2, seed=2)
    trainer.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=False)
    trainer.optimizer.build(trainer.trainable_variables)
    rng = np.random.default_rng(0)
    batch = sparse_batch(sp.csr_matrix((rng.random((8, 40)) < 0.3).astype("f4")))
    encoder0, decoder0, old0 = (
        _weights(m) for m in (bundle.encoder, bundle.decoder, trainer.old_encoder)
    )
    assert _same(encoder0, old0)  # the copy starts as the encoder

    for _ in range(ENCODER_PASSES * 2):
        trainer.train_on_batch(batch)
    encoder1 = _weights(bundle.encoder)
    assert not _same(encoder1, encoder0)
    assert _same(_weights(bundle.decoder), decoder0)
    assert _same(_weights(trainer.old_encoder), old0)

    trainer.train_on_batch(batch)  # the first decoder step: the copy is refreshed first
    assert _same(_weights(trainer.old_encoder), encoder1)
    trainer.train_on_batch(batch)
    assert _same(_weights(bundle.encoder), encoder1)
    assert not _same(_weights(bundle.decoder), decoder0)

    trainer.train_on_batch(batch)  # the next epoch trains the encoder again
    assert not _same(_weights(bundle.encoder), encoder1)
    assert _same(_weights(trainer.old_encoder), encoder1)


def test_each_part_is_adams_first_step_when_its_turn_first_comes():
    """As with the authors' two Adams: the decoder's first update, after six encoder steps, is a
    fresh Adam's first (every weight moves by the learning rate, against the sign of its
    gradient); counting the encoder's steps too would make it about half that."""
    keras.config.set_dtype_policy("float32")
    keras.utils.set_random_seed(0)
    bundle = build_rec_vae(RecSpec(kind="rec_vae", n_items=40, hidden=16, latent_dim=4), seed=1)
    trainer = RecVAETrainer(bundle, gamma=0.005, steps_per_pass=2, seed=2)
    trainer.compile(optimizer=FusedAdam(0.01), jit_compile=False)
    trainer.optimizer.build(trainer.trainable_variables)
    rng = np.random.default_rng(0)
    batch = sparse_batch(sp.csr_matrix((rng.random((8, 40)) < 0.3).astype("f4")))
    for _ in range(ENCODER_PASSES * 2):
        trainer.train_on_batch(batch)
    bias = bundle.decoder.get_layer("decoder_logits").bias
    before = np.asarray(bias).copy()
    trainer.train_on_batch(batch)  # the decoder's first update
    moved = np.abs(np.asarray(bias) - before)
    assert np.allclose(moved, 0.01, rtol=0.02)


def test_a_decoder_pass_takes_the_frozen_copys_posterior_from_the_encoder_it_equals():
    """Once refreshed, the frozen copy is the encoder and a decoder pass has no dropout, so its KL
    term is computed from the encoder's own posterior: the same numbers, one forward pass fewer."""
    keras.config.set_dtype_policy("float32")
    bundle = build_rec_vae(RecSpec(kind="rec_vae", n_items=40, hidden=16, latent_dim=4), seed=1)
    trainer = RecVAETrainer(bundle, gamma=0.005, steps_per_pass=1, seed=2)
    rng = np.random.default_rng(0)
    batch = sparse_batch(sp.csr_matrix((rng.random((8, 40)) < 0.3).astype("f4")))
    bundle.encoder.get_layer("z_mean").kernel.assign(rng.normal(size=(16, 4)).astype("f4"))
    shortcut = trainer.compute_losses(batch, training=False, fresh=True)
    stale = trainer.compute_losses(batch, training=False)
    assert not np.isclose(float(shortcut[2]), float(stale[2]))  # the copy is last epoch's encoder
    trainer.refresh_old_encoder()
    computed = trainer.compute_losses(batch, training=False)
    assert np.allclose([float(t) for t in shortcut], [float(t) for t in computed], rtol=1e-6)


def test_rec_vae_is_a_recommend_kind_with_the_papers_shape():
    kind = kinds.get("rec_vae")
    assert kind.domain == kinds.ITEMS and "recommend" in kind.pages and kind.trainable
    assert "rec_vae" in kinds.for_page("recommend") and "mult_vae" in kinds.for_page("recommend")
    model, train = preset("rec_vae")
    assert (model.hidden, model.latent_dim, model.beta) == (600, 200, 0.01)
    bundle = build_rec_vae(RecSpec(kind="rec_vae", n_items=30))
    names = {layer.name for layer in bundle.encoder.layers}
    assert {f"encoder_norm_{i}" for i in range(1, 6)} <= names and "z_mean" in names
    assert bundle.decoder.get_layer("decoder_logits").kernel.shape == (200, 30)


@pytest.mark.slow
def test_a_rec_vae_run_stops_resumes_and_lands_in_the_store(tmp_path, monkeypatch):
    from vae_core.train import run_training

    monkeypatch.setenv("VAE_LAB_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("VAE_LAB_DATA_DIR", raising=False)  # the shipped ml-latest-small
    store = Store(tmp_path / "home" / "models", shipped_root=None)
    model, train = preset("rec_vae")
    train = TrainSpec.from_dict({**train.to_dict(), "epochs": 2, "batch_size": 500})
    run_dir = tmp_path / "rv"
    # 527 training users: 2 batches a pass, 4 passes an epoch; checks before fit, 8 batch ends
    # and the epoch's end pass, so the stop lands after epoch 1.
    status = run_training(run_dir, model, train, store=store, stop_event=StopAfter(10))
    assert status["state"] == "stopped" and status["epoch"] == 1

    status = run_training(run_dir, store=store)
    assert status["state"] == "completed" and status["epoch"] == 2
    epochs = [r for r in rundir.read_progress(run_dir) if r["kind"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2]
    assert all(0 <= r["val_ndcg@100"] <= 1 and r["kl_weight"] > 0 for r in epochs)
    assert 0 <= status["test_metrics"]["ndcg@100"] <= 1

    entry = store.get(status["model_name"])
    assert entry.kind == "rec_vae" and "NDCG@100" in entry.label
    bundle = store.load(status["model_name"])
    assert isinstance(bundle.spec, ModelSpec) and bundle.spec.kind == "rec_vae"
    assert "encoder_norm_5" in {layer.name for layer in bundle.encoder.layers}


def test_the_train_page_offers_rec_vae_with_its_kl_weight_per_click(empty_lab_home):
    from tests.apptest import open_app

    at = open_app("app_pages/train.py")
    at.selectbox(key="tr_kind").set_value("rec_vae").run()
    assert not at.exception
    assert at.number_input(key="tr_beta_rec_vae").value == pytest.approx(0.01)
    assert "per click" in at.number_input(key="tr_beta_rec_vae").label
    assert not [w for w in at.number_input if w.key == "tr_anneal_rec_vae"]


def test_an_epoch_of_passes_shows_every_user_once_a_pass_and_resumes_in_order():
    from vae_core.recsys.fit import click_dataset

    clicks = sp.csr_matrix(np.eye(7, dtype="f4"))  # user i clicks item i only

    def passes(data):  # the users of each pass, in the order they came
        users = [b.indices.numpy()[:, 1].tolist() for b in data]
        return [sum(users[p * 3 : p * 3 + 3], []) for p in range(len(users) // 3)]

    data = click_dataset(clicks, 3, seed=5, passes=4)
    first, second = passes(data), passes(data)
    assert len(first) == len(second) == 4 and int(data.cardinality()) == 12
    assert all(sorted(p) == list(range(7)) for p in first + second)  # every user once a pass
    assert len({tuple(p) for p in first + second}) > 1  # in a fresh order
    # A run resumed after epoch 1 sees epoch 2's orders again.
    assert passes(click_dataset(clicks, 3, seed=5, passes=4, first_epoch=1)) == second
