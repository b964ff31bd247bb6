"""Where VAE Lab keeps its files: one home folder (VAE_LAB_HOME, default ~/.vae_lab)."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
SHIPPED_MODELS_DIR = PACKAGE_DIR / "pretrained"  # read-only models shipped with the project


def home() -> Path:
    """The app's own folder; everything it writes goes below it."""
    return Path(os.environ.get("VAE_LAB_HOME") or Path.home() / ".vae_lab").expanduser()


def store_dir() -> Path:
    """The user's model store (the shipped models live in SHIPPED_MODELS_DIR)."""
    return home() / "models"


def runs_dir() -> Path:
    """One folder per training run."""
    return home() / "runs"


# ---------------------------------------------------------------- data from outside
DATA_DIR_ENV = "VAE_LAB_DATA_DIR"  # a folder of the user's datasets (MNIST, MovieLens)
OFFLINE_ENV = "VAE_LAB_OFFLINE"


def downloads_allowed() -> bool:
    """False when VAE_LAB_OFFLINE is set: nothing is fetched, and no page offers a download."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("", "0", "false", "no")
