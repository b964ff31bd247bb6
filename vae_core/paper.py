"""The sheet under the writing, as document-scanning apps see it: where the paper lies in a photo
taken at an angle, how its light and shadows fall, and which long straight lines were printed on it.

Images here are float32 grayscale (H, W) in [0, 1]. `images` calls these in the order a scan does:
find and straighten the sheet, even out light and shadow, take the printed rules away.
"""

from __future__ import annotations

import cv2
import numpy as np

SHEET_SIDE = 320  # the sheet's outline is looked for on a thumbnail this large: its edges are long
MIN_SHEET_SHARE = 0.2  # a sheet covering less of the photo than this is not what was photographed
MIN_SHEET_CONTRAST = 0.15  # paper is at least this much brighter than the table around it
LIGHT_SIDE = 384  # light and shadow are measured on a copy this large: they are broad
LIGHT_KERNEL = 0.16  # ink narrower than this share of the longer side is not paper's shade
SHADOW_STEP = 0.1  # a shadow's edge: the paper's brightness changes this much within 2 px
RULE_SPAN = 0.7  # a printed rule shows, bare, across at least this share of the sheet ...
RULE_MIN_SPAN = 0.4  # ... or bare across this share and, writing on it included, RULE_COVER
RULE_COVER = 0.8
RULE_THICKNESS = 0.008  # a rule is at most this share of the sheet thick, blur included ...
RULE_MIN_THICKNESS = 6  # ... or this many pixels, however small the photo
RULE_SLACK = 3  # px: how far a rule may wander off its row across the sheet (a slight tilt)


def find_sheet(gray: np.ndarray) -> np.ndarray | None:
    """The sheet of paper cut out of a photo and straightened into a rectangle, or None when no
    sheet with a darker surround (a table) shows: the photo then is the sheet already."""
    h, w = gray.shape
    if min(h, w) < 32:
        return None
    scale = SHEET_SIDE / max(h, w)
    small = cv2.resize(gray, (max(1, round(w * scale)), max(1, round(h * scale))), cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), 1.5)
    sh, sw = small.shape
    _, bright = cv2.threshold(_to_byte(small), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    # The writing on the sheet is dark too: close it into the paper so the outline is the sheet's.
    k = max(3, round(0.04 * max(sh, sw)) | 1)
    bright = cv2.morphologyEx(
        bright, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k))
    )
    contours, _ = cv2.findContours(bright, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    outline = cv2.convexHull(max(contours, key=cv2.contourArea))
    area = cv2.contourArea(outline)
    if not MIN_SHEET_SHARE * sh * sw <= area <= 0.95 * sh * sw:
        return None
    quad = cv2.approxPolyDP(outline, 0.03 * cv2.arcLength(outline, True), True).reshape(-1, 2)
    if len(quad) != 4:
        return None
    # A shadow or a lamp's fall-off also splits a photo into a bright and a dark part, but their
    # border runs off the photo's edges: a photographed sheet has its corners inside the frame.
    margin = 0.02 * max(sh, sw)
    inside = (
        (quad[:, 0] > margin)
        & (quad[:, 0] < sw - 1 - margin)
        & (quad[:, 1] > margin)
        & (quad[:, 1] < sh - 1 - margin)
    )
    if inside.sum() < 3:
        return None
    mask = np.zeros((sh, sw), np.uint8)
    cv2.fillConvexPoly(mask, quad.astype(np.int32), 1)
    paper, table = np.median(small[mask == 1]), np.median(small[mask == 0])
    if paper - table < MIN_SHEET_CONTRAST:
        return None
    corners = _ordered(quad.astype(np.float32) / np.float32(scale))
    top, right, bottom, left = (np.linalg.norm(corners[i] - corners[(i + 1) % 4]) for i in range(4))
    out_w, out_h = round((top + bottom) / 2), round((left + right) / 2)
    # Cut a little inside the outline: the table must not peek in along the sheet's edges.
    inset = 0.015 * min(out_w, out_h)
    target = np.float32(
        [[-inset, -inset], [out_w + inset, -inset], [out_w + inset, out_h + inset],
         [-inset, out_h + inset]]
    )  # fmt: skip
    matrix = cv2.getPerspectiveTransform(corners, target)
    return cv2.warpPerspective(gray, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE)  # fmt: skip


def _ordered(quad: np.ndarray) -> np.ndarray:
    """Four corners as top-left, top-right, bottom-right, bottom-left."""
    total, diff = quad.sum(axis=1), quad[:, 0] - quad[:, 1]
    return np.float32(
        [quad[total.argmin()], quad[diff.argmax()], quad[total.argmax()], quad[diff.argmin()]]
    )


def _to_byte(img: np.ndarray) -> np.ndarray:
    """[0, 1] floats as 0-255 bytes (what OpenCV's Otsu threshold takes)."""
    return np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)


