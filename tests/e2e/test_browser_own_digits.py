"""A person's own digits in real Chromium: mouse and finger strokes on the drawing pad, a photo from
Chromium's fake camera, a photo of a row of digits. What comes back is read by the small CNN trained
on MNIST (conftest.digit_reader), so "the right digit" means what a person would read there."""

from __future__ import annotations

import re

import browser_ui as ui
import fake_camera
import numpy as np
import pytest

from benchmarks import photos
from benchmarks.serve import CHROMIUM_ARGS
from vae_core.data import load_sample

MODEL = (
    "mlp_vae_2d"  # shipped, trained on the full MNIST: its round trip of a clear digit is legible
)
ONE = [[(150, 40), (138, 240)]]
ZERO = [
    [
        (140, 40),
        (90, 75),
        (75, 150),
        (95, 220),
        (145, 245),
        (192, 205),
        (205, 125),
        (180, 60),
        (140, 40),
    ]
]
SEVEN = [[(80, 50), (200, 50), (115, 240)]]


def _drawn_round_trip(page) -> tuple[np.ndarray, np.ndarray]:
    """What the encoder saw and decoder(z_mean), beside the pad, once the run after a stroke ends."""
    ui.settle(page)
    seen, back = (
        ui.image_by_caption(page, "what the encoder sees"),
        ui.image_by_caption(page, "decoder(z_mean)"),
    )
    back.first.wait_for(timeout=ui.STEP_MS)
    return ui.digit_pixels(page, seen.first), ui.digit_pixels(page, back.first)


def test_a_drawn_1_and_a_drawn_0_come_back_as_a_1_and_a_0(server, page, digit_reader):
    ui.open_page(page, server, "", "Round trip", model=MODEL)
    ui.choose_mode(page, "Draw")
    body = ui.main(page)
    assert "Draw a digit on the black pad" in body.inner_text()
    pad = body.locator("canvas").first
    pad.scroll_into_view_if_needed()

    for stroke in ONE:
        ui.stroke(page, pad, stroke)
    seen, back = _drawn_round_trip(page)
    assert digit_reader.read(np.stack([seen, back])).tolist() == [1, 1]
    assert (
        body.locator('[data-testid="stPlotlyChart"]').count() >= 2
    )  # the live map and the big one
    ui.assert_clean(page)
    ui.shot(page, "round_trip_drawn_1")

    body.get_by_role("button", name="Clear the pad").click()
    ui.settle(page)
    assert "Draw a digit on the black pad" in body.inner_text()
    assert ui.image_by_caption(page, "decoder(z_mean)").count() == 0
    pad = body.locator("canvas").first
    for stroke in ZERO:
        ui.stroke(page, pad, stroke)
    seen, back = _drawn_round_trip(page)
    assert digit_reader.read(np.stack([seen, back])).tolist() == [0, 0]
    # The controls below were hidden while the pad was empty; they come back as they were.
    assert "k=6" in page.url and "seed=0" in page.url
    ui.assert_clean(page)
    ui.shot(page, "round_trip_drawn_0")


def test_a_finger_draws_on_the_pad_too(server, browser, digit_reader):
    context = browser.new_context(
        viewport={"width": 1100, "height": 1000}, has_touch=True, is_mobile=False
    )
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        ui.open_page(page, server, "", "Round trip", model=MODEL)
        ui.choose_mode(page, "Draw")
        pad = ui.main(page).locator("canvas").first
        pad.scroll_into_view_if_needed()
        for stroke in SEVEN:
            ui.touch_stroke(page, pad, stroke)
        seen, _ = _drawn_round_trip(page)
        assert digit_reader.read(seen[None]).tolist() == [7]
        ui.assert_clean(page)
    finally:
        context.close()


# ---------------------------------------------------------------- the camera
ROW = (3, 7)  # the digits on the sheet held up to the fake camera


@pytest.fixture(scope="module")
def camera_page(browser, chromium, tmp_path_factory):
    """A second Chromium whose camera plays a still video of a photo-like sheet with a 3 and a 7."""
    x, y = load_sample()
    picks = [int(np.flatnonzero(y == d)[0]) for d in ROW]
    sheet = photos.row_image(x[picks], np.random.default_rng(0))
    video = fake_camera.write_y4m(tmp_path_factory.mktemp("camera") / "sheet.y4m", sheet)
    # The same Playwright as the session's browser (a second one cannot start inside it).
    with_camera = browser.browser_type.launch(
        executable_path=chromium, headless=True, args=CHROMIUM_ARGS + fake_camera.flags(video)
    )
    page = with_camera.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.set_default_timeout(60_000)
    yield page
    with_camera.close()


