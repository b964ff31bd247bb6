"""Uploads made MNIST-like, image grids and PNG bytes.

Uploads are untrusted: every way a file can be broken, huge or odd ends in an ImageError with a
sentence the person can act on, never a traceback. File names only ever appear in messages.
Its length is one job: from any phone photo, scan or drawing to MNIST-like digits, each step shown.
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

from vae_core import paper
from vae_core.errors import ImageError

MAX_PIXELS = 4096 * 4096
MAX_BYTES = 10 * 1024 * 1024
MIN_SIDE = 1
MAX_ASPECT = 20  # longer side / shorter side; a digit photo is never a 1-pixel strip
# The formats an upload may be in, and the file endings each comes with.
SUFFIXES = {
    "PNG": ("png",),
    "JPEG": ("jpg", "jpeg"),
    "BMP": ("bmp",),
    "GIF": ("gif",),
    "WEBP": ("webp",),
    "TIFF": ("tif", "tiff"),
}
FORMATS = tuple(SUFFIXES)
FORMATS_TEXT = "PNG, JPEG, BMP, GIF, WebP, TIFF"
WORK_SIDE = 1024  # larger images are shrunk first: the digit ends up 20 px tall anyway
DIGIT_SIDE = 28
BOX_SIDE = 20  # MNIST fits each digit into a 20x20 box before centring it in 28x28
MID_SIDE = 80  # strokes are measured and thickened at this size: cheap, yet 4x finer than the box
STROKE_FRACTION = 0.12  # MNIST's pen is about 2.5 px wide in the 20 px box
INK_OVER_NOISE = 6  # ink stands out from the paper by at least this many times the grain
SPLIT_SIDE = 256  # ink is split into connected regions at this size: fast, and hairline gaps close
SPECK_SHARE = 0.01  # connected ink under this share of the largest region is dust, not a stroke
MIN_HEIGHT_SHARE = 0.35  # in a row, a mark this much shorter than the tallest is a dash or a dot
MAX_DIGITS = 12  # one photo holds at most this many digits (a date, a phone number)
BLOB_SIDE = 48  # px at SPLIT_SIDE: marks at least this large are blobs when they fill their box
WRITING_PIECES = 3  # more pieces of ink than this many per digit allowed: a page of writing
EMPTY_NOTE = "The image is almost empty; there is little ink to centre."
UNSURE_SCORE = 0.15  # a best mark below this digit-likeness (0-1) is probably not a digit
DIGIT_LIKE = 0.5  # a mark at least this digit-like (0-1) is not a dash or a dot
NOT_A_DIGIT_NOTE = (
    "Nothing in this image looks much like a digit, so the result may be no digit at all."
)
SEVERAL_NOTE = "Several marks look like digits; the one that looks most like a digit was used."
LEFT_OUT_NOTE = "A smaller mark that looks like a digit was left out as too small to be one."
POINTED_NOTE = "The mark you clicked was used."
# Notes that mean the lab may have picked the wrong mark: the page then asks the person to point.
UNSURE_NOTES = (NOT_A_DIGIT_NOTE, SEVERAL_NOTE, LEFT_OUT_NOTE)

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
    marks: int = 0  # separate marks that looked as much like a digit as the one chosen (or nearly)
    # The photo as the steps see it (straightened, before inversion): a point on it names a mark.
    page: np.ndarray | None = None


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
        if img.format == "JPEG" and max(img.size) > 2 * WORK_SIDE:
            # A phone's 12-megapixel JPEG is decoded straight at 1/2-1/8 size (no finer than the
            # WORK_SIDE it is shrunk to anyway): the full decode would cost more than all the rest.
            shrink = WORK_SIDE / max(img.size)
            img.draft(img.mode, (math.ceil(img.width * shrink), math.ceil(img.height * shrink)))
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


def _light_paper(border: np.ndarray) -> bool:
    """Whether the page is light (dark ink on it), read on the image's border: mostly light, or
    partly light and the rest no darker than paper in a shadow (a sheet half in shade)."""
    median = float(np.median(border))
    lit = float(np.mean(border > 0.6))
    return median > 0.5 or (median > 0.3 and lit >= 0.15)


def _empty(pre: Preprocessed, note: str = EMPTY_NOTE) -> Preprocessed:
    pre.notes.append(note)
    pre.digit = np.zeros((DIGIT_SIDE, DIGIT_SIDE), np.float32)
    pre.steps.append(("Centred in 28x28 (nothing to centre)", pre.digit))
    return pre


# ---------------------------------------------------------------------------------------------
# Ink: the steps every photo goes through, however many digits it holds


def _ink(gray: np.ndarray) -> tuple[Preprocessed, np.ndarray | None]:
    """Grayscale -> white on black -> lighting evened out -> background removed (None: no ink)."""
    gray = np.asarray(gray, dtype=np.float32)
    if gray.ndim == 3 and gray.shape[-1] == 1:
        gray = gray[..., 0]
    if gray.ndim != 2 or gray.size == 0:
        raise ValueError(f"to_mnist expects a non-empty 2-D image, got shape {gray.shape}")
    gray = np.clip(np.nan_to_num(gray, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)
    gray = _shrink(gray, WORK_SIDE)
    pre = Preprocessed()
    pre.steps.append(("Your image in grayscale", gray))

    # A photo taken at an angle shows the table around the sheet: keep the sheet alone, squared up.
    sheet = paper.find_sheet(gray)
    if sheet is not None:
        gray = _shrink(sheet, WORK_SIDE)
        pre.steps.append(("Sheet found and straightened", gray))
        pre.notes.append(
            "The sheet was found in the photo and straightened; its surroundings were left out."
        )
    pre.page = gray

    if _light_paper(_border(gray)):
        gray = 1.0 - gray
        pre.notes.append("The image was inverted because its background was light.")
    pre.steps.append(("White digit on a black background", gray))

    # Light falling off across the sheet, or a shadow's hard edge, would read as ink: divide the
    # paper's own brightness out, so what is left is the ink alone on a black, evenly lit page
    # (and ink in a shadow is as strong as ink in the light).
    light, hard = paper.paper_light(1.0 - gray)
    residual = 1.0 - (1.0 - gray) / np.maximum(light, 0.05)
    even = np.clip(residual, 0.0, 1.0)
    pre.steps.append(("Shadow evened out" if hard else "Lighting evened out", even))
    # Grain and JPEG noise, measured all over the page (ink is too small a part to sway a median;
    # every 4th pixel each way is plenty for a median, and 16x faster).
    sample = residual[::4, ::4]
    noise = 1.4826 * float(np.median(np.abs(sample - np.median(sample))))

    # Notebook rules, squares and the margin are ink too, but printed: thin lines across the sheet.
    even, rules = paper.remove_rules(even, max(3.0 * noise, 0.03))
    if rules.any():
        pre.steps.append(("Rules removed", even))
        pre.notes.append("Printed lines (rules, squares or a margin) were taken out of the page.")

    # What is left of the background is speckle (grain, JPEG noise): measure it on the border
    # and cut below it, so only the strokes are left.
    border = _border(even)
    background = float(np.median(border))
    # The ink level is read among the pixels brighter than the paper, so a thin pen line that
    # covers 0.1 % of a large image still counts as ink (a plain high percentile would miss it).
    above = even[even > background + 0.05]
    ink = float(np.percentile(above, 95)) if above.size else background
    contrast = ink - background
    if contrast < max(0.05, INK_OVER_NOISE * noise):  # bare paper: grain is all there is
        return pre, None
    speckle = (float(np.percentile(border, 99)) - background) / contrast
    cut = min(max(1.5 * speckle, 0.16), 0.5)
    clean = np.clip(((even - background) / contrast - cut) / (1.0 - cut), 0.0, 1.0)
    # Lone specks that survive the cut would stretch the crop and shrink the digit; a stroke,
    # even one pixel wide, always has an inked neighbour.
    clean[(clean > 0) & (_ink_neighbours(clean > 0) == 0)] = 0.0
    pre.steps.append(("Background removed", clean))
    if not clean.any():
        return pre, None
    return pre, clean


# ---------------------------------------------------------------------------------------------
# Regions: connected ink, grouped into digits


@dataclass
class _Region:
    """Connected ink (or several pieces of one digit): its bounding box and how much ink it holds."""

    top: int
    bottom: int  # exclusive
    left: int
    right: int  # exclusive
    area: int
    labels: list[int]

    def merged(self, other: _Region) -> _Region:
        return _Region(
            min(self.top, other.top),
            max(self.bottom, other.bottom),
            min(self.left, other.left),
            max(self.right, other.right),
            self.area + other.area,
            self.labels + other.labels,
        )


def _label(ink: np.ndarray) -> tuple[np.ndarray, list[_Region]]:
    """8-connected components of a boolean image, found run by run (union-find over row runs)."""
    h, w = ink.shape
    parent: list[int] = []

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    # Every run of ink in every row at once: where a row steps from paper to ink and back.
    steps = np.diff(np.pad(ink.astype(np.int8), ((0, 0), (1, 1))), axis=1)
    rows, starts = np.nonzero(steps == 1)
    ends = np.nonzero(steps == -1)[1]
    runs = list(zip(rows.tolist(), starts.tolist(), ends.tolist(), strict=True))
    previous: list[int] = []  # run ids of the row above
    current: list[int] = []
    row = -2
    j = 0
    for rid, (y, start, end) in enumerate(runs):
        if y != row:
            previous, current = (current if y == row + 1 else []), []
            row, j = y, 0
        parent.append(rid)
        # Runs above that touch this one, diagonals included, are the same component.
        while j < len(previous) and runs[previous[j]][2] < start:
            j += 1
        k = j
        while k < len(previous) and runs[previous[k]][1] <= end:
            a, b = find(previous[k]), find(rid)
            if a != b:
                parent[max(a, b)] = min(a, b)
            k += 1
        current.append(rid)
    labels = np.zeros((h, w), np.int32)
    boxes: dict[int, list[int]] = {}
    for rid, (y, start, end) in enumerate(runs):
        root = find(rid)
        labels[y, start:end] = root + 1
        box = boxes.setdefault(root, [y, y + 1, start, end, 0])
        box[0], box[1] = min(box[0], y), max(box[1], y + 1)
        box[2], box[3] = min(box[2], start), max(box[3], end)
        box[4] += end - start
    regions = [_Region(t, b, lft, r, a, [root + 1]) for root, (t, b, lft, r, a) in boxes.items()]
    return labels, regions


def _hair(region: _Region, tallest: int, width: int) -> bool:
    """A flat sliver: far thinner than the tallest mark and several times wider than thick, or
    thin and running across half the image."""
    tall, wide = region.bottom - region.top, region.right - region.left
    across = wide >= 0.5 * width and tall <= 0.25 * tallest
    return across or (tall <= 0.08 * tallest and wide >= 4 * tall)


def _stacked(a: _Region, b: _Region) -> bool:
    """Two pieces of one broken digit: side by side in x (overlap or a small gap), not in y."""
    gap = max(a.left, b.left) - min(a.right, b.right)  # < 0: they overlap horizontally
    if gap < 0:
        return True
    tall = max(a.bottom - a.top, b.bottom - b.top)
    shared_rows = min(a.bottom, b.bottom) - max(a.top, b.top)
    short = min(a.bottom - a.top, b.bottom - b.top)
    return gap <= 0.15 * tall and shared_rows <= 0.3 * short


def _digit_regions(
    clean: np.ndarray, stack: bool = True
) -> tuple[np.ndarray, list[_Region], float]:
    """Ink grouped into digits, left to right, with the label image and its scale to `clean`
    (`stack=False`: each connected piece on its own)."""
    small = _shrink(clean, SPLIT_SIDE)
    scale = clean.shape[0] / small.shape[0]
    labels, regions = _label(small > 0)
    if not regions:
        return labels, [], scale
    # Specks (dust, grain) are far smaller than any stroke of a digit.
    largest = max(r.area for r in regions)
    regions = [r for r in regions if r.area >= SPECK_SHARE * largest]
    # A hair-thin sliver (what is left of a rule or a shadow's edge) is no stroke of a digit.
    tallest = max(r.bottom - r.top for r in regions)
    regions = sorted(
        (r for r in regions if len(regions) == 1 or not _hair(r, tallest, labels.shape[1])),
        key=lambda r: r.left,
    )
    if not stack:
        return labels, regions, scale
    return labels, _stack(regions), scale


def _stack(regions: list[_Region]) -> list[_Region]:
    """Pieces of ink (left to right) grouped into digits: pieces above one another are one."""
    groups: list[_Region] = []
    for region in regions:
        # Merge with every group it overlaps; merging can make a group reach an earlier one.
        for i in range(len(groups) - 1, -1, -1):
            if _stacked(groups[i], region):
                region = region.merged(groups.pop(i))
        groups.append(region)
        groups.sort(key=lambda r: r.left)
    return groups


def _region_ink(clean: np.ndarray, labels: np.ndarray, scale: float, region: _Region) -> np.ndarray:
    """The region's own ink, cropped from `clean` (other regions' ink inside its box removed)."""
    h, w = clean.shape
    top, bottom = int(region.top * scale), min(h, math.ceil(region.bottom * scale))
    left, right = int(region.left * scale), min(w, math.ceil(region.right * scale))
    # Each clean pixel belongs to the label of the small pixel it was shrunk into.
    ys = np.minimum((np.arange(top, bottom) / scale).astype(int), labels.shape[0] - 1)
    xs = np.minimum((np.arange(left, right) / scale).astype(int), labels.shape[1] - 1)
    mine = np.isin(labels[np.ix_(ys, xs)], region.labels)
    crop = clean[top:bottom, left:right] * mine
    rows = np.flatnonzero(crop.max(axis=1) > 0)
    cols = np.flatnonzero(crop.max(axis=0) > 0)
    return crop[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _at_edge(region: _Region, shape: tuple[int, int]) -> bool:
    return (
        region.top == 0 or region.left == 0 or region.bottom == shape[0] or region.right == shape[1]
    )


def _digit_likeness(region: _Region, labels: np.ndarray) -> float:
    """How much a region looks like a handwritten digit (0-1), from its shape alone: a digit is
    neither a speck nor a line across the page, its strokes are thin for its height, and it does
    not run into the photo's edge (a shadow's edge or the table does)."""
    h, w = labels.shape
    tall, wide = region.bottom - region.top, region.right - region.left
    mine = np.isin(labels[region.top : region.bottom, region.left : region.right], region.labels)
    stroke = max(_stroke_width(mine.astype(np.float32)), 1.0)
    longest = max(tall, wide)
    size = min(1.0, max(0.0, (longest / max(h, w) - 0.01) / 0.04))
    # A rule's remnant is far longer than thick; a dash is wider than tall.
    slender = min(1.0, max(0.0, (60.0 - longest / stroke) / 30.0))
    upright = min(1.0, max(0.0, (3.5 - wide / max(tall, 1)) / 1.5))
    edges = (region.top == 0) + (region.left == 0) + (region.bottom == h) + (region.right == w)
    # Nor blobs or wedges; a small digit, though, is a blob at this size, its strokes run together.
    if longest < BLOB_SIDE:
        return size * slender * upright * (0.3**edges)
    filled = min(1.0, max(0.0, (0.5 - stroke / max(tall, 1)) / 0.25))
    if tall < 2.5 * wide:  # a blob (a face, a stain) fills its box; only a "1" may do so
        filled *= min(1.0, max(0.0, (0.72 - region.area / max(tall * wide, 1)) / 0.1))
    return size * slender * upright * filled * (0.3**edges)


def _digit_scores(groups: list[_Region], labels: np.ndarray) -> tuple[list[float], list[float]]:
    """Each group's digit-likeness, and its rank among them: as likely, the larger mark wins."""
    likeness = [_digit_likeness(g, labels) for g in groups]
    longest = [max(g.bottom - g.top, g.right - g.left) / max(labels.shape) for g in groups]
    return likeness, [k * math.sqrt(n) for k, n in zip(likeness, longest, strict=True)]


