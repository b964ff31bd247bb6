"""Structured fuzzing of upload decoding: real images of any mode, size, format and orientation, then
damaged. Whatever comes in, the result is an MNIST-like digit or an ImageError with one sentence,
and nothing is written anywhere. (Byte-level fuzzing and named hostile cases: tests/test_images.py.)"""

from __future__ import annotations

import io
import tempfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from tests import hostile
from vae_core.errors import ImageError
from vae_core.images import prepare_upload

MODES = ["1", "L", "LA", "P", "RGB", "RGBA", "I;16", "I", "F", "CMYK"]
# The modes each format can be written in (Pillow 13 no longer writes 32-bit "I" as PNG).
FORMATS = {
    "PNG": ("1", "L", "LA", "P", "RGB", "RGBA", "I;16"),
    "JPEG": ("L", "RGB", "CMYK"),
    "GIF": ("L", "P"),
    "BMP": ("1", "L", "P", "RGB"),
    "WEBP": ("RGB", "RGBA"),
    "TIFF": ("1", "L", "LA", "P", "RGB", "RGBA", "I;16", "I", "F", "CMYK"),
}


def _ok_or_sentence(data: bytes, name: str) -> None:
    try:
        pre = prepare_upload(data, name)
    except ImageError as err:
        msg = str(err)
        assert msg.endswith(".") and "Traceback" not in msg and len(msg) < 300, msg
        return
    d = pre.digit
    assert d.shape == (28, 28) and d.dtype == np.float32
    assert np.isfinite(d).all() and 0.0 <= d.min() and d.max() <= 1.0
    assert all(step.ndim == 2 and np.isfinite(step).all() for _, step in pre.steps)


@st.composite
def images(draw):
    fmt = draw(st.sampled_from(sorted(FORMATS)))
    mode = draw(st.sampled_from(FORMATS[fmt]))
    w, h = draw(st.integers(1, 90)), draw(st.integers(1, 90))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    kind = draw(st.sampled_from(["noise", "seven", "flat"]))
    if kind == "seven":
        base = hostile.seven(size=(max(w, 8), max(h, 8)))
    elif kind == "flat":
        base = Image.new("L", (w, h), int(rng.integers(0, 256)))
    else:
        base = Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8))
    if mode in ("I;16", "I", "F"):
        img = Image.fromarray((np.asarray(base, np.float32) * 257).astype(np.uint16)).convert(mode)
    else:
        img = base.convert(mode)
    kwargs = {}
    if fmt == "JPEG" and draw(st.booleans()):
        exif = Image.Exif()
        exif[0x0112] = draw(st.integers(0, 9))  # orientation, including invalid values
        kwargs["exif"] = exif.tobytes()
    if mode == "P" and fmt == "PNG" and draw(st.booleans()):
        kwargs["transparency"] = int(rng.integers(0, 256))
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kwargs)
    return fmt, buf.getvalue()


@pytest.fixture(autouse=True)
def _nothing_written(tmp_path, monkeypatch):
    systmp = tmp_path / "systmp"
    systmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(systmp))
    monkeypatch.chdir(tmp_path)
    yield
    assert sorted(p.name for p in tmp_path.iterdir()) == ["systmp"]
    assert list(systmp.iterdir()) == []


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(images(), st.sampled_from(["keep", "cut", "flip", "zero_tail"]), st.integers(0, 10**6))
def test_fuzz_real_images_of_every_mode_then_damaged(image, damage, where):
    fmt, data = image
    raw = bytearray(data)
    if damage == "cut":
        raw = raw[: max(1, where % len(raw))]
    elif damage == "flip":
        raw[where % len(raw)] ^= 0xFF
    elif damage == "zero_tail":
        start = where % len(raw)
        raw[start:] = bytes(len(raw) - start)
    _ok_or_sentence(bytes(raw), f"../fuzz.{fmt.lower()}")


@pytest.mark.parametrize("case", list(hostile.uploads()))
def test_every_hostile_upload_of_the_issue(case):
    name, data, want = hostile.uploads()[case]
    if want.startswith("error"):
        with pytest.raises(ImageError) as info:
            prepare_upload(data, name)
        assert want.split(":", 1)[1] in str(info.value) and "../" not in str(info.value)
    else:
        pre = prepare_upload(data, name)
        if ":" in want:
            assert any(want.split(":", 1)[1] in note for note in pre.notes), pre.notes
        _ok_or_sentence(data, name)
