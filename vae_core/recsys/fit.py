"""Training a Mult-VAE/DAE on a Split: sparse shuffled batches, per-epoch validation, the best epoch.

`fit_recommender` is the whole recipe (the one the benchmarks and the shipped model use); its parts
are public so a run folder can drive them itself: `click_dataset` (CSR rows -> tf.SparseTensor
batches, reshuffled each epoch from a seed), `RankingValidation` (a Keras callback that adds
val_recall@20/50 and val_ndcg@100 to each epoch's logs and keeps the best epoch's weights) and
`Float32Scorer` (scores users in float32 whatever precision training ran in).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras
import numpy as np
import scipy.sparse as sp
import tensorflow as tf

from vae_core import kinds
from vae_core.fsutil import write_bytes_atomic
from vae_core.machine import dtype_policy_restored, resolve_precision
from vae_core.models import ModelBundle
from vae_core.recsys.metrics import NDCG_K, RECALL_KS, evaluate
from vae_core.recsys.model import (
    LOGITS,
    RecSpec,
    SparseEncoder,
    normalise_and_drop,
    sparse_batch,
)
from vae_core.recsys.split import Split
from vae_core.specs import TrainSpec

MONITOR = f"val_ndcg@{NDCG_K}"  # the paper picks the epoch with the best validation NDCG@100


@dataclass
class FitConfig:
    """How to train: the paper's settings by default (vae_cf's ML-20M notebook)."""

    epochs: int = 200  # vae_cf: 200 on ML-20M; the best epoch is kept, not the last
    batch_size: int = 500  # users per update
    learning_rate: float = 1e-3  # Adam
    anneal_cap: float = 0.2  # the KL weight's ceiling (beta); RecVAE: its weight per click (gamma)
    anneal_steps: int = 200_000  # updates for beta to rise linearly from 0 to the cap
    l2: float = 0.0  # sum-of-squares weight penalty (vae_cf: 0 for the VAE, 0.01 / 500 for the DAE)
    seed: int = 98765  # weights, dropout, sampling and the batch shuffle
    precision: str = "auto"  # as vae_core.train: mixed_bfloat16 on a bf16-capable CPU, else float32
    eval_batch: int = 2000  # users scored at once for validation and test

    def to_dict(self) -> dict:
        return asdict(self)


# Small sets (ml-latest-small: 527 training users, ~1 batch of 500 per epoch): batches of 100 give
# six updates per epoch and the KL weight reaches the paper's cap after ~100 epochs. The other
# settings tried (benchmarks/recsys_settings.py; RESULTS.md, "Mult-VAE") did no better on validation
# than this beyond the noise of the initial weights.
SMALL_SET = FitConfig(epochs=120, batch_size=100, anneal_steps=600)

# RecVAE (anneal_cap is its KL weight per click, gamma): the authors' ML-20M settings, 50 epochs of
# three encoder passes and one decoder pass, Adam 5e-4, batch 500 ...
REC_VAE_PAPER = FitConfig(epochs=50, batch_size=500, learning_rate=5e-4, anneal_cap=0.005)
# ... and on the small set, batches of 100 and twice the paper's KL weight per click: the best of
# the settings tried on validation NDCG@100 (benchmarks/recsys_settings.py; RESULTS.md, "RecVAE").
REC_VAE_SMALL_SET = FitConfig(epochs=50, batch_size=100, learning_rate=5e-4, anneal_cap=0.01)


@dataclass
class FitResult:
    """A trained recommender (float32, the best epoch's weights) and what was measured."""

    bundle: ModelBundle
    history: list[dict]  # per epoch: loss terms, kl_weight, val metrics, seconds
    best_epoch: int  # 1-based; 0 when no epoch ran
    val_metrics: dict[str, float]  # of the best epoch
    test_metrics: dict[str, float]
    compile: dict = field(default_factory=dict)  # precision and steps per execution used


# ---------------------------------------------------------------- batches
def click_dataset(
    clicks: sp.csr_matrix,
    batch_size: int,
    seed: int,
    shuffle: bool = True,
    first_epoch: int = 0,
    drop_remainder: bool = False,
    passes: int = 1,
) -> tf.data.Dataset:
    """Rows of a CSR click matrix as tf.SparseTensor batches (each pass's last, partial one left
    out with `drop_remainder`); each pass over the dataset is one epoch of `passes` passes over the
    users (RecVAE's epoch is four), each pass's user order drawn from (seed, epoch[, pass]), so a
    resumed run sees the order it would have seen."""
    clicks = sp.csr_matrix(clicks, dtype=np.float32)
    n = clicks.shape[0]
    per_pass = n // batch_size if drop_remainder else -(-n // batch_size)
    epoch = [first_epoch]

    def batches():
        now = epoch[0]
        epoch[0] += 1  # counted at the start: an epoch cut short still moves the orders on
        for p in range(passes):
            key = [seed, now] if passes == 1 else [seed, now, p]
            order = np.random.default_rng(key).permutation(n) if shuffle else np.arange(n)
            for lo in range(0, per_pass * batch_size, batch_size):
                coo = clicks[order[lo : lo + batch_size]].tocoo()
                yield tf.SparseTensor(
                    np.stack([coo.row, coo.col], 1).astype(np.int64), coo.data, coo.shape
                )

    spec = tf.SparseTensorSpec([None, clicks.shape[1]], tf.float32)
    data = tf.data.Dataset.from_generator(batches, output_signature=spec)
    # A known length lets Keras count steps (progress, the end of an epoch) from the first epoch on.
    steps = passes * per_pass
    return data.apply(tf.data.experimental.assert_cardinality(steps)).prefetch(2)


# ---------------------------------------------------------------- scoring
class Float32Scorer:
    """Scores users' fold-in clicks with a float32 copy of a model (ranking 20k items in bfloat16
    would tie most of them). `sync` copies the weights in; calls take CSR rows, give logits."""

    def __init__(self, spec: RecSpec):
        with dtype_policy_restored():
            keras.config.set_dtype_policy("float32")
            self.bundle = build_by_kind(spec)
        body = SparseEncoder(self.bundle.encoder)
        dec = self.bundle.decoder
        logits = keras.Model(dec.inputs, dec.get_layer(LOGITS).output)
        is_vae = spec.is_vae

        @tf.function(input_signature=[tf.SparseTensorSpec([None, spec.n_items], tf.float32)])
        def score(x):
            h = normalise_and_drop(x, 0.0, None, training=False)
            z = body(h, training=False)
            return logits(z[0] if is_vae else z, training=False)  # z = z_mean: the paper's rule

        self._score = score

    def sync(self, bundle: ModelBundle) -> Float32Scorer:
        self.bundle.composite.set_weights([np.asarray(w) for w in bundle.composite.get_weights()])
        return self

    def __call__(self, clicks: sp.csr_matrix) -> np.ndarray:
        return self._score(sparse_batch(clicks)).numpy()


# ---------------------------------------------------------------- validation and the best epoch
class RankingValidation(keras.callbacks.Callback):
    """After each epoch: validation Recall@20/50 and NDCG@100 into the logs (as val_recall@20, ...),
    and the weights of the best epoch by NDCG@100 kept (in memory, and in `best_path` if given, so
    a resumed run knows its best so far). Put it first in the callback list: later ones see its keys.
    """

    def __init__(
        self,
        split: Split,
        bundle: ModelBundle,
        eval_batch: int = 2000,
        best_path: Path | None = None,
    ):
        super().__init__()
        self.split, self.bundle, self.eval_batch = split, bundle, eval_batch
        self.scorer = Float32Scorer(bundle.spec)  # type: ignore[arg-type]
        self.best_path = Path(best_path) if best_path else None
        self.best_epoch, self.best_score, self.best_metrics = 0, -np.inf, {}
        self.best_weights: list[np.ndarray] | None = None
        if self.best_path and self.best_path.with_suffix(".json").is_file():
            info = json.loads(self.best_path.with_suffix(".json").read_text())
            self.best_epoch, self.best_score = int(info["epoch"]), float(info["score"])
            self.best_metrics = info["metrics"]

    def on_epoch_end(self, epoch, logs=None):
        self.scorer.sync(self.bundle)
        metrics = evaluate(
            self.scorer, self.split.val_in, self.split.val_out, batch_size=self.eval_batch
        )
        if logs is not None:
            logs.update({f"val_{k}": v for k, v in metrics.items() if k != "users"})
        score = metrics[f"ndcg@{NDCG_K}"]
        if np.isfinite(score) and score > self.best_score:
            self.best_epoch, self.best_score, self.best_metrics = epoch + 1, score, metrics
            self.best_weights = [w.copy() for w in self.scorer.bundle.composite.get_weights()]
            if self.best_path:
                self.scorer.bundle.composite.save_weights(self.best_path)
                info = {"epoch": epoch + 1, "score": score, "metrics": metrics}
                write_bytes_atomic(self.best_path.with_suffix(".json"), json.dumps(info).encode())

    def best_bundle(self) -> ModelBundle:
        """A float32 bundle holding the best epoch's weights (the last ones if none was scored)."""
        if self.best_weights is not None:
            self.scorer.bundle.composite.set_weights(self.best_weights)
        elif self.best_path and self.best_path.is_file():
            self.scorer.bundle.composite.load_weights(self.best_path)
        else:
            self.scorer.sync(self.bundle)
        return self.scorer.bundle


class _History(keras.callbacks.Callback):
    def __init__(self, echo: Callable[[dict], None] | None):
        super().__init__()
        self.rows: list[dict] = []
        self.echo = echo
        self.t0 = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self.t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}}
        row["epoch_s"] = time.perf_counter() - self.t0
        self.rows.append(row)
        if self.echo:
            self.echo(row)


