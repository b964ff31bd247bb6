"""Keep shipped digit models in float16: half the bytes (vae_core/pretrained/ has a 15 MB budget).

For each name: the model is scored on the full MNIST test set as its training run scored it
(vae_core.metrics.evaluate with the run's seed and noise), saved in float16, read back through the
store (which hands out float32) and scored again. The metadata keeps the float16 file's scores, the
ones a person sees, and the float32 ones beside them. A model kept in float16 already is re-scored.
Usage: VAE_LAB_DATA_DIR=/path/to/mnist python scripts/ship_in_float16.py [name ...]
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vae_core import kinds, paths  # noqa: E402
from vae_core.data import load_dataset, to_float  # noqa: E402
from vae_core.fsutil import json_default, write_bytes_atomic  # noqa: E402
from vae_core.machine import stored_as  # noqa: E402
from vae_core.metrics import evaluate  # noqa: E402
from vae_core.specs import TrainSpec  # noqa: E402
from vae_core.store import META_SUFFIX, MODEL_SUFFIX, Store  # noqa: E402

DIGIT_MODELS = ("mlp_vae_2d", "cvae_2d", "conv_vae_32d", "conv_dae")


def test_scores(store: Store, name: str, x, y) -> dict[str, float]:
    """The test metrics a training run records, for the stored model `name` (loaded as float32)."""
    bundle = store.load(name)
    train = TrainSpec.from_dict(bundle.meta.get("train", {}))
    noise = None if bundle.spec.is_vae else (train.noise, train.noise_strength)
    labels = y if bundle.spec.is_conditional else None
    scores = evaluate(bundle, x, labels, noise=noise, batch_size=500, seed=train.seed)
    return {k: float(v) for k, v in scores.items()}


def halve(name: str, x, y) -> None:
    root = paths.SHIPPED_MODELS_DIR
    store = Store(Path(tempfile.mkdtemp(prefix="vae_half_")), shipped_root=root)
    meta = store.get(name).meta
    if kinds.get(meta["spec"]["kind"]).domain != kinds.DIGITS:
        raise SystemExit(f"{name} is not a digit model (the recommender has its own script).")
    before = meta.get("test_metrics_float32") or test_scores(store, name, x, y)
    half = stored_as(store.load(name), "float16")
    with tempfile.TemporaryDirectory() as tmp:
        saved = Path(tmp) / f"{name}{MODEL_SUFFIX}"
        half.composite.save(saved)
        write_bytes_atomic(root / f"{name}{MODEL_SUFFIX}", saved.read_bytes())
    after = test_scores(store, name, x, y)
    meta.update(stored_as="float16", test_metrics=after, test_metrics_float32=before)
    text = json.dumps(meta, indent=2, sort_keys=True, default=json_default) + "\n"
    write_bytes_atomic(root / f"{name}{META_SUFFIX}", text.encode())
    size = (root / f"{name}{MODEL_SUFFIX}").stat().st_size / 1e6
    print(f"{name}: {size:.2f} MB; float32 {before} -> float16 {after}", flush=True)


def main(names: list[str]) -> int:
    data = load_dataset("mnist")
    x, y = to_float(data.x_test), data.y_test
    for name in names or DIGIT_MODELS:
        halve(name, x, y)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
