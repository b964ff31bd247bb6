"""How a run uses this machine: devices and tf.distribute, precision, XLA, steps per execution,
static batches, the optimizer, and the float32 copy that goes into the store.

One module so that training and the benchmarks (benchmarks/training.py) compile the same way. Why
each choice, with the measurements behind it: benchmarks/RESULTS.md.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from vae_core import kinds
from vae_core.errors import RunError
from vae_core.models import ModelBundle
from vae_core.specs import ModelSpec, TrainSpec

# Batches per Python round trip without XLA: amortises the call overhead of a small Dense step;
# a conv step on a CPU is slow enough that 1 is as fast (and a stop lands sooner).
STEPS_PER_EXECUTION = 16
CONV_CPU_STEPS_PER_EXECUTION = 1
# Static batch shapes (drop_remainder) only when an epoch has at least this many steps: the dropped
# partial batch is then < 1% of the data (reshuffled each epoch, so no image is lost for good);
# smaller sets keep every sample and the last batch's shape is traced (or compiled) once more.
STATIC_BATCHES_MIN_STEPS = 100
LOGICAL_CPUS_ENV = "VAE_LAB_LOGICAL_CPUS"  # split the CPU into N devices (tests of mirroring)
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of native bfloat16 math
# How a multi-worker run notices a worker is gone: every `interval` seconds each worker asks every
# other one, waiting `timeout` seconds for an answer, `retry_limit` times, and then cancels its
# collectives. A killed process refuses at once (about `interval` s to notice); a machine that fell
# off the network takes interval + retry_limit * timeout = 17 s. LOST_WORKER_WITHIN_S bounds both.
WORKER_CHECK = {"interval": 2, "timeout": 5, "retry_limit": 3}
LOST_WORKER_WITHIN_S = 30


# ---------------------------------------------------------------- devices and strategies
def configure_logical_cpus() -> None:
    """Split the CPU into $VAE_LAB_LOGICAL_CPUS devices; must run before TensorFlow starts."""
    count = os.environ.get(LOGICAL_CPUS_ENV)
    if count and int(count) > 1:
        cpus = tf.config.list_physical_devices("CPU")
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration()] * int(count)
        )


def make_strategy(name: str, join_timeout_s: float = 120.0) -> tf.distribute.Strategy:
    """ "default": one device (a GPU if TensorFlow sees one); "mirrored": every local GPU (or every
    logical CPU when there is no GPU); "multiworker": the cluster in TF_CONFIG, which waits up to
    `join_timeout_s` for every worker and then watches that they all stay (see WORKER_CHECK)."""
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus or tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multiworker":
        _set_worker_check(join_timeout_s)
        try:
            return tf.distribute.MultiWorkerMirroredStrategy()
        except RuntimeError as err:  # "Timeout waiting for the cluster"
            raise RunError(
                f"Not every worker joined within {join_timeout_s:.0f} s; start the same command "
                "on every machine."
            ) from err
    return tf.distribute.get_strategy()


def _set_worker_check(join_timeout_s: float) -> None:
    """WORKER_CHECK, and `join_timeout_s` for the first check, on TensorFlow's health check; read
    when the strategy starts its thread, so set before it."""
    # A private module (the settings are class attributes, with no public way in), imported only
    # here: a TensorFlow that moves it costs a multi-worker run its quick watch, not every page.
    try:
        from tensorflow.python.distribute import collective_all_reduce_strategy as private
    except ImportError:
        return  # TensorFlow's defaults: a lost worker is noticed within about a minute
    extended = getattr(private, "CollectiveAllReduceExtended", None)
    for setting, value in {**WORKER_CHECK, "initial_timeout": join_timeout_s}.items():
        if hasattr(extended, f"_check_health_{setting}"):  # one gone: TensorFlow's own default
            setattr(extended, f"_check_health_{setting}", value)


def describe_devices(strategy: tf.distribute.Strategy, name: str) -> dict:
    """What the run trains on, for status.json and the compile choices."""
    gpus = tf.config.list_logical_devices("GPU")
    try:
        replica_devices = list(strategy.extended.worker_devices)
    except (AttributeError, RuntimeError):
        replica_devices = [gpus[0].name if gpus else "/device:CPU:0"]
    return {
        "strategy": name,
        "replicas": int(strategy.num_replicas_in_sync),
        "replica_devices": replica_devices,
        "gpus": len(gpus),
        "names": [d.name for d in gpus + tf.config.list_logical_devices("CPU")],
    }


# ---------------------------------------------------------------- several workers in step
def _sum_over_workers(strategy: tf.distribute.Strategy, value: tf.Tensor) -> tf.Tensor:
    """The sum of `value` over every worker (each contributes its own), as every worker sees it."""
    per_replica = strategy.run(lambda: tf.identity(value))
    return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)


def _from_chief(strategy: tf.distribute.Strategy, value, like: tf.Tensor) -> tf.Tensor:
    """The chief's `value` on every worker (the others pass None): a sum over the workers in which
    only the chief's part is not zero."""
    mine = tf.zeros_like(like) if value is None else tf.cast(value, like.dtype)
    integer = like.dtype.is_integer
    total = _sum_over_workers(strategy, tf.cast(mine, tf.float64) if integer else mine)
    return tf.cast(total, like.dtype) if integer else total


