"""One training run: data -> model -> fit, with checkpoints, progress lines and pictures -> the store.

`python -m vae_core.train --run-dir DIR ...` (what the app's child process runs) and `run_training`
are one code path. What the run folder holds is vae_core.rundir's to say; how the machine is used
(devices, precision, XLA) is vae_core.machine's.

Resume. Keras's BackupAndRestore is not used: it writes its one checkpoint in place (a kill during the
write loses it), and when a stop cuts an epoch short, fit still calls on_epoch_end, so it would
record the partial epoch as done. Here each completed epoch is saved to a temp file and renamed, the
epoch number lives in the file name. A Stop part-way through an epoch saves a checkpoint at that
step too, and a resume carries on from it; a kill loses only the steps since the last checkpoint.

Several machines. With `--workers host1:port,host2:port --task-index N` on each machine (or
TF_CONFIG) the run trains under MultiWorkerMirroredStrategy. The workers first meet
(vae_core.cluster), so a wrong address, list or setting ends in a sentence instead of a wait. Worker
0, the chief, owns the run folder, its checkpoints and the saved model; every other worker writes
only its own status, to workers/<name>/status.json. A resume takes the chief's checkpoint on every
worker. When a worker is lost the others stop within machine.LOST_WORKER_WITHIN_S and record
"interrupted"; the same commands again resume from the last completed epoch.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import socket
import sys
import threading
import time
import traceback
from pathlib import Path

import keras
import tensorflow as tf

from vae_core import cluster as cluster_mod
from vae_core import kinds, machine, rundir
from vae_core.errors import ChiefAbsent, RunError, StoreError, UserError, WorkerLost
from vae_core.models import ModelBundle
from vae_core.run_context import Run, StopRequest
from vae_core.rundir import StatusFile
from vae_core.specs import (
    FLAGS,
    NAMED_PRESETS,
    ModelSpec,
    TrainSpec,
    check_pair,
    named_preset,
    preset,
)
from vae_core.store import Store, default_store
from vae_core.tasks import Batches, Task
from vae_core.watch import EpochSummaries, RunMonitor, restore_checkpoint, save_checkpoint


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
    join_timeout_s: float = cluster_mod.JOIN_TIMEOUT_S,
) -> dict:
    """Train (or resume) the run in `run_dir` and return its final status ("completed" or "stopped").

    A folder that already has config.json is resumed with its own settings; the arguments are then
    ignored. On an error the status says "failed" with a sentence, and the error is raised; a lost
    worker of a multi-worker run says "interrupted" instead.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    config = _load_or_make_config(run_dir, model_spec, train_spec, save_as, save)
    model_spec, train_spec = rundir.specs_from_config(config)
    cluster = cluster_mod.from_environment(train_spec.strategy)
    chief = cluster is None or cluster.chief
    if chief and not (run_dir / rundir.CONFIG).is_file():
        rundir.write_json_atomic(run_dir / rundir.CONFIG, config)
    # Other workers write only their own status; the run folder is the chief's.
    out = run_dir if chief else run_dir / rundir.WORKERS_DIR / cluster.own.name
    out.mkdir(parents=True, exist_ok=True)

    previous = rundir.read_status_file(out)
    # Another worker's "completed" is only its part: the chief may have died testing or saving,
    # and then its rerun needs every worker again. A chief that has completed does not call.
    completed = previous.get("state") == "completed"
    if completed and chief:
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
    status.update(**({"cluster": cluster.describe()} if cluster is not None else {}))
    stop = StopRequest(run_dir / rundir.STOP_FILE, stop_event)
    run = Run(run_dir, out, config, model_spec, train_spec, status, stop, store, chief, cluster)
    with stop.signals(), machine.dtype_policy_restored():
        try:
            return _train(run, join_timeout_s)
        except KeyboardInterrupt:
            status.update(state="stopped", phase=None, finished=time.time())
            raise
        except WorkerLost as err:
            status.update(state="interrupted", phase=None, finished=time.time(), error=str(err))
            raise
        except BaseException as err:
            if completed and isinstance(err, ChiefAbsent):
                print(
                    f"Run {config['run_id']} has already completed here, and the chief did not "
                    "call: it has completed too (or it was not started).",
                    flush=True,
                )
                return status.update(**{**previous, "attempt": status.data["attempt"]})
            status.update(state="failed", phase=None, finished=time.time(), error=_sentence(err))
            raise


