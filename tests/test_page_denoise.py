"""The Denoise page, driven through AppTest: test digits and uploads, noise, scores, download."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from PIL import Image, ImageDraw
from streamlit.testing.v1 import AppTest

from tests.apptest import open_app, record_downloads
from vae_core import explore
from vae_core.errors import UserError


def _open() -> AppTest:
    return open_app("app_pages/denoise.py")


def _psnr(at: AppTest, label_start: str) -> float:
    """The mean PSNR shown in the metric whose label starts with `label_start`."""
    metric = next(m for m in at.metric if m.label.startswith(label_start))
    return float(re.match(r"([-\d.]+) dB", metric.value).group(1))


def _seven_png(size=(90, 120)) -> bytes:
    img = Image.new("L", size, 255)
    draw = ImageDraw.Draw(img)
    w, h = size
    draw.line([(w * 0.2, h * 0.2), (w * 0.8, h * 0.2), (w * 0.45, h * 0.85)], fill=20, width=9)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _images_shown(at: AppTest) -> int:
    return sum(len(im.value) for im in at.image)


def test_without_a_dae_it_says_how_to_get_one(empty_lab_home):
    at = _open()
    info = " ".join(i.value for i in at.info)
    assert "no denoising autoencoder" in info.lower() and "Train" in info
    # The noisy digits still show, with a plain word that no model was chosen.
    assert any("No model is chosen" in w.value for w in at.warning)
    assert _images_shown(at) >= 2 * 8  # noisy + clean rows of the default 8 test digits
    assert not at.error


def test_test_digits_get_denoised_and_scored(lab_home):
    at = _open()
    assert at.sidebar.radio(key="sb_model_denoise").value == "conv_dae"
    labels = [m.label for m in at.metric]
    assert any(lab.startswith("Denoised by the DAE") for lab in labels)
    assert any(lab.startswith("Redrawn by the VAE") for lab in labels)
    noisy, dae = _psnr(at, "Noisy input"), _psnr(at, "Denoised by the DAE")
    assert 0 < noisy < 60 and 0 < dae < 60
    # Rows: noisy, DAE, VAE, VAE after DAE, clean -> 5 x 8 digits (the download: the same grid).
    assert _images_shown(at) == 5 * 8
    captions = [c for im in at.image for c in im.captions]
    assert sum(bool(re.search(r"\d+\.\d dB · \d\.\d\d", c)) for c in captions) == 4 * 8
    assert at.get("download_button")
    assert not at.error and not at.exception


def test_changing_the_noise_strength_changes_the_scores(lab_home):
    at = _open()
    at.selectbox(key="dn_kind").set_value("gaussian").run()
    at.slider(key="dn_strength").set_value(0.1).run()
    weak_noisy, weak_dae = _psnr(at, "Noisy input"), _psnr(at, "Denoised by the DAE")
    at.slider(key="dn_strength").set_value(0.7).run()
    strong_noisy, strong_dae = _psnr(at, "Noisy input"), _psnr(at, "Denoised by the DAE")
    assert strong_noisy < weak_noisy - 3  # much stronger speckle is visibly worse
    assert strong_dae != weak_dae
    assert not at.exception


def test_an_uploaded_digit_is_preprocessed_noised_and_scored(lab_home):
    at = _open()
    at.radio(key="dn_input").set_value("My own images").run()
    at.file_uploader(key="dn_files").set_value(("seven.png", _seven_png(), "image/png")).run()
    assert not at.exception and not at.error
    # The preprocessing strip is shown with its captions.
    strip = [im for im in at.image if len(im.value) > 1]
    assert strip and any("28x28" in c for c in strip[0].captions)
    # Noise is added only when asked: then the preprocessed digit is the clean reference, scored.
    at.toggle(key="dn_add_noise").set_value(True).run()
    assert _psnr(at, "Denoised by the DAE") > 0


def test_own_digits_go_to_the_models_as_they_are_by_default(lab_home):
    """Uploads, drawings and camera shots are real input: no grey fog unless asked for."""
    at = _open()
    at.radio(key="dn_input").set_value("My own images").run()
    at.file_uploader(key="dn_files").set_value(("seven.png", _seven_png(), "image/png")).run()
    assert not at.exception and not at.error
    assert at.toggle(key="dn_add_noise").value is False
    assert at.selectbox(key="dn_kind").disabled
    assert not at.metric
    assert any("no clean original" in i.value for i in at.info)
    assert "No noise is added" in " ".join(c.value for c in at.caption)
    labels = " ".join(m.value for m in at.markdown)
    assert "Your digits, as they are" in labels and "Noisy input" not in labels


def test_a_file_that_is_not_an_image_gets_one_sentence(lab_home):
    at = _open()
    at.radio(key="dn_input").set_value("My own images").run()
    at.file_uploader(key="dn_files").set_value(
        [
            ("notes.png", b"this is not a picture", "image/png"),
            ("seven.png", _seven_png(), "image/png"),
        ]
    ).run()
    assert not at.exception
    assert any("notes.png" in e.value and "not an image" in e.value for e in at.error)
    at.toggle(key="dn_add_noise").set_value(True).run()
    assert _psnr(at, "Denoised by the DAE") > 0  # the good file is still processed


def test_denoise_report_scores_against_clean_or_not_at_all(lab_home):
    from vae_core.store import default_store

    dae = default_store().load("conv_dae")
    rng = np.random.default_rng(0)
    clean = rng.random((3, 28, 28)).astype(np.float32)
    noisy = np.clip(clean + rng.normal(0, 0.3, clean.shape), 0, 1).astype(np.float32)
    report = explore.denoise_report({"DAE": dae}, noisy, clean)
    assert report.outputs["DAE"].shape == (3, 28, 28)
    assert set(report.psnr) == {"noisy", "DAE"} and report.ssim["DAE"].shape == (3,)
    assert report.psnr["noisy"][0] == pytest.approx(
        10 * np.log10(1 / np.mean((clean[0] - noisy[0]) ** 2)), rel=1e-4
    )
    unscored = explore.denoise_report({"DAE": dae}, noisy)
    assert (
        unscored.clean is None
        and unscored.psnr == {}
        and unscored.outputs["DAE"].shape == (3, 28, 28)
    )
    cvae = default_store().load("cvae")
    with pytest.raises(UserError, match="label"):
        explore.denoise_report({"VAE": cvae}, noisy, clean)


# --- which noise the denoiser learned; the VAE's lesson; the DAE's wiring ----------------------


def _page_links(at: AppTest) -> list:
    return [el.proto for el in at.get("page_link")]


@pytest.fixture
def dae_store(empty_lab_home, trained_home):
    """A store with a fog-only denoiser, one whose file predates noise metadata, and a VAE."""
    from vae_core.store import Store

    small = Store(trained_home / "models", shipped_root=None)
    store = Store(empty_lab_home / "models", shipped_root=None)
    dae = small.load("conv_dae")
    store.save("fog_dae", dae, {"train": {"noise": "keras", "noise_strength": 0.5}})
    store.save("old_dae", dae, {"dataset": "mnist"})
    store.save("mlp_vae", small.load("mlp_vae"), {"dataset": "sample"})
    return store


def test_the_shipped_denoiser_says_it_learned_every_noise_and_is_never_warned(lab_home):
    at = _open()
    learned = " ".join(c.value for c in at.caption)
    assert "Learned to remove the grey fog, Gaussian speckle, salt & pepper and dropped pixels" in (
        learned
    )
    assert "leave clean digits alone" in learned
    for kind in ("keras", "gaussian", "salt_pepper", "mask"):
        at.selectbox(key="dn_kind").set_value(kind).run()
        assert not any("never saw" in w.value for w in at.warning), kind
        assert not _page_links(at)
        # The blind denoiser beats its input on every kind the page offers.
        assert _psnr(at, "Denoised by the DAE") > _psnr(at, "Noisy input"), kind
    at.slider(key="dn_strength").set_value(0.9).run()
    assert any("only up to strength 0.6" in w.value for w in at.warning)


def test_a_noise_the_denoiser_never_saw_is_named_with_a_link_to_train_one(dae_store):
    at = _open()
    at.sidebar.radio(key="sb_model_denoise").set_value("fog_dae").run()
    assert any("grey fog of the Keras example, and nothing else" in c.value for c in at.caption)
    assert not any("never saw" in w.value for w in at.warning)  # the fog is what it knows
    at.selectbox(key="dn_kind").set_value("gaussian").run()
    at.slider(key="dn_strength").set_value(0.4).run()
    (warning,) = [w.value for w in at.warning if "never saw" in w.value]
    assert "never saw Gaussian speckle" in warning and warning.count(".") == 1  # one sentence
    (link,) = _page_links(at)
    assert link.page.endswith("train") and "Gaussian speckle" in link.label
    assert link.query_string == "kind=conv_dae&noise=gaussian&strength=0.4"
    assert not at.exception


def test_a_denoiser_without_noise_metadata_is_called_unknown(dae_store):
    at = _open()
    at.sidebar.radio(key="sb_model_denoise").set_value("old_dae").run()
    assert any("does not say which noise" in c.value for c in at.caption)
    assert not any("never saw" in w.value for w in at.warning)  # the fog: what old ones learned
    at.selectbox(key="dn_kind").set_value("mask").run()
    assert any("most likely never saw dropped pixels" in w.value for w in at.warning)
    assert "noise=mask" in _page_links(at)[0].query_string


def test_the_vae_row_reads_as_a_lesson_and_redraws_the_denoised_digits(dae_store):
    at = _open()
    assert at.selectbox(key="dn_vae").value == "mlp_vae"
    lesson = [c.value for c in at.caption if "never saw noise" in c.value]
    assert lesson and "redraws the nearest digit it knows" in lesson[0]
    # What it says of the row below is what the scores show, not a promise.
    closer = re.search(r"comes closer to the original on (\d+) of (\d+) digits", lesson[0])
    assert closer and int(closer[2]) == 8, lesson[0]
    labels = [m.label for m in at.metric]
    assert any(lab.startswith("The VAE, given the DAE's output") for lab in labels)
    assert _images_shown(at) == 5 * 8
    at.selectbox(key="dn_vae").set_value("(none)").run()
    assert not [c for c in at.caption if "never saw noise" in c.value]
    assert _images_shown(at) == 3 * 8  # noisy, DAE, clean


def test_the_dae_wiring_shows_the_decoder_input_is_the_latent_vector(lab_home):
    at = _open()
    (wiring,) = [e for e in at.expander if "How the denoiser is wired" in e.label]
    assert "latent vector, not the image" in wiring.label
    (chart,) = wiring.get("graphviz_chart")
    dot = chart.proto.spec
    assert "decoder_input" in dot and "latent_vector" in dot and "decoder(encoder(x))" in dot
    words = " ".join(m.value for m in wiring.markdown)
    assert "that vector, not the image" in words


def test_the_download_is_named_after_noise_model_and_seed(lab_home, monkeypatch):
    files = record_downloads(monkeypatch)
    at = _open()
    at.selectbox(key="dn_kind").set_value("gaussian").run()
    at.slider(key="dn_strength").set_value(0.4)
    at.number_input(key="dn_seed").set_value(3).run()
    assert "vae_lab-denoise-gaussian_0.40-conv_dae-seed3.png" in files
    grid = np.asarray(
        Image.open(io.BytesIO(files["vae_lab-denoise-gaussian_0.40-conv_dae-seed3.png"]))
    )
    assert grid.shape[1] == 4 * (8 * 30 + 2)  # a column per digit, scaled four times


def test_the_test_digits_come_from_the_same_source_picker_as_the_other_pages(lab_home, monkeypatch):
    from app_pages import digits

    monkeypatch.setattr(digits.data, "dataset_available", lambda name: False)
    at = _open()
    assert any("full MNIST test set is not on this computer" in c.value for c in at.caption)
    assert at.query_params.get("src") in ("sample", ["sample"])