# ---------------------------------------------------------------- the optimizer
@keras.saving.register_keras_serializable(package="vae_lab")
class FusedAdam(keras.optimizers.Adam):
    """Keras's Adam, each update done by TensorFlow's one-pass ResourceApplyAdam kernel.

    Same formula (m, v, bias-corrected step, epsilon outside the square root); Keras's own
    update_step makes ~12 passes over every weight, which for the two 20k x 600 matrices of an
    ML-20M model is ~2.4 GB of memory traffic per batch instead of ~0.7 GB.
    """

    def updates_so_far(self, index: int):
        """The step of the index-th weight's bias correction: its updates so far, this one included
        (every step, unless a trainer counts each part's own, as RecVAE's does)."""
        return self.iterations + 1

    def update_step(self, gradient, variable, learning_rate):
        if self.amsgrad or not hasattr(variable, "handle"):
            return super().update_step(gradient, variable, learning_rate)
        index = self._get_variable_index(variable)
        m, v = self._momentums[index], self._velocities[index]
        dtype = variable.dtype
        step = keras.ops.cast(self.updates_so_far(index), dtype)
        beta_1 = keras.ops.cast(self.beta_1, dtype)
        beta_2 = keras.ops.cast(self.beta_2, dtype)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle,
            m=m.value.handle,
            v=v.value.handle,
            beta1_power=keras.ops.power(beta_1, step),
            beta2_power=keras.ops.power(beta_2, step),
            lr=keras.ops.cast(learning_rate, dtype),
            beta1=beta_1,
            beta2=beta_2,
            epsilon=keras.ops.cast(self.epsilon, dtype),
            grad=keras.ops.cast(gradient, dtype),
        )


