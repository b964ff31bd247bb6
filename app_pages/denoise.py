"""Denoise: upload a digit (or take test digits) -> add noise -> clean it with a DAE -> compare.

The page reads widgets, asks `vae_core` for the work (images.prepare_digits, data.add_noise,
explore.denoise_report) and draws the result; nothing here knows how a model works.
"""

from __future__ import annotations

import functools

import numpy as np
import streamlit as st

from app_pages import digits, glossary, own_digits, shared, wiring
from vae_core import data, explore, images, kinds
from vae_core.errors import UserError
from vae_core.specs import NOISE_KINDS, NOISES
from vae_core.store import StoreEntry

MAX_DIGITS = 12  # columns of the comparison; more would shrink each digit to a smudge
INPUTS = ("Test digits", "My own images", "Draw", "Camera")
# The same kinds mid-sentence ("it never saw ..."); "none" is a clean digit.
NOISE_WORDS = {
    "none": "clean digits",
    "keras": "the grey fog",
    "gaussian": "Gaussian speckle",
    "salt_pepper": "salt & pepper",
    "mask": "dropped pixels",
}
NOISE_HELP = {
    "keras": "Adds random grey of average 0.5 to every pixel, as the old Keras denoising example did; "
    "the strength slider does not apply.",
    "gaussian": "Adds random speckle to every pixel; the strength is how large it is (its spread).",
    "salt_pepper": "Turns a fraction of the pixels pure white or pure black; the strength is that fraction.",
    "mask": "Turns a fraction of the pixels black, as if ink were rubbed out; the strength is that fraction.",
}
# The VAEs to compare with (the denoisers are the sidebar's list; a conditional VAE would need labels).
VAE_KINDS = tuple(k for k in kinds.for_page("denoise") if kinds.get(k).variational)
NO_VAE = "(none)"
CHAINED = "DAE, then VAE"  # the VAE redrawing the denoiser's output, a row of its own
# Why the VAE's row alone can show one blurry digit for many fogged ones; said under its rows.
VAE_LESSON = (
    "The VAE above never saw noise while training: it redraws the nearest digit it knows, so "
    "from a noisy input it often draws a different digit"
)


def vae_after_dae(report: explore.DenoiseReport) -> str:
    """What the row below the VAE shows, said only as far as it is measured: with a clean original,
    on how many digits the VAE came closer given the denoiser's clean-up; without one (your own
    digits), no promise."""
    if CHAINED not in report.outputs:
        return "."
    if not report.psnr:
        return (
            "; below, it redraws the denoiser's clean-up instead. Your digits come with nothing "
            "clean to measure it by, so judge by eye: it may still draw a neighbouring digit."
        )
    closer = int(np.sum(report.psnr[CHAINED] > report.psnr["VAE"]))
    return (
        f"; below, given the denoiser's clean-up instead, it comes closer to the original on "
        f"{closer} of {len(report.noisy)} digits (PSNR)."
    )


THUMB = 112  # pixels per digit in the PNGs (the page fits them to their column)


