"""The Round trip page, driven through AppTest with small models of each kind."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw
from streamlit.testing.v1 import AppTest

from tests.apptest import TIMEOUT, open_app, record_downloads
from tests.conftest import STORE_SPECS

# No full MNIST unless a test asks for it.
pytestmark = pytest.mark.usefixtures("sample_only")
MNIST_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def _open(model: str | None = None, timeout: int = TIMEOUT, **params: str) -> AppTest:
    at = open_app(model=model, timeout=timeout, **params)  # round trip is the default page
    _ok(at)
    return at


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _captions(at: AppTest) -> list[str]:
    return [c for im in at.image for c in im.captions]


def _image_urls(at: AppTest, caption_start: str) -> list[str]:
    """Media URLs (content hashes) of the images whose caption starts with `caption_start`."""
    return [
        img.url for im in at.image for img in im.proto.imgs if img.caption.startswith(caption_start)
    ]


def _array(value):
    """Plotly's JSON encodes numpy arrays as {"dtype", "bdata"}; lists stay lists."""
    if isinstance(value, dict) and "bdata" in value:
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
    return np.asarray(value)


def _plot(at: AppTest, key: str) -> dict:
    chart = next(e for e in at.get("plotly_chart") if e.proto.id.endswith(key))
    return json.loads(chart.proto.spec)


def _bars(at: AppTest, i: int) -> np.ndarray:
    return _array(_plot(at, f"rt_bars_{i}")["data"][0]["y"])


def _stars(at: AppTest) -> dict:
    return next(t for t in _plot(at, "rt_map")["data"] if t.get("name") == "your digits")


def _seven_png() -> bytes:
    img = Image.new("L", (90, 120), 255)
    ImageDraw.Draw(img).line([(18, 24), (72, 24), (40, 102)], fill=20, width=9)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _open_wiring(at: AppTest) -> AppTest:
    """Open "How the three models are wired", as a click on it does: its content is made only
    while it is open."""
    assert not at.get("graphviz_chart")  # closed: nothing of it was made
    at.session_state["rt_wiring"] = True
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


# ---------------------------------------------------------------- every kind, and none
@pytest.mark.parametrize("model", list(STORE_SPECS))
def test_each_kind_of_model_shows_a_round_trip(lab_home, model):
    at = _open_wiring(_open(model))
    spec = STORE_SPECS[model]
    captions = _captions(at)
    assert captions.count("input x") == 5  # a handful of different digits by default
    text = " ".join(m.value for m in at.markdown)
    assert "decoder" in text and "Input" in text
    # The three summary() texts, captured from Keras.
    codes = " ".join(c.value for c in at.code)
    assert "decoder_input" in codes and 'Model: "encoder"' in codes
    if spec["kind"] == "conv_dae":
        assert sum(c.startswith("decoder(encoder(x))") for c in captions) == 5
        assert not any(c.startswith("vae(x, training=True)") for c in captions)
        assert "No sampling here" in " ".join(c.value for c in at.caption)
        assert "not the image" in text
    else:
        assert sum(c.startswith("decoder(z_mean)") for c in captions) == 5
        assert sum(c.startswith("vae.predict(x)") for c in captions) == 5
        assert sum(c.startswith("vae(x, training=True)") for c in captions) == 5
        assert sum(c.startswith("z") and ": 0." in c for c in captions) == 5 * 6  # K = 6 samples
    stars = _stars(at)
    assert len(stars["x"] if isinstance(stars["x"], list) else _array(stars["x"])) == 5
    if spec["kind"] == "cvae":
        assert any("conditional VAE is *told*" in i.value for i in at.info)


def test_an_empty_store_says_to_train_a_model(empty_lab_home):
    at = _open()
    assert any("Train" in i.value for i in at.info)
    assert not at.image


# ---------------------------------------------------------------- controls change what is shown
def test_choosing_another_digit_changes_its_code_and_the_url(lab_home):
    at = _open("mlp_vae", idx="0")
    assert at.segmented_control(key="rt_mode").value == "By index"
    before = _bars(at, 0)
    at.multiselect(key="rt_idx").set_value([1]).run()
    _ok(at)
    after = _bars(at, 0)
    assert after.shape == before.shape == (2,)
    assert not np.allclose(before, after)
    assert at.query_params["idx"] == "1"


