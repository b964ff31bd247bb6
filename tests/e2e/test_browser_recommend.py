"""The Recommend page in a real browser: pick movies by typing their titles, watch the list change,
switch to sampled z, find your star on the users' map. A screenshot lands in tests/screenshots/."""

from __future__ import annotations

import shutil
from urllib.parse import parse_qs, urlparse

import browser_ui as ui
import pytest

MODEL = "e2e_mult_vae"


@pytest.fixture(scope="module")
def with_recommender(app_server, recommender_home):
    """The session's server with the small Mult-VAE in its store (the store is read on every run)."""
    for suffix in (".keras", ".json"):
        shutil.copyfile(recommender_home / "models" / f"mult_vae{suffix}",
                        app_server.home / "models" / f"{MODEL}{suffix}")  # fmt: skip
    return app_server


def _table(page, n: int = 0):
    return ui.main(page).locator('[data-testid="stDataFrame"]').nth(n)


def _titles(page, n: int = 0) -> list[str]:
    """The title column (the second cell of each row) of the n-th table, as the grid shows it."""
    rows = _table(page, n).locator('[role="row"]')
    return [
        row.locator('[role="gridcell"]').nth(1).inner_text().strip()
        for row in rows.all()[1:]  # the first row is the header
    ]


def _pick(page, typed: str, title: str) -> None:
    """Type part of a title into the picker and choose the movie, as a person would."""
    box = ui.main(page).locator('[data-testid="stMultiSelect"]').get_by_role("combobox")
    box.click()
    box.fill(typed)
    page.get_by_role("option", name=title, exact=True).click()
    page.keyboard.press("Escape")
    ui.settle(page)


def _params(page) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}


def test_pick_movies_by_title_then_sample_z(server, with_recommender, page):
    ui.open_page(page, server, "recommend", "Recommend", model=MODEL)
    body = ui.main(page)
    assert body.get_by_text("Pick at least one movie you like").is_visible()

    _pick(page, "toy story", "Toy Story (1995)")
    first = ui.wait_until(lambda: _titles(page), 60, "a list appeared after the first pick")
    assert len(first) == 10 and "Toy Story" not in first
    assert _params(page)["picks"] == "1"

    _pick(page, "matrix", "Matrix, The (1999)")
    second = ui.wait_until(
        lambda: (t := _titles(page)) != first and t, 60, "the list changed after the second pick"
    )
    assert "Toy Story" not in second and "Matrix, The" not in second
    assert _params(page)["picks"] == "1,2571"
    # Your star on the users' map (its legend entry and its label).
    chart = body.locator('[data-testid="stPlotlyChart"]').last
    assert chart.get_by_text("your picks").count() >= 1

    body.get_by_text("sampling z", exact=True).click()
    ui.settle(page)
    body.get_by_text("20 sampled z: how stable is the top 10?").wait_for()
    # The z = z_mean list beside the samples is the same list (its titles keep their year).
    assert [t.rsplit(" (", 1)[0] for t in _titles(page, 0)] == second[:10]
    assert len(_table(page, 1).locator('[role="row"]').all()) > 10  # more movies than places
    assert body.get_by_text("Why the paper predicts with the mean").is_visible()
    assert _params(page)["z"] == "sample" and _params(page)["seed"] == "0"
    ui.assert_clean(page)
    assert not page.js_errors, page.js_errors
    page.set_viewport_size({"width": 1400, "height": 3000})  # the page scrolls inside the app
    ui.settle(page)
    ui.shot(page, "recommend_sampling")


def test_enter_adds_the_best_match_only(server, with_recommender, page):
    ui.open_page(page, server, "recommend", "Recommend", model=MODEL)
    box = ui.main(page).locator('[data-testid="stMultiSelect"]').get_by_role("combobox")
    for typed, picks in (("star wars", 1), ("matrix", 2)):
        box.click()
        box.fill(typed)
        page.keyboard.press("Enter")
        page.keyboard.press("Escape")
        ui.settle(page)
        chosen = ui.wait_until(
            lambda n=picks: (p := _params(page).get("picks", "").split(",")) and len(p) >= n and p,
            30,
            f"{picks} pick(s) in the address",
        )
        assert len(chosen) == picks, chosen  # one movie per Enter, not every match
    shown = ui.main(page).locator('[data-testid="stMultiSelect"]').inner_text()
    assert "Star Wars" in shown and "Matrix" in shown, shown


def test_a_link_to_a_digit_model_opens_a_recommender_and_picks_survive_other_pages(
    server, with_recommender, page
):
    ui.open_page(page, server, "recommend", "Recommend", model="e2e_mlp_vae")
    body = ui.main(page)
    assert body.locator('[data-testid="stMultiSelect"]').is_visible()
    # No dead end: the page opens on a recommender, and the sidebar says where the link's model is.
    assert ui.sidebar(page).get_by_text("which this page cannot show").is_visible()
    assert ui.sidebar(page).get_by_role("link", name="Generate").count() == 2  # nav, and the note
    name = ui.active_model(page)
    assert name in ("rec_vae_ml_latest_small", MODEL)  # the shipped one: the page's best
    assert "e2e_mlp_vae" not in " ".join(ui.model_list(page))  # only recommenders are listed
    _pick(page, "heat", "Heat (1995)")
    assert _params(page)["model"] == name and _params(page)["picks"] == "6"
    ui.sidebar(page).get_by_role("link", name="Train").click()
    ui.settle(page)
    assert "picks" not in _params(page)  # another page's address
    ui.sidebar(page).get_by_role("link", name="Recommend").click()
    ui.settle(page)
    assert body.locator('[data-testid="stMultiSelect"]').get_by_text("Heat (1995)").is_visible()
    assert _params(page)["picks"] == "6"
    ui.assert_clean(page)
