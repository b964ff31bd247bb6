"""The recommender through the same run machinery as the digits: the registry, the CLI's run, Stop
and Resume, the store, the Train page and the other pages' guards."""

from __future__ import annotations

import math

import pytest

from tests.apptest import open_app
from tests.stops import StopAfter
from vae_core import kinds, rundir
from vae_core.errors import UserError
from vae_core.recsys import movielens
from vae_core.specs import ModelSpec, TrainSpec, check_pair, preset
from vae_core.store import Store

QUICK = dict(epochs=3, kl_anneal_steps=4, batch_size=500)


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_LAB_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("VAE_LAB_DATA_DIR", raising=False)  # the shipped ml-latest-small
    return Store(tmp_path / "home" / "models", shipped_root=None)


def test_the_registry_knows_every_movielens_release_the_reader_reads():
    assert set(kinds.ITEM_DATASETS) == set(movielens.DATASETS)
    assert kinds.get("mult_vae").datasets == kinds.ITEM_DATASETS


def test_a_recommender_trains_on_movielens_and_a_digit_model_on_digits():
    model, train = preset("mult_vae")
    assert (train.dataset, train.batch_size, model.reconstruction) == (
        "ml-latest-small",
        100,
        "multinomial",
    )
    with pytest.raises(UserError, match="trains on ml-latest-small"):
        check_pair(model, TrainSpec("mnist"))
    with pytest.raises(UserError, match="trains on mnist"):
        check_pair(ModelSpec("mlp_vae"), TrainSpec("ml-20m"))


@pytest.mark.slow
def test_a_mult_vae_run_stops_resumes_and_lands_in_the_store_with_its_baselines(store, tmp_path):
    from vae_core.train import run_training

    model, train = preset("mult_vae")
    train = TrainSpec.from_dict({**train.to_dict(), **QUICK})
    run_dir = tmp_path / "mv"
    # ml-latest-small's 527 training users are 2 batches of 500 here: checks before fit, 2 batch
    # ends and the epoch's end pass, so the stop lands after epoch 1.
    status = run_training(run_dir, model, train, store=store, stop_event=StopAfter(4))
    assert status["state"] == "stopped" and status["epoch"] == 1
    assert (run_dir / "backup" / "best.weights.h5").is_file()

    status = run_training(run_dir, store=store)
    assert status["state"] == "completed" and status["epoch"] == 3
    epochs = [r for r in rundir.read_progress(run_dir) if r["kind"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2, 3]
    assert all(0 <= r["val_ndcg@100"] <= 1 and "kl_weight" in r for r in epochs)
    metrics = status["test_metrics"]
    for name in ("recall@20", "recall@50", "ndcg@100"):
        assert 0 <= metrics[name] <= 1
        assert 0 <= metrics[f"popularity_{name}"] <= 1 and 0 <= metrics[f"ease_{name}"] <= 1
    assert 1 <= metrics["best_epoch"] <= 3

    entry = store.get(status["model_name"])
    assert entry.kind == "mult_vae" and "NDCG@100" in entry.label
    bundle = store.load(status["model_name"])
    assert isinstance(bundle.spec, ModelSpec) and bundle.spec.n_items > 1000
    assert math.isclose(bundle.spec.beta, 0.2)


def test_the_train_page_offers_the_recommender_on_the_shipped_movielens(empty_lab_home):
    at = open_app("app_pages/train.py")
    at.selectbox(key="tr_kind").set_value("mult_vae").run()
    assert not at.exception
    (label,) = at.radio(key="tr_data_mult_vae").options  # only the shipped release is here
    assert label.startswith("MovieLens small")
    assert at.number_input(key="tr_beta_mult_vae").value == pytest.approx(0.2)
    assert at.number_input(key="tr_anneal_mult_vae").value == preset("mult_vae")[1].kl_anneal_steps
    assert not [w for w in at.selectbox if w.key and w.key.startswith("tr_noise")]


def test_pages_for_digits_say_a_recommender_is_not_theirs(empty_lab_home):
    from vae_core.recsys.model import build_recommender

    spec = ModelSpec("mult_vae", n_items=50, latent_dim=4, hidden=8)
    Store(empty_lab_home / "models", shipped_root=None).save("mv", build_recommender(spec))
    for page in ("app_pages/round_trip.py", "app_pages/generate.py"):
        at = open_app(page, model="mv")
        assert [i.value for i in at.sidebar.info] == [
            "The link asks for **mv**, a Mult-VAE recommender, which this page cannot show; it "
            "opens here:"
        ], page
        assert [link.proto.page for link in at.sidebar.get("page_link")][0] == "recommend"
        # With no digit model at all, the page says where one comes from.
        assert "train one on the **Train** page" in at.main.info[0].value, page
