"""Round trip: a digit goes through the encoder to (z_mean, z_log_var, z) and back out of the decoder.

Answers three questions by showing: the decoder is a model with its own Input and the full model is
decoder(encoder(x)[2]); decoder(z_mean) and vae(x) differ because vae(x) may sample z; sample while
training, use the mean at prediction.
"""

from __future__ import annotations

import functools
import hashlib

import numpy as np
import streamlit as st

from app_pages import compare, digits, glossary, own_digits, shared, wiring
from vae_core import explore, figures, images
from vae_core.errors import UserError
from vae_core.models import ModelBundle

MAX_DIGITS = 12
MAP_POINTS = 2000  # background digits on the latent map
BARS_UP_TO = 16  # latent sizes up to this get a bar chart per digit
MODES = ("Mixed digits", "By label", "By index", "Upload", "Draw", "Camera")
DATASET_MODES = MODES[:3]  # the others are a person's own digits
TRAIL = 12  # earlier positions of a drawing's code kept on the latent map
WIDEN = [1, 2, 3, 5]  # "Sample wider": the samples' distance from z_mean, in the model's sigmas


# ---------------------------------------------------------------- cached per model
@st.cache_data(show_spinner="Placing digits on the latent map…", max_entries=16)
def _background(
    name: str, stamp: float, source: str, _bundle: ModelBundle, _x: np.ndarray, _y: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """z_mean (or the DAE's latent vector) of up to MAP_POINTS digits, with their labels."""
    x, y = _x[:MAP_POINTS], _y[:MAP_POINTS]
    z, _ = explore.encode(_bundle, x, y if _bundle.spec.is_conditional else None)
    return z, np.asarray(y)


@st.cache_data(show_spinner=False, max_entries=64)
def _round_trip(
    name: str,
    stamp: float,
    digest: str,
    n_samples: int,
    seed: int,
    _bundle,
    _x,
    _labels,
    widen: float = 1.0,
) -> explore.RoundTrip:
    """The digits on view, round trip: a rerun that changes neither them, K nor the seed (another
    section's control, a room of people shuffling through the same digits) reuses it."""
    return explore.round_trip(_bundle, _x, _labels, n_samples=n_samples, seed=seed, widen=widen)


# A room shuffles through the same digits (Shuffle's seeds count up from the same start), and
# Streamlit only reads a figure: one figure per digit and model serves every visitor. Kept as they
# are, not copied (a copy of a plotly figure is validated again, which costs as much as making it).
@st.cache_resource(show_spinner=False, max_entries=256)
def _bars(z_mean: np.ndarray, sigma: np.ndarray | None):
    return figures.latent_bars(z_mean, sigma)


def _map_figure(z_bg, y_bg, rt: explore.RoundTrip, dims, projection: str, trail=None):
    """The latent map: the background digits, and the digits on view as numbered stars."""
    return figures.latent_map(
        z_bg,
        y_bg,
        highlight=rt.z_mean,
        highlight_sigma=rt.sigma,
        dims=dims,
        projection=projection,
        highlight_names=[str(i + 1) for i in range(len(rt.z_mean))],
        trail=trail,
    )


@st.cache_resource(show_spinner=False, max_entries=32)
def _map(
    name: str, stamp: float, source: str, digest: str, dims, projection: str, _z_bg, _y_bg, _rt
):
    """The map for the digits on view (`digest`); a drawing's trail is new with every stroke."""
    return _map_figure(_z_bg, _y_bg, _rt, dims, projection)


def _digest(*arrays) -> str:
    h = hashlib.sha1()
    for a in arrays:
        h.update(b"-" if a is None else np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


@st.cache_data(show_spinner="Reading your digits…", max_entries=64)
def _read(name: str, stamp: float, digest: str, _bundle: ModelBundle, _x) -> np.ndarray:
    """p(label | digit) for each of the digits `digest` names, by the conditional VAE."""
    return explore.read_digits(_bundle, _x)


def _ask_labels(names: list[str], x: np.ndarray) -> np.ndarray:
    """The conditional VAE must be told each own digit's label: one picker per digit, set to what
    the model itself reads there (Bayes' rule over its ten labels) until the person picks."""
    probs = _read(entry.name, stamp, _digest(x), bundle, x)  # the page's model, as everywhere
    st.caption(
        "The conditional VAE needs to be told which digit each one is. It offers its own reading: "
        "how likely it finds your digit drawn as each label, p(x | label), turned by Bayes' rule "
        "into how sure it is of each (a model that generates digits can also read them).",
        help=glossary.tip("log-likelihood"),
    )
    cols = st.columns(min(len(names), 6))
    picked = []
    for i, name in enumerate(names):
        key = "rt_up_label" if i == 0 else f"rt_up_label_{i}"
        best = int(np.argmax(probs[i]))
        seen = _digest(x[i])
        if st.session_state.get(f"{key}_read") != seen:  # a new digit here: offer the reading
            st.session_state[key], st.session_state[f"{key}_read"] = best, seen
        col = cols[i % len(cols)]
        picked.append(col.selectbox(f"{name} is a", list(range(10)), key=key))
        col.caption(f"The model reads a **{best}** ({probs[i][best]:.0%} sure).")
        col.plotly_chart(
            figures.label_bars(probs[i]), key=f"{key}_bars", config={"displayModeBar": False}
        )
    return np.asarray(picked)


def _revive(*keys: str) -> None:
    """Widgets left out of the last run (an empty pad stops the page early) come back in the
    browser at their defaults: write their values back on the run they return, and only then (every
    run would fight a person's quick clicks)."""
    run = st.session_state["rt_run"]
    if st.session_state.get("rt_controls_run") != run - 1:
        for key in keys:
            if key in st.session_state:
                st.session_state[key] = st.session_state[key]
    st.session_state["rt_controls_run"] = run


def _follow(digest: str, z: np.ndarray) -> np.ndarray:
    """Where the drawing's code has been since the pad was cleared, oldest first, ending at `z`."""
    pad = st.session_state.get("rt_pad_n", 0)
    trail = st.session_state.get("rt_trail")
    if trail is None or trail["pad"] != pad:
        trail = st.session_state["rt_trail"] = {"pad": pad, "seen": [], "z": []}
    if not trail["seen"] or trail["seen"][-1] != digest:
        trail["seen"], trail["z"] = trail["seen"][-TRAIL:] + [digest], trail["z"][-TRAIL:] + [z]
    return np.asarray(trail["z"]).reshape(-1, len(z))


# ---------------------------------------------------------------- the page
st.session_state["rt_run"] = st.session_state.get("rt_run", 0) + 1
st.title("Round trip")
st.markdown(
    "Follow a handwritten digit through the autoencoder: the **encoder** turns it into a few "
    "numbers (the *latent code*), the **decoder** turns numbers back into a picture.",
    help=glossary.tip("latent code"),
)

bundle = shared.active_bundle()
if bundle is None:
    st.stop()
entry = shared.active_entry()
spec = bundle.spec
stamp = entry.path.stat().st_mtime

# ---- 1. wiring
composite_call = figures.composite_call(is_vae=spec.is_vae, conditional=spec.is_conditional)
# Closed at first (the digits come first); what it holds is made only when someone opens it.
wiring_box = st.expander("How the three models are wired", key="rt_wiring", on_change="rerun")
if wiring_box.open:
    with wiring_box:
        dot, summaries = wiring.wiring(entry.name, stamp, bundle)
        diagram, words = st.columns([1, 1], gap="large")
        diagram.graphviz_chart(dot, width="stretch")
        diagram.caption(
            "Shapes such as (None, 2): None is the batch (any number of digits at once).",
            help=glossary.tip("shapes", "eps"),
        )
        words.markdown("#### One model, or three?")
        if spec.is_vae:
            words.markdown(
                "The **decoder is a model of its own**, with its own `Input`: `decoder_input` (the "
                "Keras examples call it `latent_inputs`, named `z_sampling` in the older one). Give it "
                f"{spec.latent_dim} numbers and it draws a digit. The encoder "
                "has three outputs: `z_mean`, `z_log_var` and `z`, a point drawn near `z_mean`. The "
                f"full model, `{bundle.composite.name}`, is just the wiring `{composite_call}`: it passes the "
                "encoder's **third** output, `z`, into the decoder's `Input`. All three share the "
                "same weights."
                + (
                    " This conditional VAE is also told the label: it goes into the encoder "
                    "beside the image, and into the decoder beside `z`."
                    if spec.is_conditional
                    else ""
                ),
                help=glossary.tip("z_mean", "z_log_var", "eps"),
            )
        else:
            words.markdown(
                "A denoising autoencoder has the same two halves, but its encoder has a **single** "
                "output, the latent vector. The decoder's `Input` (`decoder_input`, the name the Keras "
                f"denoising example uses too) is **not the image**: it is where those {spec.latent_dim} "
                f"numbers go in. The full model, `{bundle.composite.name}`, is `{composite_call}`. There is no "
                "z_mean, no sigma and no sampling: the same digit always gives the same code and the "
                "same picture."
            )
        st.caption("What Keras itself says about the three models (note the decoder's input):")
        tabs = st.tabs([f"{name}.summary()" for name in summaries])
        for tab, text in zip(tabs, summaries.values(), strict=True):
            tab.code(text, language=None)

# ---- 2. pick digits
st.subheader("Pick digits")
mode_col, source_col = st.columns([3, 2], gap="large")
with source_col:
    source, x_all, y_all = digits.source_picker("rt_src")
url_idx = [i for i in digits.param_ints("idx") if 0 <= i < len(x_all)][:MAX_DIGITS]
digits.init_state("rt_mode", "By index" if url_idx else MODES[0])
with mode_col:
    mode = st.segmented_control(
        "Choose",
        MODES,
        key="rt_mode",
        required=True,
        wrap=True,
        help="Digits from the set, or your own: a photo or scan, a drawing, the camera.",
    )
    mode = mode or MODES[0]

chosen: np.ndarray | None = None  # (N, 28, 28) uint8 or float
labels: np.ndarray | None = None
names: list[str] = []
idx: list[int] = []
live: list = []  # Draw: two columns beside the pad that follow every stroke
drawing: own_digits.Drawing | None = None
with st.columns([3, 2], gap="large")[0] if mode in DATASET_MODES else st.container():
    if mode == "Mixed digits":
        digits.init_state("rt_n", digits.param_int("n", 5, 1, 10))
        digits.init_state("rt_shuffle", 0)
        how_many, again = st.columns([4, 1], vertical_alignment="bottom")
        n = how_many.slider("How many different digits", 1, 10, key="rt_n")
        if again.button("Shuffle", help="Other digits, other examples."):
            st.session_state["rt_shuffle"] += 1
        idx = digits.mixed_examples(y_all, n, st.session_state["rt_shuffle"])
    elif mode == "By label":
        digits.init_state("rt_label", 7)
        digits.init_state("rt_count", 3)
        digits.init_state("rt_other", 0)
        label = st.segmented_control(
            "Show me examples of the digit", list(range(10)), key="rt_label", wrap=True
        )
        count = st.slider("How many", 1, MAX_DIGITS, key="rt_count")
        if st.button("Other examples"):
            st.session_state["rt_other"] += 1
        if label is None:
            st.info("Pick a digit above.")
        else:
            idx = digits.examples_of(y_all, int(label), count, st.session_state["rt_other"])
    elif mode == "By index":
        digits.init_state("rt_idx", url_idx or digits.mixed_examples(y_all, 5, 0))
        st.session_state["rt_idx"] = [i for i in st.session_state["rt_idx"] if i < len(x_all)]
        idx = st.multiselect(
            "Digits (by their number in the set)",
            list(range(len(x_all))),
            key="rt_idx",
            max_selections=MAX_DIGITS,
            format_func=lambda i: f"#{i} (a {y_all[i]})",
            help="Type a number to find a digit; the label in brackets is what a person wrote.",
        )
    else:
        if mode == "Upload":
            with st.columns([3, 2], gap="large")[0]:
                own = own_digits.upload("rt_upload")
        elif mode == "Camera":
            with st.columns([3, 2], gap="large")[0]:
                own = own_digits.camera("rt_camera")
        else:
            # The pad, and beside it what follows every stroke (filled in once the model has run).
            pad_col, *live = st.columns([3, 2.4, 3.6], gap="medium")
            with pad_col:
                drawing = own_digits.pad("rt_pad")
                own = own_digits.drawn(drawing)
                if own is not None and spec.is_conditional:
                    labels = _ask_labels(own.names, own.digits)  # under the pad, in view
            if drawing.pre is not None:
                st.caption("How your drawing was made MNIST-like (the same steps as a photo):")
                own_digits.step_strip(drawing.pre.steps)
        if own is not None:
            chosen, names = own.digits, own.names
            if spec.is_conditional and labels is None:
                labels = _ask_labels(names, chosen)

if mode not in DATASET_MODES:
    st.query_params.pop("idx", None)  # a copied link must not bring back digits from the set
else:
    idx = [int(i) for i in idx][:MAX_DIGITS]
    digits.set_param("idx", idx)
    if idx:
        chosen = x_all[idx]
        labels = np.asarray(y_all[idx])
        names = [f"#{i}" for i in idx]

if chosen is None or len(chosen) == 0:
    st.stop()
model_labels = labels if spec.is_conditional else None

# ---- 3. the round trip, digit by digit
st.subheader("Encode, then decode")
if spec.is_vae:
    ctl = st.columns([1.6, 0.9, 1.3, 2.4], vertical_alignment="bottom")
    digits.init_state("rt_k", digits.param_int("k", 6, 1, 12))
    digits.init_state("rt_seed", digits.param_int("seed", 0, 0, 10**6))
    _revive("rt_k", "rt_seed", "rt_always", "rt_widen")
    digits.init_state("rt_always", bool(digits.param_int("always", 0, 0, 1)))
    # persist_state: they survive a visit to another page, and a widget that comes back (after
    # an upload) shows the value that is used, not its minimum.
    k = ctl[0].slider(
        "Samples of z per digit (K)",
        1,
        12,
        key="rt_k",
        persist_state="session",
        help="How many times z is drawn for each digit.\n\n" + glossary.tip("eps"),
    )
    seed = ctl[1].number_input(
        "Seed",
        0,
        10**6,
        key="rt_seed",
        persist_state="session",
        help="Which random samples: the same seed draws the same eps.",
    )
    digits.init_state("rt_widen", digits.param_int("widen", 1, 1, 5))
    if st.session_state["rt_widen"] not in WIDEN:
        st.session_state["rt_widen"] = 1
    widen = ctl[2].select_slider(
        "Sample wider",
        WIDEN,
        key="rt_widen",
        format_func=lambda v: "as the model" if v == 1 else f"× {v} sigma",
        help="Draw the samples of z this many times further from z_mean than the model does. "
        "A well-trained encoder is so sure that its samples decode nearly alike; a wider cloud "
        "shows what sampling changes.",
    )
    always = ctl[3].toggle(
        "Keras-example Sampling (always sample)",
        key="rt_always",
        persist_state="session",
        help="The keras-io VAE's Sampling layer ignores `training` and samples even at prediction.",
    )
    digits.set_param("k", k)
    digits.set_param("seed", seed)
    digits.set_param("always", int(always))
    digits.set_param("widen", widen)
else:
    k, seed, always, widen = 1, 0, False, 1
    st.caption(
        "No sampling here: a denoising autoencoder's encoder gives one latent vector per digit, "
        "and its decoder turns that vector (not the image) back into a picture. Run it twice, get "
        "the same picture. To see what it is for, try the **Denoise** page."
    )

try:
    digest = _digest(chosen, model_labels)
    rt = _round_trip(
        entry.name, stamp, digest, k, int(seed), bundle, chosen, model_labels, float(widen)
    )
    # What vae.predict(x) gives with the keras-io Sampling: z is sampled, so two calls differ.
    second = (
        _round_trip(entry.name, stamp, digest, 1, int(seed) + 1, bundle, chosen, model_labels)
        if always
        else None
    )
    # The conditional VAE keeps each digit's style and redraws it as every digit 0-9.
    restyled = explore.restyle(bundle, chosen, model_labels) if spec.is_conditional else None
except UserError as err:
    shared.show_error(err)
    st.stop()
trail = _follow(drawing.digest, rt.z_mean[0]) if drawing is not None and drawing.pre else None

if live:
    seen, mapped = live
    with seen:
        made = "decoder(z_mean)" if spec.is_vae else "decoder(encoder(x))"
        c = st.columns(2)
        c[0].image(
            digits.png(rt.inputs[0]),
            caption="what the encoder sees",
            width=112,
            output_format="PNG",
        )
        c[1].image(digits.png(rt.decoded_mean[0]), caption=made, width=112, output_format="PNG")
        if restyled is not None:
            st.caption("Your drawing's style, redrawn by the conditional VAE as every digit 0-9:")
            st.image(
                [digits.png(img, 2) for img in restyled[0]],
                caption=[str(i) for i in range(10)],
                width=44,
                output_format="PNG",
            )
    with mapped:
        if spec.latent_dim == 2:
            z_bg, y_bg = _background(entry.name, stamp, source, bundle, x_all, y_all)
            fig = figures.latent_map(
                z_bg,
                y_bg,
                highlight=rt.z_mean[:1],
                trail=trail,
                highlight_names=["you"],
                height=330,
            )
            fig.update_layout(showlegend=False)  # the big map below has the legend
            st.plotly_chart(fig, key="rt_live_map", config={"displayModeBar": False})
            st.caption("The star is your drawing's z_mean; the dotted line, where it was before.")
        else:
            st.caption(f"Its {spec.latent_dim} latent numbers are placed on the map further down.")


def err_text(value: float) -> str:
    return f"error {value:.4f}"


errors = rt.errors
for i in range(len(rt.inputs)):
    title = f"**Digit {i + 1}** · {shared.breakable(names[i], markdown=True)}"
    if labels is not None:
        title += f" · written as a {int(labels[i])}"
    with st.container(border=True):
        st.markdown(title)
        if not spec.is_vae:
            c = st.columns([1, 1, 3])
            c[0].image(
                digits.png(rt.inputs[i]), caption="input x", width="stretch", output_format="PNG"
            )
            c[1].image(
                digits.png(rt.decoded_mean[i]),
                caption=f"decoder(encoder(x)): {err_text(errors['decoder(z_mean)'][i])}",
                width="stretch",
                output_format="PNG",
            )
            with c[2]:
                st.caption(f"The encoder's latent vector ({spec.latent_dim} numbers):")
                st.plotly_chart(
                    _bars(rt.z_mean[i], None),
                    key=f"rt_bars_{i}",
                    config={"displayModeBar": False},
                )
            continue
        c = st.columns([1, 1, 1, 1, 2.4])
        c[0].image(
            digits.png(rt.inputs[i]), caption="input x", width="stretch", output_format="PNG"
        )
        c[1].image(
            digits.png(rt.decoded_mean[i]),
            caption=f"decoder(z_mean): {err_text(errors['decoder(z_mean)'][i])}",
            width="stretch",
            output_format="PNG",
        )
        if always:
            run2 = second.composite_training[i]
            run2_err = second.errors["vae(x, training=True)"][i]
            c[2].image(
                digits.png(rt.composite_training[i]),
                caption=f"vae.predict(x), call 1: {err_text(errors['vae(x, training=True)'][i])}",
                width="stretch",
                output_format="PNG",
            )
            c[3].image(
                digits.png(run2),
                caption=f"vae.predict(x), call 2: {err_text(run2_err)}",
                width="stretch",
                output_format="PNG",
            )
        else:
            c[2].image(
                digits.png(rt.composite_inference[i]),
                caption=f"vae.predict(x): {err_text(errors['vae(x, training=False)'][i])}",
                width="stretch",
                output_format="PNG",
            )
            c[3].image(
                digits.png(rt.composite_training[i]),
                caption=f"vae(x, training=True): {err_text(errors['vae(x, training=True)'][i])}",
                width="stretch",
                output_format="PNG",
            )
        with c[4]:
            st.caption(
                f"z_mean (bars) ± sigma (whiskers), {spec.latent_dim} numbers: where z is drawn from",
                help=glossary.tip("z_mean", "z_log_var"),
            )
            st.plotly_chart(
                _bars(rt.z_mean[i], rt.sigma[i]),
                key=f"rt_bars_{i}",
                config={"displayModeBar": False},
            )
        s = st.columns([5, 2])
        s[0].image(
            [digits.png(img, 2) for img in rt.decoded_samples[i]],
            caption=[f"z{j + 1}: {v:.4f}" for j, v in enumerate(errors["decoder(z)"][i])],
            width=64,
            output_format="PNG",
        )
        s[0].caption(
            f"{k} samples: decoder(z) with z = z_mean + "
            + ("sigma" if widen == 1 else f"{widen} × sigma, wider than the model draws,")
            + f" × eps, each with its error (mean {errors['decoder(z)'][i].mean():.4f})."
        )
        # Scaled to its own maximum so even a confident encoder's small spread is visible.
        std = rt.decoded_samples[i].std(axis=0)
        top = float(std.max())
        spread = std / top if top > 1e-6 else std
        s[1].image(
            digits.png(spread, 2),
            width=64,
            caption=f"spread: std up to {top:.3f}",
            output_format="PNG",
        )
        s[1].caption("White where the samples differ most.")
        if restyled is not None:
            st.image(
                [digits.png(img, 2) for img in restyled[i]],
                width=56,
                caption=[f"as a {j}" for j in range(len(restyled[i]))],
                output_format="PNG",
            )
            st.caption(
                "The same style (this digit's z_mean) with each label: the conditional VAE keeps "
                "the slant and thickness and draws the digit it is told."
            )

if spec.is_vae:
    call_in = "[x, label]" if spec.is_conditional else "x"
    st.markdown(
        f"`{bundle.composite.name}({call_in})` = `{composite_call}`: the encoder's `z` goes into the "
        "decoder's own `Input`, so each picture above is `decoder(...)` of some point z."
    )
    if always:
        st.markdown(
            "**keras-io Sampling:** `vae.predict(x)` samples z on *every* call: run it twice, get two "
            "different digits (columns 3 and 4). Prediction is as random as training."
        )
    else:
        st.markdown(
            "**Mult-VAE Sampling (this app's default):** `vae.predict(x)` returns "
            "`decoder(z_mean)` (the same picture as column 2). Only `vae(x, training=True)` samples "
            "z, which is what training needs."
        )

if spec.is_vae:
    with st.expander("Why is decoder(z_mean) not the same as vae(x)?", expanded=False):
        st.markdown(
            "The encoder does not give one point but a small cloud: the centre `z_mean` and a "
            "width `sigma = exp(z_log_var / 2)`. `decoder(z_mean)` always decodes the centre. "
            "`vae(x)` passes on `z`, which the **Sampling** layer draws from that cloud "
            "when sampling is on (`training=True`), so it lands somewhere else each time: the "
            "samples above, and their spread. Training *needs* the sampling (it teaches the "
            "decoder that nearby points mean the same digit). At prediction you want the best "
            "guess, the centre: **sample while training, use the mean at prediction** (Mult-VAE, "
            "Liang et al. 2018). The keras-io example's Sampling always samples, so its "
            "`vae.predict(x)` changes from call to call: switch the toggle above to see it."
        )

d_png, d_csv = st.columns(2)
d_png.download_button(
    "These round trips (PNG)",
    functools.partial(  # the file is made only when someone clicks
        images.to_png,
        images.tile(
            np.concatenate(
                [rt.inputs, rt.decoded_mean] + ([rt.composite_training] if spec.is_vae else [])
            ),
            ncols=len(rt.inputs),
        ),
        scale=2,
    ),
    icon=":material/download:",
    file_name=shared.file_name("round_trip", "digits", entry.name, seed if spec.is_vae else None),
    mime="image/png",
    key="rt_dl_png",
    help="A row of inputs, a row of decoder(z_mean)"
    + (" and a row of vae(x, training=True)" if spec.is_vae else "")
    + ", a column per digit.",
)
d_csv.download_button(
    "Their latent codes (CSV)",
    functools.partial(explore.codes_csv, rt, list(names), labels),
    icon=":material/download:",
    file_name=shared.file_name("round_trip", "latent_codes", entry.name, ext="csv"),
    mime="text/csv",
    key="rt_dl_csv",
    help="One row per digit: "
    + ("z_mean and sigma" if spec.is_vae else "the latent vector")
    + ", one column per latent number; opens in a spreadsheet.",
)
compare.section(entry, rt, chosen, labels, names)

# ---- 4. the latent map
st.subheader("Where your digits land in the latent space")
z_bg, y_bg = _background(entry.name, stamp, source, bundle, x_all, y_all)
d = spec.latent_dim
projection, dims = "dims", (0, 1)
if d > 2:
    m = st.columns([2, 1, 1])
    digits.init_state("rt_axes", "Principal axes (PCA)")
    axes = m[0].radio(
        "Axes",
        ["Principal axes (PCA)", "Two latent dimensions"],
        key="rt_axes",
        horizontal=True,
        help=glossary.tip("PCA"),
    )
    if axes == "Two latent dimensions":
        digits.init_state("rt_dx", 0)
        digits.init_state("rt_dy", 1)
        dx = m[1].selectbox("Across", list(range(d)), key="rt_dx", format_func=lambda j: f"z[{j}]")
        dy = m[2].selectbox("Up", list(range(d)), key="rt_dy", format_func=lambda j: f"z[{j}]")
        dims = (int(dx), int(dy))
        if dx == dy:
            st.warning("Pick two different dimensions.")
    else:
        projection = "pca"
if trail is None:
    fig = _map(entry.name, stamp, source, digest, dims, projection, z_bg, y_bg, rt)
else:
    fig = _map_figure(z_bg, y_bg, rt, dims, projection, trail)
st.plotly_chart(fig, key="rt_map", config={"displayModeBar": False})
what = "z_mean" if spec.is_vae else "latent vector"
note = (
    f"Each dot is the {what} of one of {len(z_bg)} digits from the "
    f"{digits.SOURCE_NAMES[source]}, coloured by what was written; "
    "the stars are your digits (numbered as above)."
)
if spec.is_vae:
    note += " Circles: 1 and 2 sigma around each star, where its z samples fall."
    if projection == "pca":
        note += " (On principal axes the circles are approximate.)"
if projection == "pca":
    note += f" The map shows the two directions in which the {d} numbers vary most (PCA)."
elif d > 2:
    note += f" Only z[{dims[0]}] and z[{dims[1]}] of {d} numbers are shown."
st.caption(note)
if spec.is_conditional:
    st.info(
        "This conditional VAE is *told* the digit, so its codes need not separate the digits: the "
        "colours overlap, and the code holds the *style* (slant, width, thickness)."
    )


# ---- 5. how likely is each digit: the ELBO is a bound
@st.cache_data(show_spinner="Drawing samples of z for each digit…", max_entries=32)
def _bound(name: str, stamp: float, digest: str, k: int, _bundle: ModelBundle, _x, _labels):
    """The ELBO and log p(x) for K = 1 ... k of the digits on view (one stream of draws each)."""
    return explore.likelihood_bound(_bundle, _x, _labels, k=k, seed=0)


@st.fragment
def bound_section(bundle: ModelBundle, x: np.ndarray, labels, digest: str) -> None:
    """Only the K asked for is drawn: 1,000 samples per digit cost a click ten times as much as
    100, and most visitors never ask (a larger K extends the same curve). `digest` names the
    digits on view, as for their round trip."""
    st.subheader("How likely is each digit? The ELBO is only a bound")
    choices, default = [1, 10, 100, 1000], 100
    # The section leaves the page while the pad is empty; the browser can bring the control back
    # without a value, so a value that is not a choice becomes the default again.
    if st.session_state.get("rt_bound_k") not in choices:
        st.session_state["rt_bound_k"] = default
    k = st.segmented_control(
        "Samples of z per digit (K)",
        choices,
        key="rt_bound_k",
        required=True,
        help=glossary.tip("log-likelihood", "importance sampling", "bound"),
    )
    if k not in choices:
        k = default
    report = _bound(entry.name, stamp, digest, k, bundle, x, labels)
    at = report.estimates[report.ks.index(k)].mean()
    st.plotly_chart(
        figures.bound_figure(report.ks, report.elbo, report.estimates, k),
        key="rt_bound",
        config={"displayModeBar": False},
    )
    st.caption(
        f"For your {len(x)} digits: the ELBO, what the VAE trains on, is "
        f"{report.elbo.mean():.1f} nats; log p(x), how likely the model finds the digits, "
        f"estimated with K = {k} samples of z each, is {at:.1f} nats. The ELBO is a lower bound "
        "on log p(x): the gap is how far the encoder's q(z|x) is from the true posterior, and "
        "more samples close in on log p(x)."
    )


if spec.is_vae:
    bound_section(bundle, rt.inputs, model_labels, digest)