def _pointed(groups: list[_Region], labels: np.ndarray, point: tuple[float, float]) -> int:
    """The group whose ink lies nearest the point (x, y as shares of the page's width, height)."""
    h, w = labels.shape
    x, y = point[0] * w, point[1] * h
    ys, xs = np.indices(labels.shape)
    far = (xs - x) ** 2 + (ys - y) ** 2
    return int(np.argmin([far[np.isin(labels, g.labels)].min() for g in groups]))


def _choose_digit(
    groups: list[_Region],
    labels: np.ndarray,
    pre: Preprocessed,
    point: tuple[float, float] | None = None,
) -> _Region:
    """The group that looks most like a digit (or the one the person pointed at), with the pieces
    close to it (a broken stroke)."""
    likeness, scores = _digit_scores(groups, labels)
    order = [int(i) for i in np.argsort(scores)[::-1]]
    if point is not None:
        first = _pointed(groups, labels, point)
        order.remove(first)
        order.insert(0, first)
        pre.notes.append(POINTED_NOTE)
    best = groups[order[0]]
    pre.marks = sum(
        score >= 0.3 * scores[order[0]]
        and g.bottom - g.top >= MIN_HEIGHT_SHARE * (best.bottom - best.top)
        for g, score in zip(groups, scores, strict=True)
    )
    # Pieces of the same digit lie close to it; what runs into the photo's edge (a shadow's or a
    # sheet's edge) is no piece of it, however close, unless it looks like part of a digit, and
    # neither is a rule's remnant beside it (longer than the digit and a hair thin).
    side = max(best.bottom - best.top, best.right - best.left)
    chosen = best
    for i in order[1:]:
        g = groups[i]
        gap = max(
            g.top - best.bottom, best.top - g.bottom, g.left - best.right, best.left - g.right
        )
        g_short, g_long = sorted((g.bottom - g.top, g.right - g.left))
        near = gap <= 0.3 * side and not (g_short < 0.15 * side and g_long > side)
        if near and (not _at_edge(g, labels.shape) or scores[i] > 0.1 * scores[order[0]]):
            chosen = chosen.merged(g)
        elif (
            point is None and scores[i] >= 0.8 * scores[order[0]] and SEVERAL_NOTE not in pre.notes
        ):
            pre.notes.append(SEVERAL_NOTE)
    if point is None and likeness[order[0]] < UNSURE_SCORE:
        pre.notes.append(NOT_A_DIGIT_NOTE)
    return chosen


