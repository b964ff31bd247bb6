"""Generate: new digits from the prior, the map of the latent space, a dial per latent number, and a
walk from one real digit to another. Everything here only uses the decoder (plus the encoder to find
where the two real digits of a walk sit).
"""

from __future__ import annotations

import functools

import numpy as np
import streamlit as st

from app_pages import digits, glossary, shared
from vae_core import explore, figures, images
from vae_core.errors import UserError
from vae_core.models import ModelBundle

MAX_DIALS = 16
DIAL_RANGE = 3.0
PRIOR_MAP_POINTS = 2000

st.title("Generate")
st.markdown(
    "The decoder is a model of its own: give it a handful of numbers, a point **z** in the latent "
    "space, and it draws a digit. Here you choose the numbers."
)

bundle = shared.active_bundle()
if bundle is None:
    st.stop()
spec = bundle.spec
entry_name = shared.active_entry().name
d = spec.latent_dim
label = None
if spec.is_conditional:
    digits.init_state("gen_digit", digits.param_int("digit", 3, 0, 9))
    label = st.segmented_control(
        "Which digit? (this conditional VAE draws the digit you ask for; z only sets the style)",
        list(range(10)),
        key="gen_digit",
        required=True,
    )
    digits.set_param("digit", label)


def show_error(err: UserError) -> None:
    shared.show_error(err)


stamp = shared.active_entry().path.stat().st_mtime


# ---------------------------------------------------------------- pictures shared by every visitor
# A room opens the same page with the same settings: what a setting draws is made once and served
# to all. The manifold's figure is kept as it is (Streamlit only reads it; unpickling a copy would
# re-validate it), the prior's picture as PNG bytes.
@st.cache_data(show_spinner=False, max_entries=64)
def _prior_grid(
    name: str, stamp: float, n: int, temp: float, seed: int, label, _bundle: ModelBundle
) -> tuple[np.ndarray, bytes]:
    _, prior_images = explore.sample_prior(_bundle, n, temperature=temp, seed=seed, label=label)
    grid = images.tile(prior_images, ncols=min(n, 16))
    return grid, digits.png(grid, 3)


@st.cache_resource(show_spinner=False, max_entries=32)
def _manifold(
    name: str, stamp: float, size: int, extent: float, dims: tuple, label, _bundle: ModelBundle
):
    xs, ys, cells = explore.latent_grid(_bundle, size, extent=extent, dims=dims, label=label)
    grid = images.tile(cells.reshape(-1, *cells.shape[2:]), ncols=size, pad=0)
    return grid, figures.manifold_figure(xs, ys, grid, dims)


# ---------------------------------------------------------------- 1. prior samples
st.header("New digits from the prior")
gaussians = explore.prior_gaussians(bundle)
if gaussians is None:
    st.caption(
        "Each picture is decoder(z) for a random z drawn from N(0, I), the bell curve the KL term "
        "pulled the encoder's codes towards. The temperature scales z: near 0 every z is the centre; "
        "above 1 you reach rarer, stranger places.",
        help=glossary.tip("prior", "N(0, I)", "KL", "temperature"),
    )
else:
    st.caption(
        f"Each picture is decoder(z) for a random z drawn from this model's own prior: not N(0, I) "
        f"but a mixture of {len(gaussians[0])} Gaussians, the places its encoder learned to put "
        "digits (see the map below). A draw picks one Gaussian, then a point in it; the "
        "temperature scales each Gaussian's spread.",
        help=glossary.tip("prior", "mixture prior", "KL", "temperature"),
    )


def _new_seed() -> None:
    st.session_state["gen_seed"] = int(np.random.default_rng().integers(0, 10**6))


