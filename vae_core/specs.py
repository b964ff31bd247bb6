"""What a model is and how to train it: two small dataclasses and the presets the app offers."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from vae_core.errors import UserError

MODEL_KINDS = ("mlp_vae", "conv_vae", "conv_dae", "cvae")
KIND_LABELS = {
    "mlp_vae": "MLP VAE",
    "conv_vae": "Convolutional VAE",
    "conv_dae": "Convolutional denoising autoencoder",
    "cvae": "Conditional VAE",
}
NOISE_KINDS = ("keras", "gaussian", "salt_pepper", "mask")
# Training may also use "mixed": per image one of the NOISE_KINDS or none (a clean digit) at a
# strength drawn from 0 to noise_strength, so one blind denoiser handles all of them.
TRAIN_NOISE_KINDS = (*NOISE_KINDS, "mixed")
DATASETS = ("mnist", "fashion_mnist", "sample")
STRATEGIES = ("default", "mirrored", "multiworker")
# "auto": mixed_bfloat16 where the CPU multiplies bfloat16 natively and there is no GPU, else
# float32 (see vae_core.train.resolve_precision). Saved models are float32 whatever was chosen.
PRECISIONS = ("auto", "float32", "mixed_bfloat16")
LR_SCHEDULES = ("constant", "cosine")  # cosine: decay to 0 over the whole run (all epochs)


@dataclass
class ModelSpec:
    """The architecture; enough to rebuild a model from scratch."""

    kind: str = "mlp_vae"  # one of MODEL_KINDS
    latent_dim: int = 2  # size of z; 2 lets the app draw the latent space directly
    hidden: int = 512  # Dense units (MLP layers; the Dense bottleneck of the conv models)
    beta: float = 1.0  # weight of the KL term; 1 is the true ELBO, <1 sharper, >1 smoother
    reconstruction: str = "bce"  # "bce" (binary cross-entropy summed over pixels) or "mse"
    always_sample: bool = False  # True: the Keras-example Sampling that samples even at prediction
    num_classes: int = 10  # labels the conditional VAE can be asked for
    image_shape: tuple[int, int, int] = (28, 28, 1)

    def __post_init__(self) -> None:
        self.image_shape = tuple(self.image_shape)
        if self.kind not in MODEL_KINDS:
            raise UserError(
                f"Unknown model kind {self.kind!r}; choose one of {', '.join(MODEL_KINDS)}."
            )
        if not 1 <= int(self.latent_dim) <= 512:
            raise UserError("The latent size must be between 1 and 512.")
        if not 8 <= int(self.hidden) <= 4096:
            raise UserError("The hidden size must be between 8 and 4096.")
        if self.beta < 0:
            raise UserError("Beta must be zero or positive.")
        if self.reconstruction not in ("bce", "mse"):
            raise UserError("The reconstruction loss must be 'bce' or 'mse'.")

    @property
    def is_vae(self) -> bool:
        return self.kind != "conv_dae"

    @property
    def is_conditional(self) -> bool:
        return self.kind == "cvae"

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
    noise: str = "keras"  # DAE input noise: one of TRAIN_NOISE_KINDS
    noise_strength: float = 0.5  # sigma (gaussian), fraction of pixels hit; mixed: the highest
    seed: int = 0
    max_train_samples: int | None = None  # cap the training set (quick demos, tests)
    strategy: str = "default"  # "mirrored" or "multiworker" to use tf.distribute
    log_every_s: float = 2.0  # progress.jsonl gets a line at least this often
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise UserError(
                f"Unknown dataset {self.dataset!r}; choose one of {', '.join(DATASETS)}."
            )
        if not 1 <= int(self.epochs) <= 1000:
            raise UserError("Epochs must be between 1 and 1000.")
        if not 1 <= int(self.batch_size) <= 8192:
            raise UserError("The batch size must be between 1 and 8192.")
        if not 0 < float(self.learning_rate) <= 1:
            raise UserError("The learning rate must be above 0 and at most 1.")
        if self.lr_schedule not in LR_SCHEDULES:
            raise UserError(
                f"Unknown learning-rate schedule {self.lr_schedule!r}; "
                f"choose one of {', '.join(LR_SCHEDULES)}."
            )
        if self.precision not in PRECISIONS:
            raise UserError(
                f"Unknown precision {self.precision!r}; choose one of {', '.join(PRECISIONS)}."
            )
        if self.kl_warmup_epochs < 0:
            raise UserError("KL warm-up epochs must be zero or more.")
        if self.noise not in TRAIN_NOISE_KINDS:
            raise UserError(
                f"Unknown noise {self.noise!r}; choose one of {', '.join(TRAIN_NOISE_KINDS)}."
            )
        if self.strategy not in STRATEGIES:
            raise UserError(
                f"Unknown strategy {self.strategy!r}; choose one of {', '.join(STRATEGIES)}."
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainSpec:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


# What the train page offers first for each kind: sensible, and quick on a 2-core CPU.
# The dense VAEs: Adam at 3e-3 decayed to 0 by a cosine over the run is 2-3 nats better after 10
# epochs than a constant 1e-3 (benchmarks/RESULTS.md).
_DENSE_VAE_TRAIN = dict(epochs=10, learning_rate=3e-3, lr_schedule="cosine")
PRESETS: dict[str, tuple[ModelSpec, TrainSpec]] = {
    "mlp_vae": (ModelSpec("mlp_vae", latent_dim=2, hidden=512), TrainSpec(**_DENSE_VAE_TRAIN)),
    "conv_vae": (ModelSpec("conv_vae", latent_dim=16, hidden=256), TrainSpec(epochs=10)),
    # The Keras denoising example's network with a 64-wide bottleneck (its 16 caps PSNR near 18 dB),
    # trained on MSE (what PSNR measures) at 3e-3 with cosine decay: +1.6 dB after 5 epochs.
    "conv_dae": (
        ModelSpec("conv_dae", latent_dim=64, hidden=256, reconstruction="mse"),
        TrainSpec(epochs=5, learning_rate=3e-3, lr_schedule="cosine"),
    ),
    "cvae": (ModelSpec("cvae", latent_dim=2, hidden=512), TrainSpec(**_DENSE_VAE_TRAIN)),
}
