"""Keep shipped digit models in float16, compressed: under half the bytes (vae_core/pretrained/ has
a 15 MB budget). The compression is lossless (vae_core.store.compressed_keras); float16 is not.

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
from vae_core.specs import TrainSpec  # noqa: E402
from vae_core.store import META_SUFFIX, MODEL_SUFFIX, Store, compressed_keras  # noqa: E402
from vae_core.tasks import digit_test_scores  # noqa: E402

DIGIT_MODELS = ("mlp_vae_2d", "cvae_2d", "conv_vae_32d", "conv_dae", "conv_vae_binary")


def halve(store: Store, name: str, x, y) -> None:
    """Rewrite the shipped model `name` in float16, with its scores before and after."""
    root = store.shipped_root
    bundle = store.load(name)  # float32, whatever the file holds
    if kinds.get(bundle.spec.kind).domain != kinds.DIGITS:
        raise SystemExit(f"{name} is not a digit model (the recommender has its own script).")
    meta, train = bundle.meta, TrainSpec.from_dict(bundle.meta.get("train", {}))
    before = meta.get("test_metrics_float32") or digit_test_scores(bundle, x, y, train)
    file = compressed_keras(stored_as(bundle, "float16").composite)
    write_bytes_atomic(root / f"{name}{MODEL_SUFFIX}", file)
    after = digit_test_scores(store.load(name), x, y, train)  # the file as the pages will read it
    meta.update(stored_as="float16", test_metrics=after, test_metrics_float32=before)
    text = json.dumps(meta, indent=2, sort_keys=True, default=json_default) + "\n"
    write_bytes_atomic(root / f"{name}{META_SUFFIX}", text.encode())
    size = (root / f"{name}{MODEL_SUFFIX}").stat().st_size / 1e6
    print(f"{name}: {size:.2f} MB; float32 {before} -> float16 {after}", flush=True)


def main(names: list[str]) -> int:
    tests = {}  # dataset -> its test digits and labels, read once (a binarized model: binarized)
    with tempfile.TemporaryDirectory() as home:  # the store's own folder: unused, only shipped
        store = Store(Path(home), shipped_root=paths.SHIPPED_MODELS_DIR)
        for name in names or DIGIT_MODELS:
            dataset = store.get(name).meta.get("dataset", "mnist")
            if dataset not in tests:
                data = load_dataset(dataset)
                tests[dataset] = (to_float(data.x_test), data.y_test)
            halve(store, name, *tests[dataset])
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
