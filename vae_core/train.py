"""One training run: data -> model -> fit, with checkpoints, progress lines and grids -> the store.

`python -m vae_core.train --run-dir DIR ...` (what the app's child process runs) and `run_training`
are one code path. The run folder is described in `vae_core.runs`; what this module writes there:

- progress.jsonl: a "start" line per process; "step" lines at least every `log_every_s` seconds
  ("epoch" is the epoch being trained, 1-based; "step" the steps done in it); an "epoch" line when an
  epoch ends ("epoch" is the epoch just completed, with val_* losses).
- epochs/epoch_NNN.png: 8 fixed test digits above their reconstructions, then 16 prior samples from
  fixed z (the DAE: noisy, denoised, clean rows), so grids compare across epochs.
- backup/epoch_NNNN.weights.h5: weights and optimizer state after each completed epoch.
- tb/train, tb/validation: TensorBoard scalars per epoch (see EpochSummaries).
- status.json: state, pid, phase, epoch (completed), step, devices, and at the end test_metrics and
  model_name (or error).

Resume. Keras's BackupAndRestore is not used: it writes its one checkpoint in place (a kill during the
write loses it), and when a stop cuts an epoch short, fit still calls on_epoch_end, so it would
record the partial epoch as done. Here each completed epoch is saved to a temp file and renamed, the
epoch number lives in the file name, and a partial epoch is never saved: a resumed run restarts it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

from vae_core import runs
from vae_core.data import add_noise, load_dataset, make_tf_dataset, to_float
from vae_core.errors import RunError, StoreError, UserError
from vae_core.fsutil import fsync_dir, write_bytes_atomic
from vae_core.images import tile, to_png
from vae_core.metrics import evaluate
from vae_core.models import ModelBundle, Trainer, build_model
from vae_core.specs import (
    LR_SCHEDULES,
    PRECISIONS,
    PRESETS,
    TRAIN_NOISE_KINDS,
    ModelSpec,
    TrainSpec,
)
from vae_core.store import Store, default_store

MAX_VALIDATION = 10_000  # images validated after each epoch (all of MNIST's test split)
# Batches per Python round trip (a stop lands after at most this many), when XLA is off: 16 halves
# the time of a Dense model's epoch on a CPU; a conv step on a CPU is slow enough that the round
# trip is noise (16 measured slower than 1). With XLA one step per call is as fast.
STEPS_PER_EXECUTION = 16
CONV_CPU_STEPS_PER_EXECUTION = 1
# Static batch shapes (drop_remainder) only when an epoch has at least this many steps: the dropped
# partial batch is then < 1% of the data (reshuffled each epoch, so no image is lost for good);
# smaller sets keep every sample and the last batch's shape is traced (or compiled) once more.
STATIC_BATCHES_MIN_STEPS = 100
GRID_DIGITS, GRID_SAMPLES, GRID_SEED = 8, 16, 1234
KEEP_CHECKPOINTS = 2  # the newest, and one more in case the newest is damaged
LOGICAL_CPUS_ENV = (
    "VAE_LAB_LOGICAL_CPUS"  # split the CPU into N devices (tests of MirroredStrategy)
)


# ---------------------------------------------------------------- stopping
class StopRequest:
    """Has anyone asked this run to stop? SIGTERM/SIGINT, a threading.Event, or the STOP file."""

    def __init__(self, stop_file: Path, event: threading.Event | None = None):
        self.stop_file, self.event = stop_file, event
        self.signalled = False
        self._file_seen, self._checked_at = False, 0.0

    def __call__(self) -> bool:
        if self.signalled or (self.event is not None and self.event.is_set()):
            return True
        now = time.monotonic()
        if now - self._checked_at >= 0.2:  # a stat per batch would be wasted work
            self._checked_at = now
            self._file_seen = self.stop_file.exists()
        return self._file_seen

    @contextlib.contextmanager
    def signals(self) -> Iterator[None]:
        """While training: SIGTERM (and a first Ctrl-C) request a stop instead of killing."""
        if threading.current_thread() is not threading.main_thread():
            yield  # only the main thread may install signal handlers
            return

        def on_signal(signum, frame):
            if signum == signal.SIGINT and self.signalled:
                raise KeyboardInterrupt  # a second Ctrl-C means "now"
            self.signalled = True

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


# ---------------------------------------------------------------- status
class StatusFile:
    """status.json, rewritten atomically on every update."""

    def __init__(self, path: Path, **fields):
        self.path, self.data = path, dict(fields)

    def update(self, **fields) -> dict:
        self.data.update(fields, updated=time.time())
        runs.write_json_atomic(self.path, self.data)
        return dict(self.data)


# ---------------------------------------------------------------- checkpoints
def _checkpoints(backup_dir: Path) -> list[tuple[int, Path]]:
    """(epoch, file) of the complete checkpoints, newest first (temp files are not listed)."""
    found = []
    with contextlib.suppress(OSError):
        for path in backup_dir.glob("epoch_*.weights.h5"):
            with contextlib.suppress(ValueError):
                found.append((int(path.name[len("epoch_") :].split(".")[0]), path))
    return sorted(found, reverse=True)


def save_checkpoint(trainer: Trainer, backup_dir: Path, epoch: int) -> Path:
    """Weights and optimizer state after `epoch` completed epochs, written to a temp file and renamed."""
    backup_dir.mkdir(parents=True, exist_ok=True)
    final = backup_dir / f"epoch_{epoch:04d}.weights.h5"
    tmp = backup_dir / f"tmp_epoch_{epoch:04d}.weights.h5"  # Keras wants the .weights.h5 ending
    trainer.save_weights(tmp, overwrite=True)
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, final)
    fsync_dir(backup_dir)
    runs.write_json_atomic(
        backup_dir / "checkpoint.json", {"epoch": epoch, "weights": final.name, "time": time.time()}
    )
    for _, old in _checkpoints(backup_dir)[KEEP_CHECKPOINTS:]:
        old.unlink(missing_ok=True)
    return final


def restore_checkpoint(trainer: Trainer, backup_dir: Path) -> int:
    """Load the newest readable checkpoint; returns its epoch (0: none, start from scratch)."""
    found = _checkpoints(backup_dir)
    if not found:
        return 0
    fresh = [v.numpy() for v in trainer.variables + trainer.optimizer.variables]
    for epoch, path in found:
        try:
            trainer.load_weights(path)
            return epoch
        except Exception as err:  # h5py/Keras raise many types for a damaged file
            print(
                f"Checkpoint {path.name} cannot be read ({err}); trying an older one.",
                file=sys.stderr,
            )
    # A failed load may have half-assigned the variables: put the fresh ones back.
    for var, value in zip(trainer.variables + trainer.optimizer.variables, fresh, strict=True):
        var.assign(value)
    return 0


def _checkpoint_epoch(backup_dir: Path) -> int:
    found = _checkpoints(backup_dir)
    return found[0][0] if found else 0


# ---------------------------------------------------------------- the per-epoch picture
class EpochGrid:
    """The same test digits and the same z every epoch, so the grids show learning, not luck."""

    def __init__(
        self, bundle: ModelBundle, x_test: np.ndarray, y_test: np.ndarray, train: TrainSpec
    ):
        self.bundle, spec = bundle, bundle.spec
        # One of each digit 0..7 when the split has them: easier to read than 8 random ones.
        picks = [int(np.argmax(y_test == d)) for d in range(GRID_DIGITS) if np.any(y_test == d)]
        if len(picks) < GRID_DIGITS:
            picks = list(range(min(GRID_DIGITS, len(x_test))))
        self.clean = x_test[picks]
        # Tensors, not arrays: Keras refuses a list that mixes the two (z_mean and labels).
        self.labels = tf.constant(y_test[picks], tf.int32)
        rng = np.random.default_rng(GRID_SEED)
        if not spec.is_vae:
            self.noisy = add_noise(self.clean, train.noise, train.noise_strength, seed=GRID_SEED)
        else:
            self.z = rng.standard_normal((GRID_SAMPLES, spec.latent_dim)).astype(np.float32)
            self.z_labels = tf.constant(np.arange(GRID_SAMPLES) % spec.num_classes, tf.int32)

    def png(self) -> bytes:
        b, spec = self.bundle, self.bundle.spec
        if not spec.is_vae:
            denoised = np.asarray(b.composite(self.noisy, training=False))
            rows = [self.noisy, denoised, self.clean]
        elif spec.is_conditional:
            z_mean = b.encoder([tf.constant(self.clean), self.labels], training=False)[0]
            recon = b.decoder([z_mean, self.labels], training=False)
            samples = b.decoder([tf.constant(self.z), self.z_labels], training=False)
            rows = [self.clean, recon, samples]
        else:
            z_mean = b.encoder(self.clean, training=False)[0]
            rows = [
                self.clean,
                b.decoder(z_mean, training=False),
                b.decoder(self.z, training=False),
            ]
        images = np.concatenate([np.asarray(r, dtype=np.float32) for r in rows])
        return to_png(tile(images, ncols=GRID_DIGITS), scale=2)


# ---------------------------------------------------------------- callbacks
def _floats(logs: dict | None) -> dict[str, float]:
    return {k: float(np.asarray(v)) for k, v in (logs or {}).items()}


class KLWarmup(keras.callbacks.Callback):
    """KL weight = beta * min(1, epoch / warmup_epochs) from each epoch's start (epoch 0-based)."""

    def __init__(self, beta: float, warmup_epochs: int):
        super().__init__()
        self.beta, self.warmup_epochs = float(beta), int(warmup_epochs)

    def on_epoch_begin(self, epoch, logs=None):
        self.model.kl_weight.assign(self.beta * min(1.0, epoch / self.warmup_epochs))


