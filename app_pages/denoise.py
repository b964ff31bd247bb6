"""Denoise: upload a digit (or take test digits) -> add noise -> clean it with a DAE -> compare.

The page reads widgets, asks `vae_core` for the work (images.prepare_digits, data.add_noise,
explore.denoise_report) and draws the result; nothing here knows how a model works.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from app_pages import own_digits, shared
from vae_core import data, explore, images, kinds
from vae_core.errors import UserError
from vae_core.specs import NOISE_KINDS, NOISES

MAX_DIGITS = 12  # columns of the comparison; more would shrink each digit to a smudge
INPUTS = ("Test digits", "My own images", "Draw", "Camera")
NOISE_HELP = {
    "keras": "Adds random grey of average 0.5 to every pixel, as the old Keras denoising example did; "
    "the strength slider does not apply.",
    "gaussian": "Adds random speckle to every pixel; the strength is how large it is (its spread).",
    "salt_pepper": "Turns a fraction of the pixels pure white or pure black; the strength is that fraction.",
    "mask": "Turns a fraction of the pixels black, as if ink were rubbed out; the strength is that fraction.",
}
# Kinds that can clean up an image on their own (a conditional VAE would need each digit's label).
DAE_KINDS = tuple(k for k in kinds.for_page("denoise") if not kinds.get(k).variational)
VAE_KINDS = tuple(k for k in kinds.for_page("denoise") if kinds.get(k).variational)
THUMB = 112  # pixels per digit in the PNGs (the page fits them to their column)


def _png(img: np.ndarray, side: int = THUMB) -> bytes:
    """A crisp enlargement: whole-pixel nearest-neighbour scaling, so 28x28 stays sharp."""
    scale = max(1, side // max(img.shape[:2]))
    return images.to_png(img, scale=scale)


def _test_digits(source: str, n: int, draw: int) -> tuple[np.ndarray, list[str]]:
    """n test digits (float, (n,28,28)) picked by `draw`, and a caption for each."""
    if source == "mnist":
        ds = data.load_dataset("mnist", allow_download=False)
        x, y = ds.x_test, ds.y_test
    else:
        x, y = data.load_sample()
    idx = np.random.default_rng(draw).choice(len(x), size=n, replace=False)
    return data.to_float(x[idx])[..., 0], [f"#{i}, a {y[i]}" for i in idx]


def _pick_model(
    label: str, entries, default_name: str | None, key: str, help_: str, optional: bool
):
    names = [e.name for e in entries]
    options = (["(none)"] if optional else []) + names
    index = options.index(default_name) if default_name in options else 0
    choice = st.selectbox(label, options, index=index, key=key, help=help_,
                          format_func=lambda n: n if n == "(none)" else
                          f"{n} — {kinds.label(entries[names.index(n)].kind)}")  # fmt: skip
    return None if choice == "(none)" else entries[names.index(choice)]


def _load(entry):
    try:
        return shared.load_bundle(entry)
    except UserError as err:
        st.error(str(err))
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
active = shared.active_entry()
daes = shared.usable_entries(DAE_KINDS)
vaes = shared.usable_entries(VAE_KINDS)
col_dae, col_vae = st.columns(2)
with col_dae:
    if daes:
        dae_entry = _pick_model(
            "Denoising autoencoder", daes, active.name if active else None, "dn_dae",
            "The model that removes the noise.", optional=False,
        )  # fmt: skip
    else:
        dae_entry = None
        st.info(
            "There is no denoising autoencoder yet. On the **Train** page choose "
            "*Convolutional denoising autoencoder* and start a run (a few minutes on the sample); "
            "it appears here when it finishes."
        )
        st.page_link("app_pages/train.py", label="Go to Train", icon=":material/model_training:")
with col_vae:
    if vaes:
        default_vae = active.name if active and active.kind in VAE_KINDS else vaes[0].name
        vae_entry = _pick_model(
            "Compare with a VAE", vaes, default_vae, "dn_vae",
            "A VAE's reconstruction of the same noisy input, to compare. "
            "(The conditional VAE is left out: it needs to be told the digit.)", optional=True,
        )  # fmt: skip
    else:
        vae_entry = None
        st.caption("Train an MLP or convolutional VAE to compare its reconstruction here too.")

# ---------------------------------------------------------------- input
st.subheader("1. The digits")
choice = st.radio(
    "Digits to clean", INPUTS, horizontal=True, key="dn_input",
    help="Test digits come with the app; your own images, drawings and photos are made to look "
    "like MNIST first.",
)  # fmt: skip
clean: np.ndarray | None = None
noisy: np.ndarray | None = None
names: list[str] = []
already_noisy = False

if choice == "My own images":
    files = st.file_uploader(
        "Upload photos or drawings of digits (a digit, or a row of digits, per image)",
        type=own_digits.UPLOAD_TYPES, accept_multiple_files=True, key="dn_files",
        help="Dark ink on light paper or light on dark both work; the app finds each digit, then "
        "crops, scales and centres it as MNIST did.",
    )  # fmt: skip
    already_noisy = st.checkbox(
        "My images are already noisy (add no noise)", key="dn_already_noisy",
        help="Use this for a scan or photo that is noisy by itself. There is then no clean "
        "original, so the page cannot score the result; judge it by eye.",
    )  # fmt: skip
    if len(files or []) > MAX_DIGITS:
        st.warning(f"Showing the first {MAX_DIGITS} of your {len(files)} images.")
    found: list[np.ndarray] = []
    for f in (files or [])[:MAX_DIGITS]:
        try:
            photo = own_digits.prepare_photo(f.getvalue(), f.name)
        except UserError as err:
            st.error(str(err))
            continue
        found += list(photo.digit_array())
        names += own_digits.digit_names(photo, f.name)
        with st.expander(f"How **{f.name}** was made MNIST-like", expanded=len(files) == 1):
            own_digits.show_photo(photo, 96)
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
    sources = {"sample": "The bundled sample (500 MNIST test digits)"}
    if data.dataset_available("mnist"):
        sources["mnist"] = "The MNIST test set (10,000 digits)"
    source = c1.selectbox("From", list(sources), format_func=sources.get, key="dn_source")
    n = c2.slider("How many", 1, MAX_DIGITS, 8, key="dn_count")
    if c3.button("Other digits", key="dn_redraw"):
        st.session_state["dn_draw"] = st.session_state.get("dn_draw", 0) + 1
    try:
        clean, names = _test_digits(source, n, st.session_state.get("dn_draw", 0))
    except UserError as err:
        st.error(str(err))

# ---------------------------------------------------------------- noise
st.subheader("2. The noise")
c1, c2, c3 = st.columns([2, 2, 1])
kind = c1.selectbox("Kind of noise", NOISE_KINDS, format_func=NOISES.get, key="dn_kind",
                    disabled=already_noisy, help="How the digits are spoiled before the models see them.")  # fmt: skip
strength = c2.slider("Strength", 0.0, 1.0, 0.3, 0.05, key="dn_strength",
                     disabled=already_noisy or kind == "keras", help=NOISE_HELP[kind])  # fmt: skip
seed = c3.number_input("Seed", 0, 1_000_000, 0, key="dn_seed", disabled=already_noisy,
                       help="The same seed gives the same noise; change it for fresh noise.")  # fmt: skip
if already_noisy:
    st.caption("No noise is added: your images go to the models as they are.")
elif kind == "keras":
    st.caption(NOISE_HELP["keras"])

# ---------------------------------------------------------------- results
st.subheader("3. Cleaned up")
if clean is None:
    st.stop()
try:
    noisy = clean if already_noisy else data.add_noise(clean, kind, strength, seed=int(seed))
    models = {}
    for role, entry in (("DAE", dae_entry), ("VAE", vae_entry)):
        if entry is not None and (bundle := _load(entry)) is not None:
            models[role] = bundle
    report = explore.denoise_report(models, noisy, None if already_noisy else clean)
except UserError as err:
    st.error(str(err))
    st.stop()

# (key, label, the model's name or "", images)
rows = [("noisy", "Noisy input", "", report.noisy)]
if "DAE" in report.outputs:
    rows.append(("DAE", "Denoised by the DAE", dae_entry.name, report.outputs["DAE"]))
if "VAE" in report.outputs:
    rows.append(("VAE", "Redrawn by the VAE", vae_entry.name, report.outputs["VAE"]))
if report.clean is not None:
    rows.append(("clean", "Clean original", "", report.clean))

if report.psnr:
    st.markdown(
        "Each picture is scored against the clean original. Under each one: **PSNR** in dB "
        "(higher = closer) · **SSIM** (1 = the same shapes and strokes)."
    )
    cols = st.columns(len(report.psnr))
    base = float(np.mean(report.psnr["noisy"]))
    for col, (key, label, model, _) in zip(cols, rows, strict=False):
        mean_psnr = float(np.mean(report.psnr[key]))
        col.metric(f"{label}: PSNR", f"{mean_psnr:.1f} dB",
                   delta=None if key == "noisy" else f"{mean_psnr - base:+.1f} dB vs noisy",
                   help=(f"Model {model}. " if model else "") + "Average over the digits; "
                   f"SSIM {float(np.mean(report.ssim[key])):.3f}.")  # fmt: skip
else:
    st.info(
        "Your images are treated as already noisy, so there is no clean original to score "
        "against: compare the pictures by eye."
    )
if not models:
    st.warning("No model is chosen, so there is only the noisy input to show.")

count = len(report.noisy)
# At least 8 digit columns, so one or two uploads are not stretched across the page.
widths = [1.2] + [1.0] * max(count, 8)
for key, label, model, imgs in rows:
    cols = st.columns(widths, vertical_alignment="center")
    cols[0].markdown(f"**{label}**" + (f"  \n:gray[{model}]" if model else ""))
    for i in range(count):
        shows_name = key == "clean" or (key == "noisy" and not report.psnr)
        caption = names[i] if shows_name else _caption(report, key, i)
        cols[i + 1].image(_png(imgs[i]), caption=caption or None, width="stretch")

grid = images.tile(np.concatenate([imgs for *_, imgs in rows]), ncols=count)
st.download_button(
    "⬇️ Download this comparison (PNG)", images.to_png(grid, scale=4),
    file_name="vae_lab_denoise.png", mime="image/png", key="dn_download",
    help="One image: a row per picture above (noisy, denoised, ..., clean), a column per digit.",
)  # fmt: skip
