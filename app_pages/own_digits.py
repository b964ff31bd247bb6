"""A person's own digits: a photo or scan (upload), the camera, or a drawing on the pad. Each goes
through the same `vae_core.images` steps that make it look like MNIST, shown as a strip of pictures.

Used by the round trip and denoise pages; not a page itself.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import streamlit as st
from PIL import Image
from streamlit_drawable_canvas import st_canvas
from streamlit_image_coordinates import streamlit_image_coordinates

from app_pages import shared
from vae_core import images
from vae_core.errors import UserError

UPLOAD_TYPES = [suffix for f in images.FORMATS for suffix in images.SUFFIXES[f]]
PAD_SIDE = 280  # the drawing pad: 10x MNIST's 28 pixels
# A digit drawn across most of the pad is ~200 px tall; a 20 px pen is then as thick, for its
# size, as MNIST's (~2.5 px in its 20 px box).
PEN_WIDTH = 20
STEP_WIDTH = 84  # pixels per picture in a step strip
POINT_SIDE = 480  # the photo to click on, longer side in pixels
UNSURE = (
    "The lab is not sure it took the right mark for your digit: if the result is not what you "
    "wrote, click your digit on the photo below."
)
NO_DIGIT = (
    "No digit was found in {what}: hold a sheet with one dark digit (or a row of them) close "
    "to the camera, or choose another picture."
)


@dataclass
class OwnDigits:
    """Digits a person brought, MNIST-style, with a name for each (shown under it)."""

    digits: np.ndarray = field(default_factory=lambda: np.zeros((0, 28, 28), np.float32))
    names: list[str] = field(default_factory=list)


def _png(img: np.ndarray, side: int) -> bytes:
    """A step picture on a square of its own background, enlarged (nearest) towards `side` pixels
    so 28x28 stays crisp. Its shape is kept inside the square (a photo shows upright and as wide
    as it was taken), and every picture of a strip shows at the same size: shown at one width, a
    tall crop came out taller and larger than the rest."""
    longer = max(img.shape[:2])
    if img.ndim == 2:
        img = images.strip([img], side=longer, pad=0)
    return images.to_png(img, scale=max(1, side // longer))


def step_strip(steps: list[tuple[str, np.ndarray]], width: int = STEP_WIDTH) -> None:
    """The preprocessing steps as a row of captioned pictures."""
    st.image(
        [_png(img, width) for _, img in steps],
        caption=[s for s, _ in steps],
        width=width,
        output_format="PNG",
    )


def show_photo(photo: images.Photo, width: int = STEP_WIDTH) -> None:
    """How a photo became digits: the steps they share, then each digit's own, then the notes."""
    notes = list(photo.notes)
    for pre in photo.digits:
        notes += [n for n in pre.notes if n not in notes]
    if len(photo.digits) == 1:  # one digit: one strip from the photo to the 28x28 digit
        step_strip(photo.steps + photo.digits[0].steps, width)
    else:
        step_strip(photo.steps, width)
        for i, pre in enumerate(photo.digits):
            st.caption(f"Digit {i + 1} of {len(photo.digits)}, from the left:")
            step_strip(pre.steps, width)
    for note in notes:
        st.caption(note)


@st.cache_data(max_entries=64, show_spinner=False)
def prepare_photo(data: bytes, filename: str) -> images.Photo:
    """A photo's digits, MNIST-style (cached: the same file is not worked on twice)."""
    return images.prepare_digits(data, filename)


@st.cache_data(max_entries=64, show_spinner=False)
def pointed_digit(data: bytes, filename: str, point: tuple[float, float]) -> images.Preprocessed:
    """The mark nearest the point (x, y as shares of the photo) made MNIST-like (cached)."""
    return images.prepare_upload(data, filename, point)


def _thumbnail(page: np.ndarray, side: int) -> Image.Image:
    img = Image.fromarray(images.to_uint8(page))
    img.thumbnail((side, side))
    return img


def _choose_again(key: str) -> None:
    st.session_state[f"{key}_tries"] = st.session_state.get(f"{key}_tries", 0) + 1


