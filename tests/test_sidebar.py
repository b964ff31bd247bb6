"""The shared sidebar, driven through AppTest: a model list that describes every model, renaming and
deleting one's own models (shipped ones stay read-only, a model in training stays put), and the
glossary, reachable from every page and behind the help tips where its words appear."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from streamlit.testing.v1 import AppTest

from app_pages.glossary import TERMS
from tests.apptest import open_app
from vae_core import rundir, runs
from vae_core.specs import ModelSpec, TrainSpec
from vae_core.store import NAME_RULE

PAGES = (
    "app_pages/round_trip.py",
    "app_pages/generate.py",
    "app_pages/denoise.py",
    "app_pages/train.py",
)


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _files(store) -> list[str]:
    return sorted(p.name for p in store.iterdir())


def _rename(at: AppTest, new: str) -> AppTest:
    at.sidebar.text_input(key="sb_rename_to").input(new).run()
    at.sidebar.button(key="sb_rename").click().run()
    _ok(at)
    return at


def _sidebar_errors(at: AppTest) -> list[str]:
    return [e.value for e in at.sidebar.error]


# ---------------------------------------------------------------- the list
def _models(at: AppTest) -> dict[str, str]:
    """{model name: the description under it} as the sidebar's list shows them, in order."""
    box = at.sidebar.radio(key="sb_model_round_trip")
    names = [o.replace("\\", "").replace("\u200b", "").strip("*") for o in box.options]
    return dict(zip(names, box.proto.captions, strict=True))


def test_the_model_list_describes_every_model(lab_home):
    at = open_app(model="mlp_vae_2d")
    assert at.sidebar.radio(key="sb_model_round_trip").value == "mlp_vae_2d"
    models = _models(at)
    shipped = {
        "mlp_vae_2d": r"MLP VAE · latent size 2 · prior: a Gaussian per digit · trained on mnist, "
        r"\d+ epochs · test −ELBO \d+\.\d nats · shipped with VAE Lab",
        "conv_vae_32d": r"Convolutional VAE · latent size 32 · prior: a Gaussian per digit · "
        r"trained on mnist, \d+ epochs · test −ELBO \d+\.\d nats · shipped with VAE Lab",
        "cvae_2d": r"Conditional VAE · latent size 2 · .* · test −ELBO \d+\.\d nats · .*",
        "conv_dae": r"Convolutional denoising autoencoder · latent size \d+ · trained on .* · "
        r"test PSNR \d+\.\d dB, SSIM \d\.\d{3} · shipped with VAE Lab",
    }
    for name, words in shipped.items():
        assert re.fullmatch(words, models[name]), (name, models[name])
    # The small test models carry no test score, but still say what they are.
    assert models["mlp_vae"] == "MLP VAE · latent size 2 · trained on sample, 1 epoch"
    assert models["cvae"] == "Conditional VAE · latent size 2 · trained on sample, 1 epoch"


# ---------------------------------------------------------------- rename
def test_renaming_ones_own_model_from_the_sidebar(own_store):
    at = open_app(model="conv_vae")
    at = _rename(at, "my_conv")
    assert _files(own_store) == sorted(
        [
            "conv_dae.json",
            "conv_dae.keras",
            "cvae.json",
            "cvae.keras",
            "mlp_vae.json",
            "mlp_vae.keras",
            "my_conv.json",
            "my_conv.keras",
        ]
    )
    assert at.query_params["model"] == "my_conv"
    assert at.sidebar.radio(key="sb_model_round_trip").value == "my_conv"
    assert any("Renamed **conv_vae** to **my_conv**" in s.value for s in at.sidebar.success)
    assert not at.error  # the page still shows the model under its new name
    assert at.sidebar.text_input(key="sb_rename_to").value == ""


@pytest.mark.parametrize(
    ("new", "sentence"),
    [
        ("mlp_vae", "A model named 'mlp_vae' already exists; pick another name."),
        ("my model", NAME_RULE),
        ("conv_vae", "The model is already called 'conv_vae'."),
        ("", "Type the new name for conv_vae first."),
    ],
)
def test_a_name_that_collides_or_breaks_the_rules_gets_a_sentence(own_store, new, sentence):
    before = _files(own_store)
    at = _rename(open_app(model="conv_vae"), new)
    assert _sidebar_errors(at) == [sentence]
    assert _files(own_store) == before
    assert at.sidebar.radio(key="sb_model_round_trip").value == "conv_vae"


def test_shipped_models_offer_no_rename_or_delete(lab_home):
    at = open_app(model="mlp_vae_2d")
    keys = {w.key for w in at.sidebar.text_input} | {b.key for b in at.sidebar.button}
    assert not keys & {"sb_rename_to", "sb_rename", "sb_delete"}
    assert any("read-only" in c.value for c in at.sidebar.caption)


