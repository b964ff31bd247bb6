"""What a run does while it trains: honour a Stop, write step and epoch lines, the epoch's picture
and checkpoint, and TensorBoard scalars. Keras callbacks, used by vae_core.train for every kind."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import keras
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

from vae_core import rundir
from vae_core.tasks import Batches, Preview

if TYPE_CHECKING:
    from vae_core.run_context import Run


# ---------------------------------------------------------------- checkpoints
def save_checkpoint(trainer: keras.Model, run_dir: Path, position: rundir.Position) -> Path:
    """Weights and optimizer state at `position` (completed epochs, steps into the next), written
    to a temp file and renamed."""
    written = rundir.checkpoint_temp(run_dir, position)
    trainer.save_weights(written, overwrite=True)
    return rundir.commit_checkpoint(run_dir, written, position)


def restore_checkpoint(trainer: keras.Model, run_dir: Path) -> rundir.Position:
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


class RunMonitor(keras.callbacks.Callback):
    """Per batch: honour a stop request, write a step line now and then. Per completed epoch:
    validate, write the epoch line and grid, checkpoint, update the status (in that order, so a
    kill never leaves a checkpoint that progress.jsonl does not show)."""

    def __init__(self, run: Run, batches: Batches, preview: Preview):
        super().__init__()
        self.run, self.out, self.status = run, run.out, run.status
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
        # The digit VAEs keep the weight in a variable; a recommender logs its own (a metric).
        weight = getattr(self.model, "kl_weight", None)
        return {"kl_weight": float(weight.numpy())} if isinstance(weight, keras.Variable) else {}

    def _rate(self, now: float) -> float | None:
        """Steps per second in this epoch, leaving out its first execution (tracing, warm-up);
        early in an epoch, the last epoch's rate."""
        steps, secs = self.steps_done - self.first_end_steps, now - self.first_end_at
        return steps / secs if steps > 0 and secs > 0 else self.last_rate

    def _progress(self, record: dict) -> None:
        if self.run.chief:  # the run folder is the chief's; other workers keep only their status
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
        if self.run.should_stop():
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
        val = {}
        if self.val_ds is not None:
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
        if self.run.chief:
            png, numbers = self.preview()
            record.update(numbers)
            self._progress(record)
            if png is not None:
                rundir.write_epoch_png(self.out, completed, png)
            save_checkpoint(self.model, self.out, (completed, 0))
        self.completed = completed
        self.status.update(epoch=completed, step=0, phase="training")
        self.echo(_epoch_line(record, self.train.epochs))
        if self.run.should_stop():
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
        scalars.update(self.monitor._kl_weight())
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
    keys = ["loss", "reconstruction_loss", "kl_loss", "val_loss", "val_ndcg@100"]
    parts = [f"{k} {record[k]:.2f}" for k in keys if isinstance(record.get(k), float)]
    return (
        f"epoch {record['epoch']}/{epochs}  " + "  ".join(parts) + f"  ({record['epoch_s']:.1f} s)"
    )