def point_at(photo: images.Photo, data: bytes, filename: str, key: str) -> images.Photo:
    """The lab's digits, or the one mark the person clicks on the photo when the lab chose wrong
    (a doodle beside the digit, a digit too small beside a large mark). Offered open when unsure."""
    if photo.page is None or not photo.digits:
        return photo
    if photo.unsure:
        st.warning(UNSURE)
    digest = hashlib.sha1(data).hexdigest()[:12]  # a new photo starts without a click
    on = st.toggle(
        "Point at the digit myself",
        value=photo.unsure,
        key=f"{key}_point_on_{digest}",
        help="Click the digit you wrote on the photo; the lab then takes that mark, whatever "
        "it would have chosen.",
    )
    if not on:
        return photo
    click_key = f"{key}_point_{digest}_{st.session_state.get(f'{key}_tries', 0)}"
    click = streamlit_image_coordinates(
        _thumbnail(photo.page, POINT_SIDE),
        key=click_key,
        image_format="JPEG",
        jpeg_quality=85,
        cursor="crosshair",
    )
    if not click:
        st.caption("Click the middle of your digit on the photo.")
        return photo
    point = (round(click["x"] / click["width"], 3), round(click["y"] / click["height"], 3))
    try:
        pre = pointed_digit(data, filename, point)
    except UserError as err:
        shared.show_error(err)
        return photo
    st.caption("The mark you clicked, made MNIST-like:")
    step_strip(pre.steps)
    shown = photo.notes + [n for d in photo.digits for n in d.notes]
    for note in pre.notes:
        if note not in shown:
            st.caption(note)
    st.button(
        "Let the lab choose again",
        key=f"{key}_choose_again",
        icon=":material/undo:",
        on_click=_choose_again,
        args=(key,),
    )
    return images.Photo(digits=[pre], notes=pre.notes, page=photo.page)


def digit_names(photo: images.Photo, name: str) -> list[str]:
    """`name` for a photo of one digit; "name #1", "name #2", ... for the digits of a row."""
    if len(photo.digits) == 1:
        return [name]
    return [f"{name} #{i + 1}" for i in range(len(photo.digits))]


def from_photo(data: bytes, filename: str, what: str, key: str) -> OwnDigits | None:
    """One photo's digits with their steps shown; one sentence (and None) if it has none."""
    try:
        photo = prepare_photo(data, filename)
    except UserError as err:
        shared.show_error(err)
        return None
    if not photo.digits:
        st.warning(NO_DIGIT.format(what=what))
        return None
    # A file name is shown whole, wrapping only after "_", "-" or ".".
    st.caption(f"How {shared.breakable(what, markdown=True)} was made MNIST-like:")
    show_photo(photo)
    photo = point_at(photo, data, filename, key)
    return OwnDigits(photo.digit_array(), digit_names(photo, what))


def upload(key: str) -> OwnDigits | None:
    """One uploaded photo or scan of a digit, or of a row of digits."""
    file = st.file_uploader(
        "A photo or scan of a digit, or of a row of digits (a date, a phone number)",
        type=UPLOAD_TYPES,
        key=key,
        help="Dark ink on light paper works best; each digit is cropped, scaled and centred as MNIST did.",
    )
    if file is None:
        st.info("Upload a picture of a digit: dark ink on light paper works best.")
        return None
    return from_photo(file.getvalue(), file.name, file.name, key)


def camera(key: str) -> OwnDigits | None:
    """A photo from the computer's or phone's camera, through the same steps as an upload."""
    shot = st.camera_input(
        "Hold a sheet with a digit (or a row of digits) up to the camera",
        key=key,
        help="Write big and dark; the digits are found, cropped and centred as MNIST did.",
    )
    if shot is None:
        return None
    return from_photo(shot.getvalue(), "camera.jpg", "the photo", key)


@dataclass
class Drawing:
    """What the pad holds: the digit made MNIST-style, and its steps (None while the pad is empty)."""

    pre: images.Preprocessed | None
    digest: str = ""  # changes with every stroke


def pad(key: str) -> Drawing:
    """A black pad with a white pen of MNIST's width; every finished stroke reruns the page."""
    st.session_state.setdefault(f"{key}_n", 0)
    if st.button("Clear the pad", key=f"{key}_clear", icon=":material/ink_eraser:"):
        st.session_state[f"{key}_n"] += 1  # a new key gives a fresh, empty pad
    result = st_canvas(
        stroke_width=PEN_WIDTH,
        stroke_color="#FFFFFF",
        background_color="#000000",
        height=PAD_SIDE,
        width=PAD_SIDE,
        drawing_mode="freedraw",
        update_streamlit=True,
        return_image_data=True,
        key=f"{key}_{st.session_state[f'{key}_n']}",
    )
    strokes = (result.json_data or {}).get("objects") or []
    pixels = result.image_data if strokes else None
    if pixels is None:
        return Drawing(None)
    pre = images.to_mnist(images.decode_pixels(pixels))
    return Drawing(pre, hashlib.sha1(pre.digit.tobytes()).hexdigest())


def drawn(drawing: Drawing) -> OwnDigits | None:
    """The pad's digit, or one sentence saying what to do while there is none."""
    if drawing.pre is None:
        st.info(
            "Draw a digit on the black pad with the mouse or a finger; "
            "the page follows every stroke."
        )
        return None
    if not drawing.pre.digit.any():
        st.warning("The pad is almost empty: draw a larger digit.")
        return None
    return OwnDigits(drawing.pre.digit[None], ["your drawing"])
