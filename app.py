"""VAE Lab: the entrypoint. Declares the pages and the sidebar (each page's own model)."""

import streamlit as st

from app_pages import shared

st.set_page_config(page_title="VAE Lab", page_icon=":material/draw:", layout="wide")

HOME = "round_trip"  # the page at the app's root address
ROUND_TRIP = st.Page(
    "app_pages/round_trip.py",
    title="Round trip",
    icon=":material/sync_alt:",
    url_path="home",  # Streamlit serves it at the root; HOME, as an address, is _to_home below
    default=True,
)
PAGES = [
    st.Page(
        "app_pages/train.py", title="Train", icon=":material/model_training:", url_path="train"
    ),
    ROUND_TRIP,
    st.Page(
        "app_pages/denoise.py", title="Denoise", icon=":material/auto_fix_high:", url_path="denoise"
    ),
    st.Page(
        "app_pages/generate.py",
        title="Generate",
        icon=":material/auto_awesome:",
        url_path="generate",
    ),
    st.Page(
        "app_pages/recommend.py",
        title="Recommend",
        icon=":material/movie:",
        url_path="recommend",
    ),
    st.Page(
        "app_pages/words.py",
        title="Glossary",
        icon=":material/menu_book:",
        url_path="glossary",
    ),
]


def _to_home() -> None:
    """/round_trip typed or kept from a link: on to the root, the link's parameters kept, instead
    of Streamlit's "Page not found" (the default page has no address of its own)."""
    st.switch_page(ROUND_TRIP, query_params=st.query_params.to_dict())


OLD_HOME = st.Page(_to_home, title="Round trip", url_path=HOME, visibility="hidden")

page = st.navigation([*PAGES, OLD_HOME])
if page is not OLD_HOME:
    # Each page's sidebar lists the models that page can show (the home page's url_path reads "").
    shared.render_sidebar(page.url_path or HOME)
page.run()