def position_from_chief(
    strategy: tf.distribute.Strategy, position: tuple[int, int] | None
) -> tuple[int, int]:
    """The chief's checkpoint position (completed epochs, steps) on every worker."""
    where = _from_chief(strategy, position, tf.zeros(2, tf.int64)).numpy()
    return int(where[0]), int(where[1])


def share_from_chief(
    strategy: tf.distribute.Strategy,
    trainer: keras.Model,
    saved: tuple[tuple[int, int], list] | None,
) -> tuple[int, int]:
    """Every worker takes the chief's checkpoint: its position and, when there is one, its weights
    and optimizer state. `saved` is (position, variables in trainer.variables +
    trainer.optimizer.variables order) on the chief, None elsewhere: only the chief reads the run
    folder, which other machines may not see."""
    position, values = saved if saved is not None else (None, None)
    epoch, step = position_from_chief(strategy, position if saved is not None else None)
    if (epoch, step) == (0, 0):
        return 0, 0  # fresh variables already start as the chief's (the strategy's doing)
    for i, var in enumerate(trainer.variables + trainer.optimizer.variables):
        chiefs = None if values is None else tf.convert_to_tensor(values[i])
        var.assign(_from_chief(strategy, chiefs, tf.convert_to_tensor(var.value)))
    return epoch, step


def agreement(strategy: tf.distribute.Strategy):
    """A function: has any worker been asked to stop? Every worker calls it at the same batch, so
    all of them stop together (one that carried on alone would wait for the others forever)."""

    # Asked at every batch: one traced function, not the strategy's slow eager path.
    total = tf.function(lambda value: _sum_over_workers(strategy, value))

    def anyone(asked: bool) -> bool:
        return bool(total(tf.constant(float(asked))).numpy() > 0)

    return anyone


# The errors TensorFlow raises when a peer is gone: refused or silent (Unavailable,
# DeadlineExceeded), restarted (FailedPrecondition), or the health check aborting the collectives
# (Cancelled, Internal). Each is also a real error of its own: lost_peer reads the message.
LOST_PEER_ERRORS = (
    tf.errors.UnavailableError,
    tf.errors.DeadlineExceededError,
    tf.errors.FailedPreconditionError,
    tf.errors.CancelledError,
    tf.errors.InternalError,
    tf.errors.AbortedError,
)
_PEER = re.compile(r"/job:(\w+)/replica:\d+/task:(\d+)")
# How the health check aborts the collectives: "cluster check alive failed, <peer> is down".
_DOWN = re.compile(r"check alive failed, /job:(\w+)/replica:\d+/task:(\d+) is down")


