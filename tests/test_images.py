"""Uploads of every awkward kind -> an MNIST-style digit or a clear ImageError; grids and PNGs."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from tests.hostile import encode, seven
from vae_core.errors import ImageError
from vae_core.images import (
    MAX_BYTES,
    Preprocessed,
    decode_image,
    decode_pixels,
    prepare_upload,
    strip,
    tile,
    to_mnist,
    to_png,
    to_uint8,
)

# --- building test images in memory -----------------------------------------------------------


def com(digit: np.ndarray) -> tuple[float, float]:
    ys, xs = np.indices(digit.shape)
    m = digit.sum()
    return float((ys * digit).sum() / m), float((xs * digit).sum() / m)


def bbox(digit: np.ndarray, level: float = 0.05) -> tuple[int, int]:
    rows = np.flatnonzero(digit.max(axis=1) > level)
    cols = np.flatnonzero(digit.max(axis=0) > level)
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


def assert_mnist_like(pre: Preprocessed) -> None:
    d = pre.digit
    assert d.shape == (28, 28) and d.dtype == np.float32
    assert np.isfinite(d).all() and d.min() >= 0.0 and d.max() <= 1.0
    assert d.max() > 0.9  # real ink
    assert d[0].max() == 0 and d[-1].max() == 0 and d[:, 0].max() == 0  # dark margins
    cy, cx = com(d)
    assert abs(cy - 14) <= 1 and abs(cx - 14) <= 1
    assert max(bbox(d)) in (19, 20, 21)


def assert_human(err: pytest.ExceptionInfo) -> None:
    msg = str(err.value)
    assert "Traceback" not in msg and "Error" not in msg
    assert msg.endswith(".") and len(msg) < 300
    assert any(w in msg.lower() for w in ("try again", "choose", "save", "crop", "make it"))


def png_with_header_size(width: int, height: int) -> bytes:
    """A tiny real PNG whose IHDR is patched to claim width x height (a decompression bomb)."""
    raw = bytearray(encode(Image.new("L", (8, 8), 255)))
    assert raw[12:16] == b"IHDR"
    raw[16:24] = struct.pack(">II", width, height)
    raw[29:33] = struct.pack(">I", zlib.crc32(bytes(raw[12:29])))
    return bytes(raw)


# --- good uploads, every colour model ---------------------------------------------------------


def test_black_on_white_png_becomes_centred_white_on_black_digit():
    pre = prepare_upload(encode(seven()), "seven.png")
    assert_mnist_like(pre)
    assert any("inverted" in n for n in pre.notes)
    names = [name for name, _ in pre.steps]
    assert names[0] == "Your image in grayscale" and "28x28" in names[-1]
    assert all(img.ndim == 2 for _, img in pre.steps)


def test_white_on_black_is_not_inverted():
    pre = prepare_upload(encode(seven(ink=255, paper=0)))
    assert_mnist_like(pre)
    assert not any("inverted" in n for n in pre.notes)


def test_grey_noisy_photo_background_is_removed():
    rng = np.random.default_rng(0)
    base = np.asarray(seven(size=(300, 400)), np.float32) / 255
    # A dim, uneven "photo": paper around 0.6-0.7 with speckle, ink around 0.15.
    photo = 0.15 + base * (0.45 + 0.1 * np.linspace(0, 1, 300)[None, :])
    photo = np.clip(photo + rng.normal(0, 0.03, photo.shape), 0, 1)
    pre = to_mnist(photo.astype(np.float32))
    assert_mnist_like(pre)
    assert (pre.digit > 0).mean() < 0.35  # the background did not turn into ink


def test_real_mnist_digits_survive_a_scan_round_trip():
    from vae_core.data import load_sample

    x, _ = load_sample()
    scores = []
    for digit in x[:30]:
        # What a user would upload: dark ink on paper, ten times larger, saved as a JPEG.
        scan = Image.fromarray(255 - digit).resize((280, 280), Image.Resampling.BICUBIC)
        back = prepare_upload(encode(scan, "JPEG", quality=85)).digit
        scores.append(np.corrcoef(digit.ravel() / 255, back.ravel())[0, 1])
    assert np.mean(scores) > 0.85 and np.min(scores) > 0.4


def test_thin_pen_lines_are_thickened():
    img = Image.new("L", (1000, 1000), 255)
    ImageDraw.Draw(img).line([(300, 200), (700, 200), (450, 800)], fill=0, width=2)
    pre = prepare_upload(encode(img))
    assert_mnist_like(pre)
    assert any("thickened" in n for n in pre.notes)
    assert (pre.digit > 0.5).sum() >= 40  # a visible pen stroke, not a faint hair


def test_rgba_dark_strokes_on_transparent_background():
    img = Image.new("RGBA", (100, 140), (0, 0, 0, 0))
    ImageDraw.Draw(img).line([(20, 20), (80, 20), (40, 120)], fill=(0, 0, 0, 255), width=10)
    assert_mnist_like(prepare_upload(encode(img)))


def test_rgba_white_strokes_on_transparent_background():
    img = Image.new("RGBA", (100, 140), (255, 255, 255, 0))
    ImageDraw.Draw(img).line([(20, 20), (80, 20), (40, 120)], fill=(255, 255, 255, 255), width=10)
    assert_mnist_like(prepare_upload(encode(img)))


def test_la_image():
    img = Image.new("LA", (100, 140), (0, 0))
    ImageDraw.Draw(img).line([(20, 20), (80, 20), (40, 120)], fill=(0, 255), width=10)
    assert_mnist_like(prepare_upload(encode(img)))


def test_palette_png_with_transparency():
    img = seven(mode="P", ink=1, paper=0)
    img.putpalette([0, 0, 0, 20, 20, 200] + [0, 0, 0] * 254)
    data = encode(img, transparency=0)  # index 0 (the paper) is see-through
    assert Image.open(io.BytesIO(data)).info.get("transparency") == 0
    assert_mnist_like(prepare_upload(data))


def test_sixteen_bit_png_is_scaled_to_unit_range():
    arr = (np.asarray(seven(), np.float32) / 255 * 65535).astype(np.uint16)
    data = encode(Image.fromarray(arr))
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    gray = decode_image(data)
    assert gray.min() == 0.0 and gray.max() == 1.0
    assert_mnist_like(prepare_upload(data))


def test_cmyk_jpeg():
    rgb = seven(mode="RGB", ink=(0, 0, 0), paper=(255, 255, 255))
    data = encode(rgb.convert("CMYK"), "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    gray = decode_image(data)
    assert gray.max() > 0.9 and gray.min() < 0.1
    assert_mnist_like(prepare_upload(data))


def test_exif_rotated_jpeg_is_shown_upright():
    upright = seven(size=(120, 160))
    # Orientation 6 means "rotate 90° clockwise to display": store the pixels turned the other way.
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(stored, "JPEG", quality=95, exif=exif.tobytes())
    gray = decode_image(data)
    assert gray.shape == (160, 120)
    want = np.asarray(upright, np.float32) / 255
    assert np.abs(gray - want).mean() < 0.05


def test_animated_gif_uses_first_frame():
    first = seven(mode="L")
    second = Image.new("L", first.size, 0)  # a black frame would invert the result
    buf = io.BytesIO()
    first.save(buf, "GIF", save_all=True, append_images=[second], duration=100, loop=0)
    pre = prepare_upload(buf.getvalue(), "anim.gif")
    assert_mnist_like(pre)
    assert any("first" in n for n in pre.notes)


@pytest.mark.parametrize("fmt", ["BMP", "WEBP", "TIFF", "GIF"])
def test_other_allowed_formats(fmt):
    assert_mnist_like(
        prepare_upload(encode(seven(mode="RGB", ink=(0, 0, 0), paper=(255, 255, 255)), fmt))
    )


def test_file_name_is_only_used_in_messages():
    assert_mnist_like(prepare_upload(encode(seven()), "../../etc/passwd.png"))
    with pytest.raises(ImageError) as err:
        prepare_upload(b"", "../../etc/passwd.png")
    assert "../" not in str(err.value)


# --- blank and tiny images --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "value"), [((64, 64), 0), ((64, 64), 255), ((1, 1), 0), ((1, 1), 255), ((3, 1), 128)]
)
def test_blank_or_tiny_images_give_an_empty_digit_and_a_note(size, value):
    pre = prepare_upload(encode(Image.new("L", size, value)))
    assert pre.digit.shape == (28, 28) and pre.digit.dtype == np.float32
    assert pre.digit.max() == 0.0
    assert any("empty" in n for n in pre.notes)


def test_single_dot_is_kept_and_centred():
    img = Image.new("L", (50, 50), 255)
    img.putpixel((10, 40), 0)
    pre = prepare_upload(encode(img))
    assert pre.digit.shape == (28, 28) and np.isfinite(pre.digit).all()
    assert 0 <= pre.digit.min() and pre.digit.max() <= 1


# --- uploads that must be refused -------------------------------------------------------------


def truncated(fmt: str) -> bytes:
    rng = np.random.default_rng(0)
    noisy = Image.fromarray(rng.integers(0, 256, (200, 200), dtype=np.uint8))
    data = encode(noisy, fmt)
    return data[: len(data) // 2]


BAD_UPLOADS = {
    "empty": (b"", "empty"),
    "truncated-png": (truncated("PNG"), "incomplete"),
    "truncated-jpeg": (truncated("JPEG"), "incomplete"),
    "random-bytes": (np.random.default_rng(1).bytes(5000), "not an image"),
    "html": (b"<!DOCTYPE html><html><body>hello</body></html>", "not an image"),
    "svg": (b'<svg xmlns="http://www.w3.org/2000/svg"><circle r="4"/></svg>', "not an image"),
    "pdf": (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", "not an image"),
    "ico": (encode(Image.new("L", (16, 16)), "ICO"), "not an image"),
    "bomb": (png_with_header_size(40000, 40000), "4096x4096"),
    "just-over-limit": (png_with_header_size(4097, 4097), "4096x4096"),
    "long-and-thin": (encode(Image.new("L", (1, 20000), 255)), "too long and thin"),
    "too-big-file": (b"\x89PNG\r\n\x1a\n" + bytes(MAX_BYTES), "10 MB"),
}


@pytest.mark.parametrize("case", BAD_UPLOADS, ids=list(BAD_UPLOADS))
def test_bad_uploads_raise_a_human_image_error(case):
    data, words = BAD_UPLOADS[case]
    with pytest.raises(ImageError) as err:
        prepare_upload(data, "upload.png")
    assert words in str(err.value)
    assert_human(err)
    with pytest.raises(ImageError):
        decode_image(data, "upload.png")


def test_unreadable_message_lists_formats():
    with pytest.raises(ImageError) as err:
        decode_image(b"hello", "notes.png")
    assert "PNG, JPEG, BMP, GIF, WebP, TIFF" in str(err.value)
    assert "notes.png" in str(err.value)


def test_load_truncated_images_is_left_alone():
    from PIL import ImageFile

    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


# --- fuzzing: anything in -> a digit or an ImageError out -------------------------------------

VALID = [
    encode(seven(size=(40, 56))),
    encode(seven(size=(40, 56), mode="RGB", ink=(0, 0, 0), paper=(255, 255, 255)), "JPEG"),
    encode(seven(size=(40, 56)), "GIF"),
]


def check_outcome(data: bytes) -> None:
    try:
        pre = prepare_upload(data, "fuzz.png")
    except ImageError as err:
        assert str(err)
        return
    assert pre.digit.shape == (28, 28) and pre.digit.dtype == np.float32
    assert np.isfinite(pre.digit).all() and pre.digit.min() >= 0 and pre.digit.max() <= 1


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_fuzz_arbitrary_bytes(data):
    check_outcome(data)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(range(len(VALID))),
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=8),
    st.integers(0, 10**6),
)
def test_fuzz_mutated_valid_images(which, edits, cut):
    raw = bytearray(VALID[which])
    for pos, value in edits:
        raw[pos % len(raw)] = value
    check_outcome(bytes(raw[: max(1, len(raw) - cut % 64)]))


# --- grids and PNG ----------------------------------------------------------------------------


def test_tile_layout_and_padding():
    imgs = np.stack([np.full((28, 28, 1), i / 5, np.float32) for i in range(5)])
    grid = tile(imgs)
    assert grid.shape == (2 * 30 + 2, 3 * 30 + 2)
    assert grid.dtype == np.float32
    assert grid[0, 0] == 0.5  # padding
    assert grid[2 + 30, 2 + 30 + 1] == pytest.approx(4 / 5)  # 5th image: row 1, col 1
    assert grid[-3, -3] == 0.5  # the empty 6th cell is padding colour
    assert tile(imgs, ncols=5, pad=0).shape == (28, 140)


def test_tile_refuses_empty():
    with pytest.raises(ValueError):
        tile(np.zeros((0, 28, 28), np.float32))


def test_strip_fits_pictures_of_any_size_into_one_row_of_squares():
    photo = np.full((120, 90), 0.9, np.float32)  # light paper, taller than wide
    photo[20:100, 40:50] = 0.1
    digit = np.zeros((28, 28), np.float32)
    digit[4:24, 12:16] = 1.0
    row = strip([photo, to_uint8(digit), np.ones((5, 40), np.float32)], side=56, pad=2)
    assert row.shape == (56 + 4, 3 * 58 + 2)
    # The photo keeps its proportions on its own light background, not black bars.
    assert row[2 + 28, 2 + 1] == pytest.approx(0.9, abs=0.01)
    assert row[2 + 28, 2 + 28] == pytest.approx(0.1, abs=0.01)
    # 28 -> 56 is exactly twice: crisp pixels, the stroke where it was.
    second = row[2:58, 60:116]
    np.testing.assert_array_equal(second[::2, ::2], digit)
    with pytest.raises(ValueError, match="2-D"):
        strip([np.zeros((2, 3, 4), np.float32)])


def test_to_png_round_trip_and_scale():
    img = np.linspace(0, 1, 28 * 28, dtype=np.float32).reshape(28, 28)
    png = to_png(img, scale=3)
    back = np.asarray(Image.open(io.BytesIO(png)))
    assert back.shape == (84, 84) and back.dtype == np.uint8
    np.testing.assert_array_equal(back[::3, ::3], to_uint8(img))
    assert back[0, 0] == 0 and back[-1, -1] == 255
    assert np.asarray(Image.open(io.BytesIO(to_png(to_uint8(img)[..., None])))).shape == (28, 28)


def test_to_uint8_clips_and_handles_nan():
    out = to_uint8(np.array([-1.0, 0.5, 2.0, np.nan]))
    assert out.tolist() == [0, 128, 255, 0]


# --- pixels from the drawing pad or a camera frame ---------------------------------------------


def test_drawing_pad_pixels_become_a_centred_digit():
    rgba = np.zeros((280, 280, 4), np.uint8)
    rgba[..., 3] = 255  # the pad's black background is opaque
    rgba[40:240, 130:150, :3] = 255  # a white "1"
    gray = decode_pixels(rgba)
    assert gray.shape == (280, 280) and gray.max() == 1.0 and gray.min() == 0.0
    pre = to_mnist(gray)
    assert not any("inverted" in n for n in pre.notes)  # already white on black
    assert pre.digit.shape == (28, 28) and bbox(pre.digit)[0] == 20  # a 1 is 20 px tall
    # An empty, see-through pad is an empty digit with its note.
    assert to_mnist(decode_pixels(np.zeros((280, 280, 4), np.uint8))).digit.max() == 0.0


@pytest.mark.parametrize("shape", [(0, 5, 4), (10, 10, 2), (2, 2, 2, 2)])
def test_decode_pixels_refuses_shapes_that_are_no_picture(shape):
    with pytest.raises(ValueError):
        decode_pixels(np.zeros(shape, np.uint8))
