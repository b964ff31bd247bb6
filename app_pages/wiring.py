"""The wiring diagram of a loaded autoencoder and its three summary() texts, shared by the pages."""

from __future__ import annotations

import shutil

import streamlit as st

from vae_core import figures
from vae_core.models import ModelBundle

SUMMARY_WIDTH = 80  # characters per line of a model summary


def _shape_text(tensor) -> str:
    shape = getattr(tensor, "shape", None)
    if isinstance(tensor, list | tuple):
        return ", ".join(_shape_text(t) for t in tensor)
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def _layers(model) -> list[tuple[str, str, str]]:
    return [(layer.name, type(layer).__name__, _shape_text(layer.output)) for layer in model.layers]


@st.cache_data(show_spinner=False, max_entries=16)
def wiring(name: str, stamp: float, _bundle: ModelBundle) -> tuple[str, dict[str, str]]:
    """The wiring diagram (DOT) and the three summary() texts, read from the loaded models."""
    spec = _bundle.spec
    dot = figures.wiring_dot(
        _layers(_bundle.encoder),
        _layers(_bundle.decoder),
        is_vae=spec.is_vae,
        conditional=spec.is_conditional,
        composite_name=_bundle.composite.name,
    )
    summaries = {}
    for model in (_bundle.encoder, _bundle.decoder, _bundle.composite):
        lines: list[str] = []
        # Keras draws the table into a console as wide as the terminal (80 without one) and cuts
        # off whatever is wider, so the table must fit both that and the page.
        width = min(SUMMARY_WIDTH, shutil.get_terminal_size().columns)
        model.summary(print_fn=lambda s, _out=lines, **_: _out.append(s), line_length=width)
        summaries[model.name] = "\n".join(lines)
    return dot, summaries
