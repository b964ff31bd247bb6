"""One training run: data -> model -> fit, with checkpoints, progress lines and pictures -> the store.

`python -m vae_core.train --run-dir DIR ...` (what the app's child process runs) and `run_training`
are one code path. What the run folder holds is vae_core.rundir's to say; how the machine is used
(devices, precision, XLA) is vae_core.machine's.

Resume. Keras's BackupAndRestore is not used: it writes its one checkpoint in place (a kill during the
write loses it), and when a stop cuts an epoch short, fit still calls on_epoch_end, so it would
record the partial epoch as done. Here each completed epoch is saved to a temp file and renamed, the
epoch number lives in the file name. A Stop part-way through an epoch saves a checkpoint at that
step too, and a resume carries on from it; a kill loses only the steps since the last checkpoint.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import os
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

from vae_core import kinds, machine, rundir
from vae_core.data import load_dataset, make_tf_dataset, to_float
from vae_core.errors import RunError, StoreError, UserError
from vae_core.metrics import evaluate
from vae_core.models import ModelBundle, Trainer, with_label
from vae_core.rundir import StatusFile
from vae_core.specs import FLAGS, ModelSpec, TrainSpec, preset
from vae_core.store import Store, default_store

MAX_VALIDATION = 10_000  # images validated after each epoch (all of MNIST's test split)


# ---------------------------------------------------------------- the run
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
    model_spec, train_spec = rundir.specs_from_config(config)
    chief, role = machine.worker_role(train_spec.strategy)
    # Other workers keep their own files; the run folder shows the chief's view.
    out = run_dir if chief else run_dir / "workers" / role
    out.mkdir(parents=True, exist_ok=True)

    previous = rundir.read_status_file(out)
    if previous.get("state") == "completed":
        print(f"Run {config['run_id']} has already completed.", flush=True)
        return previous

    status = StatusFile(
        out / rundir.STATUS,
        state="running",
        phase="loading data",
        pid=os.getpid(),
        host=socket.gethostname(),
        run_id=config["run_id"],
        started=time.time(),
        finished=None,
        epoch=rundir.checkpoint_position(run_dir)[0],
        epochs=train_spec.epochs,
        step=rundir.checkpoint_position(run_dir)[1],
        error=None,
        model_name=None,
        test_metrics=None,
        attempt=int(previous.get("attempt") or 0) + 1,
    )
    status.update()
    stop = StopRequest(run_dir / rundir.STOP_FILE, stop_event)
    run = Run(run_dir, out, config, model_spec, train_spec, status, stop, store, chief)
    with stop.signals(), machine.dtype_policy_restored():
        try:
            return _train(run)
        except KeyboardInterrupt:
            status.update(state="stopped", phase=None, finished=time.time())
            raise
        except BaseException as err:
            status.update(state="failed", phase=None, finished=time.time(), error=_sentence(err))
            raise


@dataclass
class Run:
    """What every step of a run needs to know."""

    run_dir: Path
    out: Path  # where this process writes: the run folder, or a non-chief worker's own folder
    config: dict
    model_spec: ModelSpec
    train_spec: TrainSpec
    status: StatusFile
    stop: StopRequest
    store: Store | None
    chief: bool

    @staticmethod
    def echo(line: str) -> None:
        print(line, flush=True)  # the CLI's stdout, which is the run's train.log


def _train(run: Run) -> dict:
    """The story of a run, each step below in this order."""
    strategy = machine.make_strategy(run.train_spec.strategy)  # first: multi-worker insists
    keras.utils.set_random_seed(run.train_spec.seed)
    devices = machine.describe_devices(strategy, run.train_spec.strategy)
    run.status.update(devices=devices)

    data = _load_data(run)
    options = machine.compile_options(run.model_spec, run.train_spec, devices, len(data.x_train))
    batches = _batches(run, data, options["drop_remainder"])
    trainer, position = _build_and_restore(run, strategy, options, batches, data)
    rundir.forget_after(run.out, *position)  # whatever came after the checkpoint is done again
    done, step = _fit(run, trainer, batches, data, position)
    if done < run.train_spec.epochs:
        return _stopped(run, trainer, batches, done, step)
    return _finish(run, trainer, data, options, done)


# ---------------------------------------------------------------- the steps
@dataclass
class RunData:
    """Train on x_train (capped), validate after each epoch on the test split (capped), test on all
    of it."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    labels: bool  # the model takes the labels too
    noise: tuple[str, float] | None  # the DAE's input noise

    @property
    def x_val(self) -> np.ndarray:
        return self.x_test[:MAX_VALIDATION]

    @property
    def y_val(self) -> np.ndarray:
        return self.y_test[:MAX_VALIDATION]


