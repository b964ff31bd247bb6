"""The kinds of model VAE Lab knows: one entry each, and the only place kind names are compared.

Everything the rest of the code asks about a kind -- its data, its builder, whether it samples z,
whether it takes a label, the losses it tracks, its preset and the limits of its settings, its task
in a run (data, model, the picture after each epoch, test scores), which pages can explore it and
how it is described -- is a field of its `Kind` here. Adding a kind is one `register(Kind(...))` plus the modules it names. This module
imports no TensorFlow: the store's listing and the run folder's polling read it too.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from vae_core.errors import UserError

# The data a kind learns from, and the datasets of each.
DIGITS = "digits"  # 28x28x1 grey images with a label 0-9 (MNIST and friends)
ITEMS = "items"  # a vector of item interactions per user (a recommender)
# "sample": the bundled 500 digits; "mnist_binary": MNIST in black and white, as log-likelihood
# papers report it (vae_core.data)
DIGIT_DATASETS = ("mnist", "mnist_binary", "fashion_mnist", "sample")
# GroupLens's MovieLens releases (vae_core.recsys.movielens reads each); the small one is shipped.
ITEM_DATASETS = ("ml-latest-small", "ml-100k", "ml-1m", "ml-10m", "ml-20m", "ml-25m", "ml-latest")

# p(z): N(0, I); a learned mixture of Gaussians (vae_core.layers.MixturePrior); or "class_mixture":
# ten Gaussians set apart, one per digit, and while training only each digit's code is pulled into
# its own digit's Gaussian (the encoder and decoder never see a label).
PRIORS = ("normal", "mixture", "class_mixture")

# The pages that explore a trained model; a kind lists the ones that can use it.
PAGES = ("round_trip", "generate", "denoise", "recommend")


@dataclass(frozen=True)
class Limits:
    """The allowed range of each setting: ModelSpec validates against it and widgets take it."""

    latent_dim: tuple[int, int] = (1, 512)
    hidden: tuple[int, int] = (8, 4096)
    hidden_choices: tuple[int, ...] = (64, 128, 256, 512, 1024)  # what the Train page offers
    batch_choices: tuple[int, ...] = (16, 32, 64, 128, 256, 512)  # (and the preset's own value)
    epochs: tuple[int, int] = (1, 1000)
    batch_size: tuple[int, int] = (1, 8192)


@dataclass(frozen=True)
class Kind:
    """Everything the app and the engine need to know about one kind of model."""

    name: str  # the id in configs, metadata and URLs, e.g. "mlp_vae"
    label: str  # what people read: "MLP VAE"
    blurb: str  # one sentence for the Train page
    domain: str = DIGITS  # DIGITS or ITEMS
    datasets: tuple[str, ...] = DIGIT_DATASETS  # what it can be trained on
    variational: bool = True  # encoder gives z_mean, z_log_var and a sampled z; loss has a KL term
    conditional: bool = False  # encoder and decoder also take the digit's label
    # beta is a KL weight per click, each user's KL weighed by their clicks, with no annealing
    # (RecVAE's gamma); False: one weight for all (a recommender's rises to it, see kl_anneal_steps)
    kl_per_click: bool = False
    dense: bool = True  # Dense layers only (compiled with XLA on one CPU); False: convolutions
    build: str = "vae_core.models:build_model"  # "module:function", ModelSpec -> ModelBundle
    # "module:function", (loaded composite, ModelSpec | None, metadata) -> ModelBundle
    load: str = "vae_core.models:bundle_from_composite"
    task: str = "vae_core.tasks:DigitTask"  # "module:Class": its data, model and scores in a run
    # "module:Class" of a recommender's trainer (its from_settings builds one; PASSES: passes over
    # the users per epoch); the digit kinds train with vae_core.models.Trainer.
    trainer: str = ""
    reconstructions: tuple[str, ...] = ("bce", "mse")  # the reconstruction losses it can use
    priors: tuple[str, ...] = ("normal",)  # the p(z) it can learn with (vae_core.specs.PRIORS)
    compile: dict[str, Any] = field(default_factory=dict)  # overrides of vae_core.machine's choice
    preset: dict[str, Any] = field(default_factory=dict)  # ModelSpec fields of a new run
    train_preset: dict[str, Any] = field(default_factory=dict)  # TrainSpec fields of a new run
    # ...and on the bundled sample (400 digits): enough epochs for recognisable digits in ~1 min.
    sample_preset: dict[str, Any] = field(default_factory=dict)
    limits: Limits = Limits()
    pages: tuple[str, ...] = ("round_trip", "generate")
    trainable: bool = True  # offered on the Train page and by the CLI

    # The test metric that says how good a trained model is, and whether higher is better
    # (None: a VAE's -ELBO, a DAE's PSNR).
    metric: tuple[str, bool] | None = None

    @property
    def headline(self) -> tuple[str, bool]:
        if self.metric is not None:
            return self.metric
        return ("neg_elbo", False) if self.variational else ("psnr", True)

    @property
    def loss_terms(self) -> tuple[str, ...]:
        """The losses a run tracks (and the Train page plots), in Keras's metric names."""
        if self.variational:
            return ("loss", "reconstruction_loss", "kl_loss")
        return ("loss",)


