"""Figures are pure functions: check what a viewer would see (traces, points, labels, wiring)."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pytest
from PIL import Image

from vae_core import figures


def _trace(fig, name):
    return next(t for t in fig.data if t.name == name)


# ---------------------------------------------------------------- latent_map
@pytest.fixture
def codes():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((300, 4)).astype(np.float32)
    labels = np.repeat(np.arange(10), 30)
    return z, labels


def test_latent_map_has_one_trace_per_label_then_the_highlights(codes):
    z, labels = codes
    fig = figures.latent_map(z, labels, highlight=z[:3], highlight_sigma=np.full((3, 4), 0.2))
    names = [t.name for t in fig.data]
    assert names == [f"digit {k}" for k in range(10)] + ["your digits", "1 sigma", "2 sigma"]
    assert sum(len(_trace(fig, f"digit {k}").x) for k in range(10)) == 300
    stars = _trace(fig, "your digits")
    assert len(stars.x) == 3 and list(stars.text) == ["1", "2", "3"]
    # Default dims (0, 1): the stars sit exactly at the chosen digits' first two numbers.
    np.testing.assert_allclose(stars.x, z[:3, 0], rtol=1e-6)
    np.testing.assert_allclose(stars.y, z[:3, 1], rtol=1e-6)
    assert fig.layout.xaxis.title.text == "z[0]" and fig.layout.yaxis.title.text == "z[1]"


def test_latent_map_sigma_ellipses_have_the_right_radius(codes):
    z, labels = codes
    sigma = np.array([[0.5, 0.25, 1, 1]])
    fig = figures.latent_map(z, labels, highlight=np.zeros((1, 4)), highlight_sigma=sigma)
    one, two = _trace(fig, "1 sigma"), _trace(fig, "2 sigma")
    xs = np.array([v for v in one.x if v is not None], dtype=float)
    ys = np.array([v for v in one.y if v is not None], dtype=float)
    assert xs.max() == pytest.approx(0.5) and ys.max() == pytest.approx(0.25, abs=1e-3)
    assert max(v for v in two.x if v is not None) == pytest.approx(1.0)


def test_latent_map_picks_the_requested_dimensions(codes):
    z, labels = codes
    fig = figures.latent_map(z, labels, highlight=z[:2], dims=(3, 1))
    np.testing.assert_allclose(_trace(fig, "your digits").x, z[:2, 3], rtol=1e-6)
    assert fig.layout.xaxis.title.text == "z[3]"
    # No sigma: no ellipses.
    assert [t.name for t in fig.data][-1] == "your digits"


def test_latent_map_pca_follows_the_widest_spread():
    rng = np.random.default_rng(1)
    # Spread along z[2] only: the first principal axis must be (almost) z[2].
    z = np.zeros((200, 3))
    z[:, 2] = rng.standard_normal(200) * 3
    z[:, 0] = rng.standard_normal(200) * 0.1
    fig = figures.latent_map(z, None, highlight=z[:5], projection="pca")
    assert [t.name for t in fig.data] == ["digits", "your digits"]
    stars = _trace(fig, "your digits")
    np.testing.assert_allclose(np.abs(stars.x), np.abs(z[:5, 2] - z[:, 2].mean()), atol=0.05)
    assert "principal axis 1" in fig.layout.xaxis.title.text


def test_latent_map_labels_only_those_present():
    z = np.zeros((4, 2))
    fig = figures.latent_map(z, np.array([3, 3, 7, 7]))
    assert [t.name for t in fig.data] == ["digit 3", "digit 7"]


# ---------------------------------------------------------------- latent_bars, manifold_figure
def test_latent_bars_one_bar_per_dimension_with_sigma_whiskers():
    fig = figures.latent_bars(np.array([0.5, -1.0, 2.0]), np.array([0.1, 0.2, 0.3]))
    (bar,) = fig.data
    assert list(bar.x) == ["z[0]", "z[1]", "z[2]"]
    np.testing.assert_allclose(bar.y, [0.5, -1.0, 2.0])
    np.testing.assert_allclose(bar.error_y.array, [0.1, 0.2, 0.3])
    assert figures.latent_bars(np.zeros(4)).data[0].error_y.array is None


def test_manifold_figure_labels_axes_with_latent_values():
    xs = np.linspace(-2, 2, 5)
    grid = np.random.default_rng(0).random((5 * 28, 5 * 28))
    fig = figures.manifold_figure(xs, xs[::-1], grid, dims=(2, 5))
    # The grid is one PNG picture at its own size (pixel for pixel), not a heatmap of numbers.
    source = fig.data[0].source
    assert source.startswith("data:image/png;base64,")
    picture = Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1])))
    assert picture.size == grid.shape[::-1]
    assert fig.layout.xaxis.title.text == "z[2]" and fig.layout.yaxis.title.text == "z[5]"
    assert list(fig.layout.xaxis.ticktext) == ["-2.0", "-1.0", "0.0", "1.0", "2.0"]
    assert list(fig.layout.yaxis.ticktext) == ["2.0", "1.0", "0.0", "-1.0", "-2.0"]


# ---------------------------------------------------------------- wiring_dot
ENC = [
    ("encoder_input", "InputLayer", "(None, 28, 28, 1)"),
    ("flatten", "Flatten", "(None, 784)"),
    ("dense", "Dense", "(None, 64)"),
    ("z_mean", "Dense", "(None, 2)"),
    ("z_log_var", "Dense", "(None, 2)"),
    ("z", "Sampling", "(None, 2)"),
]
DEC = [
    ("decoder_input", "InputLayer", "(None, 2)"),
    ("dense", "Dense", "(None, 64)"),
    ("decoder_output", "Activation", "(None, 28, 28, 1)"),
]


def _edges(dot: str) -> set[tuple[str, str]]:
    return set(re.findall(r"^\s*(\w+) -> (\w+)", dot, flags=re.M))


def test_wiring_dot_shows_z_going_into_the_decoders_own_input():
    dot = figures.wiring_dot(ENC, DEC)
    assert dot.startswith("digraph") and dot.rstrip().endswith("}")
    assert dot.count("{") == dot.count("}")
    edges = _edges(dot)
    assert {("z_mean", "z"), ("z_log_var", "z"), ("z", "dec_in"), ("x", "enc_in")} <= edges
    assert 'label="encoder(x)[2]"' in dot
    assert "decoder_input\\nits own Input (None, 2)" in dot
    assert "decoder(encoder(x)[2])" in dot
    # Hidden layers are listed with their real shapes, one left-aligned line each.
    assert "flatten: Flatten (None, 784)\\ldense: Dense (None, 64)\\l" in dot


def test_wiring_dot_for_the_dae_has_no_sampling():
    enc = [ENC[0], ENC[1], ("latent_vector", "Dense", "(None, 16)")]
    dec = [("decoder_input", "InputLayer", "(None, 16)"), *DEC[1:]]
    dot = figures.wiring_dot(enc, dec, is_vae=False, composite_name="dae")
    assert "Sampling" not in dot and "z_mean" not in dot
    assert 'label="encoder(x)"' in dot and "dae = decoder(encoder(x))" in dot
    assert ("z", "dec_in") in _edges(dot)


def test_wiring_dot_for_the_conditional_vae_feeds_the_label_to_both_halves():
    enc = [*ENC[:1], ("label_input", "InputLayer", "(None,)"), *ENC[1:]]
    dec = [("label_input", "InputLayer", "(None,)"), *DEC]
    dot = figures.wiring_dot(enc, dec, conditional=True)
    assert {("label", "enc_label"), ("label", "dec_label")} <= _edges(dot)
    assert "decoder([encoder([x, label])[2], label])" in dot
    # The red wire says what really goes in: z from an encoder that was given the label too.
    assert 'label="encoder([x, label])[2]"' in dot
    assert 'label="encoder(x)[2]"' not in dot


def test_the_decoders_input_is_mapped_to_the_keras_examples_names():
    dot = figures.wiring_dot(ENC, DEC)
    dec_in = next(line for line in dot.splitlines() if line.strip().startswith("dec_in ["))
    assert "decoder_input" in dec_in and "latent_inputs / z_sampling" in dec_in
    assert "Keras examples" in dec_in


def test_composite_call_names_every_input_the_model_takes():
    assert figures.composite_call() == "decoder(encoder(x)[2])"
    assert figures.composite_call(is_vae=False) == "decoder(encoder(x))"
    assert figures.composite_call(conditional=True) == "decoder([encoder([x, label])[2], label])"


def test_latent_map_draws_a_drawings_trail_up_to_its_star(codes):
    z, labels = codes
    trail = np.array([[0.0, 0.0, 0, 0], [1.0, -1.0, 0, 0], [2.0, 0.5, 0, 0]])
    fig = figures.latent_map(z, labels, highlight=trail[-1:], trail=trail, dims=(0, 1))
    names = [t.name for t in fig.data]
    assert names.index("earlier") == names.index("your digits") - 1  # under the star
    path = _trace(fig, "earlier")
    np.testing.assert_allclose(path.x, trail[:, 0])
    np.testing.assert_allclose(path.y, trail[:, 1])
    # One position is no path yet: nothing is drawn for it.
    one = figures.latent_map(z, labels, highlight=trail[:1], trail=trail[:1])
    assert "earlier" not in [t.name for t in one.data]


# ---------------------------------------------------------------- the recommender's figures
def test_users_map_colours_the_biggest_genres_and_greys_the_rest():
    rng = np.random.default_rng(0)
    genres = ["Drama"] * 5 + ["War"] * 3 + ["IMAX"] * 2 + ["Western", ""]
    xy = rng.standard_normal((len(genres), 2))
    hover = [f"user {i}" for i in range(len(genres))]
    fig = figures.users_map(xy, genres, hover, picks=np.array([[0.5, -1.0]]),
                            axis_share=(0.4, 0.25), max_groups=3)  # fmt: skip
    assert [t.name for t in fig.data] == [
        "Drama (5)", "War (3)", "IMAX (2)", "other (2)", "your picks",
    ]  # fmt: skip
    war = _trace(fig, "War (3)")
    np.testing.assert_allclose(np.c_[war.x, war.y], xy[5:8])
    assert list(war.text) == [f"user {i}<br>favourite: War" for i in (5, 6, 7)]
    other = _trace(fig, "other (2)")
    assert other.marker.color == figures.OTHER_COLOR
    assert {t.split("favourite: ")[1] for t in other.text} == {"Western", "no genre"}
    star = _trace(fig, "your picks")
    assert (star.x[0], star.y[0]) == (0.5, -1.0) and star.marker.symbol == "star"
    assert fig.layout.xaxis.title.text == "principal axis 1 (40% of the spread)"
    assert sum(len(t.x) for t in fig.data[:-1]) == len(genres)  # every user once


def test_users_map_without_picks_has_no_star():
    fig = figures.users_map(np.zeros((3, 2)), ["Comedy"] * 3, ["a", "b", "c"])
    assert [t.name for t in fig.data] == ["Comedy (3)"]
    assert fig.layout.xaxis.title.text == "principal axis 1"


def test_rank_spread_puts_a_dot_at_each_rank_sized_by_how_often_and_the_mean_list_diamonds():
    # 4 lists of 3 (item ids); item 7 is first in three lists and second in one.
    lists = np.array([[7, 8, 9], [7, 9, 8], [7, 8, 5], [8, 7, 9]])
    mean_items = np.array([7, 9, 8])
    fig = figures.rank_spread(["seven", "eight", "nine", "five"], np.array([7, 8, 9, 5]), lists,
                              mean_items)  # fmt: skip
    dots, diamonds = fig.data
    assert dots.name == "4 lists from sampled z" and diamonds.name == "the z = z_mean list"
    at = {(y, x): s for x, y, s in zip(dots.x, dots.y, dots.marker.size, strict=True)}
    assert set(at) == {(0, 1), (0, 2), (1, 1), (1, 2), (1, 3), (2, 2), (2, 3), (3, 3)}
    assert at[(0, 1)] > at[(0, 2)]  # "seven" is first in 3 lists, second in 1
    assert "rank 1 in 3 of 4 lists" in dots.text[0]
    # Diamonds at each movie's rank in the z_mean list; "five" is not in it.
    assert sorted(zip(diamonds.y, diamonds.x, strict=True)) == [(0, 1), (1, 3), (2, 2)]
    assert list(fig.layout.yaxis.ticktext) == ["seven", "eight", "nine", "five"]
    assert fig.layout.xaxis.range == (0.4, 3.6)


def test_the_running_loss_never_draws_back_across_the_chart():
    # Steps of epoch 2 logged, the run stopped and resumed from its checkpoint at the end of epoch 1,
    # the same steps logged again with new values: one line, left to right, the latest values.
    per = 10
    first = [
        {"kind": "step", "epoch": 2, "step": s, "steps_per_epoch": per, "loss": 5.0}
        for s in (2, 4, 6)
    ]
    again = [
        {"kind": "step", "epoch": 2, "step": s, "steps_per_epoch": per, "loss": 4.0} for s in (2, 4)
    ]
    fig = figures.loss_curves(first + [{"kind": "epoch", "epoch": 1, "loss": 6.0}] + again)
    (running,) = [t for t in fig.data if t.name == "train (running)"]
    assert list(running.x) == sorted(running.x) == [1.2, 1.4, 1.6]
    assert list(running.y) == [4.0, 4.0, 5.0]
