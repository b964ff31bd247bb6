"""A digit classifier of our own that reads what the models make, so pictures are judged by numbers.

Trained here on the 60,000 MNIST training digits (never shipped; cached in benchmarks/out/ by the
hash of its recipe), it must read >= 99% of the 10,000 test digits before its verdicts count.
Two measures of a VAE follow (issue 16):
- round trip: the share of test digits whose decoder(z_mean) it reads as the digit that went in;
- prior draws: the share of draws from the model's prior it reads with confidence >= 0.9, and how
  evenly the ten digits appear among them (entropy of the read labels / log 10).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from benchmarks.common import BENCH_DIR, log

CONFIDENT = 0.9
PRIOR_DRAWS = 2000
TEMPERATURES = (0.5, 0.75, 1.0)
# The recipe; changing it changes the cache key, so a stale reader is never reused.
RECIPE = dict(filters=(32, 64), dense=128, dropout=0.3, epochs=4, batch=128, lr=2e-3, seed=0)
QUICK_RECIPE = {**RECIPE, "epochs": 1, "train_digits": 10_000}  # a smoke run's reader: ~97%


def _cache_path(recipe: dict) -> Path:
    key = hashlib.sha1(repr(sorted(recipe.items())).encode()).hexdigest()[:10]
    return BENCH_DIR / "out" / f"digit_reader_{key}.keras"


def build_reader():
    import keras
    from keras import layers

    f1, f2 = RECIPE["filters"]
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.Conv2D(f1, 3, activation="relu", padding="same"),
            layers.MaxPooling2D(),
            layers.Conv2D(f2, 3, activation="relu", padding="same"),
            layers.MaxPooling2D(),
            layers.Flatten(),
            layers.Dropout(RECIPE["dropout"]),
            layers.Dense(RECIPE["dense"], activation="relu"),
            layers.Dense(10, activation="softmax"),
        ],
        name="digit_reader",
    )


def reader(data=None, quick: bool = False):
    """(the trained classifier, its test accuracy); trained once, then read from the cache."""
    import keras

    from vae_core.data import load_dataset, to_float

    recipe = QUICK_RECIPE if quick else RECIPE
    data = data or load_dataset("mnist")
    x_test, y_test = to_float(data.x_test), np.asarray(data.y_test)
    path = _cache_path(recipe)
    if path.is_file():
        model = keras.models.load_model(path)
    else:
        log("training the digit reader on the 60,000 MNIST training digits")
        keras.utils.set_random_seed(recipe["seed"])
        model = build_reader()
        epochs, n = recipe["epochs"], recipe.get("train_digits")
        steps = epochs * int(np.ceil(len(data.x_train[:n]) / recipe["batch"]))
        lr = keras.optimizers.schedules.CosineDecay(recipe["lr"], steps)
        model.compile(
            keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
        )
        model.fit(
            to_float(data.x_train[:n]),
            np.asarray(data.y_train[:n]),
            batch_size=recipe["batch"],
            epochs=epochs,
            verbose=2,
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.keras")
        model.save(tmp)
        os.replace(tmp, path)
    accuracy = float(np.mean(read(model, x_test)[0] == y_test))
    return model, accuracy


def read(model, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(labels, confidences) the reader gives a batch of 28x28 images in [0, 1]."""
    x = np.asarray(images, np.float32).reshape(-1, 28, 28, 1)
    p = np.concatenate(
        [np.asarray(model(x[i : i + 1000], training=False)) for i in range(0, len(x), 1000)]
    )
    return p.argmax(1), p.max(1)


def round_trip_share(model, bundle, x: np.ndarray, y: np.ndarray) -> dict:
    """Shares of digits whose decoder(z_mean) the reader reads as the digit that went in
    ("round_trip"), and as it reads the original itself ("as_original": the model's own part)."""
    from vae_core import explore

    labels = y if bundle.spec.is_conditional else None
    images = []
    for i in range(0, len(x), 1000):
        yb = None if labels is None else labels[i : i + 1000]
        z_mean, _ = explore.encode(bundle, x[i : i + 1000], yb)
        images.append(explore.decode(bundle, z_mean, yb))
    read_back, read_original = read(model, np.concatenate(images))[0], read(model, x)[0]
    return {
        "round_trip": float(np.mean(read_back == y)),
        "as_original": float(np.mean(read_back == read_original)),
    }


def prior_draw_scores(
    model, bundle, temperature: float = 1.0, n: int = PRIOR_DRAWS, seed: int = 0
) -> dict:
    """Confident share and evenness of n draws from the model's prior at a temperature (a
    conditional model is asked for each digit in turn, and must draw the one asked for)."""
    from vae_core import explore

    asked = np.arange(n) % 10
    chunks = []
    for start in range(0, n, 1000):
        size = min(1000, n - start)
        label = asked[start : start + size] if bundle.spec.is_conditional else None
        _, images = explore.sample_prior(
            bundle, size, temperature=temperature, seed=seed + start, label=label
        )
        chunks.append(images)
    labels, conf = read(model, np.concatenate(chunks))
    if bundle.spec.is_conditional:
        conf = np.where(labels == asked, conf, 0.0)  # a confident 3 asked to be a 7 is a miss
    sure = labels[conf >= CONFIDENT]
    counts = np.bincount(sure, minlength=10).astype(np.float64)
    share = counts / max(counts.sum(), 1)
    nz = share[share > 0]
    evenness = float(-(nz * np.log(nz)).sum() / np.log(10)) if len(nz) else 0.0
    return {"confident": float(np.mean(conf >= CONFIDENT)), "evenness": evenness}


def report_card(model, bundle, data, n_test: int | None = None, draws: int = PRIOR_DRAWS) -> dict:
    """Round trip on the test digits (all, or the first n_test), prior draws at each temperature."""
    from vae_core.data import to_float

    x, y = to_float(data.x_test[:n_test]), np.asarray(data.y_test[:n_test])
    card = {**round_trip_share(model, bundle, x, y), "n_test": len(x), "draws": draws}
    for t in TEMPERATURES:
        card[f"prior_t{t}"] = prior_draw_scores(model, bundle, t, n=draws)
    return card


if __name__ == "__main__":
    import json
    import sys

    from vae_core.data import load_dataset
    from vae_core.store import default_store

    data = load_dataset("mnist")
    model, acc = reader(data)
    print(f"digit reader test accuracy {acc:.4f}")
    store = default_store()
    for name in sys.argv[1:]:  # store models to score: python -m benchmarks.digit_reader NAME ...
        card = report_card(model, store.load(name), data)
        print(name, json.dumps(card), flush=True)
