"""A person's own digits on Round trip and Denoise (AppTest): a drawing on the pad, a camera photo, a
photo of a row of digits; bad input gets one sentence. (Real mouse strokes: tests/e2e.)"""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image, ImageDraw
from streamlit.testing.v1 import AppTest

from benchmarks import photos
from tests.apptest import open_app
from tests.hostile import encode
from vae_core.data import load_sample

pytestmark = pytest.mark.usefixtures("sample_only")


def _pad_state(*strokes: list[tuple[int, int]]) -> dict:
    """What the drawing pad sends after these strokes: its objects and its picture (white on black)."""
    img = Image.new("RGBA", (280, 280), (0, 0, 0, 255))
    draw = ImageDraw.Draw(img)
    for points in strokes:
        draw.line(points, fill=(255, 255, 255, 255), width=20, joint="curve")
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    objects = [{"type": "path", "points": len(p)} for p in strokes]
    return {"drawing": {"raw": {"objects": objects}, "data": url}}


ONE = [(150, 40), (135, 240)]
ZERO = [(140, 40), (80, 90), (75, 190), (140, 245), (200, 190), (205, 90), (140, 40)]


def _draw(at: AppTest, key: str, *strokes) -> AppTest:
    at.session_state[key] = _pad_state(*strokes)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _captions(at: AppTest) -> list[str]:
    return [c for im in at.image for c in im.captions]


def _plot(at: AppTest, key: str) -> dict:
    chart = next(e for e in at.get("plotly_chart") if e.proto.id.endswith(key))
    return json.loads(chart.proto.spec)


def _trace(at: AppTest, key: str, name: str) -> dict | None:
    return next((t for t in _plot(at, key)["data"] if t.get("name") == name), None)


def _xy(trace: dict) -> np.ndarray:
    def arr(v):
        if isinstance(v, dict):
            return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"])
        return np.asarray(v, dtype=float)

    return np.stack([arr(trace["x"]), arr(trace["y"])], axis=1)


def _sentences(at: AppTest) -> list[str]:
    return [e.value for e in (*at.error, *at.warning, *at.info)]


# ---------------------------------------------------------------- Round trip: the drawing pad
def test_a_drawing_goes_round_trip_and_its_marker_moves_with_each_stroke(lab_home):
    at = open_app(model="mlp_vae")
    at.segmented_control(key="rt_mode").set_value("Draw").run()
    # An empty pad: one sentence saying what to do, and no round trip yet.
    assert any("Draw a digit" in i.value for i in at.info)
    assert "input x" not in _captions(at) and not at.error

    _draw(at, "rt_pad_0", ONE)
    captions = _captions(at)
    for step in ("Lighting evened out", "Centred in 28x28 by its centre of mass"):
        assert step in captions  # the same to_mnist steps as a photo
    assert {"what the encoder sees", "decoder(z_mean)", "input x"} <= set(captions)
    first = _xy(_trace(at, "rt_live_map", "your digits"))
    assert _trace(at, "rt_live_map", "earlier") is None  # nothing drawn before

    _draw(at, "rt_pad_0", ONE, [(100, 60), (150, 40)])  # a second stroke: the flag of a 1
    moved = _xy(_trace(at, "rt_live_map", "your digits"))
    trail = _xy(_trace(at, "rt_live_map", "earlier"))
    assert not np.allclose(first, moved)
    np.testing.assert_allclose(trail, np.concatenate([first, moved]), rtol=1e-5)  # from, to
    # The big latent map further down shows the same star and the same trail.
    np.testing.assert_allclose(_xy(_trace(at, "rt_map", "earlier")), trail, rtol=1e-5)

    at.button(key="rt_pad_clear").click().run()  # a fresh pad, and the trail starts again
    assert any("Draw a digit" in i.value for i in at.info)
    _draw(at, "rt_pad_1", ZERO)
    assert _trace(at, "rt_live_map", "earlier") is None
    assert not at.error and not at.exception


def test_the_conditional_vae_redraws_the_drawing_as_every_digit(lab_home):
    at = open_app(model="cvae")
    at.segmented_control(key="rt_mode").set_value("Draw").run()
    _draw(at, "rt_pad_0", ZERO)
    at.selectbox(key="rt_up_label").set_value(0).run()
    captions = _captions(at)
    assert [c for c in captions if c.startswith("as a ")] == [f"as a {j}" for j in range(10)]
    assert [c for c in captions if c in [str(j) for j in range(10)]] == [str(j) for j in range(10)]
    redrawn = [im for im in at.image if "as a 0" in im.captions][0]
    assert len(set(redrawn.value)) == 10  # ten different pictures, one per label
    assert not at.error and not at.exception


def test_an_almost_empty_drawing_gets_one_sentence(lab_home):
    at = open_app(model="mlp_vae")
    at.segmented_control(key="rt_mode").set_value("Draw").run()
    at.session_state["rt_pad_0"] = {
        "drawing": {"raw": {"objects": [{"type": "path"}]}, "data": _pad_state()["drawing"]["data"]}
    }
    at.run()
    assert not at.exception
    assert len(_sentences(at)) == 1 and "almost empty" in _sentences(at)[0]
    assert "input x" not in _captions(at)


# ---------------------------------------------------------------- Round trip: camera and rows
def _row_jpeg(count: int, seed: int = 0) -> bytes:
    x, _ = load_sample()
    rng = np.random.default_rng(seed)
    return photos.digit_row(x[rng.choice(len(x), count, replace=False)], rng)