@st.fragment
def prior_panel(bundle: ModelBundle, label: int | None) -> None:
    """Draws from the prior; its sliders and New seed rerun this panel only."""
    c = st.columns([2, 2, 1, 1])
    digits.init_state("gen_n", digits.param_int("n", 32, 1, 64))
    digits.init_state("gen_temp", digits.param_float("temp", 1.0, 0.0, 2.5))
    digits.init_state("gen_seed", digits.param_int("seed", 0, 0, 10**6))
    n = c[0].slider("How many", 1, 64, key="gen_n")
    temp = c[1].slider(
        "Temperature", 0.0, 2.5, step=0.1, key="gen_temp", help=glossary.tip("temperature")
    )

    seed = c[2].number_input(
        "Seed", 0, 10**6, key="gen_seed", help="The same seed draws the same z."
    )
    c[3].button("New seed", on_click=_new_seed)
    for name, value in (("n", n), ("temp", temp), ("seed", seed)):
        digits.set_param(name, value)
    try:
        grid, picture = _prior_grid(entry_name, stamp, n, float(temp), int(seed), label, bundle)
    except UserError as err:
        show_error(err)
    else:
        st.image(
            picture,
            caption=f"{n} digits, seed {seed}, temperature {temp:.1f}",
            output_format="PNG",
        )
        st.download_button(
            "Download PNG",
            functools.partial(images.to_png, grid, scale=2),  # made only when clicked
            shared.file_name("generate", f"prior_samples-temp{temp:.1f}", entry_name, seed),
            "image/png",
            key="gen_dl_prior",
        )


prior_panel(bundle, label)


@st.cache_data(show_spinner="Placing test digits in the latent space…", max_entries=8)
def _codes(name: str, stamp: float, _bundle: ModelBundle, source: str) -> tuple:
    """z_mean of up to PRIOR_MAP_POINTS real digits, with their labels."""
    x, y = digits.load_digits(source)
    x, y = x[:PRIOR_MAP_POINTS], np.asarray(y[:PRIOR_MAP_POINTS])
    z, _ = explore.encode(_bundle, x, y if _bundle.spec.is_conditional else None)
    return z, y


# Made only when someone opens it: 2,000 encoded digits on a map were a fifth of the page's work.
why = (
    None
    if spec.is_conditional
    else st.expander(
        "Why draws from N(0, I) can miss: where the digits live", key="gen_why", on_change="rerun"
    )
)
if why is not None and why.open:
    with why:
        source = digits.available_sources()[-1]
        z, y = _codes(entry_name, stamp, bundle, source)
        fig = figures.prior_map(z, y, *(gaussians or (None, None)))
        st.plotly_chart(fig, key="gen_prior_map", config={"displayModeBar": False})
        if gaussians is None:
            st.caption(
                f"Dots: where the encoder puts {len(z):,} real digits (z_mean, coloured by "
                "digit); circles: where N(0, I) puts most of its draws. Draws land where digits "
                "crowd together or where none live (the holes between them), and those come back "
                "as smudges or in-between digits."
            )
        else:
            st.caption(
                f"Dots: where the encoder puts {len(z):,} real digits (z_mean, coloured by digit); "
                "grey circles: where N(0, I) would draw; black ellipses: the Gaussians of this "
                "model's prior, which Generate draws from. Its draws land where digits live, so "
                "they come back readable."
                + (
                    " Each digit has a Gaussian of its own."
                    if spec.prior == "class_mixture"
                    else ""
                )
                + (
                    f" The map shows the {d} numbers of z along the two directions in which the "
                    "codes spread most."
                    if d > 2
                    else ""
                )
            )


