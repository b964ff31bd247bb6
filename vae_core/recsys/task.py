"""A recommender's part in a training run (see vae_core.tasks): MovieLens split as the paper does,
sparse click batches, the Mult-VAE/DAE trainer, validation Recall/NDCG after each epoch with the
best epoch kept, and the test users' scores beside the baselines' on the same split.

vae_core.train runs it like any other kind: progress lines, Stop and Resume, checkpoints, the store.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

import keras

from vae_core import rundir
from vae_core.models import ModelBundle
from vae_core.recsys.baselines import Popularity, fit_ease
from vae_core.recsys.fit import (
    FusedAdam,
    RankingValidation,
    build_by_kind,
    click_dataset,
    score_test_users,
    trainer_class,
)
from vae_core.recsys.metrics import evaluate
from vae_core.recsys.model import recommender_from_composite
from vae_core.recsys.movielens import load_movielens
from vae_core.recsys.split import Split, paper_split
from vae_core.specs import ModelSpec, TrainSpec
from vae_core.tasks import Batches, Preview

if TYPE_CHECKING:
    from vae_core.run_context import Run

BEST_WEIGHTS = "best.weights.h5"  # in the run's backup/: the best epoch so far, for a resume
EASE_MAX_ITEMS = 12_000  # EASE inverts an items x items matrix: ML-20M's 20k would take minutes


class RecommenderTask:
    """MovieLens -> the paper's split -> Mult-VAE/DAE or RecVAE; scored on held-out users."""

    def __init__(self, run: Run):
        self.run, train = run, run.train_spec
        self.split = split_of(train)
        # The model's input is the split's item count, whatever the config said (0: "from data").
        run.model_spec = dataclasses.replace(run.model_spec, n_items=self.split.n_items)
        self.spec = run.model_spec
        self.n_train = self.split.train.shape[0]
        run.status.update(data=self.split.summary())

    def batches(self, drop_remainder: bool) -> Batches:
        train = self.run.train_spec
        done = self.run.resume_at[0]
        # Only across workers, where a last batch too small to share is a NaN loss: one process
        # keeps every user (its batches are sparse, one traced shape whatever their size).
        drop = drop_remainder and self.run.cluster is not None
        per_pass = (
            self.n_train // train.batch_size if drop else math.ceil(self.n_train / train.batch_size)
        )
        self.steps_per_pass = per_pass
        passes = trainer_class(self.spec.kind).PASSES  # RecVAE's epoch: encoder, then decoder
        # Each epoch's user order comes from (seed, epoch), so a resumed run sees the same orders.
        clicks = click_dataset(
            self.split.train,
            train.batch_size,
            train.seed,
            first_epoch=done,
            drop_remainder=drop,
            passes=passes,
        )
        return Batches(clicks, None, passes * per_pass)

    def trainer(self, options: dict, steps_per_epoch: int) -> keras.Model:
        train = self.run.train_spec
        self.bundle = build_by_kind(self.spec, seed=train.seed)
        trainer = trainer_class(self.spec.kind).from_settings(
            self.bundle,
            beta=self.spec.beta,
            anneal_steps=train.kl_anneal_steps,
            l2=train.l2,
            seed=train.seed + 1,
            steps_per_pass=self.steps_per_pass,
        )
        trainer.compile(
            optimizer=FusedAdam(train.learning_rate),
            jit_compile=options["jit_compile"],
            steps_per_execution=options["steps_per_execution"],
        )
        trainer(self.split.train[:1].toarray())  # creates the variables
        return trainer

    def callbacks(self) -> list[keras.callbacks.Callback]:
        best = None
        if self.run.chief:  # the run folder is the chief's: other workers keep the best in memory
            best = self.run.out / rundir.BACKUP_DIR / BEST_WEIGHTS
            best.parent.mkdir(parents=True, exist_ok=True)
        self.validation = RankingValidation(self.split, self.bundle, best_path=best)
        return [self.validation]

    def preview(self, trainer: keras.Model) -> Preview:
        # The validation callback already put Recall/NDCG into the epoch's line: no picture.
        return lambda: (None, {"best_epoch": self.validation.best_epoch})

    def test(self, trainer: keras.Model) -> tuple[ModelBundle, dict[str, float]]:
        """The best epoch's model on the test users, and the baselines on the same users."""
        best = self.validation.best_bundle()
        best.spec = self.spec
        scores = {k: v for k, v in score_test_users(best, self.split).items() if k != "users"}
        popularity = Popularity.fit(self.split.train)
        scores.update(_prefixed("popularity", self._score(popularity.score)))
        if self.split.n_items <= EASE_MAX_ITEMS:
            ease = fit_ease(self.split)
            scores.update(_prefixed("ease", self._score(ease.score)))
            scores["ease_lambda"] = ease.lam
        scores["best_epoch"] = float(self.validation.best_epoch)
        return best, scores

    def _score(self, score) -> dict[str, float]:
        split = self.split
        return {
            k: v for k, v in evaluate(score, split.test_in, split.test_out).items() if k != "users"
        }


def split_of(train: TrainSpec) -> Split:
    """The paper's split of a run's MovieLens release: the same users and item columns every time
    (the Recommend page rebuilds a stored model's split from its metadata's train spec)."""
    return paper_split(load_movielens(train.dataset), min_item_users=train.min_item_users)


def _prefixed(name: str, scores: dict[str, float]) -> dict[str, float]:
    return {f"{name}_{k}": v for k, v in scores.items()}


def load(composite: keras.Model, spec: ModelSpec | None, meta: dict | None) -> ModelBundle:
    """A stored recommender as a ModelBundle with the store's spec (the store makes it float32)."""
    bundle = recommender_from_composite(composite, meta)
    found = ModelSpec.from_dict(dataclasses.asdict(bundle.spec))
    bundle.spec = spec if spec is not None else found
    return bundle
