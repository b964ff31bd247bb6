"""The search for Mult-VAE training settings that reach EASE on ml-latest-small (none did; the table
is in benchmarks/RESULTS.md, "Mult-VAE"), and for RecVAE's (JSON key "kind": "rec_vae"). Each
configuration trains on the paper's splits and is chosen by validation NDCG@100; one JSON line per
(configuration, split seed) goes to benchmarks/recsys_settings.jsonl (RecVAE's:
benchmarks/recvae_settings.jsonl). Not part of `python -m benchmarks.run` (~1 minute per fit).

Usage: python -m benchmarks.recsys_settings SEEDS [--ease] NAME JSON [NAME JSON ...]
e.g.   python -m benchmarks.recsys_settings 98765,1 drop_0.3 '{"dropout": 0.3}'
JSON keys: FitConfig fields (RecVAE's gamma is anneal_cap), kind, dropout, hidden, latent_dim, seed_offset, and the training-only techniques below
(weight_decay, ema, cosine, free_bits, beta_by_clicks, target_keep_w); for RecVAE, two details of
the authors' PyTorch code our Keras one does otherwise: torch_init, random_old (authors_start);
and their n_enc_epochs, encoder_passes.
"""

import json
import math
import pickle
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from vae_core.machine import dtype_policy_restored
from vae_core.recsys.baselines import fit_ease
from vae_core.recsys.fit import (
    SMALL_SET,
    FitConfig,
    FusedAdam,
    RankingValidation,
    _History,
    click_dataset,
    compile_options,
    fit_recommender,
    score_test_users,
)
from vae_core.recsys.metrics import evaluate
from vae_core.recsys.model import RecSpec, RecTrainer, build_recommender
from vae_core.recsys.movielens import load_movielens
from vae_core.recsys.split import paper_split

LOG = Path(__file__).parent / "recsys_settings.jsonl"
LOGS = {"rec_vae": Path(__file__).parent / "recvae_settings.jsonl"}  # other kinds: LOG
CACHE = Path(tempfile.gettempdir()) / "vae_lab_recsys_splits.pkl"  # the splits, between calls


def get_splits(seeds):
    cache = pickle.loads(CACHE.read_bytes()) if CACHE.exists() else {}
    missing = [s for s in seeds if s not in cache]
    if missing:
        data = load_movielens("ml-latest-small")
        for s in missing:
            cache[s] = paper_split(data, seed=s)
        CACHE.write_bytes(pickle.dumps(cache))
    return {s: cache[s] for s in seeds}


class EmaValidation(RankingValidation):
    """Validates (and keeps as best) the optimizer's EMA weights instead of the raw ones."""

    def __init__(self, split, bundle, opt, eval_batch=2000):
        super().__init__(split, bundle, eval_batch)
        self.opt = opt

    def on_epoch_end(self, epoch, logs=None):
        raw = self.bundle.composite.get_weights()
        ema = []
        for v, w in zip(self.bundle.composite.weights, raw, strict=False):
            try:
                idx = self.opt._get_variable_index(v)
                ema.append(self.opt._model_variables_moving_average[idx].numpy())
            except (KeyError, AttributeError, TypeError):
                ema.append(w)
        self.scorer.bundle.composite.set_weights(ema)
        real_sync = self.scorer.sync
        self.scorer.sync = lambda b: self.scorer  # already synced with EMA weights
        try:
            super().on_epoch_end(epoch, logs)
        finally:
            self.scorer.sync = real_sync