class RunMonitor(keras.callbacks.Callback):
    """Per batch: honour a stop request, write a step line now and then. Per completed epoch:
    validate, write the epoch line and grid, checkpoint, update the status (in that order, so a
    kill never leaves a checkpoint that progress.jsonl does not show)."""

    def __init__(
        self,
        *,
        out: Path,
        status: StatusFile,
        stop: StopRequest,
        val_ds: tf.data.Dataset,
        grid: EpochGrid,
        train: TrainSpec,
        steps_per_epoch: int,
        is_vae: bool,
        echo: Callable[[str], None],
    ):
        super().__init__()
        self.out, self.status, self.stop, self.val_ds, self.grid = out, status, stop, val_ds, grid
        self.train, self.steps_per_epoch = train, steps_per_epoch
        self.is_vae, self.echo = is_vae, echo
        self.epoch = self.steps_done = 0
        self.epoch_complete = False
        self.last_line_at: float | None = None
        self.epoch_started = self.first_end_at = 0.0
        self.first_end_steps = 0
        self.last_rate: float | None = None  # training steps per second in the last epoch
        self.completed = 0  # epochs completed and checkpointed (set to the resume point first)

    # -------------------------------------------------------- helpers
    def _kl_weight(self) -> dict:
        return {"kl_weight": float(self.model.kl_weight.numpy())} if self.is_vae else {}

    def _rate(self, now: float) -> float | None:
        """Steps per second in this epoch, leaving out its first execution (tracing, warm-up);
        early in an epoch, the last epoch's rate."""
        steps, secs = self.steps_done - self.first_end_steps, now - self.first_end_at
        return steps / secs if steps > 0 and secs > 0 else self.last_rate

    def _progress(self, record: dict) -> None:
        runs.append_jsonl(self.out / runs.PROGRESS, record)

    # -------------------------------------------------------- Keras hooks
    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.steps_done, self.epoch_complete = epoch, 0, False
        self.epoch_started = self.first_end_at = time.monotonic()
        self.first_end_steps = 0

    def on_train_batch_end(self, batch, logs=None):
        # With steps_per_execution, `batch` is the last step of the execution just run.
        self.steps_done = min(int(batch) + 1, self.steps_per_epoch)
        # Slow motion, for demos and tests that must catch a run part-way (a tiny run on the
        # bundled sample otherwise finishes in a blink): TrainSpec.extra["step_delay_s"].
        delay = float(self.train.extra.get("step_delay_s", 0) or 0)
        if delay > 0:
            time.sleep(delay)
        now = time.monotonic()
        if self.first_end_steps == 0:
            self.first_end_steps, self.first_end_at = self.steps_done, now
        if self.stop():
            self.model.stop_training = True
        if self.last_line_at is not None and now - self.last_line_at < self.train.log_every_s:
            return
        self.last_line_at = now
        rate = self._rate(now)
        remaining = (self.train.epochs - self.epoch) * self.steps_per_epoch - self.steps_done
        record = {
            "kind": "step",
            "epoch": self.epoch + 1,
            "step": self.steps_done,
            "steps_per_epoch": self.steps_per_epoch,
            "global_step": self.epoch * self.steps_per_epoch + self.steps_done,
            **_floats(logs),
            **self._kl_weight(),
            "samples_per_s": rate * self.train.batch_size if rate else None,
            "eta_s": remaining / rate if rate else None,
            "time": time.time(),
        }
        self._progress(record)
        self.status.update(epoch=self.epoch, step=self.steps_done, phase="training")

    def on_epoch_end(self, epoch, logs=None):
        # fit() calls this even for an epoch a stop cut short; such an epoch is not kept.
        self.epoch_complete = self.steps_done >= self.steps_per_epoch
        if not self.epoch_complete:
            return
        train_s = time.monotonic() - self.epoch_started
        completed = epoch + 1
        train_metrics = _floats(logs)  # before evaluate() resets the metric trackers
        val = self.model.evaluate(self.val_ds, verbose=0, return_dict=True)
        val = {f"val_{k}": float(v) for k, v in val.items()}
        if logs is not None:
            logs.update(val)  # TensorBoard (after us in the list) logs them too
        epoch_s = time.monotonic() - self.epoch_started
        self.last_rate = self.steps_per_epoch / train_s
        record = {
            "kind": "epoch",
            "epoch": completed,
            "step": self.steps_per_epoch,
            "steps_per_epoch": self.steps_per_epoch,
            "global_step": completed * self.steps_per_epoch,
            **train_metrics,
            **val,
            **self._kl_weight(),
            "samples_per_s": self.steps_per_epoch * self.train.batch_size / train_s,
            "epoch_s": epoch_s,
            "eta_s": (self.train.epochs - completed) * epoch_s,
            "time": time.time(),
        }
        self._progress(record)
        png_path = runs.epoch_png_path(self.out, completed)
        png_path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(png_path, self.grid.png())
        save_checkpoint(self.model, self.out / runs.BACKUP_DIR, completed)
        self.completed = completed
        self.status.update(epoch=completed, step=0, phase="training")
        self.echo(_epoch_line(record, self.train.epochs))
        if self.stop():
            self.model.stop_training = True