_REGISTRY: dict[str, Kind] = {}


def register(kind: Kind) -> Kind:
    """Add (or replace) a kind; every list of kinds in the app and the CLI comes from here."""
    unknown = set(kind.pages) - set(PAGES)
    if unknown:
        raise ValueError(f"Kind {kind.name!r} names unknown pages: {sorted(unknown)}")
    _REGISTRY[kind.name] = kind
    return kind


def unregister(name: str) -> None:
    """Remove a kind (tests register toy kinds and take them away again)."""
    _REGISTRY.pop(name, None)


def get(name: str) -> Kind:
    """The kind called `name`; UserError with the choices if there is none."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise UserError(
            f"Unknown model kind {name!r}; choose one of {', '.join(names())}."
        ) from None


def known(name: Any) -> bool:
    return isinstance(name, str) and name in _REGISTRY


def names(*, trainable: bool | None = None) -> list[str]:
    """Kind names in registration order (the order the Train page lists them)."""
    return [k.name for k in _REGISTRY.values() if trainable is None or k.trainable == trainable]


def label(name: str | None) -> str:
    """The kind's name for people; an unknown kind reads as plain 'autoencoder'."""
    return _REGISTRY[name].label if known(name) else "autoencoder"


def for_page(page: str) -> tuple[str, ...]:
    """The kinds a page can explore."""
    return tuple(k.name for k in _REGISTRY.values() if page in k.pages)


# How each headline metric reads (vae_core.metrics and vae_core.recsys.metrics compute them).
METRIC_TEXT = {
    "neg_elbo": "−ELBO {:.1f} nats",
    "psnr": "PSNR {:.1f} dB",
    "ndcg@100": "NDCG@100 {:.3f}",
}


def headline_text(name: str | None, metrics: dict | None) -> str | None:
    """'−ELBO 151.0 nats' (or the kind's own headline) from test metrics; None if it is missing."""
    if not known(name):
        return None
    metric, _ = get(name).headline
    value = (metrics or {}).get(metric)
    if not isinstance(value, int | float) or isinstance(value, bool) or value != value:
        return None
    return METRIC_TEXT.get(metric, metric + " {:.3g}").format(value)


def find(domain: str, **traits: bool) -> str:
    """The first kind of `domain` with these traits (how an imported model without metadata is
    recognised from its structure); UserError if none has them."""
    for k in _REGISTRY.values():
        if k.domain == domain and all(getattr(k, t) == v for t, v in traits.items()):
            return k.name
    raise UserError("This model's structure matches none of the kinds VAE Lab knows.")


def resolve(target: str) -> Any:
    """Import "module:attribute" on first use, so this registry never pulls in TensorFlow."""
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


def build(spec: Any) -> Any:
    """A fresh, untrained model (a ModelBundle) of `spec`, by its kind's builder."""
    return resolve(get(spec.kind).build)(spec)


# ---------------------------------------------------------------- the kinds
# The dense VAEs: Adam at 3e-3 decayed to 0 by a cosine over the run beats a constant 1e-3 after
# 10 epochs (benchmarks/RESULTS.md).
_DENSE_VAE_TRAIN = dict(epochs=10, learning_rate=3e-3, lr_schedule="cosine")
# 400 digits are 13 steps an epoch at batch 32: many short epochs give recognisable digits within
# about a minute on two cores (a few epochs left the sample's conv VAE drawing grey squares).
_DENSE_VAE_SAMPLE = dict(epochs=60, batch_size=32)

