"""Each page picks its own model: its sidebar lists only the models that fit the page, it opens on the
best one for its job, keeps the choice across visits and in its URL, and no page is a dead end."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from app_pages import shared
from tests.apptest import open_app
from vae_core import kinds

FILES = {
    "train": "app_pages/train.py",
    "round_trip": "app_pages/round_trip.py",
    "denoise": "app_pages/denoise.py",
    "generate": "app_pages/generate.py",
    "recommend": "app_pages/recommend.py",
}
# What each page opens on in a lab with the shipped models (the best for its job, RESULTS.md).
BEST = {
    "round_trip": "conv_vae_32d",
    "generate": "conv_vae_32d",
    "denoise": "conv_dae",
    "recommend": "rec_vae_ml_latest_small",
}


def _visit(at: AppTest, page: str) -> AppTest:
    """Go to a page as the sidebar's navigation does: the new page's address starts bare."""
    for key in list(at.query_params):
        del at.query_params[key]
    at.switch_page(FILES[page]).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _listed(at: AppTest, page: str) -> list[str]:
    box = at.sidebar.radio(key=shared.picker_key(page))
    return [o.replace("\\", "").replace("\u200b", "").strip("*") for o in box.options]


def _kind(lab_home, name: str) -> str:
    return next(e.kind for e in shared.store().list() if e.name == name)


def _linked(at: AppTest) -> list[str]:
    """The pages the sidebar links to, by URL (Round trip, the home page, is ""), its glossary aside."""
    return [
        link.proto.page for link in at.sidebar.get("page_link") if link.proto.page != "glossary"
    ]


def test_each_page_lists_the_models_that_fit_it_and_opens_on_the_best(lab_home):
    at = open_app()
    everything = _listed(_visit(at, "train"), "train")
    assert {"rec_vae_ml_latest_small", "conv_dae", "mlp_vae_2d", "cvae_2d"} <= set(everything)
    for page, best in BEST.items():
        listed = _listed(_visit(at, page), page)
        fit = {k for k in kinds.for_page(page) if page != "denoise" or not kinds.get(k).variational}
        assert {_kind(lab_home, n) for n in listed} <= fit, page
        assert [n for n in everything if _kind(lab_home, n) in fit] == listed, page
        assert at.sidebar.radio(key=shared.picker_key(page)).value == best, page
        assert at.query_params["model"] == best, page
    # Round trip's comparison offers the digit models, never the recommender.
    _visit(at, "round_trip")
    compare = at.selectbox(key="rt_vs").options
    assert any(o.startswith("mlp_vae_2d") for o in compare)
    assert not any("_vae_ml_latest_small" in o for o in compare)


def _working(at: AppTest, page: str) -> None:
    """The page shows its work at once: no error, no sentence asking for another model."""
    assert not at.error, (page, [e.value for e in at.error])
    asks = [i.value for i in at.info if "cannot show" in i.value or "There is no" in i.value]
    assert not asks, (page, asks)
    if page == "recommend":
        assert at.multiselect(key="rec_picks")
    elif page != "train":
        assert at.image or at.get("plotly_chart"), page


@pytest.mark.parametrize(
    "order",
    [
        ("train", "round_trip", "denoise", "generate", "recommend"),
        ("recommend", "generate", "denoise", "train", "round_trip"),
    ],
)
def test_every_page_works_in_any_order_with_no_extra_click(lab_home, order):
    at = open_app(FILES[order[0]] if order[0] != "round_trip" else None)
    for page in order:
        _working(_visit(at, page), page)


def test_each_page_keeps_its_own_choice_across_visits(lab_home):
    at = _visit(open_app(), "round_trip")
    at.sidebar.radio(key=shared.picker_key("round_trip")).set_value("mlp_vae_2d").run()
    assert at.query_params["model"] == "mlp_vae_2d"
    _visit(at, "generate")  # its own best, not Round trip's choice
    assert at.sidebar.radio(key=shared.picker_key("generate")).value == "conv_vae_32d"
    at.sidebar.radio(key=shared.picker_key("generate")).set_value("cvae_2d").run()
    _visit(at, "recommend")
    _visit(at, "round_trip")
    assert at.sidebar.radio(key=shared.picker_key("round_trip")).value == "mlp_vae_2d"
    assert at.query_params["model"] == "mlp_vae_2d"  # a copied link opens it again
    _visit(at, "generate")
    assert at.sidebar.radio(key=shared.picker_key("generate")).value == "cvae_2d"


def test_a_link_opens_its_model_and_a_link_to_an_unfit_one_says_where_it_opens(lab_home):
    at = open_app(FILES["generate"], model="mlp_vae_2d")
    assert at.sidebar.radio(key=shared.picker_key("generate")).value == "mlp_vae_2d"
    assert not at.sidebar.info
    at = open_app(FILES["generate"], model="conv_dae")
    (note,) = at.sidebar.info
    assert note.value == (
        "The link asks for **conv_dae**, a Convolutional denoising autoencoder, which this page "
        "cannot show; it opens here:"
    )
    assert _linked(at) == ["", "denoise"]
    assert at.sidebar.radio(key=shared.picker_key("generate")).value == "conv_vae_32d"
    assert not at.error and at.get("plotly_chart")  # the page works with its own model
    at = open_app(model="no_such_model")  # on the home page, Round trip
    (note,) = at.sidebar.info
    assert note.value == "The link asks for **no_such_model**, which is not in this lab's store."


def test_importing_a_model_this_page_cannot_show_says_which_pages_can(own_store):
    data = (own_store / "conv_dae.keras").read_bytes()
    at = open_app(FILES["generate"])
    at.file_uploader(key="sb_import_files").set_value(
        [("denoiser.keras", data, "application/octet-stream")]
    )
    at.run()
    at.button(key="sb_import").click().run()
    (done,) = at.sidebar.success
    assert done.value == (
        "Imported **denoiser**, a Convolutional denoising autoencoder; this page cannot show "
        "it, these can:"
    )
    assert _linked(at) == ["", "denoise"]
    assert "denoiser" not in _listed(at, "generate")
    _visit(at, "denoise")
    assert "denoiser" in _listed(at, "denoise")


def test_the_glossary_page_shows_no_model_list(lab_home):
    at = open_app()
    at.switch_page("app_pages/words.py").run()
    assert not at.exception and not at.sidebar.radio
    assert at.title[0].value == "Glossary"
