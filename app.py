"""VAE Lab: the entrypoint. Declares the pages and the shared sidebar (the active model)."""

import streamlit as st

from pages import shared

st.set_page_config(page_title="VAE Lab", page_icon="🔢", layout="wide")

PAGES = [
    st.Page("pages/train.py", title="Train", icon="🏋️", url_path="train"),
    st.Page(
        "pages/round_trip.py", title="Round trip", icon="🔁", url_path="round_trip", default=True
    ),
    st.Page("pages/denoise.py", title="Denoise", icon="🧽", url_path="denoise"),
    st.Page("pages/generate.py", title="Generate", icon="✨", url_path="generate"),
]

page = st.navigation(PAGES)
shared.render_sidebar()
page.run()