class EpochSummaries(keras.callbacks.Callback):
    """TensorBoard scalars per completed epoch, as keras.callbacks.TensorBoard(update_freq="epoch")
    writes them (tb/train and tb/validation, tags epoch_<metric>), but without needing the
    tensorboard package, which TensorFlow no longer installs. An epoch a stop cut short is left out."""

    # What TensorBoard's own tf.summary.scalar attaches: the scalars plugin shows these.
    METADATA = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars")
    )

    def __init__(self, log_dir: Path, monitor: RunMonitor):
        super().__init__()
        self.log_dir, self.monitor = Path(log_dir), monitor
        self.writers: dict[str, tf.summary.SummaryWriter] = {}

    def _writer(self, split: str) -> tf.summary.SummaryWriter:
        if split not in self.writers:
            self.writers[split] = tf.summary.create_file_writer(str(self.log_dir / split))
        return self.writers[split]

    def on_epoch_end(self, epoch, logs=None):
        if not self.monitor.epoch_complete:
            return
        scalars = dict(logs or {})
        if self.monitor.is_vae:
            scalars["kl_weight"] = self.model.kl_weight.numpy()
        for key, value in scalars.items():
            split, tag = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
            with self._writer(split).as_default():
                value = tf.constant(float(np.asarray(value)), tf.float32)
                tf.summary.write(f"epoch_{tag}", value, step=epoch, metadata=self.METADATA)
        for writer in self.writers.values():
            writer.flush()

    def on_train_end(self, logs=None):
        for writer in self.writers.values():
            writer.close()
        self.writers.clear()


