"""Uploads made MNIST-like, image grids and PNG bytes.

Uploads are untrusted: every way a file can be broken, huge or odd ends in an ImageError with a
sentence the person can act on, never a traceback. File names only ever appear in messages.
"""

from __future__ import annotations

import io
import math
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageOps

from vae_core.errors import ImageError

MAX_PIXELS = 4096 * 4096
MAX_BYTES = 10 * 1024 * 1024
MIN_SIDE = 1
MAX_ASPECT = 20  # longer side / shorter side; a digit photo is never a 1-pixel strip
FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF")
FORMATS_TEXT = "PNG, JPEG, BMP, GIF, WebP, TIFF"
WORK_SIDE = 1024  # larger images are shrunk first: the digit ends up 20 px tall anyway
DIGIT_SIDE = 28
BOX_SIDE = 20  # MNIST fits each digit into a 20x20 box before centring it in 28x28
MID_SIDE = 80  # strokes are measured and thickened at this size: cheap, yet 4x finer than the box
STROKE_FRACTION = 0.12  # MNIST's pen is about 2.5 px wide in the 20 px box

# What Pillow raises on malformed files. Its plugins surface damage as any of these (a broken PNG
# chunk is a SyntaxError, a bad TIFF tag a KeyError or TypeError), so all of them mean "bad file".
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    zlib.error,
    IndexError,
    KeyError,
    TypeError,
    ZeroDivisionError,
    OverflowError,
    Image.DecompressionBombError,
)


@dataclass
class Preprocessed:
    """An upload turned into an MNIST-style digit, with every intermediate step to show."""

    steps: list[tuple[str, np.ndarray]] = field(default_factory=list)  # (step name, 2-D image)
    digit: np.ndarray = field(
        default_factory=lambda: np.zeros((28, 28), np.float32)
    )  # white on black
    notes: list[str] = field(default_factory=list)  # plain-language remarks on what was done


def _name(filename: str) -> str:
    # Only for messages: the last path part, so "../../etc/passwd.png" reads as "passwd.png".
    base = filename.replace("\\", "/").rsplit("/", 1)[-1].strip()
    return f"“{base[:80]}”" if base else "That file"


def _unreadable(filename: str) -> ImageError:
    return ImageError(
        f"{_name(filename)} is not an image we can read ({FORMATS_TEXT}); "
        "save it as a PNG or JPEG and try again."
    )


def _check_size(width: int, height: int, filename: str) -> None:
    name = _name(filename)
    if width < MIN_SIDE or height < MIN_SIDE:
        raise ImageError(f"{name} has no pixels; choose another image.")
    if width * height > MAX_PIXELS:
        raise ImageError(
            f"{name} is {width}x{height} pixels, more than the limit of {MAX_PIXELS:,} pixels "
            "(4096x4096); make it smaller and try again."
        )
    if max(width, height) > MAX_ASPECT * min(width, height):
        raise ImageError(
            f"{name} is {width}x{height} pixels, too long and thin to hold a digit; "
            "crop it closer to the digit and try again."
        )


def _check_bytes(data: bytes, filename: str) -> None:
    if not data:
        raise ImageError(f"{_name(filename)} is empty; choose an image file ({FORMATS_TEXT}).")
    if len(data) > MAX_BYTES:
        raise ImageError(
            f"{_name(filename)} is larger than the 10 MB limit; make it smaller and try again."
        )