# ---------------------------------------------------------------------------------------------
# One digit: MNIST's 20 px box and centre of mass


def _centre(crop: np.ndarray, pre: Preprocessed) -> Preprocessed:
    """Cropped ink -> strokes as thick as MNIST's -> 20 px box -> centred in 28x28 by mass."""
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
        return _empty(pre)
    ys, xs = np.indices(small.shape)
    com_y, com_x = float((ys * small).sum()) / mass, float((xs * small).sum()) / mass
    sh, sw = small.shape
    # Put the centre of mass at (14, 14) as MNIST did, but never push ink off the canvas.
    top = min(max(round(DIGIT_SIDE / 2 - com_y), 0), DIGIT_SIDE - sh)
    left = min(max(round(DIGIT_SIDE / 2 - com_x), 0), DIGIT_SIDE - sw)
    digit = np.zeros((DIGIT_SIDE, DIGIT_SIDE), np.float32)
    digit[top : top + sh, left : left + sw] = small
    if float(digit.max()) < 0.2 or np.count_nonzero(digit > 0.2) < 3:
        pre.notes.append(EMPTY_NOTE)
    pre.digit = digit
    pre.steps.append(("Centred in 28x28 by its centre of mass", digit))
    return pre


def to_mnist(gray: np.ndarray, point: tuple[float, float] | None = None) -> Preprocessed:
    """The MNIST recipe for one digit: white on black, lighting evened out, background removed,
    ink cropped, 20 px box, centre of mass. `point` (x, y as shares of `Preprocessed.page`): the
    mark nearest it is the digit, whatever the lab would have chosen."""
    pre, clean = _ink(gray)
    if clean is None:
        return _empty(pre)
    labels, groups, scale = _digit_regions(clean, stack=False)
    if not groups:
        return _empty(pre)
    # One digit: the mark that looks most like one, with its own pieces; a margin's remnant, a
    # shadow's edge or a speck far away would shrink the digit or be read instead of it.
    chosen = _choose_digit(groups, labels, pre, point)
    return _centre(_region_ink(clean, labels, scale, chosen), pre)


