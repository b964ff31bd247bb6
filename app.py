"""VAE Lab: the entrypoint. Declares the pages and the sidebar (each page's own model)."""

import streamlit as st

from app_pages import shared

st.set_page_config(page_title="VAE Lab", page_icon=":material/draw:", layout="wide")

HOME = "round_trip"  # the page at the app's root address
PAGES = [
    st.Page(
        "app_pages/train.py", title="Train", icon=":material/model_training:", url_path="train"
    ),
    st.Page(
        "app_pages/round_trip.py",
        title="Round trip",
        icon=":material/sync_alt:",
        url_path=HOME,
        default=True,
    ),
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

page = st.navigation(PAGES)
# Each page's sidebar lists the models that page can show (the home page's url_path reads "").
shared.render_sidebar(page.url_path or HOME)
page.run()