# ---------------------------------------------------------------- the recipe
def compile_options(config: FitConfig) -> dict:
    """Precision as vae_core.train picks it; no XLA (sparse ops, and XLA's CPU GEMMs skip bf16)."""
    gpus = len(tf.config.list_logical_devices("GPU"))
    precision = resolve_precision(TrainSpec(precision=config.precision), {"gpus": gpus})
    return {"precision": precision, "jit_compile": False, "steps_per_execution": 1}


def build_by_kind(spec: RecSpec, seed: int | None = None) -> ModelBundle:
    """A fresh recommender of spec's kind, by the builder its registry entry names."""
    return kinds.resolve(kinds.get(spec.kind).build)(spec, seed=seed)


def trainer_class(kind: str) -> type:
    """The trainer a recommender kind's registry entry names (RecTrainer, RecVAETrainer)."""
    return kinds.resolve(kinds.get(kind).trainer)


def make_trainer(
    spec: RecSpec, config: FitConfig, steps_per_pass: int = 1
) -> tuple[ModelBundle, keras.Model, dict]:
    """A fresh bundle and its compiled trainer, built under the run's precision policy (the
    caller's policy is back afterwards; the layers keep the one they were built with)."""
    options = compile_options(config)
    with dtype_policy_restored():
        keras.config.set_dtype_policy(options["precision"])
        bundle = build_by_kind(spec, seed=config.seed)
        trainer = trainer_class(spec.kind).from_settings(
            bundle,
            beta=config.anneal_cap,
            anneal_steps=config.anneal_steps,
            l2=config.l2,
            seed=config.seed + 1,
            steps_per_pass=steps_per_pass,
        )
        trainer.compile(
            optimizer=FusedAdam(config.learning_rate),
            jit_compile=options["jit_compile"],
            steps_per_execution=options["steps_per_execution"],
        )
        # Every variable made here, not inside a training step's branch (RecVAE's phases).
        trainer.optimizer.build(trainer.trainable_variables)
    return bundle, trainer, options