@dataclass
class Photo:
    """A photo of one or more digits: the steps they share, then each digit with its own steps."""

    steps: list[tuple[str, np.ndarray]] = field(default_factory=list)  # the whole photo
    digits: list[Preprocessed] = field(default_factory=list)  # left to right, steps from the crop
    notes: list[str] = field(default_factory=list)  # about the whole photo
    page: np.ndarray | None = None  # as in Preprocessed: where a point on the photo falls

    @property
    def unsure(self) -> bool:
        """Whether the lab may have taken the wrong mark for the digit (the person can point)."""
        notes = self.notes + [n for d in self.digits for n in d.notes]
        return any(n in notes for n in UNSURE_NOTES)

    def digit_array(self) -> np.ndarray:
        """The digits as one float32 array (N, 28, 28), white on black."""
        return np.stack([d.digit for d in self.digits]) if self.digits else np.zeros((0, 28, 28))


def _outlined(clean: np.ndarray, boxes: list[tuple[int, int, int, int]]) -> np.ndarray:
    """The ink with a grey frame around each digit found, for the step strip."""
    out = clean.copy()
    t = max(1, round(0.004 * max(clean.shape)))
    for top, bottom, left, right in boxes:
        top, left = max(0, top - 2 * t), max(0, left - 2 * t)
        bottom, right = min(out.shape[0], bottom + 2 * t), min(out.shape[1], right + 2 * t)
        for sl in (
            (slice(top, top + t), slice(left, right)),
            (slice(bottom - t, bottom), slice(left, right)),
            (slice(top, bottom), slice(left, left + t)),
            (slice(top, bottom), slice(right - t, right)),
        ):
            out[sl] = np.maximum(out[sl], 0.5)
    return out


