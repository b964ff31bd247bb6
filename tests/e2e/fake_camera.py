"""Chromium's fake camera: it plays a Y4M video file instead of a real device. Here the video is one
still picture (a photo-like sheet with digits), so "Take photo" captures exactly that sheet."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

FRAME = (640, 480)  # what a laptop camera gives by default


def write_y4m(path: Path, picture: Image.Image, frames: int = 2) -> Path:
    """`picture` (resized to FRAME) as a Y4M video: 8-bit 4:2:0, the colour format Chromium reads."""
    w, h = FRAME
    ycbcr = picture.convert("RGB").resize(FRAME, Image.Resampling.LANCZOS).convert("YCbCr")
    y, cb, cr = (np.asarray(c, np.uint8) for c in ycbcr.split())
    half = (w // 2, h // 2)
    u = np.asarray(Image.fromarray(cb).resize(half, Image.Resampling.BOX), np.uint8)
    v = np.asarray(Image.fromarray(cr).resize(half, Image.Resampling.BOX), np.uint8)
    frame = b"FRAME\n" + y.tobytes() + u.tobytes() + v.tobytes()
    header = f"YUV4MPEG2 W{w} H{h} F30:1 Ip A1:1 C420jpeg\n".encode()
    path.write_bytes(header + frame * frames)
    return path


def flags(video: Path) -> list[str]:
    """Chromium flags: allow the camera without asking, and play `video` as the camera."""
    return [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={video}",
    ]