def _load_data(run: Run) -> RunData:
    spec, train = run.model_spec, run.train_spec
    data = load_dataset(train.dataset)
    cap = train.max_train_samples
    if cap is not None and cap < 1:
        raise RunError("The cap on training samples must be at least 1 (or no cap at all).")
    return RunData(
        to_float(data.x_train[:cap]),
        np.asarray(data.y_train[:cap]),
        to_float(data.x_test),
        np.asarray(data.y_test),
        labels=spec.is_conditional,
        noise=None if spec.is_vae else (train.noise, train.noise_strength),
    )


@dataclass
class Batches:
    train: tf.data.Dataset
    val: tf.data.Dataset
    steps_per_epoch: int


def _batches(run: Run, data: RunData, drop_remainder: bool) -> Batches:
    train = run.train_spec
    common = dict(batch_size=train.batch_size, noise=data.noise)
    val = make_tf_dataset(
        data.x_val,
        data.y_val if data.labels else None,
        shuffle=False,
        seed=train.seed + 1,
        **common,
    )
    shuffled = make_tf_dataset(
        data.x_train,
        data.y_train if data.labels else None,
        shuffle=True,
        seed=train.seed,
        drop_remainder=drop_remainder,
        **common,
    )
    n = len(data.x_train)
    steps = n // train.batch_size if drop_remainder else math.ceil(n / train.batch_size)
    return Batches(shuffled, val, steps)


def _build_and_restore(
    run: Run, strategy: tf.distribute.Strategy, options: dict, batches: Batches, data: RunData
) -> tuple[Trainer, int]:
    """The model, compiled with its optimizer inside the strategy's scope under the precision's
    dtype policy (the caller's comes back in run_training), and the newest checkpoint loaded."""
    per_execution = min(options["steps_per_execution"], batches.steps_per_epoch)
    options["steps_per_execution"] = per_execution
    run.status.update(
        phase="building the model", steps_per_epoch=batches.steps_per_epoch, compile=options
    )
    keras.config.set_dtype_policy(options["precision"])
    with strategy.scope():
        trainer = Trainer(kinds.build(run.model_spec))
        trainer.compile(
            optimizer=machine.make_optimizer(run.train_spec, batches.steps_per_epoch),
            jit_compile=options["jit_compile"],
            steps_per_execution=per_execution,
        )
        first = data.x_val[:1]
        trainer(with_label(run.model_spec, first, data.y_val[:1].astype(np.int32)))  # variables
        trainer.optimizer.build(trainer.trainable_variables)
        position = restore_checkpoint(trainer, run.run_dir)
    return trainer, position


