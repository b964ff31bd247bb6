"""The Round trip page in a real browser, where AppTest cannot look: what the widgets show after an
upload, and whether every label, caption and file name fits whole (measured, not eyeballed)."""

from __future__ import annotations

import re

import browser_ui as ui

from tests import hostile

MODEL = "e2e_mlp_vae"
LONG_NAME = "my_very_long_photo_of_a_handwritten_seven_2024-11-21_scan.png"


def _k_shown(page) -> int:
    slider = ui.main(page).locator('[data-testid="stSlider"]').filter(has_text="Samples of z")
    return int(slider.locator("input").get_attribute("value"))


def _k_drawn(page) -> int:
    return ui.main(page).get_by_text(re.compile(r"^z\d+: \d\.\d{4}$")).count()


def _assert_fits(page, where: str) -> None:
    for root in ('[data-testid="stMainBlockContainer"]', '[data-testid="stSidebar"]'):
        problems = ui.layout_problems(page, root)
        assert problems == {"cut": [], "broken": [], "spill": []}, (where, root, problems)


def test_after_an_upload_k_shows_what_is_drawn_and_everything_fits(server, page):
    page.set_viewport_size({"width": 1280, "height": 1000})  # a laptop
    ui.open_page(page, server, "", "Round trip", model=MODEL)
    body = ui.main(page)
    assert _k_shown(page) == _k_drawn(page) // 5 == 6  # five digits, six samples each
    _assert_fits(page, "mixed digits")
    body.get_by_text("By label", exact=True).click()
    ui.settle(page)
    _assert_fits(page, "by label")  # the digits 0-9 and "Other examples" whole

    body.get_by_text("Upload", exact=True).click()
    ui.settle(page)
    ui.upload(page, [(LONG_NAME, hostile.encode(hostile.seven()), "image/png")])
    ui.wait_until(lambda: _k_drawn(page) > 0, 90, "the uploaded digit's samples appear")
    ui.settle(page)
    assert _k_shown(page) == _k_drawn(page) == 6  # the slider said 1 here before
    text = body.inner_text().replace("\u200b", "")
    assert f"How {LONG_NAME} was made MNIST-like" in text and f"· {LONG_NAME}" in text
    # The preprocessing steps are pictures inside their column (they wrap, never stick out).
    strip = page.evaluate("""() => {
        const col = [...document.querySelectorAll('[data-testid="stColumn"]')]
            .filter(c => c.innerText.includes('was made MNIST-like')).pop();
        const box = col.getBoundingClientRect();
        return [...col.querySelectorAll('img')].map(i => i.getBoundingClientRect())
            .map(r => [r.left >= box.left - 1 && r.right <= box.right + 1, Math.round(r.width),
                       Math.round(r.height)]);
    }""")
    assert len(strip) >= 4 and all(inside for inside, _, _ in strip), strip
    # Every step at the same size: a tall crop is not larger than the rest (issue 18, 7).
    assert len({(w, h) for _, w, h in strip}) == 1, strip
    _assert_fits(page, "upload")
    ui.assert_clean(page)
    ui.shot(page, "round_trip_upload_fits")


def test_the_daes_latent_vector_and_the_summaries_fit(server, page):
    page.set_viewport_size({"width": 1280, "height": 1000})
    ui.open_page(page, server, "", "Round trip", model="conv_dae", idx="3,2")  # shipped: 64 numbers
    body = ui.main(page)
    assert body.locator('[data-testid="stPlotlyChart"]').count() >= 2  # a bar chart per digit
    _assert_fits(page, "dae")
    body.get_by_text("How the three models are wired").click()  # closed: the digits come first
    for tab in ("encoder.summary()", "decoder.summary()", "dae.summary()"):
        body.get_by_role("tab", name=tab).click()
        code = body.locator('[data-testid="stCode"] pre:visible').filter(has_text="Param #")
        code.wait_for()
        # The whole table is in view: nothing hidden to the right of the box.
        assert code.evaluate("el => el.scrollWidth <= el.clientWidth + 1"), tab
    ui.shot(page, "round_trip_dae_fits")


def test_the_downloads_are_made_when_clicked(server, page):
    """The PNG and CSV are made only on a click (a rerun no longer encodes them): they still arrive."""
    ui.open_page(page, server, "", "Round trip", model=MODEL)
    body = ui.main(page)
    for label, head in (("These round trips (PNG)", b"\x89PNG"), ("latent codes (CSV)", b"digit")):
        button = body.get_by_role("button", name=re.compile(re.escape(label)))
        button.scroll_into_view_if_needed()
        with page.expect_download(timeout=ui.STEP_MS) as info:
            button.click()
        data = open(info.value.path(), "rb").read()
        assert data.startswith(head), (label, data[:40])
    ui.assert_clean(page)


def _bound_caption(page) -> tuple[float, int, float]:
    """(the ELBO, K, the log p(x) estimate) as the bound section's sentence states them."""
    said = ui.main(page).get_by_text(re.compile("the ELBO, what the VAE trains on")).inner_text()
    found = re.search(
        r"trains on, is (-?[\d.]+) nats; .* estimated with K = ([\d,]+) samples of z each, is "
        r"(-?[\d.]+) nats",
        said,
    )
    assert found, said
    return float(found[1]), int(found[2].replace(",", "")), float(found[3])


def test_raising_k_lifts_the_estimate_above_the_elbo(server, page):
    # Issue 17: the ELBO is a lower bound; with more samples of z the estimate of log p(x) climbs
    # above it, towards log p(x) (the same stream of draws, so a larger K extends the same curve).
    ui.open_page(page, server, "", "Round trip", model=MODEL)
    section = ui.main(page).get_by_text("How likely is each digit?")
    section.scroll_into_view_if_needed()
    seen = {}
    for k in ("1", "1000"):
        ui.main(page).locator('[data-testid="stButtonGroup"]').get_by_text(
            k, exact=True
        ).last.click()
        ui.settle(page)
        elbo, shown_k, estimate = ui.wait_until(
            lambda want=int(k): (c := _bound_caption(page))[1] == want and c,
            60,
            f"the sentence says K = {k}",
        )
        seen[shown_k] = (elbo, estimate)
    (elbo_1, at_1), (elbo_1000, at_1000) = seen[1], seen[1000]
    assert elbo_1 == elbo_1000  # the bound itself does not depend on K
    assert at_1000 > at_1 and at_1000 > elbo_1000, seen  # the estimate climbed above the ELBO
    ui.assert_clean(page)
    ui.shot(page, "round_trip_bound_k1000")