def _epoch_line(record: dict, epochs: int) -> str:
    keys = ["loss", "reconstruction_loss", "kl_loss", "val_loss"]
    parts = [f"{k} {record[k]:.2f}" for k in keys if isinstance(record.get(k), float)]
    return (
        f"epoch {record['epoch']}/{epochs}  " + "  ".join(parts) + f"  ({record['epoch_s']:.1f} s)"
    )


# ---------------------------------------------------------------- devices and strategies
def configure_logical_cpus() -> None:
    """Split the CPU into $VAE_LAB_LOGICAL_CPUS devices; must run before TensorFlow starts."""
    count = os.environ.get(LOGICAL_CPUS_ENV)
    if count and int(count) > 1:
        cpus = tf.config.list_physical_devices("CPU")
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration()] * int(count)
        )


def make_strategy(name: str) -> tf.distribute.Strategy:
    """ "default": one device (a GPU if TensorFlow sees one); "mirrored": every local GPU (or every
    logical CPU when there is no GPU); "multiworker": the cluster in TF_CONFIG."""
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus or tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def describe_devices(strategy: tf.distribute.Strategy, name: str) -> dict:
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


def worker_role(strategy_name: str) -> tuple[bool, str]:
    """(is this the chief?, a name for this worker). Only the chief writes the run folder."""
    if strategy_name != "multiworker":
        return True, ""
    tf_config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task, cluster = tf_config.get("task") or {}, tf_config.get("cluster") or {}
    kind, index = task.get("type"), int(task.get("index", 0))
    if not kind:
        return True, ""
    chief = kind == "chief" or (kind == "worker" and index == 0 and "chief" not in cluster)
    return chief, f"{kind}_{index}"