def test_a_copied_url_reproduces_the_digits_and_samples(lab_home):
    at = _open("conv_vae", idx="3,17", k="2", seed="5")
    captions = _captions(at)
    assert captions.count("input x") == 2
    assert sum(c.startswith("z") and ": 0." in c for c in captions) == 2 * 2
    again = _open("conv_vae", idx="3,17", k="2", seed="5")
    assert _image_urls(at, "z1:") == _image_urls(again, "z1:")
    assert np.allclose(_bars(at, 1), _bars(again, 1))


def test_the_seed_changes_the_samples_but_not_the_mean(lab_home):
    at = _open("mlp_vae", idx="4", k="3")
    samples, mean = _image_urls(at, "z"), _image_urls(at, "decoder(z_mean)")
    at.number_input(key="rt_seed").set_value(1).run()
    _ok(at)
    assert _image_urls(at, "z") != samples
    assert _image_urls(at, "decoder(z_mean)") == mean


def test_label_mode_shows_that_many_examples_of_that_digit(lab_home):
    at = _open("cvae")
    at.segmented_control(key="rt_mode").set_value("By label").run()
    at.segmented_control(key="rt_label").set_value(3)
    at.slider(key="rt_count").set_value(4).run()
    _ok(at)
    titles = [m.value for m in at.markdown if m.value.startswith("**Digit")]
    assert len(titles) == 4 and all(t.endswith("written as a 3") for t in titles)


def test_the_keras_example_toggle_shows_two_different_predictions(lab_home):
    at = _open("mlp_vae", idx="7")
    assert not any("call 2" in c for c in _captions(at))
    at.toggle(key="rt_always").set_value(True).run()
    _ok(at)
    call1, call2 = (
        _image_urls(at, "vae.predict(x), call 1"),
        _image_urls(at, "vae.predict(x), call 2"),
    )
    assert len(call1) == len(call2) == 1 and call1 != call2
    assert any("keras-io Sampling" in m.value for m in at.markdown)


def test_latent_map_dimensions_can_be_chosen_for_a_bigger_latent(lab_home):
    at = _open("conv_vae", idx="0,1,2")
    assert "principal axis 1" in _plot(at, "rt_map")["layout"]["xaxis"]["title"]["text"]
    at.radio(key="rt_axes").set_value("Two latent dimensions").run()
    at.selectbox(key="rt_dx").set_value(3).run()
    _ok(at)
    layout = _plot(at, "rt_map")["layout"]
    assert layout["xaxis"]["title"]["text"] == "z[3]"
    stars = _stars(at)
    assert len(_array(stars["x"])) == 3
    assert [t["name"] for t in _plot(at, "rt_map")["data"]][-2:] == ["1 sigma", "2 sigma"]


# ---------------------------------------------------------------- data sources and uploads
def test_with_only_the_bundled_sample_it_says_so(lab_home):
    at = _open("mlp_vae")
    assert "rt_src" not in [r.key for r in at.radio]  # nothing to choose between
    assert any("bundled sample" in c.value and "VAE_LAB_DATA_DIR" in c.value for c in at.caption)
    assert at.query_params["src"] == "sample"


@pytest.mark.skipif(not MNIST_DIR.is_dir(), reason="the full MNIST files are not here")
def test_the_full_test_set_is_offered_when_present(lab_home, monkeypatch):
    monkeypatch.setenv("VAE_LAB_DATA_DIR", str(MNIST_DIR.parent))
    at = _open("mlp_vae", idx="9000")
    assert at.radio(key="rt_src").value == "test"
    assert [m.value for m in at.markdown if m.value.startswith("**Digit")] == [
        "**Digit 1** · #9000 · written as a 7"
    ]


def test_an_uploaded_digit_goes_round_trip(lab_home):
    at = _open("cvae")
    at.segmented_control(key="rt_mode").set_value("Upload").run()
    assert any("Upload a picture" in i.value for i in at.info)
    uploader = at.file_uploader[0]
    uploader.set_value(("seven.png", _seven_png(), "image/png")).run()
    _ok(at)
    captions = _captions(at)
    # The preprocessing steps, in order, each picture captioned with its step.
    first, last = "Your image in grayscale", "Centred in 28x28 by its centre of mass"
    assert captions.index(first) < captions.index("Lighting evened out") < captions.index(last)
    assert captions.count("input x") == 1
    assert at.selectbox(key="rt_up_label") is not None  # the conditional VAE asks for the label