def test_the_camera_photo_of_a_row_goes_round_trip(server, camera_page, digit_reader):
    page = camera_page
    ui.open_page(page, server, "", "Round trip", model=MODEL)
    ui.choose_mode(page, "Camera")
    body = ui.main(page)
    body.get_by_role("button", name=re.compile("Take photo", re.I)).click()
    body.get_by_text("Split into 2 digits, left to right").wait_for(timeout=ui.STEP_MS)
    ui.settle(page)
    ui.assert_clean(page)
    centred = ui.image_by_caption(page, "Centred in 28x28 by its centre of mass")
    assert centred.count() == 2
    read = digit_reader.read(np.stack([ui.digit_pixels(page, centred.nth(i)) for i in range(2)]))
    assert tuple(read.tolist()) == ROW
    titles = body.locator('[data-testid="stMarkdownContainer"]').filter(
        has_text=re.compile(r"^Digit \d")
    )
    assert [t.inner_text().split("·")[0].strip() for t in titles.all()] == ["Digit 1", "Digit 2"]
    ui.shot(page, "round_trip_camera")


# ---------------------------------------------------------------- a row of digits on Denoise
def test_a_photo_of_a_row_of_digits_is_denoised_digit_by_digit(server, page, digit_reader):
    x, y = load_sample()
    picks = np.random.default_rng(11).choice(len(x), 4, replace=False)
    row = photos.digit_row(x[picks], np.random.default_rng(11))
    ui.open_page(page, server, "denoise", "Denoise", model="e2e_conv_dae")
    ui.main(page).get_by_text("My own images").click()
    ui.settle(page)
    ui.upload(page, [("row.jpg", row, "image/jpeg")])
    body = ui.main(page)
    body.get_by_text("Denoised by the DAE").first.wait_for(timeout=ui.STEP_MS)
    ui.settle(page)
    ui.assert_clean(page)
    assert not ui.errors(page)
    centred = ui.image_by_caption(page, "Centred in 28x28 by its centre of mass")
    assert centred.count() == 4
    read = digit_reader.read(np.stack([ui.digit_pixels(page, centred.nth(i)) for i in range(4)]))
    assert read.tolist() == y[picks].tolist()
    # Each digit is its own column of the comparison, named after the photo and its place.
    for i in range(1, 5):
        assert ui.image_by_caption(page, f"row.jpg #{i}").count() == 1
    ui.shot(page, "denoise_row_of_digits")


# ---------------------------------------------------------------- pointing at the digit
def test_a_click_on_the_photo_takes_the_digit_the_lab_left_out(server, page, digit_reader):
    """A large 8 doodled beside a small 3: the lab takes the 8 (the 3 looks like a dot beside it),
    says it is unsure, and a click on the 3 in the photo makes the 3 the digit that goes round."""
    x, y = load_sample()
    big, small = (int(np.flatnonzero(y == d)[0]) for d in (8, 3))
    data, (fx, fy) = photos.big_and_small(x[big], x[small], np.random.default_rng(0))
    ui.open_page(page, server, "", "Round trip", model=MODEL)
    ui.choose_mode(page, "Upload")
    ui.upload(page, [("big_and_small.jpg", data, "image/jpeg")])
    body = ui.main(page)
    body.get_by_text("not sure it took the right mark").wait_for(timeout=ui.STEP_MS)
    ui.settle(page)
    centred = ui.image_by_caption(page, "Centred in 28x28 by its centre of mass")
    assert digit_reader.read(ui.digit_pixels(page, centred.first)[None]).tolist() == [8]

    frame = page.frame_locator('iframe[title*="streamlit_image_coordinates"]')
    photo = frame.locator("img")
    photo.wait_for(timeout=ui.STEP_MS)
    box = photo.bounding_box()
    photo.click(position={"x": fx * box["width"], "y": fy * box["height"]})
    body.get_by_text("The mark you clicked, made MNIST-like").wait_for(timeout=ui.STEP_MS)
    ui.settle(page)
    ui.assert_clean(page)
    assert body.get_by_text("The mark you clicked was used.").count() == 1
    pointed = ui.digit_pixels(page, centred.last)
    seen = ui.digit_pixels(page, ui.image_by_caption(page, "input x").first)
    assert digit_reader.read(np.stack([pointed, seen])).tolist() == [3, 3]
    ui.shot(page, "round_trip_pointed")

    body.get_by_role("button", name="Let the lab choose again").click()
    ui.settle(page)
    assert body.get_by_text("The mark you clicked, made MNIST-like").count() == 0
    seen = ui.digit_pixels(page, ui.image_by_caption(page, "input x").first)
    assert digit_reader.read(seen[None]).tolist() == [8]
