"""Real digits to explore with (the bundled sample, or the MNIST test set when it is here) and the
small helpers that keep a page's main settings in the URL, so a copied link reproduces the view.

Used by the round trip and generate pages; not a page itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import streamlit as st

from vae_core import data, images

SOURCE_LABELS = {
    "sample": "Bundled sample (500 digits)",
    "test": "MNIST test set (10,000 digits)",
}
SOURCE_NAMES = {"sample": "bundled sample", "test": "MNIST test set"}


# ---------------------------------------------------------------- the URL
def param(name: str, default: Any, parse: Callable[[str], Any] = str) -> Any:
    """A query parameter parsed with `parse`, or `default` when absent or unreadable."""
    raw = st.query_params.get(name)
    if raw is None:
        return default
    try:
        return parse(raw)
    except (TypeError, ValueError):
        return default


def param_int(name: str, default: int, lo: int, hi: int) -> int:
    """An integer query parameter, clipped to [lo, hi]."""
    return int(min(max(param(name, default, lambda s: int(float(s))), lo), hi))


def param_float(name: str, default: float, lo: float, hi: float) -> float:
    """A number query parameter, clipped to [lo, hi]."""
    return float(min(max(param(name, default, float), lo), hi))


def param_ints(name: str) -> list[int]:
    """A comma-separated list of integers ("3,17,42"); unreadable parts are skipped."""
    raw = st.query_params.get(name) or ""
    out = []
    for part in raw.split(","):
        try:
            out.append(int(part))
        except ValueError:
            continue
    return out


def set_param(name: str, value: Any) -> None:
    """Write a setting into the URL (only when it changed; lists become "a,b,c")."""
    text = ",".join(str(v) for v in value) if isinstance(value, list | tuple) else str(value)
    if st.query_params.get(name) != text:
        st.query_params[name] = text


def init_state(key: str, value: Any) -> None:
    """Give a widget its first value (from the URL) without fighting the user's later choices."""
    if key not in st.session_state:
        st.session_state[key] = value


# ---------------------------------------------------------------- the digits
def available_sources() -> list[str]:
    """The bundled sample always; the MNIST test set when its files are on this computer."""
    return ["sample", "test"] if data.dataset_available("mnist") else ["sample"]


@st.cache_resource(show_spinner="Loading digits…", max_entries=2)
def load_digits(source: str) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (N, 28, 28) and labels (N,) of the bundled sample or the MNIST test set."""
    if source == "test":
        ds = data.load_dataset("mnist", allow_download=False)
        return ds.x_test, ds.y_test
    return data.load_sample()


def source_picker(key: str, label: str = "Digits from") -> tuple[str, np.ndarray, np.ndarray]:
    """Choose between the bundled sample and the test set (kept in the URL as `src`)."""
    sources = available_sources()
    init_state(key, param("src", "test" if "test" in sources else "sample"))
    if st.session_state[key] not in sources:
        st.session_state[key] = sources[0]
    if len(sources) > 1:
        source = st.radio(label, sources, key=key, format_func=SOURCE_LABELS.get, horizontal=True)
    else:
        source = sources[0]
        st.caption(
            f"Digits from the {SOURCE_LABELS['sample'].lower()}. The full MNIST test set is not on "
            "this computer (set VAE_LAB_DATA_DIR to the folder with its four files to use it)."
        )
    set_param("src", source)
    x, y = load_digits(source)
    return source, x, y


def examples_of(y: np.ndarray, label: int, n: int, seed: int) -> list[int]:
    """`n` indices of digits labelled `label`, chosen by `seed` (seed 0: the first ones)."""
    where = np.flatnonzero(np.asarray(y) == label)
    if seed:
        where = np.random.default_rng(seed).permutation(where)
    return [int(i) for i in where[:n]]


def mixed_examples(y: np.ndarray, n: int, seed: int) -> list[int]:
    """One example each of `n` different digits (seed 0: the first 0, 1, 2, ...)."""
    labels = np.arange(10) if seed == 0 else np.random.default_rng(seed).permutation(10)
    return [examples_of(y, int(k), 1, seed)[0] for k in labels[: min(n, 10)] if (y == k).any()]


def png(image: np.ndarray, scale: int = 4) -> bytes:
    """A digit (or grid) in [0, 1] as PNG bytes, enlarged with crisp pixels. Shown with
    `output_format="PNG"`: left to choose, Streamlit re-encodes a picture without alpha as a JPEG,
    which blurs the pixels and costs two more codecs per picture on every run."""
    return images.to_png(image, scale=scale)