def split_digits(gray: np.ndarray, max_digits: int = MAX_DIGITS, filename: str = "") -> Photo:
    """A photo of digits in a row -> each digit MNIST-style, left to right (none if no ink).

    Pieces of ink that overlap horizontally are one digit, so a broken stroke stays in its digit.
    More than `max_digits` separate marks: ImageError, since that is no row of digits.
    """
    pre, clean = _ink(gray)
    photo = Photo(steps=pre.steps, notes=pre.notes, page=pre.page)
    if clean is None:
        photo.notes.append(EMPTY_NOTE)
        return photo
    labels, pieces, scale = _digit_regions(clean, stack=False)
    # Lines, wedges and edges left by paper, shadow or table run into the photo's edge and look
    # like no digit: they are no piece of a digit (and would join the digits they lie under).
    if len(pieces) > 1:
        _, piece_scores = _digit_scores(pieces, labels)
        top = max(piece_scores)
        pieces = [
            p
            for p, score in zip(pieces, piece_scores, strict=True)
            if score >= 0.25 * top or not _at_edge(p, labels.shape)
        ]
    groups = _stack(pieces)
    # A page of writing has lines of marks, each line's marks stacked into a few tall groups:
    # many pieces as tall as letters (grain and dots around a small digit are far shorter).
    tallest = max((p.bottom - p.top for p in pieces), default=0)
    letters = sum(p.bottom - p.top >= MIN_HEIGHT_SHARE * tallest for p in pieces)
    if letters > WRITING_PIECES * max_digits:
        raise ImageError(
            f"{_name(filename)} looks like a page of writing rather than a row of digits; "
            "crop it to the digits and try again."
        )
    likeness, scores = _digit_scores(groups, labels)
    if likeness and max(likeness) < UNSURE_SCORE:
        photo.notes.append(NOT_A_DIGIT_NOTE)
    if len(groups) > 1:
        groups = [
            g
            for g, score in zip(groups, scores, strict=True)
            if score >= 0.25 * max(scores) or not _at_edge(g, labels.shape)
        ]
    # Dashes, dots and dust in a date or a phone number are much shorter than its digits; a
    # small mark shaped like a digit may still be the one meant, so the page offers to point.
    tallest = max((g.bottom - g.top for g in groups), default=0)
    short = [g for g in groups if g.bottom - g.top < MIN_HEIGHT_SHARE * tallest]
    if short and max(_digit_scores(short, labels)[0]) >= DIGIT_LIKE:
        photo.notes.append(LEFT_OUT_NOTE)
    groups = [g for g in groups if g.bottom - g.top >= MIN_HEIGHT_SHARE * tallest]
    if len(groups) > max_digits:
        raise ImageError(
            f"{_name(filename)} shows {len(groups)} separate marks, more than the {max_digits} "
            "digits one photo can hold; crop it to a row of digits and try again."
        )
    if not groups:
        photo.notes.append(EMPTY_NOTE)
        return photo
    boxes = [
        (
            round(g.top * scale),
            round(g.bottom * scale),
            round(g.left * scale),
            round(g.right * scale),
        )
        for g in groups
    ]
    if len(groups) > 1:
        photo.steps.append(
            (f"Split into {len(groups)} digits, left to right", _outlined(clean, boxes))
        )
    for group in groups:
        photo.digits.append(_centre(_region_ink(clean, labels, scale, group), Preprocessed()))
    return photo