# ---------------------------------------------------------------- 2. the manifold
@st.fragment
def manifold_panel(bundle: ModelBundle, label: int | None) -> None:
    """The n x n map of the latent space; its settings rerun this panel only."""
    c = st.columns(4)
    digits.init_state("gen_grid", digits.param_int("grid", 15, 5, 30))
    # As far as the prior reaches: ±2 for N(0, I), further for a mixture whose Gaussians sit apart.
    reach = np.ceil(explore.prior_reach(bundle) * 2) / 2
    top = max(4.0, reach)
    digits.init_state("gen_extent", digits.param_float("extent", reach, 0.5, top))
    size = c[0].slider("Grid size", 5, 30, key="gen_grid")
    extent = c[1].slider(
        "Reach (±)",
        0.5,
        top,
        step=0.5,
        key="gen_extent",
        help="How far from 0 the map goes along each axis; it starts where the prior puts "
        "nearly all its draws.",
    )
    digits.set_param("grid", size)
    digits.set_param("extent", extent)
    dims = (0, 1)
    if d > 2:
        digits.init_state("gen_dx", digits.param_int("dx", 0, 0, d - 1))
        digits.init_state("gen_dy", digits.param_int("dy", 1, 0, d - 1))
        dx = c[2].selectbox("Across", list(range(d)), key="gen_dx", format_func=lambda j: f"z[{j}]")
        dy = c[3].selectbox("Down", list(range(d)), key="gen_dy", format_func=lambda j: f"z[{j}]")
        dims = (int(dx), int(dy))
        digits.set_param("dx", dx)
        digits.set_param("dy", dy)
    try:
        grid, fig = _manifold(entry_name, stamp, size, float(extent), dims, label, bundle)
    except UserError as err:
        show_error(err)
    else:
        st.plotly_chart(
            fig,
            key="gen_manifold",
            config={"displayModeBar": False},
        )
        where = (
            f"the whole {d}-D latent plane"
            if d == 2
            else f"a slice through z[{dims[0]}] and z[{dims[1]}]; the other {d - 2} numbers are 0"
        )
        st.caption(
            f"{size} × {size} decoded points, evenly spaced from −{extent:.1f} to +{extent:.1f}: "
            f"{where}. All {size * size} go through the decoder in one call."
        )
        st.download_button(
            "Download PNG",
            functools.partial(images.to_png, grid, scale=2),  # made only when clicked
            shared.file_name("generate", f"latent_map-z{dims[0]}_z{dims[1]}", entry_name),
            "image/png",
            key="gen_dl_grid",
        )


st.header("The map of the latent space")
if d < 2:
    st.caption(
        "This model has a single latent number; the dial below shows everything it can draw."
    )
else:
    manifold_panel(bundle, label)


# ---------------------------------------------------------------- 3. one dial per latent number
st.header("Turn the dials")
dials = min(d, MAX_DIALS)
# The dials reach as far as the prior does (further than ±3 for a mixture set apart).
dial_range = max(DIAL_RANGE, float(np.ceil(explore.prior_reach(bundle))))


def _dials_to(values: np.ndarray) -> None:
    for j in range(dials):
        st.session_state[f"gen_z_{j}"] = float(np.round(values[j], 1))


