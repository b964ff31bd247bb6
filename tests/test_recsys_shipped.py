"""The VAE recommender shipped for the Recommend page (the better of Mult-VAE and RecVAE on its split,
scripts/train_rec_vae_small.py): loads offline in safe mode, and its metadata is true."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np

from vae_core import kinds
from vae_core.machine import float32_bundle
from vae_core.recsys.fit import score_test_users
from vae_core.recsys.movielens import load_shipped_small
from vae_core.recsys.recommend import recommend
from vae_core.recsys.split import paper_split
from vae_core.specs import ModelSpec

SHIPPED = Path(__file__).resolve().parents[1] / "vae_core" / "pretrained"
RECOMMENDERS = [p.stem for p in SHIPPED.glob("*_ml_latest_small.json")]
NAME = RECOMMENDERS[0] if RECOMMENDERS else "none shipped"
KIND = NAME.removesuffix("_ml_latest_small")


def test_one_vae_recommender_is_shipped():
    assert len(RECOMMENDERS) == 1 and KIND in kinds.for_page("recommend")


def test_the_shipped_recommender_loads_and_scores_what_its_metadata_says():
    meta = json.loads((SHIPPED / f"{NAME}.json").read_text())
    composite = keras.saving.load_model(SHIPPED / f"{NAME}.keras", safe_mode=True, compile=False)
    spec = ModelSpec.from_dict(meta["spec"])
    bundle = float32_bundle(kinds.resolve(kinds.get(KIND).load)(composite, spec, meta))
    assert bundle.spec.kind == KIND and bundle.spec.n_items == len(meta["item_ids"])
    # Kept with its Dense kernels in int8 and compressed (3.2 MB, not float16's 6.4), used in float32.
    assert meta["stored_as"] == "int8" and (SHIPPED / f"{NAME}.keras").stat().st_size < 3.5e6
    assert all(w.dtype == "float32" for w in bundle.composite.weights)
    split = paper_split(
        load_shipped_small(), seed=meta["seed"], min_item_users=meta["train"]["min_item_users"]
    )
    assert split.items.ids.tolist() == meta["item_ids"]  # the page can rebuild the model's columns
    test = score_test_users(bundle, split)
    assert np.isclose(test["ndcg@100"], meta["test_metrics"]["ndcg@100"], atol=1e-6)
    assert test["ndcg@100"] > 1.5 * meta["test_metrics"]["popularity_ndcg@100"]
    # a Toy Story fan gets family animation, not their own pick back
    toy_story = split.items.titles.index("Toy Story (1995)")
    top = recommend(bundle, [toy_story], n=20)
    genres = [g for i in top.items for g in split.items.genres[i]]
    assert toy_story not in top.items and genres.count("Children") + genres.count("Animation") >= 3


def test_the_store_lists_it_and_the_recommend_page_can_rebuild_its_split():
    from vae_core.recsys.task import split_of
    from vae_core.specs import TrainSpec
    from vae_core.store import Store

    entry = Store(Path("/nonexistent"), shipped_root=SHIPPED).get(NAME)
    assert entry.error is None and entry.shipped and entry.kind == KIND
    assert "NDCG@100" in entry.label
    split = split_of(TrainSpec.from_dict(entry.meta["train"]))
    assert split.items.ids.tolist() == entry.meta["item_ids"]


def test_the_sidebar_describes_it_with_its_ranking_score():
    from app_pages.shared import _describe
    from vae_core.store import Store

    entry = Store(Path("/nonexistent"), shipped_root=SHIPPED).get(NAME)
    text = _describe(entry)
    ndcg = entry.meta["test_metrics"]["ndcg@100"]
    assert kinds.label(KIND) in text and f"test NDCG@100 {ndcg:.3f}" in text


def test_it_scores_above_the_other_vae_on_its_split_and_keeps_its_scores():
    meta = json.loads((SHIPPED / f"{NAME}.json").read_text())["test_metrics"]
    (other,) = [k for k in ("mult_vae", "rec_vae") if k != KIND]
    assert meta["ndcg@100"] > meta[f"{other}_ndcg@100"] > meta["popularity_ndcg@100"]


def test_results_md_shows_the_pages_score_table_as_the_page_does():
    """benchmarks/RESULTS.md's table of the shipped recommender holds the page's numbers."""
    from benchmarks.recsys import PAGE_TABLE, page_table_rows

    results = (Path(__file__).resolve().parents[1] / "benchmarks" / "RESULTS.md").read_text()
    section = results.split(PAGE_TABLE, 1)[1].split("\n#", 1)[0]
    lines = [ln for ln in section.splitlines() if ln.startswith("| ") and "---" not in ln][1:]
    name, rows = page_table_rows()
    assert f"`{name}`" in section and len(lines) == len(rows) >= 4
    for line, row in zip(lines, rows, strict=True):
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells == [
            row["method"],
            *(f"{row[k]:.3f}" for k in ("Recall@20", "Recall@50", "NDCG@100")),
        ]
