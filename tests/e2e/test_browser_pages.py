"""Every page in a real browser, and what a person does there: round-trip a digit, generate digits
and turn a latent dial. Screenshots land in tests/screenshots/."""

from __future__ import annotations

import re

import browser_ui as ui
import pytest

MODEL = "e2e_mlp_vae"
# Round trip is the default page, so its address is the root ("/"), not /round_trip.
PAGES = {
    "train": ("Train", ["New run", "The run", "Past runs"]),
    "": ("Round trip", ["How the three models are wired", "Encode, then decode"]),
    "denoise": ("Denoise", ["1. The digits", "2. The noise", "3. Cleaned up"]),
    "generate": ("Generate", ["New digits from the prior", "Turn the dials"]),
}
SIDEBAR_HEADINGS = {
    "train": "Your models",
    "": "Model to explore",
    "denoise": "Denoiser",
    "generate": "Model to draw with",
}


@pytest.mark.parametrize("path", list(PAGES), ids=[p or "round_trip" for p in PAGES])
def test_every_page_opens_and_shows_its_parts(server, page, path):
    heading, parts = PAGES[path]
    model = "e2e_conv_dae" if path == "denoise" else MODEL  # Denoise's own model: a denoiser
    ui.open_page(page, server, path, heading, model=model)
    for part in parts:
        assert ui.main(page).get_by_text(part, exact=False).first.is_visible(), part
    # The sidebar offers the page's own model picker, set to the model in the address.
    assert ui.sidebar(page).get_by_text(SIDEBAR_HEADINGS[path], exact=True).is_visible()
    assert ui.active_model(page) == model
    if path != "train":
        assert ui.main(page).locator('[data-testid="stImage"] img').count() >= 1
    else:
        assert ui.main(page).get_by_role("button", name=re.compile("Start training")).is_visible()
    ui.shot(page, f"page_{path or 'round_trip'}")
    assert not page.js_errors, page.js_errors


def test_the_home_pages_own_name_opens_it_with_the_link_kept(server, page):
    # Streamlit serves the default page at the root only: /round_trip was "Page not found".
    ui.open_page(page, server, "round_trip", "Round trip", model=MODEL)  # asserts no such dialog
    assert "/round_trip" not in page.url and f"model={MODEL}" in page.url
    assert ui.active_model(page) == MODEL
    assert ui.sidebar(page).inner_text().count("Round trip") == 1  # the nav lists it once
    assert not page.js_errors, page.js_errors


# Every option of the sidebar's model list, and each ancestor that would clip it: a box of its own
# (scrolling inside the sidebar) that is too short for what it holds. The sidebar's own scrolling
# is fine: a person scrolls the sidebar.
CLIPPED_OPTIONS_JS = """() => {
    const side = document.querySelector('[data-testid="stSidebarContent"]');
    const cut = [];
    for (const opt of side.querySelectorAll('[data-testid="stRadioOption"]')) {
        for (let el = opt.parentElement; el && el !== side; el = el.parentElement) {
            const y = getComputedStyle(el).overflowY;
            if ((y === 'auto' || y === 'scroll' || y === 'hidden')
                && el.scrollHeight > el.clientHeight + 1) { cut.push(opt.innerText.slice(0, 40)); break; }
        }
    }
    return {options: side.querySelectorAll('[data-testid="stRadioOption"]').length, cut};
}"""


def test_a_long_model_list_shows_every_description_whole(server, page):
    # The e2e store's small models beside the shipped ones (Train lists every model): well over
    # the six that once fitted.
    ui.open_page(page, server, "train", "Train", model=MODEL)
    found = page.evaluate(CLIPPED_OPTIONS_JS)
    assert found["options"] >= 7, found
    assert found["cut"] == [], found
    assert ui.layout_problems(page, '[data-testid="stSidebar"]')["cut"] == []


