"""Durable file writes shared by the run folder and the model store."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def fsync_file(path: Path) -> None:
    """Flush a written file to disk before it is renamed into place."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Make a rename in `path` durable (best effort: some filesystems cannot fsync a directory)."""
    with contextlib.suppress(OSError):
        fsync_file(path)