def test_a_camera_photo_of_a_row_of_digits_goes_round_trip_digit_by_digit(lab_home):
    at = open_app(model="mlp_vae")
    at.segmented_control(key="rt_mode").set_value("Camera").run()
    assert not at.error and not _captions(at).count("input x")
    at.camera_input(key="rt_camera").set_value(("shot.jpg", _row_jpeg(3), "image/jpeg")).run()
    assert not at.exception and not at.error
    titles = [m.value for m in at.markdown if m.value.startswith("**Digit")]
    assert titles == [f"**Digit {i}** · the photo #{i}" for i in (1, 2, 3)]
    assert _captions(at).count("input x") == 3
    assert "Split into 3 digits, left to right" in _captions(at)


def test_a_camera_frame_without_a_digit_gets_one_sentence(lab_home):
    at = open_app(model="mlp_vae")
    at.segmented_control(key="rt_mode").set_value("Camera").run()
    rng = np.random.default_rng(0)
    room = np.clip(
        160 + 30 * np.linspace(-1, 1, 640)[None, :] + rng.normal(0, 4, (480, 640)), 0, 255
    )
    frame = encode(Image.fromarray(room.astype(np.uint8)).convert("RGB"), "JPEG", quality=80)
    at.camera_input(key="rt_camera").set_value(("shot.jpg", frame, "image/jpeg")).run()
    assert not at.exception
    assert len(_sentences(at)) == 1 and "No digit was found" in at.warning[0].value
    assert not _captions(at)


def test_thirty_marks_in_an_upload_get_one_sentence(lab_home):
    at = open_app(model="mlp_vae")
    at.segmented_control(key="rt_mode").set_value("Upload").run()
    marks = photos.noise_marks(30, np.random.default_rng(1))
    at.file_uploader(key="rt_upload").set_value(("scribbles.png", marks, "image/png")).run()
    assert not at.exception
    assert len(at.error) == 1 and "separate marks, more than the 12 digits" in at.error[0].value
    assert not at.warning and "input x" not in _captions(at)


def test_each_digit_of_a_row_gets_its_own_label_for_the_conditional_vae(lab_home):
    at = open_app(model="cvae")
    at.segmented_control(key="rt_mode").set_value("Upload").run()
    at.file_uploader(key="rt_upload").set_value(("date.jpg", _row_jpeg(2, 4), "image/jpeg")).run()
    at.selectbox(key="rt_up_label").set_value(3).run()
    at.selectbox(key="rt_up_label_1").set_value(8).run()
    assert not at.exception and not at.error
    titles = [m.value.replace("\u200b", "") for m in at.markdown if m.value.startswith("**Digit")]
    assert titles == [  # named after the file (it may wrap after the ".")
        "**Digit 1** · date.jpg #1 · written as a 3",
        "**Digit 2** · date.jpg #2 · written as a 8",
    ]


# ---------------------------------------------------------------- Denoise
def test_denoise_cleans_a_drawing_and_a_camera_photo(lab_home):
    at = open_app("app_pages/denoise.py", model="conv_dae")
    at.radio(key="dn_input").set_value("Draw").run()
    assert any("Draw a digit" in i.value for i in at.info)
    _draw(at, "dn_pad_0", ZERO)
    # A drawing is real input: denoised as it is, with nothing to score against ...
    assert not at.metric and any("Denoised by the DAE" in m.value for m in at.markdown)
    assert "your drawing" in _captions(at)
    at.toggle(key="dn_add_noise").set_value(True).run()  # ... until noise is asked for
    assert any(m.label.startswith("Denoised by the DAE") for m in at.metric)

    at.radio(key="dn_input").set_value("Camera").run()
    at.camera_input(key="dn_camera").set_value(("shot.jpg", _row_jpeg(4, 2), "image/jpeg")).run()
    assert not at.exception and not at.error
    assert [c for c in _captions(at) if c.startswith("the photo #")] == [
        f"the photo #{i}" for i in (1, 2, 3, 4)
    ]
    assert any(m.label.startswith("Denoised by the DAE") for m in at.metric)


def test_the_conditional_vae_reads_the_drawing_and_offers_its_reading(lab_home):
    # Bayes' rule over the ten labels: ten bars that sum to one, the picker set to the best one
    # until the person picks another, and a new drawing read afresh.
    at = open_app(model="cvae")
    at.segmented_control(key="rt_mode").set_value("Draw").run()
    _draw(at, "rt_pad_0", ZERO)
    assert not at.exception
    y = next(
        json.loads(e.proto.spec)["data"][0]["y"]
        for e in at.get("plotly_chart")
        if e.proto.id.endswith("rt_up_label_bars")
    )  # plotly sends a numpy array as {"dtype", "bdata": base64}
    bars = np.frombuffer(base64.b64decode(y["bdata"]), y["dtype"]) if isinstance(y, dict) else y
    assert len(bars) == 10 and abs(sum(bars) - 1) < 1e-6
    best = int(np.argmax(bars))
    assert at.selectbox(key="rt_up_label").value == best
    said = " ".join(c.value for c in at.caption)
    assert f"The model reads a **{best}**" in said and "Bayes' rule" in said
    other = (best + 1) % 10
    at.selectbox(key="rt_up_label").set_value(other).run()
    assert at.selectbox(key="rt_up_label").value == other  # the person's choice stays
