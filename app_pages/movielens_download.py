"""GroupLens's download of a MovieLens release that is not here, as Keras offers MNIST's: the
licence first, then a progress bar. The zip lands in Keras's datasets folder, where the pages look."""

from __future__ import annotations

import streamlit as st

from vae_core.errors import DataError
from vae_core.paths import downloads_allowed
from vae_core.recsys import movielens as ml

DONE_KEY = "ml_download_done"  # the sentence to show after the rerun that lists the new release


def _size(name: str) -> str:
    return f"{name} (about {ml.DOWNLOAD_MB[name]} MB)"


def offer(
    names: tuple[str, ...] | list[str],
    key: str,
    expanded: bool = False,
    title: str = "Download more MovieLens data from GroupLens",
) -> None:
    """An expander offering the download of each of `names` not readable here (none: nothing)."""
    if done := st.session_state.pop(DONE_KEY, None):
        st.success(done)
    missing = [n for n in names if not ml.movielens_available(n)]
    if not missing or not downloads_allowed():
        return
    with st.expander(title, expanded=expanded):
        st.caption(
            "Needs an internet connection. Without one, put GroupLens's folder (or its .zip) in a "
            f"folder, set `{ml.DATA_DIR_ENV}` to that folder and restart VAE Lab."
        )
        name = st.selectbox("Release", missing, format_func=_size, key=f"{key}_release")
        st.markdown("**GroupLens's licence for the MovieLens data**")
        with st.container(height=180):
            st.markdown(ml.licence_text())
        agreed = st.checkbox("I accept these terms", key=f"{key}_agreed")
        if st.button(f"Download {name}", disabled=not agreed, key=f"{key}_go"):
            _download(name)


def _download(name: str) -> None:
    bar = st.progress(0.0, text=f"Connecting to GroupLens for {name}…")
    shown = [-1]

    def progress(done: int, total: int) -> None:
        percent = int(100 * done / total) if total else 0
        if percent != shown[0]:  # one message per percent, not one per block
            shown[0] = percent
            of = f" of {total / 1e6:.0f} MB" if total else ""
            bar.progress(min(percent, 100) / 100, text=f"{name}: {done / 1e6:.1f}{of}")

    try:
        path = ml.download_movielens(name, progress=progress)
    except DataError as err:
        bar.empty()
        st.error(str(err))
        return
    st.session_state[DONE_KEY] = f"{name} is here ({path}): choose it under Data."
    st.rerun()