def _fit(
    run: Run, trainer: Trainer, batches: Batches, data: RunData, position: rundir.Position
) -> rundir.Position:
    """Train on from the checkpoint's position; returns where it got to (short of the last epoch:
    stopped, `step` steps into the next epoch)."""
    spec, train = run.model_spec, run.train_spec
    done, step = position
    start = {"kind": "start", "epoch": done, "step": step, "epochs": train.epochs,
             "resumed": done > 0 or step > 0, "pid": os.getpid(), "time": time.time()}  # fmt: skip
    rundir.append_jsonl(run.out / rundir.PROGRESS, start)
    run.status.update(epoch=done, step=step, phase="training")
    where = ", ".join(run.status.data["devices"]["replica_devices"])
    resumed = f", resuming after epoch {done}" if done else ""
    if step:
        resumed += f" and {step} steps of epoch {done + 1}"
    run.echo(
        f"Run {run.config['run_id']}: {spec.kind} on {train.dataset}, "
        f"{train.epochs} epochs on {where}{resumed}."
    )
    preview = kinds.resolve(spec.kind_info.preview)(trainer.bundle, data.x_test,
                                                     data.y_test, train)  # fmt: skip
    monitor = RunMonitor(run, batches, preview)
    monitor.completed, monitor.stopped_at = done, step
    callbacks: list[keras.callbacks.Callback] = []
    if spec.is_vae and train.kl_warmup_epochs > 0:
        callbacks.append(KLWarmup(spec.beta, train.kl_warmup_epochs))
    callbacks += [monitor, EpochSummaries(run.out / rundir.TB_DIR, monitor)]
    fit = dict(callbacks=callbacks, verbose=0, shuffle=False)  # the dataset shuffles itself
    if step and done < train.epochs and not run.stop():
        # The rest of the epoch a Stop cut short, on a fresh shuffle of its data.
        monitor.offset = step
        trainer.fit(batches.train.take(batches.steps_per_epoch - step), epochs=done + 1,
                    initial_epoch=done, **fit)  # fmt: skip
        monitor.offset = 0
    if monitor.completed == done + bool(step) and monitor.completed < train.epochs:
        if not run.stop():
            trainer.fit(batches.train, epochs=train.epochs, initial_epoch=monitor.completed, **fit)
    return monitor.completed, monitor.stopped_at


def _stopped(run: Run, trainer: Trainer, batches: Batches, done: int, step: int) -> dict:
    """A Stop: keep the steps of the epoch it cut short in a checkpoint of their own."""
    epochs, per = run.train_spec.epochs, batches.steps_per_epoch
    if step:
        save_checkpoint(trainer, run.out, (done, step))
        run.echo(
            f"Stopped at step {step} of {per} in epoch {done + 1} of {epochs}; resume to go on."
        )
    else:
        run.echo(f"Stopped after epoch {done} of {epochs}; resume to continue.")
    return run.status.update(
        state="stopped", phase=None, epoch=done, step=step, finished=time.time()
    )


def _finish(run: Run, trainer: Trainer, data: RunData, options: dict, done: int) -> dict:
    """Test metrics on the whole test split, then into the store, in float32."""
    spec, train = run.model_spec, run.train_spec
    run.status.update(phase="evaluating", epoch=done, step=0)
    keras.config.set_dtype_policy("float32")
    bundle = machine.float32_bundle(trainer.bundle)
    test_metrics = evaluate(
        bundle,
        data.x_test,
        data.y_test if data.labels else None,
        noise=data.noise,
        batch_size=500,
        seed=train.seed,
    )
    test_metrics = {k: float(v) for k, v in test_metrics.items()}
    model_name, note = None, None
    if run.chief and run.config.get("save", True):
        run.status.update(phase="saving", test_metrics=test_metrics)
        meta = {
            "dataset": train.dataset,
            "epochs": done,
            "test_metrics": test_metrics,
            "run_id": run.config["run_id"],
            "command": run.config.get("command"),
            "seed": train.seed,
            "train": train.to_dict(),
            "trained_with": options,
            "description": f"Trained in run {run.config['run_id']}.",
        }
        default = _default_model_name(spec.kind, run.config["run_id"])
        model_name, note = _save_to_store(
            run.store or default_store(), bundle, run.config.get("save_as"), default, meta
        )
    headline = ", ".join(f"{k} {v:.3f}" for k, v in test_metrics.items())
    run.echo(f"Completed. Test: {headline}." + (f" Saved as '{model_name}'." if model_name else ""))
    if note:
        run.echo(note)
    return run.status.update(
        state="completed",
        phase=None,
        finished=time.time(),
        model_name=model_name,
        test_metrics=test_metrics,
        note=note,
    )


