"""What a model is and how to train it: two small dataclasses, validated once, and the presets.

The limits of each setting come from the model's kind (vae_core.kinds), so the Train page, the
command line and a stored model's metadata can never disagree about what is allowed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from vae_core import kinds
from vae_core.errors import UserError

# The noise a denoising autoencoder learns to remove, and its name on the pages.
NOISES = {
    "keras": "Grey fog (the Keras example)",
    "gaussian": "Gaussian speckle",
    "salt_pepper": "Salt & pepper",
    "mask": "Dropped pixels (masking)",
}
NOISE_KINDS = tuple(NOISES)
# Training may also use "mixed": per image one of the NOISE_KINDS or none (a clean digit) at a
# strength drawn from 0 to noise_strength, so one blind denoiser handles all of them.
MIXED_NOISE = "mixed"
TRAIN_NOISES = {**NOISES, MIXED_NOISE: "Every kind above, and clean digits (one blind denoiser)"}
TRAIN_NOISE_KINDS = tuple(TRAIN_NOISES)
DATASETS = (*kinds.DIGIT_DATASETS, *kinds.ITEM_DATASETS)
STRATEGIES = ("default", "mirrored", "multiworker")
# "auto": mixed_bfloat16 where the CPU multiplies bfloat16 natively and there is no GPU, else
# float32 (vae_core.machine.resolve_precision). Saved models are float32 whatever was chosen.
PRECISIONS = ("auto", "float32", "mixed_bfloat16")
LR_SCHEDULES = ("constant", "cosine")  # cosine: decay to 0 over the whole run (all epochs)
RECONSTRUCTIONS = ("bce", "mse", "multinomial")  # a kind allows some of them (vae_core.kinds)
PRIORS = kinds.PRIORS


def _choice(value: Any, choices: tuple[str, ...], what: str) -> None:
    if value not in choices:
        raise UserError(f"Unknown {what} {value!r}; choose one of {', '.join(choices)}.")


def _within(value: Any, bounds: tuple[int, int], what: str) -> None:
    low, high = bounds
    if not low <= value <= high:
        raise UserError(f"{what} must be between {low} and {high}.")


@dataclass
class ModelSpec:
    """The architecture; enough to rebuild a model from scratch."""

    kind: str = "mlp_vae"  # a name in vae_core.kinds
    latent_dim: int = 2  # size of z; 2 lets the app draw the latent space directly
    hidden: int = 512  # Dense units (MLP layers; the Dense bottleneck of the conv models)
    beta: float = 1.0  # weight of the KL term; 1 is the true ELBO, <1 sharper, >1 smoother
    # "bce" (binary cross-entropy summed over pixels), "mse", or "multinomial" (recommenders);
    # empty: the kind's first choice
    reconstruction: str = ""
    always_sample: bool = False  # True: the Keras-example Sampling that samples even at prediction
    num_classes: int = 10  # labels the conditional VAE can be asked for
    image_shape: tuple[int, int, int] = (28, 28, 1)
    n_items: int = 0  # items a recommender scores (0: as many as its data has); digits: unused
    dropout: float = 0.5  # a recommender's dropout on its L2-normalised input, while training
    prior: str = "normal"  # one of PRIORS (a kind allows some of them)
    prior_components: int = 10  # Gaussians in a "mixture" prior ("class_mixture": num_classes)

    def __post_init__(self) -> None:
        self.image_shape = tuple(self.image_shape)
        info = kinds.get(self.kind)
        _within(int(self.latent_dim), info.limits.latent_dim, "The latent size")
        _within(int(self.hidden), info.limits.hidden, "The hidden size")
        if self.beta < 0:
            raise UserError("Beta must be zero or positive.")
        self.reconstruction = self.reconstruction or info.reconstructions[0]
        _choice(self.reconstruction, info.reconstructions, "reconstruction loss")
        if int(self.n_items) < 0 or int(self.n_items) == 1:
            raise UserError("A recommender needs at least two items to choose between.")
        if not 0 <= float(self.dropout) < 1:
            raise UserError("Dropout must be at least 0 and below 1.")
        _choice(self.prior, info.priors, f"prior for the {info.label}")
        _within(int(self.prior_components), (1, 100), "The number of prior components")
        if self.prior == "class_mixture":
            self.prior_components = self.num_classes

    @property
    def kind_info(self) -> kinds.Kind:
        return kinds.get(self.kind)

    @property
    def is_vae(self) -> bool:
        return self.kind_info.variational

    @property
    def is_conditional(self) -> bool:
        return self.kind_info.conditional

    @property
    def learns_from_labels(self) -> bool:
        """Training needs each digit's label (a conditional kind, or a prior of one Gaussian per
        digit); using the model may not."""
        return self.is_conditional or self.prior == "class_mixture"

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["image_shape"] = list(self.image_shape)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelSpec:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class TrainSpec:
    """How to train: data, schedule and optimiser."""

    dataset: str = "mnist"  # "mnist", "fashion_mnist" or "sample" (the bundled digits, offline)
    epochs: int = 10
    batch_size: int = 128
    learning_rate: float = 1e-3  # Adam (the peak rate when lr_schedule is "cosine")
    lr_schedule: str = "constant"  # one of LR_SCHEDULES
    precision: str = "auto"  # one of PRECISIONS: the layers' compute dtype while training
    kl_warmup_epochs: int = 0  # KL weight rises linearly from 0 to beta over this many epochs
    kl_anneal_steps: int = 200_000  # recommenders: ...over this many updates (the paper's schedule)
    l2: float = 0.0  # recommenders: weight of the sum of squared weights (vae_cf's Mult-DAE)
    # recommenders: only items this many training users liked are scored (1: the paper; more
    # gives a smaller model, e.g. to ship)
    min_item_users: int = 1
    noise: str = "keras"  # DAE input noise: one of TRAIN_NOISE_KINDS
    noise_strength: float = 0.5  # sigma (gaussian), fraction of pixels hit; mixed: the highest
    seed: int = 0
    max_train_samples: int | None = None  # cap the training set (quick demos, tests)
    strategy: str = "default"  # "mirrored" or "multiworker" to use tf.distribute
    log_every_s: float = 2.0  # progress.jsonl gets a line at least this often
    # Slow motion, so demos and browser tests can catch a tiny run part-way: a pause per batch.
    step_delay_s: float = 0.0
    steps_per_execution: int | None = None  # None: what vae_core.machine finds fastest

    def __post_init__(self) -> None:
        _choice(self.dataset, DATASETS, "dataset")
        limits = kinds.Limits()  # a run's schedule limits are the same for every kind
        _within(int(self.epochs), limits.epochs, "Epochs")
        _within(int(self.batch_size), limits.batch_size, "The batch size")
        if not 0 < float(self.learning_rate) <= 1:
            raise UserError("The learning rate must be above 0 and at most 1.")
        _choice(self.lr_schedule, LR_SCHEDULES, "learning-rate schedule")
        _choice(self.precision, PRECISIONS, "precision")
        if self.kl_warmup_epochs < 0 or self.kl_anneal_steps < 0:
            raise UserError("KL warm-up epochs and steps must be zero or more.")
        if self.min_item_users < 1:
            raise UserError("Items need at least one training user to be scored.")
        if self.l2 < 0:
            raise UserError("The weight penalty must be zero or positive.")
        _choice(self.noise, TRAIN_NOISE_KINDS, "noise")
        _choice(self.strategy, STRATEGIES, "strategy")
        if self.step_delay_s < 0:
            raise UserError("The pause per batch must be zero or more seconds.")
        if self.steps_per_execution is not None and self.steps_per_execution < 1:
            raise UserError("Steps per execution must be at least 1.")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainSpec:
        known = {f.name for f in dataclasses.fields(cls)}
        d = dict(d)
        extra = d.pop("extra", None) or {}  # configs written before these were named fields
        return cls(**{k: v for k, v in {**extra, **d}.items() if k in known})


def check_pair(model_spec: ModelSpec, train_spec: TrainSpec) -> None:
    """A run's two specs agree: the data is of the kind's domain (a sentence if not)."""
    info = model_spec.kind_info
    if train_spec.dataset not in info.datasets:
        raise UserError(
            f"The {info.label} trains on {', '.join(info.datasets)}, not {train_spec.dataset}."
        )


def preset(kind: str, dataset: str | None = None) -> tuple[ModelSpec, TrainSpec]:
    """What the Train page and the CLI start from for a kind (on a dataset): sensible, and quick on
    a 2-core CPU."""
    info = kinds.get(kind)
    model, train = dict(info.preset), dict(info.train_preset)
    if dataset is not None:
        train["dataset"] = dataset
    if dataset == "sample":  # the sample's own preset may change the model as well as the schedule
        model_fields = {f.name for f in dataclasses.fields(ModelSpec)}
        for key, value in info.sample_preset.items():
            (model if key in model_fields else train)[key] = value
    return ModelSpec(kind, **model), TrainSpec(**train)


# The Train page's "Quick demo" and `--preset quick`: from Start to a saved model in under a minute
# on a 2-core CPU, on all of MNIST, drawing digits a person reads (benchmarks/RESULTS.md): a 2-D
# VAE whose prior keeps the ten digits apart, a few epochs at a high, decaying learning rate.
NAMED_PRESETS = {
    "quick": (
        "mlp_vae",
        dict(latent_dim=2, hidden=512, prior="class_mixture"),
        dict(dataset="mnist", epochs=5, learning_rate=3e-3, lr_schedule="cosine"),
    ),
}


def named_preset(name: str) -> tuple[ModelSpec, TrainSpec]:
    """A preset that names its own kind and data (today: "quick", the one-minute demo)."""
    _choice(name, tuple(NAMED_PRESETS), "preset")
    kind, model, train = NAMED_PRESETS[name]
    return ModelSpec(kind, **model), TrainSpec(**train)


# ---------------------------------------------------------------- the command line
@dataclass(frozen=True)
class Flag:
    """One `python -m vae_core.train` option and the spec field it sets."""

    flag: str
    spec: str  # "model" or "train"
    field: str
    help: str | None = None  # None: an option for tests and experts, left out of --help
    choices: tuple[str, ...] | None = None


FLAGS = (
    Flag("--latent-dim", "model", "latent_dim", "size of z"),
    Flag("--hidden", "model", "hidden", "Dense units"),
    Flag("--beta", "model", "beta", "weight of the KL term"),
    Flag("--reconstruction", "model", "reconstruction", "reconstruction loss", RECONSTRUCTIONS),
    Flag("--always-sample", "model", "always_sample", "sample z at prediction too (keras-io)"),
    Flag("--dropout", "model", "dropout", "recommenders: input dropout while training"),
    Flag("--prior", "model", "prior", "p(z): N(0, I) or a learned mixture of Gaussians", PRIORS),
    Flag("--prior-components", "model", "prior_components", "Gaussians in a mixture prior"),
    Flag("--dataset", "train", "dataset", "what to train on", DATASETS),
    Flag("--epochs", "train", "epochs", "passes over the training data"),
    Flag("--batch-size", "train", "batch_size", "samples per step"),
    Flag("--lr", "train", "learning_rate", "Adam's (peak) learning rate"),
    Flag("--lr-schedule", "train", "lr_schedule", "constant or cosine decay", LR_SCHEDULES),
    Flag("--precision", "train", "precision", "compute dtype while training", PRECISIONS),
    Flag("--kl-warmup", "train", "kl_warmup_epochs", "epochs over which KL rises to beta"),
    Flag("--kl-anneal-steps", "train", "kl_anneal_steps", "recommenders: updates to reach beta"),
    Flag("--l2", "train", "l2", "recommenders: weight penalty"),
    Flag("--min-item-users", "train", "min_item_users", "recommenders: items need this many users"),
    Flag(
        "--noise",
        "train",
        "noise",
        "the DAE's input noise (mixed: every kind, and none)",
        TRAIN_NOISE_KINDS,
    ),
    Flag("--noise-strength", "train", "noise_strength", "sigma, or the fraction of pixels hit"),
    Flag("--seed", "train", "seed", "random seed"),
    Flag("--max-train-samples", "train", "max_train_samples", "cap the training set"),
    Flag(
        "--strategy",
        "train",
        "strategy",
        "tf.distribute strategy: mirrored uses every local GPU; multiworker trains across "
        "machines (the cluster in TF_CONFIG, or see --workers)",
        STRATEGIES,
    ),
    Flag("--log-every-s", "train", "log_every_s"),
    Flag("--step-delay-s", "train", "step_delay_s"),
    Flag("--steps-per-execution", "train", "steps_per_execution"),
)


def cli_args(model_spec: ModelSpec, train_spec: TrainSpec) -> list[str]:
    """The flags that recreate these specs exactly (expert options only where not the default)."""
    specs = {"model": model_spec, "train": train_spec}
    defaults = {"model": ModelSpec(model_spec.kind), "train": TrainSpec()}
    args = ["--model", model_spec.kind]
    for f in FLAGS:
        value = getattr(specs[f.spec], f.field)
        if value is None or value is False:
            continue
        if f.help is None and value == getattr(defaults[f.spec], f.field):
            continue
        args += (
            [f.flag]
            if value is True
            else [f.flag, repr(value) if isinstance(value, float) else str(value)]
        )
    return args
