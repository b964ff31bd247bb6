"""Regenerate vae_core/sample_data/mnist_sample.npz: the first 50 MNIST test digits of each class.

Usage: python scripts/make_sample.py [MNIST_DIR]   (default: $VAE_LAB_DATA_DIR)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vae_core.data import SAMPLE_PATH, load_dataset  # noqa: E402

PER_CLASS = 50


def main(argv: list[str]) -> int:
    data_dir = argv[1] if len(argv) > 1 else None
    ds = load_dataset("mnist", data_dir=data_dir, allow_download=False)
    picks = [np.flatnonzero(ds.y_test == c)[:PER_CLASS] for c in range(10)]
    # Round-robin over classes (0,1,..,9,0,1,..): any prefix is balanced, so the sample's
    # first-80%-train / last-20%-test split has 40 and 10 digits of every class.
    order = np.stack(picks, axis=1).reshape(-1)
    SAMPLE_PATH.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        SAMPLE_PATH, x=ds.x_test[order], y=ds.y_test[order], test_index=order.astype(np.int32)
    )
    print(f"wrote {SAMPLE_PATH} ({SAMPLE_PATH.stat().st_size} bytes) from {ds.source}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