# ---------------------------------------------------------------- configs, names and the store
def _load_or_write_config(
    run_dir: Path,
    model_spec: ModelSpec | None,
    train_spec: TrainSpec | None,
    save_as: str | None,
    save: bool,
) -> dict:
    """The stored config wins (that is what makes "the same command again" a resume)."""
    if (run_dir / rundir.CONFIG).is_file():
        return rundir.read_config(run_dir)
    if model_spec is None:
        raise RunError(
            f"The run folder {run_dir} has no settings yet; say which model to train (--model)."
        )
    return rundir.write_config(
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


def _sentence(err: BaseException) -> str:
    if isinstance(err, UserError):
        return str(err)
    detail = f"{type(err).__name__}: {err}".strip()
    if len(detail) > 300:
        detail = detail[:297] + "..."
    return f"Training failed unexpectedly ({detail}). The run's train.log has the details."


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


# ---------------------------------------------------------------- checkpoints
def save_checkpoint(trainer: Trainer, run_dir: Path, position: rundir.Position) -> Path:
    """Weights and optimizer state at `position` (completed epochs, steps into the next), written
    to a temp file and renamed."""
    written = rundir.checkpoint_temp(run_dir, position)
    trainer.save_weights(written, overwrite=True)
    return rundir.commit_checkpoint(run_dir, written, position)


def restore_checkpoint(trainer: Trainer, run_dir: Path) -> rundir.Position:
    """Load the newest readable checkpoint; returns its position ((0, 0): none, from scratch)."""
    found = rundir.checkpoints(run_dir)
    if not found:
        return (0, 0)
    fresh = [v.numpy() for v in trainer.variables + trainer.optimizer.variables]
    for position, path in found:
        try:
            trainer.load_weights(path)
            return position
        except Exception as err:  # h5py/Keras raise many types for a damaged file
            print(
                f"Checkpoint {path.name} cannot be read ({err}); trying an older one.",
                file=sys.stderr,
            )
    # A failed load may have half-assigned the variables: put the fresh ones back.
    for var, value in zip(trainer.variables + trainer.optimizer.variables, fresh, strict=True):
        var.assign(value)
    return (0, 0)


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
        self, run: Run, batches: Batches, preview: Callable[[], tuple[bytes | None, dict]]
    ):
        super().__init__()
        self.run, self.out, self.status, self.stop = run, run.out, run.status, run.stop
        self.val_ds, self.preview, self.echo = batches.val, preview, run.echo
        self.train, self.steps_per_epoch = run.train_spec, batches.steps_per_epoch
        self.is_vae = run.model_spec.is_vae
        self.epoch = self.steps_done = 0
        self.epoch_complete = False
        self.last_line_at: float | None = None
        self.epoch_started = self.first_end_at = 0.0
        self.first_end_steps = 0
        self.last_rate: float | None = None  # training steps per second in the last epoch
        self.completed = 0  # epochs completed and checkpointed (set to the resume point first)
        self.offset = 0  # steps of this epoch done before this fit (resuming a Stop mid-epoch)
        self.stopped_at = 0  # steps into the epoch after `completed` where a Stop ended training

    # -------------------------------------------------------- helpers
    def _kl_weight(self) -> dict:
        return {"kl_weight": float(self.model.kl_weight.numpy())} if self.is_vae else {}

    def _rate(self, now: float) -> float | None:
        """Steps per second in this epoch, leaving out its first execution (tracing, warm-up);
        early in an epoch, the last epoch's rate."""
        steps, secs = self.steps_done - self.first_end_steps, now - self.first_end_at
        return steps / secs if steps > 0 and secs > 0 else self.last_rate

    def _progress(self, record: dict) -> None:
        rundir.append_jsonl(self.out / rundir.PROGRESS, record)

    # -------------------------------------------------------- Keras hooks
    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.steps_done, self.epoch_complete = epoch, self.offset, False
        self.epoch_started = self.first_end_at = time.monotonic()
        self.first_end_steps = 0

    def on_train_batch_end(self, batch, logs=None):
        # With steps_per_execution, `batch` is the last step of the execution just run.
        self.steps_done = min(self.offset + int(batch) + 1, self.steps_per_epoch)
        if self.train.step_delay_s > 0:
            time.sleep(self.train.step_delay_s)
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
            self.stopped_at = self.steps_done
            return
        self.stopped_at = 0
        trained = self.steps_per_epoch - self.offset  # this process's steps of the epoch
        train_s = time.monotonic() - self.epoch_started
        completed = epoch + 1
        train_metrics = _floats(logs)  # before evaluate() resets the metric trackers
        val = self.model.evaluate(self.val_ds, verbose=0, return_dict=True)
        val = {f"val_{k}": float(v) for k, v in val.items()}
        if logs is not None:
            logs.update(val)  # TensorBoard (after us in the list) logs them too
        epoch_s = time.monotonic() - self.epoch_started
        self.last_rate = trained / train_s
        record = {
            "kind": "epoch",
            "epoch": completed,
            "step": self.steps_per_epoch,
            "steps_per_epoch": self.steps_per_epoch,
            "global_step": completed * self.steps_per_epoch,
            **train_metrics,
            **val,
            **self._kl_weight(),
            "samples_per_s": trained * self.train.batch_size / train_s,
            "epoch_s": epoch_s,
            "eta_s": (self.train.epochs - completed) * epoch_s,
            "time": time.time(),
        }
        png, numbers = self.preview()
        record.update(numbers)
        self._progress(record)
        if png is not None:
            rundir.write_epoch_png(self.out, completed, png)
        save_checkpoint(self.model, self.out, (completed, 0))
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