class FreeBitsTrainer(RecTrainer):
    """KL per latent dim clipped below at `free_bits` nats (batch-averaged), Kingma et al. 2016."""

    free_bits = 0.0
    beta_by_clicks = False
    target_keep_w = (
        1.0  # weight of the clicks the input dropout kept, in the likelihood (1 = paper)
    )

    def compute_losses(self, x, training):
        from keras import ops

        from vae_core.recsys.model import multinomial_nll, normalise_and_drop

        h = normalise_and_drop(x, self.spec.dropout, self.dropout_seed, training)
        z_mean, z_log_var, z = self.encoder_body(h, training=training)
        zm, zl = ops.cast(z_mean, "float32"), ops.cast(z_log_var, "float32")
        kl_dim = ops.mean(-0.5 * (1.0 + zl - ops.square(zm) - ops.exp(zl)), axis=0)
        kl_true = ops.sum(kl_dim)
        kl = ops.sum(ops.maximum(kl_dim, self.free_bits)) if self.free_bits > 0 else kl_true
        if self.beta_by_clicks:  # RecVAE: the KL weight of a user grows with their click count
            n = tf.math.unsorted_segment_sum(
                tf.ones_like(x.values), x.indices[:, 0], x.dense_shape[0]
            )
            kl_u = ops.sum(-0.5 * (1.0 + zl - ops.square(zm) - ops.exp(zl)), axis=1)
            kl = ops.mean(kl_u * n / ops.mean(n))
        target = x
        if training and self.target_keep_w != 1.0:  # dropped clicks (value 0 after dropout) weigh 1
            w = tf.where(tf.equal(h.values, 0.0), 1.0, self.target_keep_w)
            target = tf.SparseTensor(x.indices, x.values * w, x.dense_shape)
        nll = ops.mean(multinomial_nll(self.decoder_logits(z, training=training), target))
        beta = self.kl_weight()
        total = nll + beta * kl
        if self.l2:
            kernels = [w for w in self.trainable_weights if "kernel" in w.path]
            total = total + self.l2 * ops.sum([ops.sum(ops.square(w)) for w in kernels])
        return total, nll, kl_true, beta