def paper_light(paper: np.ndarray) -> tuple[np.ndarray, bool]:
    """How bright the bare paper is at each pixel of a dark-on-light image, and whether a
    hard-edged shadow falls on it.

    A morphological closing fills in everything dark and narrower than the kernel (the writing)
    and keeps what is broad (light falling off, a shadow), edges and all: unlike a blur, it does
    not smear a shadow's edge into a band that would read as ink.
    """
    h, w = paper.shape
    scale = min(1.0, LIGHT_SIDE / max(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = cv2.resize(paper, size, interpolation=cv2.INTER_AREA) if scale < 1 else paper.copy()
    small = cv2.GaussianBlur(small, (0, 0), 1.0)  # grain would bias the closing's maximum
    k = max(3, round(LIGHT_KERNEL * max(small.shape)) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (k, k))
    light = cv2.morphologyEx(small, cv2.MORPH_CLOSE, kernel, borderType=cv2.BORDER_REPLICATE)
    light = cv2.blur(light, (3, 3))
    step = np.abs(light[:, 2:] - light[:, :-2]).max(initial=0.0)
    step = max(step, np.abs(light[2:] - light[:-2]).max(initial=0.0))
    hard = bool(step > SHADOW_STEP * max(float(np.median(light)), 1e-3))
    if scale < 1:
        light = cv2.resize(light, (w, h), interpolation=cv2.INTER_LINEAR)
    if hard:
        # Measured small and scaled up, a shadow's edge comes back blurred: just on its dark side
        # the paper would seem brighter than it is, and that seam would read as a line of ink.
        # Near an edge, take the darker side's level: ink there still shows, a seam does not.
        r = max(1, round(3 / scale))
        light = cv2.erode(
            light, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
        )
    return light, hard


def remove_rules(ink: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Printed rules and margin lines (thin lines across most of the sheet, either way) taken
    out of a white-on-black ink image; strokes crossing them are joined again. `level` is the
    faintest ink. Returns the ink without rules and where the rules were (bool)."""
    mask = (ink > level).astype(np.uint8)
    bands = []
    for axis in (0, 1):  # 0: rows (horizontal rules), 1: columns (the margin, squared paper)
        found = _rules_along_rows(mask if axis == 0 else mask.T).astype(np.uint8)
        # A rule's faint, blurred flanks go with it, or they would be left as two fainter rules.
        found = cv2.dilate(found, np.ones((7, 3), np.uint8))
        bands.append((found if axis == 0 else found.T).astype(bool))
    grown = bands[0] | bands[1]
    if not grown.any():
        return ink, grown
    cleaned = np.where(grown, 0.0, ink).astype(np.float32)
    # A stroke cut by a rule is bridged straight across the gap the rule leaves, and only there
    # (bridging along the rule would join two strokes that merely cross it near each other).
    span = 2 * (_max_thickness(ink.shape) + 4) + 1
    across_rows = cv2.morphologyEx(cleaned, cv2.MORPH_CLOSE, np.ones((span, 1), np.uint8))
    across_cols = cv2.morphologyEx(cleaned, cv2.MORPH_CLOSE, np.ones((1, span), np.uint8))
    out = np.where(bands[0], across_rows, cleaned)
    out = np.where(bands[1] & ~bands[0], across_cols, out)
    return out.astype(np.float32), grown


def _max_thickness(shape: tuple[int, int]) -> int:
    return max(RULE_MIN_THICKNESS, round(RULE_THICKNESS * max(shape)))


def _rules_along_rows(mask: np.ndarray) -> np.ndarray:
    """Thin lines running along the rows of a 0/1 mask across most of its width."""
    h, w = mask.shape
    # Short straight pieces first (a rule photographed slightly askew is a staircase of them) ...
    piece = max(9, round(0.06 * w))
    runs = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((1, piece), np.uint8))
    # ... minus whatever is thick (a digit's bar lying along a rule) ...
    t = _max_thickness(mask.shape)
    thick = cv2.morphologyEx(runs, cv2.MORPH_OPEN, np.ones((t + 1, 1), np.uint8))
    thin = runs & (1 - thick)
    if not thin.any():
        return np.zeros(mask.shape, bool)
    # ... then the rows where such pieces run across the sheet, broken only by writing on them
    # (a digit on the rule, counted as the rule's) and a few rows of slack for a slight tilt.
    slack = np.ones((2 * RULE_SLACK + 1, 1), np.uint8)
    band = cv2.dilate(thin, slack)
    writing = cv2.dilate(mask & (1 - runs), np.ones((2 * RULE_SLACK + 1, max(3, w // 8)), np.uint8))
    along = band.mean(axis=1)
    covered = (band | writing).mean(axis=1)
    rows = (along >= RULE_SPAN) | ((along >= RULE_MIN_SPAN) & (covered >= RULE_COVER))
    rows = cv2.dilate(rows.astype(np.uint8)[:, None], slack)
    return (thin > 0) & (rows > 0)