def fit_recommender(
    split: Split,
    spec: RecSpec | None = None,
    config: FitConfig | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    on_epoch: Callable[[dict], None] | None = None,
) -> FitResult:
    """Train on split.train, pick the epoch with the best validation NDCG@100, score the test users.

    `callbacks` run after the validation callback (so they see val_* in their logs; one may set
    model.stop_training); `on_epoch(row)` gets each epoch's figures as a plain dict.
    """
    config = config or FitConfig()
    spec = spec or RecSpec(n_items=split.n_items)
    if spec.n_items != split.n_items:
        raise ValueError(f"The model takes {spec.n_items} items but the split has {split.n_items}.")
    keras.utils.set_random_seed(config.seed)
    steps_per_pass = -(-split.train.shape[0] // config.batch_size)
    bundle, trainer, options = make_trainer(spec, config, steps_per_pass)
    validation = RankingValidation(split, bundle, config.eval_batch)
    history = _History(on_epoch)
    trainer.fit(
        click_dataset(split.train, config.batch_size, config.seed, passes=trainer.PASSES),
        epochs=config.epochs,
        callbacks=[validation, *callbacks, history],
        verbose=0,
        shuffle=False,  # click_dataset shuffles, seeded
    )
    best = validation.best_bundle()
    test = score_test_users(best, split, config.eval_batch)
    best.meta = {"best_epoch": validation.best_epoch, "test_metrics": test}
    return FitResult(
        best, history.rows, validation.best_epoch, validation.best_metrics, test, options
    )


def score_test_users(bundle: ModelBundle, split: Split, batch_size: int = 2000) -> dict[str, float]:
    """Recall@20/50 and NDCG@100 of a trained (float32) recommender on the split's test users."""
    scorer = Float32Scorer(bundle.spec).sync(bundle)  # type: ignore[arg-type]
    return evaluate(scorer, split.test_in, split.test_out, RECALL_KS, NDCG_K, batch_size)