register(
    Kind(
        "mlp_vae",
        "MLP VAE",
        "Plain dense layers. With latent size 2 you can see its whole latent space as a map.",
        preset=dict(latent_dim=2, hidden=512),
        train_preset=_DENSE_VAE_TRAIN,
        sample_preset=_DENSE_VAE_SAMPLE,
        priors=PRIORS,
        pages=("round_trip", "generate", "denoise"),
    )
)
register(
    Kind(
        "conv_vae",
        "Convolutional VAE",
        "Convolutions see strokes and corners: sharper digits, a little slower to train.",
        dense=False,
        preset=dict(latent_dim=16, hidden=256),
        train_preset=dict(epochs=10),
        sample_preset=dict(
            hidden=128, epochs=40, batch_size=32, learning_rate=3e-3, lr_schedule="cosine"
        ),
        priors=PRIORS,
        pages=("round_trip", "generate", "denoise"),
    )
)
register(
    Kind(
        "conv_dae",
        "Convolutional denoising autoencoder",
        "Learns to turn noisy digits into clean ones; try it on the **Denoise** page.",
        variational=False,
        dense=False,
        # The Keras denoising example's network with a wider bottleneck than its 16 (which caps
        # PSNR), trained on MSE, which is what PSNR measures (benchmarks/RESULTS.md).
        preset=dict(latent_dim=64, hidden=256, reconstruction="mse"),
        train_preset=dict(epochs=5, learning_rate=3e-3, lr_schedule="cosine"),
        sample_preset=dict(epochs=60, batch_size=16),
        pages=("round_trip", "denoise"),
    )
)
register(
    Kind(
        "cvae",
        "Conditional VAE",
        "Is told which digit it is looking at, so you can ask it to draw a 7.",
        conditional=True,
        preset=dict(latent_dim=2, hidden=512),
        train_preset=_DENSE_VAE_TRAIN,
        sample_preset=_DENSE_VAE_SAMPLE,
    )
)

# Adam 1e-3 as the paper; on the small set (527 training users) batch 100 and the KL weight
# reaching its cap (beta, 0.2) within the run: the paper's 200,000 updates would be 40,000 epochs
# (the settings measured in benchmarks/RESULTS.md, "Mult-VAE"; ML-20M: the paper's, see README).
_RECOMMENDER_TRAIN = dict(
    dataset="ml-latest-small", epochs=120, batch_size=100, learning_rate=1e-3, kl_anneal_steps=600
)

# The recommenders (Liang et al. 2018): a user's clicks in, a probability for every item out.
_RECOMMENDER = dict(
    domain=ITEMS,
    datasets=ITEM_DATASETS,
    build="vae_core.recsys.model:build_recommender",
    load="vae_core.recsys.task:load",
    task="vae_core.recsys.task:RecommenderTask",
    trainer="vae_core.recsys.model:RecTrainer",
    reconstructions=("multinomial",),
    # Sparse inputs cannot go through XLA; one step per call (an epoch of ml-latest-small is 2).
    compile=dict(jit_compile=False, steps_per_execution=1),
    metric=("ndcg@100", True),
    limits=Limits(
        latent_dim=(1, 2048),
        hidden=(1, 8192),
        hidden_choices=(200, 600, 1200),
        batch_choices=(100, 250, 500, 1000),
    ),
    pages=("recommend",),
)
register(
    Kind(
        "mult_vae",
        "Mult-VAE recommender",
        "Learns which movies go together from real ratings (MovieLens), as Liang et al. 2018; "
        "try it on the **Recommend** page.",
        preset=dict(latent_dim=200, hidden=600, beta=0.2, reconstruction="multinomial"),
        train_preset=_RECOMMENDER_TRAIN,
        **_RECOMMENDER,
    )
)
register(
    Kind(
        "mult_dae",
        "Mult-DAE recommender",
        "The paper's denoising variant: no sampling, a weight penalty instead of the KL term.",
        variational=False,
        preset=dict(latent_dim=200, reconstruction="multinomial"),
        train_preset={**_RECOMMENDER_TRAIN, "l2": 0.01 / 500},
        **_RECOMMENDER,
    )
)

# RecVAE (Shenbin et al. 2020): Mult-VAE's successor that beats EASE on ML-20M. Its beta is the KL
# weight per click (the paper's gamma: a user's KL weight is beta x their clicks); an epoch is three
# encoder passes, then one decoder pass (vae_core.recsys.recvae). The paper's Adam 5e-4, batch 500
# and beta 0.005 on ML-20M (50 epochs, see README); on the small set batch 100 and beta 0.01, chosen
# on validation (vae_core.recsys.fit.REC_VAE_SMALL_SET; benchmarks/RESULTS.md, "RecVAE").
register(
    Kind(
        "rec_vae",
        "RecVAE recommender",
        "Mult-VAE's successor (Shenbin et al. 2020): a denser encoder, and a prior that remembers "
        "where the last epoch put each user; try it on the **Recommend** page.",
        kl_per_click=True,
        preset=dict(latent_dim=200, hidden=600, beta=0.01, reconstruction="multinomial"),
        train_preset=dict(dataset="ml-latest-small", epochs=50, batch_size=100, learning_rate=5e-4),
        **{
            **_RECOMMENDER,
            "build": "vae_core.recsys.recvae:build_rec_vae",
            "load": "vae_core.recsys.recvae:load",
            "trainer": "vae_core.recsys.recvae:RecVAETrainer",
        },
    )
)