def torch_reinit(model: keras.Model, rng: np.random.Generator) -> None:
    """PyTorch's nn.Linear default: kernel and bias each U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dense):
            bound = 1.0 / math.sqrt(layer.kernel.shape[0])
            for w in (layer.kernel, layer.bias):
                w.assign(rng.uniform(-bound, bound, w.shape).astype("float32"))


@contextmanager
def authors_start(torch_init=False, random_old=False):
    """RecVAE started as the authors' PyTorch code starts it, where ours differs: `torch_init`, the
    Dense layers initialised as nn.Linear is (Keras: Glorot kernels, zero biases); `random_old`,
    the frozen copy a second random encoder until the first refresh (ours: a copy of the encoder)."""
    from vae_core.recsys import recvae

    build, init = recvae.build_rec_vae, recvae.RecVAETrainer.__init__

    def built(spec, seed=None):
        bundle = build(spec, seed=seed)
        if torch_init:
            rng = np.random.default_rng(seed)
            torch_reinit(bundle.encoder, rng)
            torch_reinit(bundle.decoder, rng)
        return bundle

    def started(self, bundle, *args, **kw):
        init(self, bundle, *args, **kw)
        if random_old:
            second = recvae.build_encoder(bundle.spec, seed=12345)
            if torch_init:
                torch_reinit(second, np.random.default_rng(12345))
            self.old_encoder.set_weights(second.get_weights())

    recvae.build_rec_vae, recvae.RecVAETrainer.__init__ = built, started
    try:
        yield
    finally:
        recvae.build_rec_vae, recvae.RecVAETrainer.__init__ = build, init


@contextmanager
def encoder_passes(n=None):
    """RecVAE with `n` encoder passes per epoch before its decoder pass (the authors' n_enc_epochs,
    3 in their code and ours: vae_core.recsys.recvae.ENCODER_PASSES)."""
    from vae_core.recsys import recvae

    kept = recvae.ENCODER_PASSES, recvae.RecVAETrainer.PASSES
    if n is not None:
        recvae.ENCODER_PASSES, recvae.RecVAETrainer.PASSES = n, n + recvae.DECODER_PASSES
    try:
        yield
    finally:
        recvae.ENCODER_PASSES, recvae.RecVAETrainer.PASSES = kept


def fit_custom(
    split,
    spec,
    config,
    weight_decay=0.0,
    ema=0.0,
    cosine=False,
    free_bits=0.0,
    beta_by_clicks=False,
    target_keep_w=1.0,
):
    keras.utils.set_random_seed(config.seed)
    options = compile_options(config)
    steps_per_epoch = -(-split.train.shape[0] // config.batch_size)
    with dtype_policy_restored():
        keras.config.set_dtype_policy(options["precision"])
        bundle = build_recommender(spec, seed=config.seed)
        cls = (
            FreeBitsTrainer if (free_bits or beta_by_clicks or target_keep_w != 1.0) else RecTrainer
        )
        trainer = cls(
            bundle, config.anneal_cap, config.anneal_steps, config.l2, seed=config.seed + 1
        )
        trainer.free_bits, trainer.beta_by_clicks = free_bits, beta_by_clicks
        trainer.target_keep_w = target_keep_w
        lr = config.learning_rate
        if cosine:
            lr = keras.optimizers.schedules.CosineDecay(
                lr, config.epochs * steps_per_epoch, alpha=0.05
            )
        kw = {}
        if weight_decay:
            kw["weight_decay"] = weight_decay
        if ema:
            kw.update(use_ema=True, ema_momentum=ema)
        opt = FusedAdam(lr, **kw)
        trainer.compile(optimizer=opt, jit_compile=False, steps_per_execution=1)
    validation = (
        EmaValidation(split, bundle, opt, config.eval_batch)
        if ema
        else RankingValidation(split, bundle, config.eval_batch)
    )
    history = _History(None)
    trainer.fit(
        click_dataset(split.train, config.batch_size, config.seed),
        epochs=config.epochs,
        callbacks=[validation, history],
        verbose=0,
        shuffle=False,
    )
    best = validation.best_bundle()
    test = score_test_users(best, split, config.eval_batch)
    return validation.best_epoch, validation.best_metrics, test, history.rows


def run(name, cfg, seeds, ease=False):
    fit_kw = {
        k: cfg[k]
        for k in (
            "epochs",
            "batch_size",
            "learning_rate",
            "anneal_cap",
            "anneal_steps",
            "l2",
            "precision",
        )
        if k in cfg
    }
    tech = {
        k: cfg[k]
        for k in ("weight_decay", "ema", "cosine", "free_bits", "beta_by_clicks", "target_keep_w")
        if k in cfg
    }
    dropout = cfg.get("dropout", 0.5)
    splits = get_splits(seeds)
    for seed in seeds:
        split = splits[seed]
        t = time.perf_counter()
        config = FitConfig(
            **{**SMALL_SET.to_dict(), **fit_kw, "seed": seed + cfg.get("seed_offset", 0)}
        )
        kind = cfg.get("kind", "mult_vae")
        sizes = {k: cfg[k] for k in ("hidden", "latent_dim") if k in cfg}
        spec = RecSpec(kind=kind, n_items=split.n_items, dropout=dropout, **sizes)
        if tech:
            best_epoch, val, test, rows = fit_custom(split, spec, config, **tech)
        else:
            keras.utils.set_random_seed(seed)
            start = {k: cfg[k] for k in ("torch_init", "random_old") if k in cfg}
            with authors_start(**start), encoder_passes(cfg.get("encoder_passes")):
                r = fit_recommender(split, spec, config)
            best_epoch, val, test, rows = r.best_epoch, r.val_metrics, r.test_metrics, r.history
        rec = {
            "name": name,
            "cfg": cfg,
            "seed": seed,
            "val_ndcg@100": val["ndcg@100"],
            "test_ndcg@100": test["ndcg@100"],
            "test_recall@20": test["recall@20"],
            "test_recall@50": test["recall@50"],
            "val": val,
            "test": test,
            "best_epoch": best_epoch,
            "epochs_run": len(rows),
            "val_curve": [round(r.get("val_ndcg@100", float("nan")), 4) for r in rows],
            "seconds": round(time.perf_counter() - t, 1),
            "config": config.to_dict(),
            "dropout": dropout,
        }
        if kind == "rec_vae":  # runs before this field counted every step (one shared count)
            rec["adam_counts"] = "each part's own updates"
        if ease:
            e = fit_ease(split)
            et = evaluate(e.score, split.test_in, split.test_out)
            rec["ease"] = {"lambda": e.lam, "val_ndcg@100": e.validation[e.lam], "test": et}
        with LOGS.get(kind, LOG).open("a") as f:
            f.write(json.dumps(rec) + "\n")
        print(
            f"{name} seed {seed}: val {val['ndcg@100']:.4f} test {test['ndcg@100']:.4f} "
            f"best_epoch {best_epoch} ({rec['seconds']}s)"
            + (f" EASE test {rec['ease']['test']['ndcg@100']:.4f}" if ease else ""),
            flush=True,
        )


if __name__ == "__main__":
    # usage: harness.py SEEDS(comma) [--ease] NAME JSON [NAME JSON ...]
    args = sys.argv[1:]
    seeds = [int(s) for s in args.pop(0).split(",")]
    ease = False
    if args and args[0] == "--ease":
        ease = True
        args.pop(0)
    for name, js in zip(args[::2], args[1::2], strict=False):
        run(name, json.loads(js), seeds, ease)