def _train(run: Run, join_timeout_s: float = cluster_mod.JOIN_TIMEOUT_S) -> dict:
    """The story of a run, each step below in this order; the kind's task (vae_core.tasks) brings
    its data, model and scores."""
    strategy = _join(run, join_timeout_s)  # first: multi-worker insists
    run.resume_at = rundir.checkpoint_position(run.run_dir)
    if run.cluster is not None:  # only the chief's folder holds the run's checkpoints
        run.resume_at = machine.position_from_chief(strategy, run.resume_at if run.chief else None)
    keras.utils.set_random_seed(run.train_spec.seed)
    devices = machine.describe_devices(strategy, run.train_spec.strategy)
    run.status.update(devices=devices)

    task = kinds.resolve(run.model_spec.kind_info.task)(run)  # loads the data
    options = machine.compile_options(run.model_spec, run.train_spec, devices, task.n_train)
    batches = task.batches(options["drop_remainder"])
    try:  # every step from here on waits for the other workers, if there are any
        trainer, position = _build_and_restore(run, task, strategy, options, batches)
        if run.chief:
            rundir.forget_after(run.out, *position)  # what came after the checkpoint is done again
        done, step = _fit(run, task, trainer, batches, position)
    except machine.LOST_PEER_ERRORS as err:
        gone = None if run.cluster is None else machine.lost_peer(err, run.cluster.own.name)
        if gone is None:
            raise  # an error of the run's own: it failed
        raise _lost_worker(run, gone) from err
    if done < run.train_spec.epochs:
        return _stopped(run, trainer, batches, done, step)
    return _finish(run, task, trainer, options, done)


# ---------------------------------------------------------------- the steps
def _join(run: Run, join_timeout_s: float) -> tf.distribute.Strategy:
    """The run's tf.distribute strategy. Several workers first meet (vae_core.cluster), then
    agree on every Stop."""
    cluster = run.cluster
    if cluster is None:
        return machine.make_strategy(run.train_spec.strategy)
    run.status.update(phase="waiting for the other workers")
    cluster_mod.check_own_address(cluster)
    itself = {"host": socket.gethostname(), "pid": os.getpid()}
    settings = cluster_mod.settings_of(run.config)
    met = cluster_mod.handshake(cluster, settings, itself, join_timeout_s)
    commands = cluster.commands(run.config.get("command") or "python -m vae_core.train")
    run.status.update(cluster={**cluster.describe(), "met": met, "commands": commands})
    strategy = machine.make_strategy("multiworker", join_timeout_s)
    run.stop.listen_again()
    run.agree = machine.agreement(strategy)
    return strategy


def _lost_worker(run: Run, gone: str) -> WorkerLost:
    """The sentence for a worker that stopped answering, naming it when it is known (the one the
    health check says is down, or the only other one)."""
    cluster, done, epochs = run.cluster, run.status.data.get("epoch") or 0, run.train_spec.epochs
    others = [m for m in cluster.members if m != cluster.own]
    lost = next((m for m in others if m.name == gone), others[0] if len(others) == 1 else None)
    run.status.update(lost=lost.name if lost else None)
    return WorkerLost(
        f"{cluster_mod.cap(lost.words if lost else 'another worker')} stopped answering, so this worker stopped too: the run is "
        f"interrupted after epoch {done} of {epochs}. Start the same command again on every "
        "machine to resume from there."
    )