# ---------------------------------------------------------------- the command line
def _arg_type(spec_cls: type, field_name: str) -> type:
    """int, float or str from the dataclass field's annotation (bools are flags)."""
    annotation = str(next(f.type for f in dataclasses.fields(spec_cls) if f.name == field_name))
    return next((t for t in (int, float) if annotation.startswith(t.__name__)), str)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m vae_core.train",
        description="Train (or resume) one VAE Lab run. Run the same command again to resume.",
    )
    p.add_argument("--run-dir", required=True, type=Path, help="the run folder (created if new)")
    p.add_argument(
        "--model", choices=kinds.names(trainable=True), help="model kind (default mlp_vae)"
    )
    classes = {"model": ModelSpec, "train": TrainSpec}
    for f in FLAGS:
        help_ = f.help if f.help is not None else argparse.SUPPRESS
        kind = _arg_type(classes[f.spec], f.field)
        if f.field == "always_sample":
            p.add_argument(f.flag, dest=f.field, action="store_true", default=None, help=help_)
        else:
            p.add_argument(f.flag, dest=f.field, type=kind, choices=f.choices, help=help_)
    p.add_argument("--save-as", help="store name for the trained model")
    p.add_argument("--no-save", action="store_true", help="do not put the model in the store")
    return p


def specs_from_args(args: argparse.Namespace) -> tuple[ModelSpec, TrainSpec]:
    """The kind's preset, overridden by the flags given."""
    base_model, base_train = preset(args.model or "mlp_vae", args.dataset)
    given = {f.spec: {} for f in FLAGS}
    for f in FLAGS:
        if getattr(args, f.field) is not None:
            given[f.spec][f.field] = getattr(args, f.field)
    return (
        dataclasses.replace(base_model, **given["model"]),
        dataclasses.replace(base_train, **given["train"]),
    )


def main(argv: list[str] | None = None) -> int:
    machine.configure_logical_cpus()  # before anything starts TensorFlow's runtime
    args = _parser().parse_args(argv)
    run_dir: Path = args.run_dir.expanduser()
    try:
        if (run_dir / rundir.CONFIG).is_file():
            names = ["model", *(f.field for f in FLAGS), "save_as"]
            given = [k for k in names if getattr(args, k) is not None]
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
        (run_dir / rundir.STOP_FILE).unlink(missing_ok=True)
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
