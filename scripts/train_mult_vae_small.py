"""Train the Mult-VAE shipped for the Recommend page: ml-latest-small, fixed seed, small file.

Writes vae_core/recsys/pretrained/mult_vae_ml_latest_small.keras and .json (the command, seed, split,
settings, test metrics and the MovieLens movie id of each of the model's items, in column order).

Two choices keep the file small (the whole of vae_core/pretrained/ has a 20 MB budget):
- items: the movies that at least MIN_ITEM_USERS training users liked (1,807 of 5,723; they hold
  87% of the test users' held-out likes), instead of the paper's every movie any training user liked;
- weights stored in float16 (the store's load gives float32 back).
Usage: python scripts/train_mult_vae_small.py
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402

from vae_core.machine import float32_bundle, stored_as  # noqa: E402
from vae_core.recsys.baselines import Popularity, fit_ease  # noqa: E402
from vae_core.recsys.fit import SMALL_SET, fit_recommender  # noqa: E402
from vae_core.recsys.metrics import evaluate  # noqa: E402
from vae_core.recsys.model import RecSpec, recommender_from_composite  # noqa: E402
from vae_core.recsys.movielens import load_shipped_small  # noqa: E402
from vae_core.recsys.split import PAPER_SEED, paper_split  # noqa: E402

OUT_DIR = Path(__file__).resolve().parents[1] / "vae_core" / "pretrained"  # beside the others
NAME = "mult_vae_ml_latest_small"
MIN_ITEM_USERS = 5
SEED = PAPER_SEED


def main() -> int:
    t0 = time.time()
    data = load_shipped_small()
    split = paper_split(data, seed=SEED, min_item_users=MIN_ITEM_USERS)
    spec = RecSpec(kind="mult_vae", n_items=split.n_items)
    config = SMALL_SET
    keras.utils.set_random_seed(SEED)
    result = fit_recommender(
        split,
        spec,
        config,
        on_epoch=lambda r: print(
            f"epoch {r['epoch']}: loss {r['loss']:.1f}, val NDCG@100 {r['val_ndcg@100']:.4f}",
            flush=True,
        ),
    )
    half = stored_as(result.bundle, "float16")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    model_path = OUT_DIR / f"{NAME}.keras"
    half.composite.save(model_path)
    # What the page will get: the float16 file read back as float32, scored again.
    loaded = float32_bundle(
        recommender_from_composite(keras.saving.load_model(model_path, safe_mode=True))
    )
    from vae_core.recsys.fit import score_test_users

    test = score_test_users(loaded, split)
    neighbours = {
        "popularity": evaluate(Popularity.fit(split.train).score, split.test_in, split.test_out),
        "ease": evaluate((ease := fit_ease(split)).score, split.test_in, split.test_out),
    }
    meta = {
        "name": NAME,
        "kind": "mult_vae",
        "description": (
            "Mult-VAE (Liang et al. 2018) trained on MovieLens ml-latest-small with the paper's "
            f"protocol, items limited to movies at least {MIN_ITEM_USERS} training users liked."
        ),
        "command": "python scripts/train_mult_vae_small.py",
        "seed": SEED,
        "dataset": "ml-latest-small",
        "licence": "MovieLens ml-latest-small by GroupLens: see README.txt beside the data "
        "(vae_core/recsys/data/ml-latest-small/README.txt); ship it with this model.",
        # The store's form: the spec and the run's settings as vae_core.specs has them, so the
        # sidebar lists it and the Recommend page rebuilds its split (min_item_users).
        "spec": {**spec.to_dict(), "beta": config.anneal_cap, "reconstruction": "multinomial"},
        "train": {
            "dataset": "ml-latest-small",
            "epochs": config.epochs,
            "batch_size": config.batch_size,
            "learning_rate": config.learning_rate,
            "kl_anneal_steps": config.anneal_steps,
            "l2": config.l2,
            "seed": SEED,
            "min_item_users": MIN_ITEM_USERS,
        },
        "stored_as": "float16",
        "split": {
            **split.summary(),
            "min_item_users": MIN_ITEM_USERS,
            "positive_above": 3.5,
            "min_positives": 5,
            "heldout_users": int(split.test_in.shape[0]),
        },
        "best_epoch": result.best_epoch,
        "val_metrics": result.val_metrics,
        # Flat, as a training run records them: the model's, then its neighbours' on the same users.
        "test_metrics": {
            **_scores("", test),
            **_scores("popularity_", neighbours["popularity"]),
            **_scores("ease_", neighbours["ease"]),
            "ease_lambda": ease.lam,
            "best_epoch": result.best_epoch,
        },
        "test_metrics_float32": result.test_metrics,
        "history": [{k: round(v, 5) for k, v in row.items()} for row in result.history],
        "item_ids": split.items.ids.tolist(),
        "seconds": round(time.time() - t0, 1),
    }
    (OUT_DIR / f"{NAME}.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    size = model_path.stat().st_size / 1e6
    print(f"wrote {model_path} ({size:.1f} MB): test {test}")
    return 0


def _scores(prefix: str, scores: dict) -> dict:
    return {f"{prefix}{k}": v for k, v in scores.items() if k != "users"}


if __name__ == "__main__":
    sys.exit(main())
