"""The Round trip page's side by side: the same digits through a second model, next to the active one.

Not a page itself: round_trip.py calls `section` once its digits are chosen.
"""

from __future__ import annotations

import functools

import numpy as np
import streamlit as st

from app_pages import digits, shared
from vae_core import explore, images
from vae_core.errors import UserError
from vae_core.store import StoreEntry

NONE = "(none)"
MIN_COLUMNS = 8  # so one or two digits are not stretched across the page


def _picker(active: StoreEntry) -> StoreEntry | None:
    """A second model (kept in the URL as `vs` and across pages); None when none is chosen."""
    fits = shared.usable_entries(shared.page_kinds("round_trip"))  # no recommender here
    others = {e.name: e for e in fits if e.name != active.name}
    if not others:
        st.caption("There is no other model to compare with yet: train or import one.")
        return None
    options = [NONE, *others]
    digits.init_state("rt_vs", digits.param("vs", NONE))
    if st.session_state["rt_vs"] not in options:
        st.session_state["rt_vs"] = NONE
    choice = st.selectbox(
        "Compare with another model",
        options,
        key="rt_vs",
        persist_state="session",
        format_func=lambda n: "no comparison" if n == NONE else others[n].label,
        help="The same digits go through both models; their pictures and errors are shown "
        "side by side.",
    )
    if choice == NONE:
        st.query_params.pop("vs", None)
        return None
    digits.set_param("vs", choice)
    return others[choice]


def section(
    active: StoreEntry,
    rt: explore.RoundTrip,
    x: np.ndarray,
    labels: np.ndarray | None,
    names: list[str],
) -> None:
    """Pick a second model and show both models' prediction of the same digits, row by row."""
    st.header("Side by side with another model")
    other = _picker(active)
    if other is None:
        return
    try:
        bundle = shared.load_bundle(other)
    except UserError as err:
        shared.show_error(err)
        return
    if bundle.spec.is_conditional and labels is None:
        st.info(
            f"**{other.name}** is a conditional VAE: it must be told which digit each one is. "
            "Pick digits from the set (they come with their labels) to compare it."
        )
        return
    try:
        theirs = explore.round_trip(
            bundle, x, labels if bundle.spec.is_conditional else None, n_samples=1
        )
    except UserError as err:
        shared.show_error(err)
        return
    key = "vae(x, training=False)"  # what model.predict(x) gives, for every kind of model
    rows = [
        ("input x", "", rt.inputs, None),
        (active.name, "(the active model)", rt.composite_inference, rt.errors[key]),
        (other.name, "", theirs.composite_inference, theirs.errors[key]),
    ]
    st.caption(
        "Each model's prediction, `model.predict(x)`, of the same digits; under each picture its "
        "error against the input (mean squared pixel difference: lower is closer)."
    )
    widths = [1.6] + [1.0] * max(len(x), MIN_COLUMNS)
    for title, note, pictures, errors in rows:
        cols = st.columns(widths, vertical_alignment="center")
        text = f"**{shared.breakable(title, markdown=True)}**"
        if errors is not None:
            text += f"  \n:gray[mean error {float(np.mean(errors)):.4f} {note}]"
        cols[0].markdown(text)
        for i in range(len(x)):
            caption = shared.breakable(names[i]) if errors is None else f"{errors[i]:.4f}"
            cols[i + 1].image(
                digits.png(pictures[i]), caption=caption, width="stretch", output_format="PNG"
            )
    grid = images.tile(np.concatenate([pictures for _, _, pictures, _ in rows]), ncols=len(x))
    st.download_button(
        "This comparison (PNG)",
        functools.partial(images.to_png, grid, scale=2),  # made only when clicked
        icon=":material/download:",
        file_name=shared.file_name("round_trip", f"vs_{other.name}", active.name),
        mime="image/png",
        key="rt_dl_compare",
        help=f"Three rows: the inputs, {active.name}'s predictions and {other.name}'s.",
    )