def _png(img: np.ndarray, side: int = THUMB) -> bytes:
    """A crisp enlargement: whole-pixel nearest-neighbour scaling, so 28x28 stays sharp."""
    scale = max(1, side // max(img.shape[:2]))
    return images.to_png(img, scale=scale)


def _test_digits(x: np.ndarray, y: np.ndarray, n: int, draw: int) -> tuple[np.ndarray, list[str]]:
    """n test digits (float, (n,28,28)) picked by `draw`, and a caption for each."""
    idx = np.random.default_rng(draw).choice(len(x), size=n, replace=False)
    return data.to_float(x[idx])[..., 0], [f"#{i}, a {y[i]}" for i in idx]


def _pick_vae(entries, default_name: str) -> StoreEntry | None:
    """The VAE to compare with (optional; the denoiser itself is the sidebar's choice)."""
    names = [e.name for e in entries]
    options = [NO_VAE, *names]
    choice = st.selectbox(
        "Compare with a VAE",
        options,
        index=options.index(default_name),
        key="dn_vae",
        help="A VAE's reconstruction of the same noisy input, to compare. "
        "(The conditional VAE is left out: it needs to be told the digit.)",
        format_func=lambda n: (
            n if n == NO_VAE else f"{n} — {kinds.label(entries[names.index(n)].kind)}"
        ),
    )
    return None if choice == NO_VAE else entries[names.index(choice)]


def _load(entry):
    try:
        return shared.load_bundle(entry)
    except UserError as err:
        st.error(str(err))
        return None


def _learned(seen: explore.NoiseSeen | None) -> str:
    """One line under the picker: which noise this denoiser met in training."""
    if seen is None:
        return (
            "Its file does not say which noise it learned; older denoisers learned the grey fog "
            "of the Keras example."
        )
    words = [NOISE_WORDS[k] for k in seen.kinds if k != "none"]
    listed = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
    if seen.mixed:
        return (
            f"Learned to remove {listed}, each at strengths from 0 to {seen.strength:g}, and to "
            "leave clean digits alone."
        )
    if seen.kinds == ("keras",):
        return "Learned to remove the grey fog of the Keras example, and nothing else."
    return f"Learned to remove {listed} at strength {seen.strength:g}, and nothing else."


def _never_saw(seen: explore.NoiseSeen | None, kind: str, strength: float) -> str | None:
    """One sentence when the chosen noise is one the denoiser never met in training, else None."""
    if seen is None:
        if kind == "keras":
            return None
        return (
            f"This denoiser most likely never saw {NOISE_WORDS[kind]} while training, so expect "
            "it to make the digits worse, not better."
        )
    if kind not in seen.kinds:
        return (
            f"This denoiser never saw {NOISE_WORDS[kind]} while training (only "
            f"{' and '.join(NOISE_WORDS[k] for k in seen.kinds)}), so expect it to make the "
            "digits worse, not better."
        )
    if kind != "keras" and strength > seen.strength + 1e-6:
        return (
            f"This denoiser learned {NOISE_WORDS[kind]} only up to strength {seen.strength:g}; "
            f"at {strength:g} expect it to miss much of the noise."
        )
    return None


def _caption(report: explore.DenoiseReport, key: str, i: int) -> str:
    if key not in report.psnr:
        return ""
    # SSIM a hair below 0 reads as 0.00: "-0.00" would only puzzle, and it keeps captions short.
    return f"{report.psnr[key][i]:.1f} dB · {max(report.ssim[key][i], 0.0):.2f}"


st.title("Denoise")
st.markdown(
    "A **denoising autoencoder** (DAE) was shown noisy digits and asked to give back the clean ones. "
    "Here you add noise to a digit and watch it clean it up. A **VAE**, trained on clean digits only, "
    "is there to compare: it redraws the digit it *thinks* it sees."
)

# ---------------------------------------------------------------- models
dae_entry = shared.active_entry()  # the sidebar lists the denoisers
vaes = shared.usable_entries(VAE_KINDS)
col_dae, col_vae = st.columns(2)
with col_dae:
    seen = None
    if dae_entry is not None:
        st.markdown(
            f"**Denoising autoencoder:** {shared.breakable(dae_entry.name, markdown=True)}",
            help="The model that removes the noise; pick another in the sidebar.",
        )
        seen = explore.noise_seen(dae_entry.meta)
        st.caption(_learned(seen))
    else:
        st.info(
            "There is no denoising autoencoder yet. On the **Train** page choose "
            "*Convolutional denoising autoencoder* and start a run (a few minutes on the sample); "
            "it appears here when it finishes."
        )
        st.page_link("app_pages/train.py", label="Go to Train", icon=":material/model_training:")
with col_vae:
    if vaes:
        vae_entry = _pick_vae(vaes, shared.best_of("round_trip", vaes))
    else:
        vae_entry = None
        st.caption("Train an MLP or convolutional VAE to compare its reconstruction here too.")

dae_bundle = None if dae_entry is None else _load(dae_entry)
if dae_bundle is not None:
    label = "How the denoiser is wired: its decoder's Input is the latent vector, not the image"
    with st.expander(label):
        dot, _ = wiring.wiring(dae_entry.name, dae_entry.path.stat().st_mtime, dae_bundle)
        diagram, words = st.columns([1, 1], gap="large")
        diagram.graphviz_chart(dot, width="stretch")
        words.markdown(
            "The denoiser is two Keras models wired together, like the VAE on the **Round trip** "
            "page. The noisy image goes into the *encoder*, which squeezes it into "
            f"{dae_bundle.spec.latent_dim} numbers, the `latent_vector`. The *decoder* has its own "
            "`Input`, `decoder_input`, and what goes in there is **that vector, not the image**: "
            f"`{dae_bundle.composite.name} = decoder(encoder(x))`. Whatever noise the encoder "
            "cannot squeeze into those numbers never reaches the decoder, which is why the output "
            "comes back clean."
        )

# ---------------------------------------------------------------- input
st.subheader("1. The digits")
choice = st.radio(
    "Digits to clean",
    INPUTS,
    horizontal=True,
    key="dn_input",
    help="Test digits come with the app; your own images, drawings and photos are made to look "
    "like MNIST first.",
)
clean: np.ndarray | None = None
noisy: np.ndarray | None = None
names: list[str] = []
already_noisy = False

if choice == "My own images":
    files = st.file_uploader(
        "Upload photos or drawings of digits (a digit, or a row of digits, per image)",
        type=own_digits.UPLOAD_TYPES,
        accept_multiple_files=True,
        key="dn_files",
        help="Dark ink on light paper or light on dark both work; the app finds each digit, then "
        "crops, scales and centres it as MNIST did.",
    )
    if len(files or []) > MAX_DIGITS:
        st.warning(f"Showing the first {MAX_DIGITS} of your {len(files)} images.")
    found: list[np.ndarray] = []
    for i, f in enumerate((files or [])[:MAX_DIGITS]):
        try:
            photo = own_digits.prepare_photo(f.getvalue(), f.name)
        except UserError as err:
            st.error(str(err))
            continue
        open_it = len(files) == 1 or photo.unsure
        with st.expander(f"How **{f.name}** was made MNIST-like", expanded=open_it):
            own_digits.show_photo(photo, 96)
            photo = own_digits.point_at(photo, f.getvalue(), f.name, f"dn_files_{i}")
        found += list(photo.digit_array())
        names += own_digits.digit_names(photo, f.name)
    if len(found) > MAX_DIGITS:
        st.warning(f"Showing the first {MAX_DIGITS} of the {len(found)} digits in your images.")
        found, names = found[:MAX_DIGITS], names[:MAX_DIGITS]
    if not files:
        st.info("Upload one or more images of handwritten digits, or choose *Test digits* above.")
    if found:
        clean = np.stack(found).astype(np.float32)
elif choice == "Draw":
    pad_col, steps_col = st.columns([1, 2])
    with pad_col:
        drawing = own_digits.pad("dn_pad")
    with steps_col:
        own = own_digits.drawn(drawing)
        if drawing.pre is not None:
            st.caption("How your drawing was made MNIST-like:")
            own_digits.step_strip(drawing.pre.steps)
    if own is not None:
        clean, names = own.digits, own.names
elif choice == "Camera":
    own = own_digits.camera("dn_camera")
    if own is not None:
        clean, names = own.digits, own.names
else:
    c1, c2, c3 = st.columns([2, 2, 1], vertical_alignment="bottom")
    with c1:  # the same choice as on the other pages (the sample, or the MNIST test set)
        _, x_all, y_all = digits.source_picker("dn_source", "From")
    n = c2.slider("How many", 1, MAX_DIGITS, 8, key="dn_count")
    if c3.button("Other digits", key="dn_redraw"):
        st.session_state["dn_draw"] = st.session_state.get("dn_draw", 0) + 1
    try:
        clean, names = _test_digits(x_all, y_all, n, st.session_state.get("dn_draw", 0))
    except UserError as err:
        st.error(str(err))

# ---------------------------------------------------------------- noise
st.subheader("2. The noise")
if choice != INPUTS[0]:
    # A person's own digits are real input, noisy or not: noise is added only when asked for.
    already_noisy = not st.toggle(
        "Add noise to my digits",
        key="dn_add_noise",
        help="Off: your digits go to the models as they are (a noisy scan is denoised as it is; "
        "there is no clean original to score against, so judge by eye). On: noise is added, and "
        "your digit is the clean original the results are scored against.",
    )
c1, c2, c3 = st.columns([2, 2, 1])
kind = c1.selectbox(
    "Kind of noise",
    NOISE_KINDS,
    format_func=NOISES.get,
    key="dn_kind",
    disabled=already_noisy,
    help="How the digits are spoiled before the models see them.",
)
strength = c2.slider(
    "Strength",
    0.0,
    1.0,
    0.3,
    0.05,
    key="dn_strength",
    disabled=already_noisy or kind == "keras",
    help=NOISE_HELP[kind],
)
seed = c3.number_input(
    "Seed",
    0,
    1_000_000,
    0,
    key="dn_seed",
    disabled=already_noisy,
    help="The same seed gives the same noise; change it for fresh noise.",
)
if already_noisy:
    st.caption("No noise is added: your images go to the models as they are.")
elif kind == "keras":
    st.caption(NOISE_HELP["keras"])
warn = None if dae_entry is None or already_noisy else _never_saw(seen, kind, float(strength))
if warn:
    st.warning(warn)
    st.page_link(
        "app_pages/train.py",
        label=f"Train a denoiser on {NOISE_WORDS[kind]}",
        icon=":material/model_training:",
        query_params={"kind": dae_entry.kind, "noise": kind, "strength": f"{float(strength):g}"},
    )

# ---------------------------------------------------------------- results
st.subheader("3. Cleaned up")
if clean is None:
    st.stop()
try:
    noisy = clean if already_noisy else data.add_noise(clean, kind, strength, seed=int(seed))
    models = {} if dae_bundle is None else {"DAE": dae_bundle}
    if vae_entry is not None and (bundle := _load(vae_entry)) is not None:
        models["VAE"] = bundle
    report = explore.denoise_report(models, noisy, None if already_noisy else clean)
    if "DAE" in models and "VAE" in models:
        report = explore.chain_report(report, CHAINED, models["VAE"], after="DAE")
except UserError as err:
    st.error(str(err))
    st.stop()

# (key, label, the model's name or "", images)
rows = [("noisy", "Your digits, as they are" if already_noisy else "Noisy input", "", report.noisy)]
if "DAE" in report.outputs:
    rows.append(("DAE", "Denoised by the DAE", dae_entry.name, report.outputs["DAE"]))
if "VAE" in report.outputs:
    rows.append(("VAE", "Redrawn by the VAE", vae_entry.name, report.outputs["VAE"]))
if CHAINED in report.outputs:
    rows.append(
        (CHAINED, "The VAE, given the DAE's output", vae_entry.name, report.outputs[CHAINED])
    )
if report.clean is not None:
    rows.append(("clean", "Clean original", "", report.clean))

if report.psnr:
    st.markdown(
        "Each picture is scored against the clean original. Under each one: **PSNR** in dB "
        "(higher = closer) · **SSIM** (1 = the same shapes and strokes).",
        help=glossary.tip("PSNR", "SSIM"),
    )
    cols = st.columns(len(report.psnr))
    base = float(np.mean(report.psnr["noisy"]))
    for col, (key, label, model, _) in zip(cols, rows, strict=False):
        mean_psnr = float(np.mean(report.psnr[key]))
        col.metric(
            f"{label}: PSNR",
            f"{mean_psnr:.1f} dB",
            delta=None if key == "noisy" else f"{mean_psnr - base:+.1f} dB vs noisy",
            help=(f"Model {model}. " if model else "") + "Average over the digits; "
            f"SSIM {float(np.mean(report.ssim[key])):.3f}.",
        )
else:
    st.info(
        "Your digits go to the models as they are, so there is no clean original to score "
        "against: compare the pictures by eye (or switch on *Add noise to my digits*)."
    )
if not models:
    st.warning("No model is chosen, so there is only the noisy input to show.")

count = len(report.noisy)
# At least 8 digit columns, so one or two uploads are not stretched across the page.
widths = [1.2] + [1.0] * max(count, 8)
for key, label, model, imgs in rows:
    cols = st.columns(widths, vertical_alignment="center")
    cols[0].markdown(f"**{label}**" + (f"  \n:gray[{model}]" if model else ""))
    if key == "VAE":
        st.caption(VAE_LESSON + vae_after_dae(report))
    for i in range(count):
        shows_name = key == "clean" or (key == "noisy" and not report.psnr)
        caption = names[i] if shows_name else _caption(report, key, i)
        cols[i + 1].image(
            _png(imgs[i]), caption=caption or None, width="stretch", output_format="PNG"
        )

grid = images.tile(np.concatenate([imgs for *_, imgs in rows]), ncols=count)
st.download_button(
    "Download this comparison (PNG)",
    functools.partial(images.to_png, grid, scale=4),  # made only when clicked
    icon=":material/download:",
    file_name=shared.file_name(
        "denoise",
        "as_is" if already_noisy else kind if kind == "keras" else f"{kind}_{strength:.2f}",
        dae_entry.name if dae_entry else None,
        None if already_noisy else int(seed),
    ),
    mime="image/png",
    key="dn_download",
    help="One image: a row per picture above (noisy, denoised, ..., clean), a column per digit.",
)