def _build_and_restore(
    run: Run, task: Task, strategy: tf.distribute.Strategy, options: dict, batches: Batches
) -> tuple[keras.Model, rundir.Position]:
    """The model, compiled with its optimizer inside the strategy's scope under the precision's
    dtype policy (the caller's comes back in run_training), and the newest checkpoint loaded."""
    options["steps_per_execution"] = min(options["steps_per_execution"], batches.steps_per_epoch)
    run.status.update(
        phase="building the model", steps_per_epoch=batches.steps_per_epoch, compile=options
    )
    keras.config.set_dtype_policy(options["precision"])
    saved = None
    if run.cluster is not None and run.chief and rundir.checkpoints(run.run_dir):
        # Loading into the strategy's variables would start collectives on the chief alone, which
        # the other workers would not join: read the checkpoint into a plain copy first.
        plain = task.trainer(options, batches.steps_per_epoch)
        plain.optimizer.build(plain.trainable_variables)
        saved = restore_checkpoint(plain, run.run_dir), plain.variables + plain.optimizer.variables
    with strategy.scope():
        trainer = task.trainer(options, batches.steps_per_epoch)
        trainer.optimizer.build(trainer.trainable_variables)
        if run.cluster is None:
            return trainer, restore_checkpoint(trainer, run.run_dir)
        return trainer, machine.share_from_chief(strategy, trainer, saved)


def _fit(
    run: Run, task: Task, trainer: keras.Model, batches: Batches, position: rundir.Position
) -> rundir.Position:
    """Train on from the checkpoint's position; returns where it got to (short of the last epoch:
    stopped, `step` steps into the next epoch)."""
    spec, train = run.model_spec, run.train_spec
    done, step = position
    start = {
        "kind": "start",
        "epoch": done,
        "step": step,
        "epochs": train.epochs,
        "resumed": done > 0 or step > 0,
        "pid": os.getpid(),
        "time": time.time(),
    }
    if run.chief:
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
    monitor = RunMonitor(run, batches, task.preview(trainer))
    monitor.completed, monitor.stopped_at = done, step
    # The task's callbacks first: what they add to an epoch's logs reaches the monitor's line.
    callbacks = [*task.callbacks(), monitor]
    if run.chief:
        callbacks.append(EpochSummaries(run.out / rundir.TB_DIR, monitor))
    fit = dict(callbacks=callbacks, verbose=0, shuffle=False)  # the dataset shuffles itself
    if step and done < train.epochs and not run.should_stop():
        # The rest of the epoch a Stop cut short, on a fresh shuffle of its data.
        monitor.offset = step
        rest = batches.train.take(batches.steps_per_epoch - step)
        trainer.fit(rest, epochs=done + 1, initial_epoch=done, **fit)
        monitor.offset = 0
    if monitor.completed == done + bool(step) and monitor.completed < train.epochs:
        if not run.should_stop():
            trainer.fit(batches.train, epochs=train.epochs, initial_epoch=monitor.completed, **fit)
    return monitor.completed, monitor.stopped_at


def _stopped(run: Run, trainer: keras.Model, batches: Batches, done: int, step: int) -> dict:
    """A Stop: keep the steps of the epoch it cut short in a checkpoint of their own."""
    epochs, per = run.train_spec.epochs, batches.steps_per_epoch
    if step:
        if run.chief:
            save_checkpoint(trainer, run.out, (done, step))
        run.echo(
            f"Stopped at step {step} of {per} in epoch {done + 1} of {epochs}; resume to go on."
        )
    else:
        run.echo(f"Stopped after epoch {done} of {epochs}; resume to continue.")
    return run.status.update(
        state="stopped", phase=None, epoch=done, step=step, finished=time.time()
    )