# ---------------------------------------------------------------- compile settings
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of native bfloat16 math


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

    "auto" picks mixed_bfloat16 only on a CPU-only machine whose CPU has native bfloat16 dot
    products (AVX512_BF16, AMX-BF16): the GEMMs and convolutions (oneDNN, or XLA for the dense
    kinds) then run at up to twice the float32 rate, while the variables (and Adam's state), the
    losses and the KL stay float32, so the ELBO/PSNR reached is the same (benchmarks/RESULTS.md).
    Without those instructions bfloat16 is emulated and slower than float32; on a GPU it has not
    been measured here (and float16 would be the usual choice there): float32.
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

    One function so that the benchmark (benchmarks/training.py) measures exactly what training
    does. The reasons, measured on a 2-core CPU with AVX512_BF16 (benchmarks/RESULTS.md):
    - precision: see resolve_precision.
    - XLA (jit_compile): off under mixed_bfloat16 on a CPU -- XLA's CPU GEMMs do not use the
      bfloat16 instructions (the MLP's 128x784x512 product: ~45 GFLOP/s under XLA against ~170
      with TensorFlow's oneDNN kernels). In float32, on for the dense kinds on one CPU device (it
      fuses the small element-wise kernels around the GEMMs); off for the conv kinds on a CPU
      (XLA's convolutions are ~2x slower than oneDNN's). On a GPU Keras's "auto".
    - steps_per_execution: 1 with XLA (as fast, and a stop lands at once); without XLA 16 for the
      dense kinds (halves an epoch's overhead), 1 for convs on a CPU (16 was slower there).
    - static batches (drop_remainder) on big enough sets (STATIC_BATCHES_MIN_STEPS): one traced
      shape for the whole epoch.
    """
    gpu = bool(devices.get("gpus"))
    precision = resolve_precision(train_spec, devices)
    dense = model_spec.kind in ("mlp_vae", "cvae")
    if gpu:
        jit: bool | str = "auto"
    elif precision == "mixed_bfloat16":
        jit = False
    else:
        # Under tf.distribute on logical CPUs an XLA step cannot reach the other replicas'
        # variables ("Trying to access resource ... located in device CPU:1"): one device only.
        jit = dense and train_spec.strategy == "default"
    if jit is True or (model_spec.kind.startswith("conv") and not gpu):
        per_execution = 1 if jit is True else CONV_CPU_STEPS_PER_EXECUTION
    else:
        per_execution = STEPS_PER_EXECUTION
    per_execution = int(train_spec.extra.get("steps_per_execution", per_execution))
    if train_spec.strategy != "default":
        # Keras 3 cannot run several steps per execution under tf.distribute ("You must feed a
        # value for placeholder tensor", keras-team/keras#19246), so one step per call there.
        per_execution = 1
    full_steps = (n_train or 0) // train_spec.batch_size
    return {
        "precision": precision,
        "jit_compile": jit,
        "steps_per_execution": max(1, per_execution),
        "drop_remainder": full_steps >= STATIC_BATCHES_MIN_STEPS,
    }


def make_optimizer(train_spec: TrainSpec, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """Adam at the spec's rate, constant or cosine-decayed to 0 over all the run's steps. The
    schedule reads optimizer.iterations, which checkpoints keep, so a resumed run continues it."""
    lr: float | keras.optimizers.schedules.LearningRateSchedule = float(train_spec.learning_rate)
    if train_spec.lr_schedule == "cosine":
        total = max(1, steps_per_epoch * train_spec.epochs)
        lr = keras.optimizers.schedules.CosineDecay(lr, decay_steps=total, alpha=0.0)
    return keras.optimizers.Adam(lr)


@contextlib.contextmanager
def dtype_policy_restored() -> Iterator[None]:
    """Whatever policy the body sets, the caller's comes back (Keras keeps it per thread)."""
    previous = keras.config.dtype_policy()
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def float32_bundle(bundle: ModelBundle) -> ModelBundle:
    """A float32 copy of a bundle trained under a mixed policy (the same one when it is float32).

    The pages and the store feed float32 numpy and expect float32 out; a saved mixed_bfloat16 layer
    policy would hand back bfloat16. The trained variables are float32 masters already."""
    layers_ = bundle.composite._flatten_layers(include_self=True, recursive=True)
    if all(layer.dtype_policy.name == "float32" for layer in layers_):
        return bundle
    with dtype_policy_restored():
        keras.config.set_dtype_policy("float32")
        fresh = build_model(bundle.spec)
    fresh.composite.set_weights([np.asarray(w) for w in bundle.composite.get_weights()])
    fresh.meta = dict(bundle.meta)
    return fresh


# ---------------------------------------------------------------- the run
def _sentence(err: BaseException) -> str:
    if isinstance(err, UserError):
        return str(err)
    detail = f"{type(err).__name__}: {err}".strip()
    if len(detail) > 300:
        detail = detail[:297] + "..."
    return f"Training failed unexpectedly ({detail}). The run's train.log has the details."


def _load_or_write_config(
    run_dir: Path,
    model_spec: ModelSpec | None,
    train_spec: TrainSpec | None,
    save_as: str | None,
    save: bool,
) -> dict:
    """The stored config wins (that is what makes "the same command again" a resume)."""
    if (run_dir / runs.CONFIG).is_file():
        return runs.read_config(run_dir)
    if model_spec is None:
        raise RunError(
            f"The run folder {run_dir} has no settings yet; say which model to train (--model)."
        )
    return runs.write_config(
        run_dir, model_spec, train_spec or TrainSpec(), save_as=save_as, save=save
    )


def _default_model_name(kind: str, run_id: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in run_id)
    return f"{kind}_{safe}"[:64]


def _save_to_store(
    store: Store, bundle: ModelBundle, wanted: str | None, default: str, meta: dict
) -> tuple[str, str | None]:
    """Save under `wanted` (or `default`); returns (name used, a note if it had to differ)."""
    name = wanted or default
    try:
        existing = store.get(name)
    except StoreError:
        existing = None
    # This run saved it before (a kill after saving, before "completed"): replace it.
    ours = (
        existing is not None
        and not existing.shipped
        and existing.meta.get("run_id") == meta["run_id"]
    )
    try:
        store.save(name, bundle, meta, overwrite=ours)
        return name, None
    except StoreError as err:
        if name == default:
            raise
        note = f"The model could not be saved as '{name}' ({err}), so it was saved as '{default}'."
    store.save(default, bundle, meta, overwrite=True)
    return default, note


def run_training(
    run_dir: Path,
    model_spec: ModelSpec | None = None,
    train_spec: TrainSpec | None = None,
    *,
    save_as: str | None = None,
    store: Store | None = None,
    stop_event: threading.Event | None = None,
    save: bool = True,
) -> dict:
    """Train (or resume) the run in `run_dir` and return its final status ("completed" or "stopped").

    A folder that already has config.json is resumed with its own settings; the arguments are then
    ignored. On an error the status says "failed" with a sentence, and the error is raised.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    config = _load_or_write_config(run_dir, model_spec, train_spec, save_as, save)
    model_spec, train_spec = runs.specs_from_config(config)
    chief, role = worker_role(train_spec.strategy)
    # Other workers keep their own files; the run folder shows the chief's view.
    out = run_dir if chief else run_dir / "workers" / role
    out.mkdir(parents=True, exist_ok=True)

    previous = runs.read_status(out)
    if previous.get("state") == "completed":
        print(f"Run {config['run_id']} has already completed.", flush=True)
        return previous

    status = StatusFile(
        out / runs.STATUS,
        state="running",
        phase="loading data",
        pid=os.getpid(),
        host=socket.gethostname(),
        run_id=config["run_id"],
        started=time.time(),
        finished=None,
        epoch=_checkpoint_epoch(run_dir / runs.BACKUP_DIR),
        epochs=train_spec.epochs,
        step=0,
        error=None,
        model_name=None,
        test_metrics=None,
        attempt=int(previous.get("attempt") or 0) + 1,
    )
    status.update()
    stop = StopRequest(run_dir / runs.STOP_FILE, stop_event)
    with stop.signals(), dtype_policy_restored():
        try:
            return _train(run_dir, out, config, model_spec, train_spec, status, stop, store, chief)
        except KeyboardInterrupt:
            status.update(state="stopped", phase=None, finished=time.time())
            raise
        except BaseException as err:
            status.update(state="failed", phase=None, finished=time.time(), error=_sentence(err))
            raise


def _train(
    run_dir: Path,
    out: Path,
    config: dict,
    model_spec: ModelSpec,
    train_spec: TrainSpec,
    status: StatusFile,
    stop: StopRequest,
    store: Store | None,
    chief: bool,
) -> dict:
    echo = lambda line: print(line, flush=True)  # noqa: E731 -- the CLI's stdout and train.log
    strategy = make_strategy(train_spec.strategy)  # first: MultiWorkerMirroredStrategy insists
    keras.utils.set_random_seed(train_spec.seed)
    devices = describe_devices(strategy, train_spec.strategy)
    status.update(devices=devices)

    # ---- data: train on x_train (capped), validate on the test split (capped), test on all of it
    data = load_dataset(train_spec.dataset)
    cap = train_spec.max_train_samples
    if cap is not None and cap < 1:
        raise RunError("The cap on training samples must be at least 1 (or no cap at all).")
    x_train, y_train = to_float(data.x_train[:cap]), np.asarray(data.y_train[:cap])
    x_test, y_test = to_float(data.x_test), np.asarray(data.y_test)
    labels = model_spec.is_conditional
    noise = (train_spec.noise, train_spec.noise_strength) if not model_spec.is_vae else None
    common = dict(batch_size=train_spec.batch_size, noise=noise)
    x_val, y_val = x_test[:MAX_VALIDATION], y_test[:MAX_VALIDATION]
    val_ds = make_tf_dataset(
        x_val, y_val if labels else None, shuffle=False, seed=train_spec.seed + 1, **common
    )
    options = compile_options(model_spec, train_spec, devices, n_train=len(x_train))
    drop = options["drop_remainder"]
    train_ds = make_tf_dataset(
        x_train,
        y_train if labels else None,
        shuffle=True,
        seed=train_spec.seed,
        drop_remainder=drop,
        **common,
    )
    if drop:
        steps_per_epoch = len(x_train) // train_spec.batch_size
    else:
        steps_per_epoch = math.ceil(len(x_train) / train_spec.batch_size)
    per_execution = min(options["steps_per_execution"], steps_per_epoch)
    status.update(compile={**options, "steps_per_execution": per_execution})

    # ---- model: built, compiled and its optimizer created inside the strategy's scope, under
    # the precision's dtype policy (the caller's policy comes back in run_training)
    status.update(phase="building the model", steps_per_epoch=steps_per_epoch)
    keras.config.set_dtype_policy(options["precision"])
    with strategy.scope():
        bundle = build_model(model_spec)
        trainer = Trainer(bundle)
        trainer.compile(
            optimizer=make_optimizer(train_spec, steps_per_epoch),
            jit_compile=options["jit_compile"],
            steps_per_execution=per_execution,
        )
        first = x_val[:1]
        trainer([first, y_val[:1].astype(np.int32)] if labels else first)  # create the variables
        trainer.optimizer.build(trainer.trainable_variables)
        done = restore_checkpoint(trainer, run_dir / runs.BACKUP_DIR)

    # ---- files: forget whatever came after the checkpoint (it will be trained again)
    runs.cut_progress(out, done)
    for epoch, png in runs.epoch_pngs(out).items():
        if epoch > done:
            png.unlink(missing_ok=True)
    runs.append_jsonl(
        out / runs.PROGRESS,
        {"kind": "start", "epoch": done, "epochs": train_spec.epochs, "resumed": done > 0,
         "pid": os.getpid(), "time": time.time()},
    )  # fmt: skip
    status.update(epoch=done, phase="training")
    where = ", ".join(devices["replica_devices"])
    resumed = f", resuming after epoch {done}" if done else ""
    echo(
        f"Run {config['run_id']}: {model_spec.kind} on {train_spec.dataset}, "
        f"{train_spec.epochs} epochs on {where}{resumed}."
    )

    # ---- fit
    monitor = RunMonitor(
        out=out,
        status=status,
        stop=stop,
        val_ds=val_ds,
        grid=EpochGrid(bundle, x_test, y_test, train_spec),
        train=train_spec,
        steps_per_epoch=steps_per_epoch,
        is_vae=model_spec.is_vae,
        echo=echo,
    )
    callbacks: list[keras.callbacks.Callback] = []
    if model_spec.is_vae and train_spec.kl_warmup_epochs > 0:
        callbacks.append(KLWarmup(model_spec.beta, train_spec.kl_warmup_epochs))
    callbacks += [monitor, EpochSummaries(out / runs.TB_DIR, monitor)]
    monitor.completed = done
    if done < train_spec.epochs and not stop():
        trainer.fit(
            train_ds,
            epochs=train_spec.epochs,
            initial_epoch=done,
            callbacks=callbacks,
            verbose=0,
            shuffle=False,  # the dataset shuffles itself, seeded
        )
    done = monitor.completed
    if done < train_spec.epochs:
        echo(f"Stopped after epoch {done} of {train_spec.epochs}; resume to continue.")
        return status.update(state="stopped", phase=None, epoch=done, step=0, finished=time.time())

    # ---- completed: test metrics on the whole test split, then into the store, in float32
    status.update(phase="evaluating", epoch=done, step=0)
    keras.config.set_dtype_policy("float32")
    bundle = float32_bundle(bundle)
    test_metrics = evaluate(
        bundle,
        x_test,
        y_test if labels else None,
        noise=noise,
        batch_size=500,
        seed=train_spec.seed,
    )
    test_metrics = {k: float(v) for k, v in test_metrics.items()}
    model_name, note = None, None
    if chief and config.get("save", True):
        status.update(phase="saving", test_metrics=test_metrics)
        meta = {
            "dataset": train_spec.dataset,
            "epochs": done,
            "test_metrics": test_metrics,
            "run_id": config["run_id"],
            "command": config.get("command"),
            "seed": train_spec.seed,
            "model": model_spec.to_dict(),
            "train": train_spec.to_dict(),
            "trained_with": {**options, "steps_per_execution": per_execution},
            "description": f"Trained in run {config['run_id']}.",
        }
        default = _default_model_name(model_spec.kind, config["run_id"])
        model_name, note = _save_to_store(
            store or default_store(), bundle, config.get("save_as"), default, meta
        )
    headline = ", ".join(f"{k} {v:.3f}" for k, v in test_metrics.items())
    echo(f"Completed. Test: {headline}." + (f" Saved as '{model_name}'." if model_name else ""))
    if note:
        echo(note)
    return status.update(
        state="completed",
        phase=None,
        finished=time.time(),
        model_name=model_name,
        test_metrics=test_metrics,
        note=note,
    )


# ---------------------------------------------------------------- the command line
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m vae_core.train",
        description="Train (or resume) one VAE Lab run. Run the same command again to resume.",
    )
    p.add_argument("--run-dir", required=True, type=Path, help="the run folder (created if new)")
    p.add_argument("--model", choices=list(PRESETS), help="model kind (default mlp_vae)")
    p.add_argument("--latent-dim", type=int)
    p.add_argument("--hidden", type=int)
    p.add_argument("--beta", type=float)
    p.add_argument("--reconstruction", choices=["bce", "mse"])
    p.add_argument("--always-sample", action="store_true", default=None)
    p.add_argument("--dataset", choices=["mnist", "fashion_mnist", "sample"])
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float, dest="learning_rate")
    p.add_argument("--lr-schedule", choices=list(LR_SCHEDULES), help="constant or cosine decay")
    p.add_argument(
        "--precision",
        choices=list(PRECISIONS),
        help="compute dtype while training (auto: bfloat16 on CPUs with native bfloat16)",
    )
    p.add_argument("--kl-warmup", type=int, dest="kl_warmup_epochs")
    p.add_argument("--noise", choices=list(TRAIN_NOISE_KINDS), help="mixed: every kind, and none")
    p.add_argument("--noise-strength", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--max-train-samples", type=int)
    p.add_argument("--strategy", choices=["default", "mirrored", "multiworker"])
    p.add_argument("--log-every-s", type=float, help=argparse.SUPPRESS)
    p.add_argument("--save-as", help="store name for the trained model")
    p.add_argument("--no-save", action="store_true", help="do not put the model in the store")
    return p


MODEL_ARGS = ("latent_dim", "hidden", "beta", "reconstruction", "always_sample")
TRAIN_ARGS = (
    "dataset", "epochs", "batch_size", "learning_rate", "lr_schedule", "precision",
    "kl_warmup_epochs", "noise",
    "noise_strength", "seed", "max_train_samples", "strategy", "log_every_s",
)  # fmt: skip


def specs_from_args(args: argparse.Namespace) -> tuple[ModelSpec, TrainSpec]:
    """The kind's preset, overridden by the flags given."""
    base_model, base_train = PRESETS[args.model or "mlp_vae"]
    model = {
        **base_model.to_dict(),
        **{k: getattr(args, k) for k in MODEL_ARGS if getattr(args, k) is not None},
    }
    train = {
        **base_train.to_dict(),
        **{k: getattr(args, k) for k in TRAIN_ARGS if getattr(args, k) is not None},
    }
    return ModelSpec.from_dict(model), TrainSpec.from_dict(train)


def main(argv: list[str] | None = None) -> int:
    configure_logical_cpus()  # before anything starts TensorFlow's runtime
    args = _parser().parse_args(argv)
    run_dir: Path = args.run_dir.expanduser()
    try:
        if (run_dir / runs.CONFIG).is_file():
            given = [
                k
                for k in ("model", *MODEL_ARGS, *TRAIN_ARGS, "save_as")
                if getattr(args, k) is not None
            ]
            if given:
                print(
                    f"{run_dir} already has settings (config.json); resuming with those, so "
                    f"these flags are ignored: {', '.join(given)}.",
                    file=sys.stderr,
                )
            model_spec = train_spec = None
        else:
            model_spec, train_spec = specs_from_args(args)
        # A new process starts fresh: a STOP left by an earlier stop is not meant for it.
        (run_dir / runs.STOP_FILE).unlink(missing_ok=True)
        status = run_training(
            run_dir, model_spec, train_spec, save_as=args.save_as, save=not args.no_save
        )
    except UserError as err:
        print(f"Training failed: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
    except Exception as err:
        traceback.print_exc()
        print(_sentence(err), file=sys.stderr)
        return 1
    return 0 if status.get("state") in ("completed", "stopped") else 1


if __name__ == "__main__":
    sys.exit(main())
