"""Hostile files, built in memory: uploads that are broken, huge, odd or lying about what they are,
and .keras models that try to run code or escape the store. Shared by unit, AppTest and browser tests."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


def seven(size=(120, 160), ink=0, paper=255, mode="L") -> Image.Image:
    """A thick '7': a bar on top and a long diagonal, so up and down are easy to tell apart."""
    w, h = size
    img = Image.new(mode, size, paper)
    ImageDraw.Draw(img).line(
        [(w * 0.2, h * 0.15), (w * 0.8, h * 0.15), (w * 0.4, h * 0.85)],
        fill=ink,
        width=max(2, w // 10),
    )
    return img


def encode(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def png_with_header_size(width: int, height: int) -> bytes:
    """A tiny real PNG whose header claims width x height (a decompression bomb)."""
    raw = bytearray(encode(Image.new("L", (8, 8), 255)))
    raw[16:24] = struct.pack(">II", width, height)
    raw[29:33] = struct.pack(">I", zlib.crc32(bytes(raw[12:29])))
    return bytes(raw)


def truncated(fmt: str) -> bytes:
    noisy = Image.fromarray(np.random.default_rng(0).integers(0, 256, (200, 200), dtype=np.uint8))
    data = encode(noisy, fmt)
    return data[: len(data) // 2]


def animated_gif() -> bytes:
    first = seven()
    buf = io.BytesIO()
    first.save(
        buf,
        "GIF",
        save_all=True,
        append_images=[Image.new("L", first.size, 0)],
        duration=100,
        loop=0,
    )
    return buf.getvalue()


def exif_rotated_jpeg() -> bytes:
    """A 120x160 upright '7' stored turned on its side, with EXIF orientation 6 to turn it back."""
    exif = Image.Exif()
    exif[0x0112] = 6
    stored = seven(size=(120, 160)).transpose(Image.Transpose.ROTATE_90)
    return encode(stored, "JPEG", quality=95, exif=exif.tobytes())


def sixteen_bit_png() -> bytes:
    return encode(
        Image.fromarray((np.asarray(seven(), np.float32) / 255 * 65535).astype(np.uint16))
    )


def cmyk_jpeg() -> bytes:
    return encode(seven(mode="RGB", ink=(0, 0, 0), paper=(255, 255, 255)).convert("CMYK"), "JPEG")


def palette_png_with_transparency() -> bytes:
    img = seven(mode="P", ink=1, paper=0)
    img.putpalette([0, 0, 0, 20, 20, 200] + [0, 0, 0] * 254)
    return encode(img, transparency=0)


def rgba_on_transparent() -> bytes:
    img = Image.new("RGBA", (100, 140), (0, 0, 0, 0))
    ImageDraw.Draw(img).line([(20, 20), (80, 20), (40, 120)], fill=(0, 0, 0, 255), width=10)
    return encode(img)


# name -> (file name, bytes, what happens: "error:<words in the sentence>" or "ok[:<words in a note>]")
def uploads() -> dict[str, tuple[str, bytes, str]]:
    """Every hostile upload of the issue, with the outcome a person should see."""
    return {
        "empty": ("empty.png", b"", "error:is empty"),
        "truncated_png": ("cut.png", truncated("PNG"), "error:cut off"),
        "truncated_jpeg": ("cut.jpg", truncated("JPEG"), "error:cut off"),
        "random_bytes": ("noise.png", np.random.default_rng(1).bytes(5000), "error:not an image"),
        "html_as_png": (
            "page.png",
            b"<!DOCTYPE html><html><body><script>alert(1)</script>",
            "error:not an image",
        ),
        "svg_as_png": (
            "drawing.png",
            b'<svg xmlns="http://www.w3.org/2000/svg"><circle r="4"/></svg>',
            "error:not an image",
        ),
        "bomb": ("bomb.png", png_with_header_size(40000, 40000), "error:4096x4096"),
        "one_by_20000": (
            "strip.png",
            encode(Image.new("L", (1, 20000), 255)),
            "error:too long and thin",
        ),
        "animated_gif": ("anim.gif", animated_gif(), "ok:first one"),
        "sixteen_bit": ("deep.png", sixteen_bit_png(), "ok"),
        "cmyk_jpeg": ("cmyk.jpg", cmyk_jpeg(), "ok"),
        "palette_transparency": ("palette.png", palette_png_with_transparency(), "ok"),
        "rgba_transparent": ("rgba.png", rgba_on_transparent(), "ok"),
        "exif_rotated": ("rotated.jpg", exif_rotated_jpeg(), "ok"),
        "all_black": ("black.png", encode(Image.new("L", (64, 64), 0)), "ok:almost empty"),
        "all_white": ("white.png", encode(Image.new("L", (64, 64), 255)), "ok:almost empty"),
        "one_pixel": ("dot.png", encode(Image.new("L", (1, 1), 0)), "ok:almost empty"),
        "too_big_file": ("huge.png", b"\x89PNG\r\n\x1a\n" + bytes(10 * 1024 * 1024), "error:10 MB"),
        "dotdot_name": ("../../../tmp/e2e_escape.png", encode(seven()), "ok"),
    }


def tree(*roots: Path) -> dict[str, float]:
    """Every file under the roots with its mtime, to show that nothing was written."""
    out = {}
    for root in roots:
        if Path(root).exists():
            for path in Path(root).rglob("*"):
                if path.is_file():
                    out[str(path)] = path.stat().st_mtime
    return out


# ---------------------------------------------------------------- hostile models
def keras_bytes(model, tmp_path: Path) -> bytes:
    path = Path(tmp_path) / f"{model.name}_upload.keras"
    model.save(path)
    data = path.read_bytes()
    path.unlink()
    return data


def vae_shaped(encoder_out_layer, tmp_path: Path) -> bytes:
    """A composite shaped like VAE Lab's (encoder + decoder) whose encoder ends in the given layer."""
    import keras

    x = keras.Input((28, 28, 1))
    encoder = keras.Model(
        x, encoder_out_layer(keras.layers.Dense(2)(keras.layers.Flatten()(x))), name="encoder"
    )
    z = keras.Input((2,))
    decoder = keras.Model(
        z, keras.layers.Reshape((28, 28, 1))(keras.layers.Dense(784)(z)), name="decoder"
    )
    image = keras.Input((28, 28, 1))
    return keras_bytes(keras.Model(image, decoder(encoder(image)), name="sneaky"), tmp_path)


def lambda_model(tmp_path: Path) -> bytes:
    import keras

    return vae_shaped(keras.layers.Lambda(lambda t: t * 2), tmp_path)


def zip_bytes(members: dict[str, bytes]) -> bytes:
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()