def _finish(run: Run, task: Task, trainer: keras.Model, options: dict, done: int) -> dict:
    """Test metrics, then into the store, in float32 (the chief's part: the others are done)."""
    train = run.train_spec
    if not run.chief:
        run.echo("Completed; the chief tests and saves the model.")
        return run.status.update(state="completed", phase=None, finished=time.time(), epoch=done)
    run.status.update(phase="evaluating", epoch=done, step=0)
    keras.config.set_dtype_policy("float32")
    bundle, test_metrics = task.test(trainer)
    model_name, note = None, None
    if run.config.get("save", True):
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
        default = _default_model_name(run.model_spec.kind, run.config["run_id"])
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
def _load_or_make_config(
    run_dir: Path,
    model_spec: ModelSpec | None,
    train_spec: TrainSpec | None,
    save_as: str | None,
    save: bool,
) -> dict:
    """The stored config wins (that is what makes "the same command again" a resume); a new one is
    written by the caller, where this process owns the run folder."""
    if (run_dir / rundir.CONFIG).is_file():
        return rundir.read_config(run_dir)
    if model_spec is None:
        raise RunError(
            f"The run folder {run_dir} has no settings yet; say which model to train (--model)."
        )
    train_spec = train_spec or preset(model_spec.kind)[1]
    check_pair(model_spec, train_spec)
    return rundir.new_config(run_dir, model_spec, train_spec, save_as=save_as, save=save)


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
    p.add_argument(
        "--preset",
        choices=tuple(NAMED_PRESETS),
        help="start from a named preset (quick: the one-minute demo) instead of a kind's own",
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
    several = p.add_argument_group(
        "several machines",
        "Run the same command on every machine, each with its own --task-index (the same code, the "
        "data at the same path, the ports open between them). Worker 0 is the chief: it writes the "
        "run folder and saves the model. TF_CONFIG with --strategy multiworker works too.",
    )
    several.add_argument(
        "--workers",
        metavar="HOST:PORT,...",
        help="every worker's address, in the same order on every machine; implies "
        "--strategy multiworker",
    )
    several.add_argument(
        "--task-index",
        type=int,
        metavar="N",
        help="which address in --workers is this machine (0 to workers-1; 0 is the chief)",
    )
    several.add_argument(
        "--join-timeout-s",
        type=float,
        default=cluster_mod.JOIN_TIMEOUT_S,
        metavar="S",
        help="how long to wait for every worker to start before giving up with a sentence "
        f"(default {cluster_mod.JOIN_TIMEOUT_S:.0f} s); a worker lost while training is noticed "
        f"within {machine.LOST_WORKER_WITHIN_S} s",
    )
    return p


def _cluster_from_args(args: argparse.Namespace, run_dir: Path) -> cluster_mod.Cluster | None:
    """--workers/--task-index as TF_CONFIG (what MultiWorkerMirroredStrategy reads), or TF_CONFIG
    itself checked; a sentence for a bad value, before TensorFlow starts."""
    if args.workers is None:
        if args.task_index is not None:
            raise UserError(
                "--task-index goes with --workers (the list of every worker's address)."
            )
        if args.strategy != "multiworker":
            return None
        return cluster_mod.from_tf_config(os.environ.get(cluster_mod.TF_CONFIG) or "")
    if args.strategy not in (None, "multiworker"):
        raise UserError(
            f"--workers trains with --strategy multiworker; leave out --strategy {args.strategy}."
        )
    if args.join_timeout_s <= 0:
        raise UserError("--join-timeout-s must be a number of seconds above 0.")
    cluster = cluster_mod.parse_workers(args.workers, args.task_index)
    if (run_dir / rundir.CONFIG).is_file():
        strategy = rundir.specs_from_config(rundir.read_config(run_dir))[1].strategy
        if strategy != "multiworker":
            raise UserError(
                f"The run in {run_dir} trains on one machine (strategy {strategy}); start a new "
                "run folder to train on several."
            )
    os.environ[cluster_mod.TF_CONFIG] = cluster.tf_config()
    return cluster


def specs_from_args(args: argparse.Namespace) -> tuple[ModelSpec, TrainSpec]:
    """The kind's preset (or the named --preset), overridden by the flags given."""
    if args.preset is not None:
        base_model, base_train = named_preset(args.preset)
        if args.model not in (None, base_model.kind):
            raise UserError(
                f"The {args.preset} preset trains a {base_model.kind}; leave out --model or the preset."
            )
    else:
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
        cluster = _cluster_from_args(args, run_dir)
        if (run_dir / rundir.CONFIG).is_file():
            names = ["model", "preset", *(f.field for f in FLAGS), "save_as"]
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
            if args.workers is not None:
                train_spec = dataclasses.replace(train_spec, strategy="multiworker")
        # A new process starts fresh: a STOP left by an earlier stop is not meant for it.
        if cluster is None or cluster.chief:
            (run_dir / rundir.STOP_FILE).unlink(missing_ok=True)
        status = run_training(
            run_dir,
            model_spec,
            train_spec,
            save_as=args.save_as,
            save=not args.no_save,
            join_timeout_s=args.join_timeout_s,
        )
    except WorkerLost as err:
        print(f"Training interrupted: {err}", file=sys.stderr)
        return 3
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