def lost_peer(err: BaseException, own: str) -> str | None:
    """The member name ("worker_1") the health check says is down; "" when the error is the
    health check's or names another worker without saying it is down (with three workers or more
    that one may be healthy); None when `err` is not a lost peer but an error of the run's own.
    `own` is this process's member name."""
    if not isinstance(err, LOST_PEER_ERRORS):
        return None
    text = str(err.message if hasattr(err, "message") else err)
    down = _DOWN.search(text)
    if down:
        return f"{down[1]}_{down[2]}"
    others = {f"{job}_{index}" for job, index in _PEER.findall(text)} - {own}
    return "" if others or "check alive" in text else None


# ---------------------------------------------------------------- compile settings
def cpu_has_bf16(cpuinfo: str | None = None) -> bool:
    """Does this CPU multiply bfloat16 natively (AVX512_BF16 or AMX-BF16)? Linux only; else False."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return False
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            return bool(set(line.partition(":")[2].split()) & set(BF16_CPU_FLAGS))
    return False


def resolve_precision(train_spec: TrainSpec, devices: dict) -> str:
    """The Keras dtype policy to train under: "float32" or "mixed_bfloat16".

    "auto" picks mixed_bfloat16 only on a CPU-only machine with native bfloat16 dot products: the
    products then run at up to twice the float32 rate while variables, Adam's state, the losses
    and the KL stay float32, so the quality reached is the same. Emulated bfloat16 is slower than
    float32, and on a GPU it has not been measured here: float32 there.
    """
    if train_spec.precision != "auto":
        return train_spec.precision
    if devices.get("gpus"):
        return "float32"
    return "mixed_bfloat16" if cpu_has_bf16() else "float32"


def compile_options(
    model_spec: ModelSpec, train_spec: TrainSpec, devices: dict, n_train: int | None = None
) -> dict:
    """How this run is compiled: precision, XLA, steps per execution, static batches.

    - XLA: off under mixed_bfloat16 on a CPU (XLA's CPU products ignore the bfloat16
      instructions); in float32 on for dense kinds on one CPU device (it fuses the element-wise
      work around the products), off for convolutions on a CPU (oneDNN's are faster); on a GPU
      Keras's "auto".
    - steps per execution: 1 with XLA; otherwise 16 for dense kinds, 1 for convolutions on a CPU.
    - static batches on big enough sets (STATIC_BATCHES_MIN_STEPS): one traced shape per epoch;
      also where the last batch has fewer samples than there are replicas to share it.
    """
    gpu = bool(devices.get("gpus"))
    precision = resolve_precision(train_spec, devices)
    dense = kinds.get(model_spec.kind).dense
    if gpu:
        jit: bool | str = "auto"
    elif precision == "mixed_bfloat16":
        jit = False
    else:
        # Under tf.distribute on logical CPUs an XLA step cannot reach the other replicas'
        # variables ("Trying to access resource ... located in device CPU:1"): one device only.
        jit = dense and train_spec.strategy == "default"
    if jit is True or (not dense and not gpu):
        per_execution = 1 if jit is True else CONV_CPU_STEPS_PER_EXECUTION
    else:
        per_execution = STEPS_PER_EXECUTION
    jit = kinds.get(model_spec.kind).compile.get("jit_compile", jit)
    per_execution = kinds.get(model_spec.kind).compile.get("steps_per_execution", per_execution)
    if train_spec.steps_per_execution is not None:
        per_execution = train_spec.steps_per_execution
    if train_spec.strategy != "default":
        # Keras 3 cannot run several steps per execution under tf.distribute ("You must feed a
        # value for placeholder tensor", keras-team/keras#19246), so one step per call there.
        per_execution = 1
    full_steps, last = divmod(n_train or 0, train_spec.batch_size)
    # Under tf.distribute every replica takes a share of each batch: a last batch too small to go
    # round would leave a replica with none, whose mean loss (and gradient) is NaN.
    too_small = 0 < last < int(devices.get("replicas") or 1)
    return {
        "precision": precision,
        "jit_compile": jit,
        "steps_per_execution": max(1, per_execution),
        "drop_remainder": full_steps >= STATIC_BATCHES_MIN_STEPS or too_small,
    }


def make_optimizer(train_spec: TrainSpec, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """Adam at the spec's rate, constant or cosine-decayed to 0 over all the run's steps. The
    schedule reads optimizer.iterations, which checkpoints keep, so a resumed run continues it."""
    lr: float | keras.optimizers.schedules.LearningRateSchedule = float(train_spec.learning_rate)
    if train_spec.lr_schedule == "cosine":
        total = max(1, steps_per_epoch * train_spec.epochs)
        lr = keras.optimizers.schedules.CosineDecay(lr, decay_steps=total, alpha=0.0)
    return keras.optimizers.Adam(lr)


# ---------------------------------------------------------------- precision of what is kept
@contextlib.contextmanager
def dtype_policy_restored() -> Iterator[None]:
    """Whatever policy the body sets, the caller's comes back (Keras keeps it per thread)."""
    previous = keras.config.dtype_policy()
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


# Weight-only int8 (Keras's own quantization, activations left in float32): a Dense kernel is kept as
# int8 with one float scale per output column, a quarter of its float32 bytes.
INT8_KEPT = keras.quantizers.Int8QuantizationConfig(activation_quantizer=None)


def _leaf_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The layers with no layers inside, in Keras's own order (the nested encoder and decoder
    unrolled): every variable of a VAE Lab model is in one of them, which stored_as checks."""
    every = model._flatten_layers(include_self=False, recursive=True)
    return [la for la in every if not list(la._flatten_layers(include_self=False, recursive=False))]


def _is_dense(layer: keras.layers.Layer) -> bool:
    return isinstance(layer, keras.layers.Dense)


def _numbers(layer: keras.layers.Layer) -> list[np.ndarray]:
    """A layer's weights as plain numbers: an int8-kept Dense gives its kernel over its scale."""
    if getattr(layer, "quantization_mode", None) == "int8":
        kernel, scale = (keras.ops.convert_to_numpy(v) for v in (layer._kernel, layer.kernel_scale))
        bias = [keras.ops.convert_to_numpy(layer.bias)] if layer.use_bias else []
        return [kernel.astype("float32") / scale.astype("float32"), *bias]
    return [np.asarray(w) for w in layer.get_weights()]