def test_a_file_that_is_not_an_image_gets_one_sentence(lab_home):
    at = _open("mlp_vae")
    at.segmented_control(key="rt_mode").set_value("Upload").run()
    at.file_uploader[0].set_value(("notes.png", b"not an image", "image/png")).run()
    assert not at.exception
    assert len(at.error) == 1 and "image" in at.error[0].value.lower()
    assert "Traceback" not in at.error[0].value


# ---------------------------------------------------------------- settings kept, words that match
def test_k_seed_and_the_keras_switch_survive_a_visit_to_another_page(lab_home):
    at = _open("mlp_vae", idx="4")
    at.slider(key="rt_k").set_value(3)
    at.number_input(key="rt_seed").set_value(7)
    at.toggle(key="rt_always").set_value(True).run()
    _ok(at)
    at.switch_page("app_pages/generate.py").run()
    at.switch_page("app_pages/round_trip.py").run()
    _ok(at)
    assert at.slider(key="rt_k").value == 3 and at.number_input(key="rt_seed").value == 7
    assert at.toggle(key="rt_always").value is True
    assert sum(c.startswith("z") and ": 0." in c for c in _captions(at)) == 3  # K = 3 drawn
    assert any("call 2" in c for c in _captions(at))  # the Keras-example columns
    assert (at.query_params["k"], at.query_params["seed"], at.query_params["always"]) == (
        "3",
        "7",
        "1",
    )
    again = _open("mlp_vae", idx="4", k="3", seed="7", always="1")  # a copied link
    assert again.toggle(key="rt_always").value is True


def test_the_conditional_vaes_words_match_its_diagram(lab_home):
    at = _open_wiring(_open("cvae"))
    words = " ".join(m.value for m in at.markdown)
    dot = at.get("graphviz_chart")[0].proto.spec
    wiring = "decoder([encoder([x, label])[2], label])"
    assert wiring in words and wiring in dot
    assert "`decoder(encoder(x)[2])`" not in words
    assert "vae([x, label])` = `decoder([encoder([x, label])[2], label])`" in words
    assert 'label="encoder([x, label])[2]"' in dot


def test_the_keras_examples_names_and_the_wiring_beside_vae_x(lab_home):
    at = _open_wiring(_open("mlp_vae"))
    words = " ".join(m.value for m in at.markdown)
    assert "`latent_inputs`" in words and "`z_sampling`" in words  # = decoder_input here
    assert "latent_inputs / z_sampling" in at.get("graphviz_chart")[0].proto.spec
    assert "`vae(x)` = `decoder(encoder(x)[2])`" in words


def test_the_daes_long_latent_vector_is_a_bar_chart_and_summaries_fit(lab_home):
    at = _open_wiring(_open("conv_dae", idx="3"))  # the shipped blind DAE: 128 latent numbers
    assert _bars(at, 0).shape == (128,)
    texts = [c.value for c in at.code]
    assert not any("e+0" in t or "e-0" in t for t in texts)  # no scientific notation
    summaries = [t for t in texts if t.startswith("Model: ")]
    assert len(summaries) == 3
    for text in summaries:  # every table row whole: up to its right border, the last column too
        rows = [line for line in text.splitlines() if line[:1] in "┏┃┡│├└"]
        assert rows and all(line[-1] in "┓┃┩│┤┘" for line in rows), text
        assert "Param #" in text and "Total params" in text


def test_downloads_say_what_they_hold(lab_home, monkeypatch):
    files = record_downloads(monkeypatch)
    at = _open("mlp_vae", idx="3,17,42", seed="5")
    assert files.keys() >= {
        "vae_lab-round_trip-digits-mlp_vae-seed5.png",
        "vae_lab-round_trip-latent_codes-mlp_vae.csv",
    }
    grid = np.asarray(Image.open(io.BytesIO(files["vae_lab-round_trip-digits-mlp_vae-seed5.png"])))
    # Three rows (input, decoder(z_mean), vae(x, training=True)) of three digits, scaled twice.
    assert grid.shape == (2 * (3 * 30 + 2), 2 * (3 * 30 + 2))
    rows = files["vae_lab-round_trip-latent_codes-mlp_vae.csv"].decode().splitlines()
    assert rows[0] == "digit,label,z_mean[0],z_mean[1],sigma[0],sigma[1]"
    assert [r.split(",")[0] for r in rows[1:]] == ["#3", "#17", "#42"]
    assert np.allclose([float(v) for v in rows[1].split(",")[2:4]], _bars(at, 0), atol=1e-4)