def test_round_trip_a_digit_and_shuffle_to_others(server, page):
    ui.open_page(page, server, "", "Round trip", model=MODEL)
    body = ui.main(page)
    # The bordered box of the first digit: the innermost block holding its title.
    digit1 = body.locator('[data-testid="stVerticalBlock"]').filter(
        has=page.get_by_text(re.compile(r"^Digit 1 ·"))
    )
    digit1.last.wait_for()
    assert body.get_by_text("input x").count() >= 1
    assert body.get_by_text(re.compile(r"decoder\(z_mean\): error \d\.\d{4}")).count() >= 1
    before_imgs = ui.image_srcs(digit1.last)
    before_text = digit1.last.inner_text()
    assert len(before_imgs) >= 4  # input, decoder(z_mean), vae.predict, vae(training=True), samples

    body.get_by_role("button", name="Shuffle").click()
    ui.wait_until(
        lambda: digit1.last.inner_text() != before_text, 90, "the first digit changed after Shuffle"
    )
    ui.settle(page)
    assert ui.image_srcs(digit1.last)[0] != before_imgs[0]  # another input digit is shown
    assert "idx=" in page.url  # the choice is kept in the address
    ui.assert_clean(page)
    ui.shot(page, "round_trip_shuffled")


def test_generate_new_digits_and_turn_a_dial(server, page):
    ui.open_page(page, server, "generate", "Generate", model=MODEL)
    body = ui.main(page)
    caption = body.get_by_text(re.compile(r"^\d+ digits, seed \d+, temperature"))
    first = caption.inner_text()
    prior = body.locator('[data-testid="stImage"]').filter(has_text="digits, seed")
    prior_src = ui.image_srcs(prior)[0]

    body.get_by_role("button", name="New seed").click()
    ui.wait_until(lambda: caption.inner_text() != first, 90, "the seed in the caption changed")
    ui.settle(page)
    assert ui.image_srcs(prior)[0] != prior_src  # new digits are drawn
    assert re.search(r"seed=\d+", page.url)

    dial = body.locator('[data-testid="stImage"]').filter(has_text="decoder(z)")
    dial_src = ui.image_srcs(dial)[0]
    z_text = body.get_by_text(re.compile(r"^z = \["))
    assert z_text.inner_text().startswith("z = [0., 0.]") or "0." in z_text.inner_text()
    ui.press_slider(page, "z[0]", "ArrowRight", 5)
    ui.wait_until(
        lambda: z_text.inner_text().startswith("z = [0.5"), 90, "z[0] reached 0.5 after 5 steps"
    )
    ui.settle(page)
    ui.wait_until(lambda: ui.image_srcs(dial)[0] != dial_src, 30, "the decoded digit changed")
    ui.assert_clean(page)
    ui.shot(page, "generate_dial_moved")


@pytest.mark.parametrize("mode", ["Mixed digits", "Draw"])
def test_round_trip_shows_the_digits_and_the_pad_in_the_first_screen(server, page, mode):
    """In a 1400x900 window the digits (or the drawing pad) are in view without scrolling; the
    wiring is one click away (issue 18, 4)."""
    page.set_viewport_size({"width": 1400, "height": 900})
    ui.open_page(page, server, "", "Round trip", model=MODEL)
    if mode != "Mixed digits":
        ui.choose_mode(page, mode)
    body = ui.main(page)
    first = (
        ui.image_by_caption(page, "input x").first
        if mode == "Mixed digits"
        else body.locator("canvas").first
    )
    first.wait_for(timeout=ui.STEP_MS)
    box = first.bounding_box()
    assert box is not None and box["y"] + box["height"] <= 900, (mode, box)
    wiring = body.get_by_text("How the three models are wired")
    assert wiring.is_visible()
    wiring.click()
    body.get_by_text("One model, or three?").wait_for(timeout=ui.STEP_MS)
    ui.shot(page, f"round_trip_first_screen_{mode.split()[0].lower()}")