def stored_as(bundle: ModelBundle, dtype: str) -> ModelBundle:
    """A copy of `bundle` in `dtype`: built under that policy and its weights cast to it, or for
    "int8" built in float32 and its Dense kernels quantized.

    How the shipped models are kept (the repository's 15 MB budget): "float16" for the digit models
    (half the bytes); "int8" for the recommender, whose Dense kernels are nearly all its bytes (a
    quarter). "float32" is how every model is used: the pages feed float32 numpy and expect float32.
    """
    cast = "float32" if dtype == "int8" else dtype  # int8: quantized after the copy
    with dtype_policy_restored():
        keras.config.set_dtype_policy(cast)
        fresh = kinds.build(bundle.spec)
    targets = _leaf_layers(fresh.composite)
    if sum(len(la.weights) for la in targets) != len(fresh.composite.weights):
        raise ValueError(f"A {bundle.spec.kind} holds weights outside its innermost layers.")
    for source, target in zip(_leaf_layers(bundle.composite), targets, strict=True):
        target.set_weights(
            [w.astype(cast) if np.issubdtype(w.dtype, np.floating) else w for w in _numbers(source)]
        )
    if dtype == "int8":
        fresh.composite.quantize("int8", config=INT8_KEPT, filters=_is_dense)
    fresh.meta = dict(bundle.meta)
    return fresh


def float32_bundle(bundle: ModelBundle) -> ModelBundle:
    """A float32 copy of a bundle trained under a mixed policy or kept in float16 or int8 (the same
    one when it is float32 already). The trained variables of a mixed policy are float32 masters; a
    saved mixed_bfloat16 layer policy would still hand back bfloat16."""
    layers_ = bundle.composite._flatten_layers(include_self=True, recursive=True)
    weights = bundle.composite.weights
    if all(layer.dtype_policy.name == "float32" for layer in layers_) and all(
        w.dtype == "float32" for w in weights
    ):
        return bundle
    return stored_as(bundle, "float32")