def decode_pixels(pixels: np.ndarray) -> np.ndarray:
    """Pixels from a drawing pad or a camera (uint8 HxW, HxWx3 or HxWx4) -> float gray in [0, 1]."""
    arr = np.ascontiguousarray(np.asarray(pixels, dtype=np.uint8))
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (3, 4)) or arr.size == 0:
        raise ValueError(f"decode_pixels expects HxW, HxWx3 or HxWx4 pixels, got {arr.shape}")
    return _to_gray(Image.fromarray(arr))


def prepare_upload(
    data: bytes, filename: str = "", point: tuple[float, float] | None = None
) -> Preprocessed:
    """Upload bytes -> MNIST-style digit with its steps and notes; ImageError if unusable.
    `point`: the mark nearest it is the digit (see `to_mnist`)."""
    gray, notes = _decode(data, filename)
    pre = to_mnist(gray, point)
    if point is None and pre.marks > MAX_DIGITS:
        raise ImageError(
            f"{_name(filename)} shows {pre.marks} separate marks, like a page of writing rather "
            "than one digit; crop it to the digit and try again."
        )
    pre.notes[:0] = notes
    return pre


def prepare_digits(data: bytes, filename: str = "", max_digits: int = MAX_DIGITS) -> Photo:
    """Upload bytes of one or more digits in a row -> each digit MNIST-style; ImageError if unusable."""
    gray, notes = _decode(data, filename)
    photo = split_digits(gray, max_digits, filename)
    photo.notes[:0] = notes
    return photo


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
    # The fastest zlib level: these pictures are made on every click, for a browser on a network
    # where a few percent of bytes cost less than the server's time.
    Image.fromarray(np.ascontiguousarray(arr)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()
