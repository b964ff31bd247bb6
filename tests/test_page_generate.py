"""The Generate page, driven through AppTest with small models of each kind."""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from tests.apptest import TIMEOUT, open_app, record_downloads
from tests.conftest import STORE_SPECS

# Interpolation digits come from the bundled sample.
pytestmark = pytest.mark.usefixtures("sample_only")


def _open(model: str | None = None, timeout: int = TIMEOUT, **params: str) -> AppTest:
    at = open_app("app_pages/generate.py", model=model, timeout=timeout, **params)
    _ok(at)
    return at


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _url(at: AppTest, caption_start: str) -> str:
    """The media URL (a content hash) of the one image whose caption starts with `caption_start`."""
    (url,) = [
        img.url for im in at.image for img in im.proto.imgs if img.caption.startswith(caption_start)
    ]
    return url


def _walk_url(at: AppTest) -> str:
    (url,) = [img.url for im in at.image for img in im.proto.imgs if not img.caption]
    return url


def _manifold(at: AppTest) -> dict:
    chart = next(e for e in at.get("plotly_chart") if e.proto.id.endswith("gen_manifold"))
    return json.loads(chart.proto.spec)


def _downloads(at: AppTest) -> list[str]:
    return [b.proto.label for b in at.main.get("download_button")]  # not the sidebar's


@pytest.mark.parametrize("model", list(STORE_SPECS))
def test_each_kind_of_model(lab_home, model):
    at = _open(model)
    if STORE_SPECS[model]["kind"] == "conv_dae":  # nothing to draw from: not listed here
        (note,) = at.sidebar.info
        assert "which this page cannot show" in note.value
        assert at.query_params["model"] != model and _url(at, "32 digits, seed 0")
        return
    assert [h.value for h in at.header] == [
        "New digits from the prior",
        "The map of the latent space",
        "Turn the dials",
        "Walk from one digit to another",
    ]
    assert _url(at, "32 digits, seed 0") and _url(at, "decoder(z)") and _walk_url(at)
    assert _downloads(at) == ["Download PNG"] * 3
    d = STORE_SPECS[model]["latent_dim"]
    assert len([s for s in at.slider if s.key and s.key.startswith("gen_z_")]) == d
    layout = _manifold(at)["layout"]
    assert layout["xaxis"]["title"]["text"] == "z[0]" and layout["yaxis"]["title"]["text"] == "z[1]"


def test_an_empty_store_says_to_train_a_model(empty_lab_home):
    at = _open()
    assert any("Train" in i.value for i in at.info)
    assert not at.image


def test_the_seed_changes_the_prior_samples_and_is_kept_in_the_url(lab_home):
    at = _open("mlp_vae")
    first = _url(at, "32 digits")
    at.number_input(key="gen_seed").set_value(7).run()
    _ok(at)
    assert _url(at, "32 digits, seed 7") != first
    assert at.query_params["seed"] == "7"
    # The same seed from a copied URL draws the same digits.
    again = _open("mlp_vae", seed="7")
    assert _url(again, "32 digits, seed 7") == _url(at, "32 digits, seed 7")


def test_temperature_zero_draws_the_same_digit_everywhere(lab_home):
    at = _open("mlp_vae", n="4")
    at.slider(key="gen_temp").set_value(0.0).run()
    zero = _url(at, "4 digits")
    at.number_input(key="gen_seed").set_value(3).run()
    _ok(at)
    assert _url(at, "4 digits") == zero  # z = 0 whatever the seed


def test_moving_a_dial_changes_the_decoded_digit(lab_home):
    at = _open("conv_vae")
    at0 = _url(at, "decoder(z)")
    at.slider(key="gen_z_2").set_value(2.5).run()
    _ok(at)
    moved = _url(at, "decoder(z)")
    assert moved != at0
    assert any("2.5" in c.value for c in at.caption if c.value.startswith("z = "))
    at.button(key="gen_reset").click().run()
    _ok(at)
    assert at.slider(key="gen_z_2").value == 0.0
    assert _url(at, "decoder(z)") == at0
    at.button(key="gen_random").click().run()
    assert any(at.slider(key=f"gen_z_{j}").value != 0.0 for j in range(4))


def test_manifold_slice_and_size_follow_the_controls(lab_home):
    at = _open("conv_vae")
    before = _manifold(at)
    at.selectbox(key="gen_dy").set_value(3).run()
    at.slider(key="gen_grid").set_value(6).run()
    _ok(at)
    after = _manifold(at)
    assert after["layout"]["yaxis"]["title"]["text"] == "z[3]"
    assert after["data"][0]["source"] != before["data"][0]["source"]  # another picture
    assert any("the other 2 numbers are 0" in c.value for c in at.caption)
    assert at.query_params["grid"] == "6" and at.query_params["dy"] == "3"


def test_interpolation_endpoints_and_method_change_the_walk(lab_home):
    at = _open("mlp_vae")
    walk = _walk_url(at)
    # Chosen as a person says it: from a 3 to an 8, then another example of the 8.
    at.selectbox(key="gen_a_digit").set_value(3).run()
    at.selectbox(key="gen_b_digit").set_value(8).run()
    _ok(at)
    assert _walk_url(at) != walk
    said = next(c.value for c in at.caption if c.value.startswith("Left: digit #"))
    assert "(a 3)" in said and "(a 8)" in said, said
    first_eight = at.query_params["b"]
    at.number_input(key="gen_b_ex").set_value(2).run()
    _ok(at)
    assert at.query_params["b"] != first_eight
    assert "(a 8)" in next(c.value for c in at.caption if c.value.startswith("Left: digit #"))
    linear = _walk_url(at)
    at.radio(key="gen_method").set_value("spherical").run()
    _ok(at)
    assert _walk_url(at) != linear
    assert any("spherical path" in c.value for c in at.caption)


def test_the_conditional_vae_draws_the_digit_asked_for(lab_home):
    at = _open("cvae")
    threes = _url(at, "32 digits")
    dial = _url(at, "decoder(z)")
    at.segmented_control(key="gen_digit").set_value(8).run()
    _ok(at)
    assert _url(at, "32 digits") != threes
    assert _url(at, "decoder(z)") != dial
    assert at.query_params["digit"] == "8"


def test_downloads_are_named_after_model_page_and_settings(lab_home, monkeypatch):
    files = record_downloads(monkeypatch)
    _open("conv_vae", seed="12", temp="0.5", a="3", b="8", method="spherical")
    assert {
        "vae_lab-generate-prior_samples-temp0.5-conv_vae-seed12.png",
        "vae_lab-generate-latent_map-z0_z1-conv_vae.png",
        "vae_lab-generate-walk-3_to_8-spherical-conv_vae.png",
    } <= files.keys()


def test_the_conditional_vaes_walk_can_morph_the_style_of_one_digit(lab_home):
    at = _open("cvae")
    switching = _walk_url(at)
    assert any("for the first half of the walk" in c.value for c in at.caption)
    at.toggle(key="gen_morph").set_value(True).run()
    _ok(at)
    assert _walk_url(at) != switching
    label = at.segmented_control(key="gen_digit").value
    said = " ".join(c.value for c in at.caption)
    assert f"Every step is drawn as a {label}: only the style walks" in said
    assert "for the first half of the walk" not in said