# ---------------------------------------------------------------- two models side by side
def test_a_second_model_shows_the_same_digits_side_by_side(lab_home, monkeypatch):
    files = record_downloads(monkeypatch)
    at = _open("mlp_vae", idx="3,17")
    assert not any("conv" in m.value and "mean error" in m.value for m in at.markdown)
    options = at.selectbox(key="rt_vs").options
    assert options[0] == "no comparison" and any(o.startswith("conv_vae — ") for o in options)
    at.selectbox(key="rt_vs").set_value("conv_vae").run()
    _ok(at)
    assert at.query_params["vs"] == "conv_vae"
    # Markdown as the browser shows it: no escapes, no invisible break opportunities.
    shown = [m.value.replace("\\", "").replace("\u200b", "") for m in at.markdown]
    heads = [t for t in shown if t.startswith(("**mlp_vae**", "**conv_vae**"))]
    assert [h.split("**")[1] for h in heads] == ["mlp_vae", "conv_vae"]
    assert all(re.search(r"mean error \d\.\d{4}", h) for h in heads)
    # Both rows hold a picture of each digit, captioned with its error.
    errors = [c for c in _captions(at) if re.fullmatch(r"0\.\d{4}", c)]
    assert len(errors) == 2 * 2
    assert "vae_lab-round_trip-vs_conv_vae-mlp_vae.png" in files
    at.selectbox(key="rt_vs").set_value("(none)").run()
    assert "vs" not in at.query_params


def test_comparing_with_the_conditional_vae_needs_labelled_digits(lab_home):
    at = _open("mlp_vae")
    at.segmented_control(key="rt_mode").set_value("Upload").run()
    at.file_uploader[0].set_value(("seven.png", _seven_png(), "image/png")).run()
    at.selectbox(key="rt_vs").set_value("cvae").run()
    _ok(at)
    assert any("must be told which digit" in i.value for i in at.info)


def test_the_elbo_is_shown_as_a_bound_that_more_samples_rise_above(lab_home):
    at = _open(model="mlp_vae")

    def estimate(k: int) -> tuple[float, float]:
        text = next(c.value for c in at.caption if "lower bound" in c.value)
        assert f"K = {k} samples" in text
        elbo, at_k = (float(v) for v in re.findall(r"(-?\d+\.\d) nats", text)[:2])
        return elbo, at_k

    assert (
        at.segmented_control(key="rt_bound_k").value == 100
    )  # 1,000 only when asked: it costs 10x
    elbo, hundred = estimate(100)
    assert hundred > elbo  # importance sampling climbs above the bound
    at.segmented_control(key="rt_bound_k").set_value(1000).run()
    _ok(at)
    elbo_again, many = estimate(1000)
    assert elbo_again == elbo and many > hundred
    at.segmented_control(key="rt_bound_k").set_value(1).run()
    _ok(at)
    elbo_again, one = estimate(1)
    assert elbo_again == elbo and one < hundred
    assert any(c.key == "rt_bound" for c in at.get("plotly_chart"))
    # The browser can bring the control back without a value (after an empty drawing pad hid it):
    # the section falls back to K = 100 instead of failing.
    at.session_state["rt_bound_k"] = None
    at.run()
    _ok(at)
    assert estimate(100)[1] == hundred
    # A denoising autoencoder has no likelihood: no such section.
    dae = _open(model="conv_dae")
    assert not any("lower bound" in c.value for c in dae.caption)


def test_sampling_wider_makes_the_samples_differ_visibly(lab_home):
    # A well-trained encoder is so sure that its samples decode nearly alike: "Sample wider" draws
    # them further out and says so, and the samples spread further apart.
    at = _open("mlp_vae", idx="3,17", k="6", seed="5")

    def spreads() -> list[float]:  # "spread: std up to 0.123" under each digit's samples
        said = [c for c in _captions(at) if c.startswith("spread: std up to")]
        return [float(c.rsplit(" ", 1)[1]) for c in said]

    narrow = spreads()
    assert len(narrow) == 2
    assert all("wider than the model draws" not in c.value for c in at.caption)
    at.select_slider(key="rt_widen").set_value(5).run()
    assert not at.exception
    wide = spreads()
    assert all(w > n for w, n in zip(wide, narrow, strict=True)), (narrow, wide)
    assert any("5 × sigma, wider than the model draws" in c.value for c in at.caption)
    assert at.query_params["widen"] == "5"