def _to_gray(img: Image.Image) -> np.ndarray:
    """Any Pillow mode -> float32 (H, W) in [0, 1], transparent pixels composited sensibly."""
    mode = img.mode
    if mode.startswith("I;16"):
        return np.asarray(img, dtype=np.float32) / 65535.0
    if mode in ("I", "F"):
        arr = np.nan_to_num(np.asarray(img, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        arr = np.clip(arr, 0.0, None)
        top = float(arr.max()) if arr.size else 0.0
        # "I" is how Pillow opens 16-bit files and "F" float TIFFs: guess the range from the data.
        scale = next((s for s in (1.0, 255.0, 65535.0) if top <= s), top)
        return arr / np.float32(scale)
    if mode == "P":
        mode = "RGBA" if "transparency" in img.info else "RGB"
        img = img.convert(mode)
    if mode in ("LA", "La", "PA"):
        la = np.asarray(img.convert("LA"), dtype=np.float32) / 255.0
        return _composite(la[..., 0], la[..., 1])
    if mode in ("RGBA", "RGBa") or "transparency" in img.info:
        la = np.asarray(img.convert("RGBA").convert("LA"), dtype=np.float32) / 255.0
        return _composite(la[..., 0], la[..., 1])
    return np.asarray(img.convert("L"), dtype=np.float32) / 255.0


def _composite(gray: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Put transparent pixels on white when the visible strokes are dark, else on black."""
    weight = float(alpha.sum())
    visible_mean = float((gray * alpha).sum()) / weight if weight > 0 else 1.0
    # A black digit drawn on a transparent canvas must stay visible, and so must a white one.
    background = 1.0 if visible_mean < 0.5 else 0.0
    return (gray * alpha + background * (1.0 - alpha)).astype(np.float32)


def _decode(data: bytes, filename: str) -> tuple[np.ndarray, list[str]]:
    _check_bytes(data, filename)
    notes: list[str] = []
    try:
        # `formats` keeps Pillow's other plugins (EPS, PSD, ICO, ...) away from untrusted bytes.
        img = Image.open(io.BytesIO(data), formats=list(FORMATS))
        _check_size(*img.size, filename)  # before load(): the header alone tells the pixel count
        if getattr(img, "n_frames", 1) > 1:
            notes.append("The file has several frames; only the first one was used.")
        img.load()
        upright = ImageOps.exif_transpose(img)
        _check_size(*upright.size, filename)
        gray = _to_gray(upright)
    except Image.DecompressionBombError as err:
        raise ImageError(
            f"{_name(filename)} claims to be so large that opening it could freeze this computer; "
            "choose an image of at most 4096x4096 pixels."
        ) from err
    except _DECODE_ERRORS as err:
        if isinstance(err, OSError) and "truncated" in str(err).lower():
            raise ImageError(
                f"{_name(filename)} is cut off (the file is incomplete); "
                "save or download it again and retry."
            ) from err
        raise _unreadable(filename) from err
    gray = np.clip(np.nan_to_num(gray, nan=0.0), 0.0, 1.0).astype(np.float32)
    return gray, notes


def decode_image(data: bytes, filename: str = "") -> np.ndarray:
    """Upload bytes -> float32 grayscale (H, W) in [0, 1], 0 = black; ImageError if unusable."""
    return _decode(data, filename)[0]


def _shrink(gray: np.ndarray, longest: int) -> np.ndarray:
    h, w = gray.shape
    if max(h, w) <= longest:
        return gray
    scale = longest / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(gray).resize(size, Image.Resampling.BOX))


def _border(gray: np.ndarray) -> np.ndarray:
    h, w = gray.shape
    k = max(1, round(0.05 * min(h, w)))
    if 2 * k >= min(h, w):
        return gray.ravel()
    return np.concatenate(
        [gray[:k].ravel(), gray[-k:].ravel(), gray[:, :k].ravel(), gray[:, -k:].ravel()]
    )


def _resize_longer(img: np.ndarray, longest: int, method: Image.Resampling) -> np.ndarray:
    h, w = img.shape
    scale = longest / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    resized = Image.fromarray(np.ascontiguousarray(img, dtype=np.float32)).resize(size, method)
    return np.asarray(resized, dtype=np.float32)


def _stroke_width(img: np.ndarray) -> float:
    """Rough pen width in pixels: inked area over half the inked outline."""
    ink = img > 0.5
    area = int(ink.sum())
    if area == 0:
        return 0.0
    padded = np.pad(ink, 1)
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    outline = int((ink & ~inner).sum())
    return 2.0 * area / max(outline, 1)


def _dilate(img: np.ndarray) -> np.ndarray:
    """Grey 3x3 dilation: every stroke one pixel wider on each side."""
    padded = np.pad(img, 1)
    h, w = img.shape
    return np.max([padded[dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3)], axis=0)


def _ink_neighbours(ink: np.ndarray) -> np.ndarray:
    """How many of each pixel's 8 neighbours are inked."""
    padded = np.pad(ink, 1).astype(np.uint8)
    h, w = ink.shape
    return sum(
        padded[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
        for dy in (-1, 0, 1)
        for dx in (-1, 0, 1)
        if dy or dx
    )


def _empty(pre: Preprocessed, note: str) -> Preprocessed:
    pre.notes.append(note)
    pre.digit = np.zeros((DIGIT_SIDE, DIGIT_SIDE), np.float32)
    pre.steps.append(("Centred in 28x28 (nothing to centre)", pre.digit))
    return pre


def to_mnist(gray: np.ndarray) -> Preprocessed:
    """The MNIST recipe: white on black, background removed, ink cropped, 20 px box, centre of mass."""
    gray = np.asarray(gray, dtype=np.float32)
    if gray.ndim == 3 and gray.shape[-1] == 1:
        gray = gray[..., 0]
    if gray.ndim != 2 or gray.size == 0:
        raise ValueError(f"to_mnist expects a non-empty 2-D image, got shape {gray.shape}")
    gray = np.clip(np.nan_to_num(gray, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)
    gray = _shrink(gray, WORK_SIDE)
    pre = Preprocessed()
    pre.steps.append(("Your image in grayscale", gray))

    border = _border(gray)
    if float(np.median(border)) > 0.5:
        gray = 1.0 - gray
        border = 1.0 - border
        pre.notes.append("The image was inverted because its background was light.")
    pre.steps.append(("White digit on a black background", gray))

    # Photos have a grey, uneven background: measure it on the border and take it away, together
    # with the background's own speckle, so only the strokes are left.
    background = float(np.median(border))
    # The ink level is read among the pixels brighter than the paper, so a thin pen line that
    # covers 0.1 % of a large image still counts as ink (a plain high percentile would miss it).
    above = gray[gray > background + 0.05]
    ink = float(np.percentile(above, 95)) if above.size else background
    contrast = ink - background
    if contrast < 0.05:
        return _empty(pre, "The image is almost empty; there is little ink to centre.")
    speckle = (float(np.percentile(border, 99)) - background) / contrast
    cut = min(max(1.5 * speckle, 0.1), 0.5)
    clean = np.clip(((gray - background) / contrast - cut) / (1.0 - cut), 0.0, 1.0)
    # Lone specks that survive the cut would stretch the crop and shrink the digit; a stroke,
    # even one pixel wide, always has an inked neighbour.
    clean[(clean > 0) & (_ink_neighbours(clean > 0) == 0)] = 0.0
    pre.steps.append(("Background removed", clean))

    rows = np.flatnonzero(clean.max(axis=1) > 0)
    cols = np.flatnonzero(clean.max(axis=0) > 0)
    if rows.size == 0:
        return _empty(pre, "The image is almost empty; there is little ink to centre.")
    crop = clean[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    pre.steps.append(("Cropped to the ink", crop))

    mid = (
        _resize_longer(crop, MID_SIDE, Image.Resampling.BOX) if max(crop.shape) > MID_SIDE else crop
    )
    mid = mid / max(float(mid.max()), 1e-6)
    width = _stroke_width(mid)
    target = STROKE_FRACTION * max(mid.shape)
    if width < 0.5 * target:
        # A ballpoint line in a phone photo is a hair at 20 px; MNIST was written with a thick pen.
        for _ in range(round((target - width) / 2)):
            mid = _dilate(mid)
        pre.notes.append("The strokes were thin, so they were thickened to look like MNIST's pen.")
        pre.steps.append(("Strokes thickened", mid))

    small = np.clip(_resize_longer(mid, BOX_SIDE, Image.Resampling.LANCZOS), 0.0, 1.0)
    small = small / max(float(small.max()), 1e-6)  # MNIST strokes are full white at their core
    pre.steps.append(("Scaled so the longer side is 20 pixels", small))

    mass = float(small.sum())
    if mass <= 0:
        return _empty(pre, "The image is almost empty; there is little ink to centre.")
    ys, xs = np.indices(small.shape)
    com_y, com_x = float((ys * small).sum()) / mass, float((xs * small).sum()) / mass
    sh, sw = small.shape
    # Put the centre of mass at (14, 14) as MNIST did, but never push ink off the canvas.
    top = min(max(round(DIGIT_SIDE / 2 - com_y), 0), DIGIT_SIDE - sh)
    left = min(max(round(DIGIT_SIDE / 2 - com_x), 0), DIGIT_SIDE - sw)
    digit = np.zeros((DIGIT_SIDE, DIGIT_SIDE), np.float32)
    digit[top : top + sh, left : left + sw] = small
    if float(digit.max()) < 0.2 or np.count_nonzero(digit > 0.2) < 3:
        pre.notes.append("The image is almost empty; there is little ink to centre.")
    pre.digit = digit
    pre.steps.append(("Centred in 28x28 by its centre of mass", digit))
    return pre


def prepare_upload(data: bytes, filename: str = "") -> Preprocessed:
    """Upload bytes -> MNIST-style digit with its steps and notes; ImageError if unusable."""
    gray, notes = _decode(data, filename)
    pre = to_mnist(gray)
    pre.notes[:0] = notes
    return pre


# ---------------------------------------------------------------------------------------------
# Grids and PNG


def to_uint8(img: np.ndarray) -> np.ndarray:
    """float in [0, 1] (clipped; NaN -> 0), bool or uint8 -> uint8."""
    arr = np.asarray(img)
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == bool:
        return arr.astype(np.uint8) * 255
    arr = np.nan_to_num(arr.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    return np.round(np.clip(arr, 0.0, 1.0) * 255.0).astype(np.uint8)


def as_batch(images: np.ndarray) -> np.ndarray:
    """(H,W), (N,H,W) or (N,H,W,1), uint8 (0-255) or float (0-1) -> float32 (N,H,W,1) in [0, 1]."""
    a = np.asarray(images)
    a = a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else a.astype(np.float32, copy=False)
    if a.ndim == 2:
        a = a[None]
    if a.ndim == 3:
        a = a[..., None]
    return a


def tile(
    images: np.ndarray, ncols: int | None = None, pad: int = 2, pad_value: float = 0.5
) -> np.ndarray:
    """(N, H, W[, 1]) images -> one float32 grid, `pad` pixels of `pad_value` between and around."""
    arr = np.asarray(images)
    if arr.ndim == 4 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim == 2:
        arr = arr[np.newaxis]
    if arr.ndim != 3:
        raise ValueError(f"tile expects (N, H, W[, 1]) images, got shape {arr.shape}")
    n, h, w = arr.shape
    if n == 0:
        raise ValueError("tile needs at least one image")
    arr = arr.astype(np.float32) / 255.0 if arr.dtype == np.uint8 else arr.astype(np.float32)
    ncols = ncols or math.ceil(math.sqrt(n))
    if ncols < 1 or pad < 0:
        raise ValueError("ncols must be at least 1 and pad at least 0")
    nrows = math.ceil(n / ncols)
    grid = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad), pad_value, np.float32)
    for i in range(n):
        r, c = divmod(i, ncols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        grid[y : y + h, x : x + w] = arr[i]
    return grid


def strip(pictures: Sequence[np.ndarray], side: int = 56, pad: int = 2) -> np.ndarray:
    """Pictures of any sizes in one row, each fitted into a `side` x `side` square on its own
    background (the median of its border), so a preprocessing strip is one image that fits a column."""
    squares = []
    for picture in pictures:
        img = to_uint8(picture).astype(np.float32) / 255.0
        if img.ndim != 2 or img.size == 0:
            raise ValueError(f"strip expects 2-D pictures, got shape {img.shape}")
        method = Image.Resampling.NEAREST if max(img.shape) <= side else Image.Resampling.BOX
        fitted = np.clip(_resize_longer(img, side, method), 0.0, 1.0)
        h, w = fitted.shape
        square = np.full((side, side), float(np.median(_border(img))), np.float32)
        top, left = (side - h) // 2, (side - w) // 2
        square[top : top + h, left : left + w] = fitted
        squares.append(square)
    return tile(np.stack(squares), ncols=len(squares), pad=pad)


def to_png(img: np.ndarray, scale: int = 1) -> bytes:
    """A 2-D (or HxWx1, HxWx3) image -> PNG bytes, optionally enlarged `scale` times (nearest)."""
    arr = to_uint8(img)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] != 3):
        raise ValueError(f"to_png expects a 2-D gray or HxWx3 image, got shape {arr.shape}")
    if int(scale) < 1:
        raise ValueError("scale must be at least 1")
    if scale > 1:
        arr = np.repeat(np.repeat(arr, int(scale), axis=0), int(scale), axis=1)
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr)).save(buf, format="PNG")
    return buf.getvalue()
