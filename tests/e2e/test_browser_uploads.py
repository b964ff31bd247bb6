"""Uploads in a real browser: a photo of a digit gets denoised; hostile files each get one clear
sentence while the server keeps serving; a .keras with a Lambda layer is refused at import."""

from __future__ import annotations

import io
import re
import uuid
from pathlib import Path

import browser_ui as ui
import numpy as np
from PIL import Image

from benchmarks.latency import photo_bytes
from tests import hostile


def _photo_png() -> bytes:
    buf = io.BytesIO()
    Image.open(io.BytesIO(photo_bytes())).save(buf, format="PNG")
    return buf.getvalue()


def _uploader_mode(page, server, model: str) -> None:
    ui.open_page(page, server, "denoise", "Denoise", model=model)
    ui.main(page).get_by_text("My own images").click()
    ui.settle(page)


def test_a_png_photo_of_a_digit_is_denoised(server, page):
    _uploader_mode(page, server, "e2e_conv_dae")
    ui.upload(page, [("photo_of_a_7.png", _photo_png(), "image/png")])
    body = ui.main(page)
    body.get_by_text("was made MNIST-like").first.wait_for(timeout=ui.STEP_MS)
    body.get_by_text("Denoised by the DAE").first.wait_for(timeout=ui.STEP_MS)
    ui.settle(page)
    # A photo is real input: it goes to the models as it is, unless noise is asked for.
    assert body.get_by_text("no clean original to score against").count() == 1
    body.get_by_text("Add noise to my digits", exact=True).first.click()
    ui.settle(page)
    ui.assert_clean(page)
    assert not ui.errors(page)
    psnr = body.locator('[data-testid="stMetric"]').filter(has_text="Denoised by the DAE")
    assert re.search(r"\d+\.\d dB", psnr.first.inner_text())
    # The preprocessing steps and the comparison rows are pictures on the page.
    assert body.locator('[data-testid="stImage"] img').count() >= 8
    assert body.get_by_role("button", name=re.compile("Download this comparison")).is_visible()
    ui.shot(page, "denoise_photo")


def test_hostile_uploads_each_get_one_sentence_and_the_server_keeps_serving(server, page):
    token = uuid.uuid4().hex[:8]
    cases = hostile.uploads()
    picked = ["empty", "random_bytes", "html_as_png", "bomb", "animated_gif", "exif_rotated"]
    files = [(cases[c][0], cases[c][1], "image/png") for c in picked]
    files.append((f"../../{token}.png", hostile.encode(hostile.seven()), "image/png"))
    before = hostile.tree(server.home, server.user_home / ".streamlit")
    _uploader_mode(page, server, "e2e_conv_dae")
    ui.upload(page, files)
    body = ui.main(page)
    body.get_by_text("Denoised by the DAE").first.wait_for(timeout=ui.STEP_MS)
    ui.settle(page)
    ui.assert_clean(page)
    errors = ui.errors(page)
    for case in picked:
        name, _, want = cases[case]
        mine = [e for e in errors if name in e]
        if want.startswith("error"):
            assert len(mine) == 1 and want.split(":", 1)[1] in mine[0], (case, errors)
        else:
            assert not mine, (case, mine)
    assert len(errors) == 4, errors
    assert body.get_by_text("only the first one was used").count() == 1  # the animated GIF
    ui.shot(page, "denoise_hostile_uploads")

    # A file over the upload limit is stopped by Streamlit itself, with its own sentence.
    ui.upload(page, [("huge.png", cases["too_big_file"][1], "image/png")])
    body.get_by_text(re.compile(r"File must be 10(\.0)?MB or smaller")).wait_for()
    ui.assert_clean(page)

    # The server keeps serving: the next action works.
    assert server.healthy()
    body.get_by_text("Test digits").click()
    body.get_by_text("Clean original").first.wait_for(timeout=ui.STEP_MS)
    ui.settle(page)
    ui.assert_clean(page)
    # Nothing was written outside the app's folders (nor inside them, for an upload).
    assert hostile.tree(server.home, server.user_home / ".streamlit") == before
    for root in (Path("/tmp"), server.home.parent, Path(__file__).resolve().parents[2]):
        assert not list(root.glob(f"*{token}*")), root


def test_an_exif_rotated_photo_is_shown_upright(server, page):
    ui.open_page(page, server, "", "Round trip", model="e2e_mlp_vae")
    ui.main(page).locator('[data-testid="stButtonGroup"]').get_by_text("Upload", exact=True).click()
    ui.settle(page)
    ui.upload(page, [("rotated.jpg", hostile.exif_rotated_jpeg(), "image/jpeg")])
    body = ui.main(page)
    body.get_by_text(re.compile(r"was made MNIST-like")).wait_for(timeout=ui.STEP_MS)
    ui.settle(page)
    # The steps are one strip of squares; the first square shows the photo as it was read.
    strip = body.locator('[data-testid="stImage"] img').first
    png = page.request.get(strip.evaluate("img => img.src")).body()
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("L"))
    pad = 4  # the strip's 2-pixel padding, shown twice as large
    side = pixels.shape[0] - 2 * pad
    ink = np.argwhere(pixels[pad : pad + side, pad : pad + side] < 128)
    height, width = ink.max(axis=0) - ink.min(axis=0) + 1
    # The 7 (taller than wide when upright) is not lying on its side.
    assert height > 1.2 * width, (height, width)
    ui.assert_clean(page)
    ui.shot(page, "round_trip_exif_upload")


def test_importing_a_lambda_model_is_refused_in_the_sidebar(server, page, tmp_path):
    data = hostile.lambda_model(tmp_path)
    ui.open_page(page, server, "generate", "Generate", model="e2e_mlp_vae")
    side = ui.sidebar(page)
    side.get_by_text("Import or download a model").click()
    ui.upload(page, [("sneaky.keras", data, "application/octet-stream")], where=side)
    ui.settle(page)
    side.get_by_role("button", name="Import", exact=True).click()
    message = side.get_by_text(re.compile("Lambda layer"))
    message.wait_for(timeout=ui.STEP_MS)
    assert "refused" in message.inner_text()
    assert not (server.home / "models" / "sneaky.keras").exists()
    ui.settle(page)
    ui.assert_clean(page)
    ui.shot(page, "sidebar_import_refused")
    # The listing and the page still work.
    assert ui.active_model(page) == "e2e_mlp_vae"
    ui.main(page).get_by_role("button", name="New seed").click()
    ui.settle(page)
    ui.assert_clean(page)
