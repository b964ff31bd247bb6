"""VAE Lab: the entrypoint. Declares the pages and the shared sidebar (the active model)."""

import streamlit as st

from app_pages import shared

st.set_page_config(page_title="VAE Lab", page_icon="🔢", layout="wide")

PAGES = [
    st.Page("app_pages/train.py", title="Train", icon="🏋️", url_path="train"),
    st.Page(
        "app_pages/round_trip.py",
        title="Round trip",
        icon="🔁",
        url_path="round_trip",
        default=True,
    ),
    st.Page("app_pages/denoise.py", title="Denoise", icon="🧽", url_path="denoise"),
    st.Page("app_pages/generate.py", title="Generate", icon="✨", url_path="generate"),
]

page = st.navigation(PAGES)
shared.render_sidebar()
page.run()