# ---------------------------------------------------------------- delete
def test_delete_asks_first_and_cancel_keeps_the_model(own_store):
    at = open_app(model="cvae")
    at.sidebar.button(key="sb_delete").click().run()
    assert [w.value for w in at.sidebar.warning] == [
        "Delete **cvae** for good? This cannot be undone."
    ]
    assert "cvae.keras" in _files(own_store)
    at.sidebar.button(key="sb_delete_no").click().run()
    assert not at.sidebar.warning and "cvae.keras" in _files(own_store)

    at.sidebar.button(key="sb_delete").click().run()
    at.sidebar.button(key="sb_delete_yes").click().run()
    _ok(at)
    assert "cvae.keras" not in _files(own_store) and "cvae.json" not in _files(own_store)
    assert any("Deleted **cvae**" in s.value for s in at.sidebar.success)
    assert "cvae" not in _models(at)
    assert at.sidebar.radio(key="sb_model_round_trip").value == "conv_vae"  # the first VAE instead
    assert at.query_params["model"] == "conv_vae"


@pytest.fixture
def training_now(own_store):
    """A run that looks like it is training (a stand-in child), having just saved `mlp_vae`."""
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", runs.TRAIN_MODULE]
    )
    run_dir = runs.create_run(
        ModelSpec(hidden=16), TrainSpec(dataset="sample"), root=own_store.parent / "runs"
    )
    rundir.write_json_atomic(
        run_dir / rundir.STATUS, {"state": "running", "pid": child.pid, "host": os.uname().nodename}
    )
    meta_path = own_store / "mlp_vae.json"
    meta_path.write_text(json.dumps({**json.loads(meta_path.read_text()), "run_id": run_dir.name}))
    yield run_dir.name
    child.kill()
    child.wait()


def test_a_model_in_use_by_a_running_training_cannot_be_deleted(own_store, training_now):
    before = _files(own_store)
    at = open_app(model="mlp_vae")
    at.sidebar.button(key="sb_delete").click().run()
    at.sidebar.button(key="sb_delete_yes").click().run()
    in_use = (
        f"The model 'mlp_vae' is in use by the training run {training_now}; stop that run or "
        "wait until it finishes, then try again."
    )
    assert _sidebar_errors(at) == [in_use]
    _rename(at, "elsewhere")
    assert _sidebar_errors(at) == [in_use]
    assert _files(own_store) == before


# ---------------------------------------------------------------- the glossary
def _helps(node) -> list[str]:
    """Every help tip under a node of the element tree (widgets, captions, metrics, text)."""
    proto = getattr(node, "proto", None)
    found = [proto.help] if getattr(proto, "help", "") else []
    for child in (getattr(node, "children", None) or {}).values():
        found += _helps(child)
    return found


def test_every_term_is_one_or_two_plain_sentences():
    required = {
        "nats",
        "ELBO",
        "KL",
        "prior",
        "N(0, I)",
        "z_log_var",
        "eps",
        "shapes",
        "PCA",
        "temperature",
        "spherical interpolation",
        "PSNR",
        "SSIM",
    }
    assert required <= set(TERMS)
    assert "(None, 64)" in TERMS["shapes"]
    for term, text in TERMS.items():
        sentences = re.findall(r"[.!?](?=\s+[A-Z(]|$)", text)
        assert 1 <= len(sentences) <= 2, (term, text)
        assert len(text) < 260, term


# The words the pages explain where they appear: each in some help tip, in the glossary's words.
TIPPED = ("latent code", "z_mean", "z_log_var", "eps", "shapes", "prior", "KL", "ELBO", "nats",
          "temperature", "PCA", "PSNR", "SSIM", "spherical interpolation", "log-likelihood",
          "importance sampling", "bound")  # fmt: skip


def test_the_glossary_is_a_click_away_on_every_page_and_behind_the_help_tips(lab_home):
    at = open_app(model="conv_vae", timeout=90)  # > 2 latent numbers: the map offers PCA
    tips: list[str] = []
    for page in PAGES:
        at.switch_page(page).run()
        at.session_state["rt_wiring"] = True  # opened, as a click does (its "shapes" tip)
        at.run()
        _ok(at)
        links = [link.proto for link in at.sidebar.get("page_link")]
        assert any(link.page == "glossary" for link in links), page
        tips += _helps(at.main) + _helps(at.sidebar)
    every_tip = "\n".join(tips)
    missing = [term for term in TIPPED if f"**{term}**: {TERMS[term]}" not in every_tip]
    assert not missing, f"no help tip explains {missing}"