@st.fragment
def dial_panel(bundle: ModelBundle, label: int | None) -> None:
    """Sliders for z; moving one only reruns this panel."""
    for j in range(dials):
        digits.init_state(f"gen_z_{j}", 0.0)
    left, right = st.columns([3, 2])
    with left:
        b = st.columns(2)
        b[0].button("Reset to 0", on_click=_dials_to, args=(np.zeros(dials),), key="gen_reset")
        b[1].button(
            "Random",
            key="gen_random",
            help="A draw from this model's prior.",
            on_click=lambda: _dials_to(
                np.clip(
                    explore.draw_prior(bundle, 1, np.random.default_rng())[0, :dials],
                    -dial_range,
                    dial_range,
                )
            ),
        )
        per_row = 4 if dials > 8 else 2 if dials > 4 else 1
        rows = [st.columns(per_row) for _ in range((dials + per_row - 1) // per_row)]
        for j in range(dials):
            rows[j // per_row][j % per_row].slider(
                f"z[{j}]", -dial_range, dial_range, step=0.1, key=f"gen_z_{j}"
            )
    z = np.zeros(d, np.float32)
    z[:dials] = [st.session_state[f"gen_z_{j}"] for j in range(dials)]
    try:
        image = explore.decode(bundle, z[None], label)[0]
    except UserError as err:
        show_error(err)
        return
    with right:
        st.image(digits.png(image, 8), caption="decoder(z)", width=224, output_format="PNG")
        st.caption("z = " + np.array2string(z[:dials], precision=1, separator=", "))
        if d > dials:
            st.caption(f"The first {dials} of {d} numbers have dials; the others stay at 0.")


st.caption(
    "Each slider is one number of z. Most digits live within ±2 of 0, where the prior puts them."
    if gaussians is None
    else "Each slider is one number of z. This model's digits live around the centres of its "
    "prior's Gaussians: press Random to jump to one."
)
dial_panel(bundle, label)

# ---------------------------------------------------------------- 4. interpolation
st.header("Walk from one digit to another")
st.caption(
    "Encode two real digits, walk in a straight line (or along the sphere) between their z_mean, "
    "and decode every step. In a good latent space every step is a plausible digit."
)


@st.fragment
def walk_panel(bundle: ModelBundle, label: int | None) -> None:
    """Two real digits and the decoded steps between them; its settings rerun this panel only."""
    source, x_all, y_all = digits.source_picker("gen_src")
    last = len(x_all) - 1

    def _endpoint(title: str, key: str, default_digit: int) -> int:
        """One end of the walk, chosen as a person says it ("from a 1 to a 7"): the digit first,
        then which example of it (a copied link names the example by its number in the set)."""
        if f"{key}_digit" not in st.session_state:  # the link's digit number, or the first
            wanted = digits.param_int(key[-1], -1, -1, last)
            digit = int(y_all[wanted]) if wanted >= 0 else default_digit
            same = np.flatnonzero(np.asarray(y_all) == digit)
            st.session_state[f"{key}_digit"] = digit
            st.session_state[f"{key}_ex"] = (
                int(np.searchsorted(same, wanted)) + 1 if wanted >= 0 else 1
            )
        digit = st.selectbox(title, range(10), key=f"{key}_digit", format_func=str)
        same = np.flatnonzero(np.asarray(y_all) == digit)
        st.session_state[f"{key}_ex"] = min(st.session_state[f"{key}_ex"], len(same))
        example = st.number_input(
            "which one", 1, len(same), key=f"{key}_ex",
            help=f"One of the {len(same):,} examples of a {digit} in the set.",
        )  # fmt: skip
        index = int(same[int(example) - 1])
        st.caption(f"digit #{index}")
        return index

    c = st.columns([1, 1, 1, 1])
    with c[0]:
        a = _endpoint("From", "gen_a", 1)
    with c[1]:
        b_ = _endpoint("to", "gen_b", 7)
    digits.init_state("gen_method", digits.param("method", "linear"))
    if st.session_state["gen_method"] not in ("linear", "spherical"):
        st.session_state["gen_method"] = "linear"
    digits.init_state("gen_steps", digits.param_int("steps", 10, 3, 24))
    method = c[2].radio(
        "Path",
        ["linear", "spherical"],
        key="gen_method",
        help=glossary.tip("spherical interpolation"),
    )
    steps = c[3].slider("Steps", 3, 24, key="gen_steps")
    for name, value in (("a", a), ("b", b_), ("method", method), ("steps", steps)):
        digits.set_param(name, value)
    pair_labels = (int(y_all[a]), int(y_all[b_])) if spec.is_conditional else None
    morph = False
    if spec.is_conditional:
        morph = st.toggle(
            f"Draw every step as a {label}: walk the style only",
            key="gen_morph",
            help="The conditional VAE draws the digit it is told. Told the two ends' labels, the "
            "walk switches from one digit to the other at the midpoint; told one digit (the one "
            "chosen at the top), every step is that digit and only the style (slant, width, "
            "thickness) walks from the first digit's to the second's.",
        )
    try:
        path, walk = explore.interpolate(
            bundle,
            x_all[a],
            x_all[b_],
            steps=int(steps),
            method=method,
            labels=pair_labels,
            draw_as=label if morph else None,
        )
    except UserError as err:
        show_error(err)
    else:
        strip = np.concatenate([x_all[a][None] / 255.0, walk, x_all[b_][None] / 255.0])
        grid = images.tile(strip, ncols=len(strip))
        st.image(
            digits.png(grid, 3),
            width="stretch" if len(strip) > 14 else "content",
            output_format="PNG",
        )
        st.caption(
            f"Left: digit #{a} (a {y_all[a]}); right: digit #{b_} (a {y_all[b_]}); between them, "
            f"{steps} decoded steps along a {method} path."
            + (
                f" Every step is drawn as a {label}: only the style walks, from the first digit's to "
                "the second's."
                if morph
                else " The conditional VAE is told the first digit's label for the first half of "
                "the walk and the second's for the rest."
                if spec.is_conditional
                else ""
            )
        )
        st.download_button(
            "Download PNG",
            functools.partial(images.to_png, grid, scale=2),  # made only when clicked
            shared.file_name("generate", f"walk-{a}_to_{b_}-{method}", entry_name),
            "image/png",
            key="gen_dl_walk",
        )


walk_panel(bundle, label)
