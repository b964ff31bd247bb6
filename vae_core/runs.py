"""Training runs as processes: start a child that trains a run folder, stop it, resume it, list
the runs and tell which one is training. The folder's files are vae_core.rundir's; which run is alive
is vae_core.training_now's (the store asks it too, so it imports neither module). No TensorFlow
here: the page calls it on every poll.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from vae_core import paths, rundir, training_now
from vae_core.errors import RunError
from vae_core.fsutil import why_not_writable
from vae_core.rundir import LOG_FILE, STATUS, STOP_FILE, TRAIN_MODULE
from vae_core.specs import ModelSpec, TrainSpec, check_pair

# The pages and tools ask these through runs; their home is training_now.
from vae_core.training_now import ACTIVE_STATES, active_run, is_training_process, read_status

START_LOCK = ".start.lock"  # in the runs folder: one start at a time
RESUMABLE_STATES = ("stopped", "interrupted", "failed")
PROJECT_ROOT = Path(__file__).resolve().parent.parent  # the child's cwd, so `vae_core` imports


# ---------------------------------------------------------------- new runs
def _check_new_model_name(name: str) -> None:
    """Refuse a bad or taken store name now, not after an hour of training."""
    from vae_core.errors import StoreError
    from vae_core.store import default_store, validate_name  # lazy: the store pulls in Keras

    validate_name(name)
    try:
        default_store().get(name)
    except StoreError:
        return
    raise RunError(f"A model named '{name}' already exists; pick another name.")


def _not_writable(root: Path, err: OSError) -> RunError:
    """A full, read-only or forbidden runs folder, in one sentence."""
    reason = why_not_writable(err)
    return RunError(f"The runs folder at {root} is not writable: {reason}.")


def create_run(
    model_spec: ModelSpec,
    train_spec: TrainSpec,
    *,
    root: Path | None = None,
    save_as: str | None = None,
) -> Path:
    """A new run folder under `root` (default: the runs folder) holding its config.json.

    A folder that cannot be written gives RunError with a sentence, and no half-made run is left.
    """
    check_pair(model_spec, train_spec)
    if save_as:
        _check_new_model_name(save_as)
    root = Path(root) if root is not None else paths.runs_dir()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _not_writable(root, err) from err
    for _ in range(10):
        run_dir = root / rundir.new_run_id()
        try:
            run_dir.mkdir()
        except FileExistsError:
            continue
        except OSError as err:
            raise _not_writable(root, err) from err
        try:
            rundir.write_config(
                run_dir, model_spec, train_spec, save_as=save_as, run_id=run_dir.name
            )
        except OSError as err:
            shutil.rmtree(run_dir, ignore_errors=True)  # a folder without settings is no run
            raise _not_writable(root, err) from err
        return run_dir
    raise RunError("Could not create a new run folder; try again.")


# ---------------------------------------------------------------- processes
@contextlib.contextmanager
def _start_lock(root: Path) -> Iterator[None]:
    """An exclusive lock on root/.start.lock, so two clicks cannot both start a run."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / START_LOCK, "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def _busy_message(run_dir: Path, status: dict) -> str:
    epochs = status.get("epochs")
    where = ""
    if isinstance(epochs, int):
        current = min(int(status.get("epoch") or 0) + 1, epochs)
        where = f", epoch {current} of {epochs}"
    return (
        f"A training run is already in progress (run {run_dir.name}{where}). "
        "Stop it or wait for it to finish."
    )


def start_run(run_dir: Path) -> int:
    """Start the training child for `run_dir` (detached); returns its pid.

    Only one run may be active per runs folder: RunError names the one that is.
    """
    run_dir = Path(run_dir).resolve()
    rundir.read_config(run_dir)  # refuse a folder without usable settings before spawning anything
    try:
        return _start_locked(run_dir)
    except OSError as err:  # the status or log cannot be written: a full or read-only disk
        raise _not_writable(run_dir.parent, err) from err


def _start_locked(run_dir: Path) -> int:
    with _start_lock(run_dir.parent):
        busy = active_run(run_dir.parent)
        if busy is not None:
            if busy.resolve() == run_dir:
                raise RunError("This run is already running.")
            raise RunError(_busy_message(busy, read_status(busy)))
        previous = read_status(run_dir)
        if previous["state"] == "completed":
            raise RunError("This run has already finished; start a new run to train again.")
        (run_dir / STOP_FILE).unlink(missing_ok=True)
        recorded = {} if previous["state"] in ("created", "unknown", "missing") else previous
        recorded = {k: v for k, v in recorded.items() if k != "recorded_state"}
        starting = {
            **recorded,
            "state": "starting",
            "pid": None,
            "host": socket.gethostname(),
            "updated": time.time(),
            "finished": None,
            "error": None,
        }
        rundir.write_json_atomic(run_dir / STATUS, starting)
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")  # train.log shows each epoch as it ends
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out
        with open(run_dir / LOG_FILE, "ab") as log:
            try:
                child = subprocess.Popen(
                    [sys.executable, "-m", TRAIN_MODULE, "--run-dir", str(run_dir)],
                    cwd=PROJECT_ROOT,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # a page rerun or server restart does not kill it
                )
            except OSError as err:
                rundir.write_json_atomic(
                    run_dir / STATUS,
                    {**starting, "state": "failed", "error": f"Could not start training: {err}."},
                )
                raise RunError(f"Could not start the training process: {err}.") from err
        training_now.adopt(child)
        # The child needs seconds to import TensorFlow before it writes "running", so this lands first.
        rundir.write_json_atomic(
            run_dir / STATUS, {**starting, "pid": child.pid, "updated": time.time()}
        )
    return child.pid


def stop_run(run_dir: Path) -> bool:
    """Ask a run to stop after its current batch; True if a live child was signalled.

    The STOP file is the request (the child polls it); SIGTERM wakes it sooner.
    """
    run_dir = Path(run_dir)
    (run_dir / STOP_FILE).touch()
    status = read_status(run_dir)
    pid = status.get("pid")
    if status["state"] in ACTIVE_STATES and is_training_process(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        return True
    return False


def resume_run(run_dir: Path) -> int:
    """Continue a stopped, interrupted or failed run from its last completed epoch; returns the pid."""
    run_dir = Path(run_dir)
    status = read_status(run_dir)
    state = status["state"]
    if state in ACTIVE_STATES:
        raise RunError("This run is still running.")
    if state == "completed":
        raise RunError("This run has already finished; start a new run to train again.")
    if state not in RESUMABLE_STATES:
        raise RunError("This run cannot be resumed: its status is unknown.")
    if worker_states(run_dir, status):
        # One process here would train alone, not with the other machines.
        raise RunError(
            "This run trains on several machines: start the same command again on every machine "
            "to resume it."
        )
    (run_dir / STOP_FILE).unlink(missing_ok=True)
    return start_run(run_dir)


# ---------------------------------------------------------------- several machines
def worker_states(run_dir: Path, status: dict) -> list[dict]:
    """A multi-worker run's workers, chief first: name, address, machine and state ([]: a run of
    one process). Each worker's own status where it shares the run folder (one machine, or a
    shared disk); else what the chief knows: every worker trains in step with it, bar one it lost."""
    cluster = status.get("cluster")
    if not isinstance(cluster, dict) or not isinstance(cluster.get("workers"), list):
        return []
    met = cluster.get("met") if isinstance(cluster.get("met"), dict) else {}
    found = []
    for position, worker in enumerate(cluster["workers"]):
        if not isinstance(worker, dict):
            continue
        name = str(worker.get("name") or f"worker_{position}")
        own = Path(run_dir) / rundir.WORKERS_DIR / name
        if name == cluster.get("me"):
            state = status.get("state", "unknown")
        elif (own / STATUS).is_file():
            state = read_status(own)["state"]
        elif name == status.get("lost"):
            state = "lost"
        else:
            state = status.get("state", "unknown")
        found.append(
            {
                "name": name,
                "address": worker.get("address"),
                "host": (met.get(name) or {}).get("host"),
                "state": state,
                "chief": position == 0,
            }
        )
    return found


def worker_commands(status: dict) -> list[str]:
    """The command each machine of a multi-worker run runs (again, to resume), worker 0 first."""
    cluster = status.get("cluster")
    commands = cluster.get("commands") if isinstance(cluster, dict) else None
    return [str(c) for c in commands] if isinstance(commands, list) else []


# ---------------------------------------------------------------- listing
@dataclass
class RunInfo:
    """One run folder as the history table shows it; `error` holds a sentence if it is damaged."""

    run_id: str
    path: Path
    config: dict = field(default_factory=dict)
    status: dict = field(default_factory=dict)  # derived, as read_status returns it
    last_epoch: dict | None = None  # the last epoch line of progress.jsonl
    error: str | None = None

    @property
    def state(self) -> str:
        return str(self.status.get("state", "unknown"))

    @property
    def test_metrics(self) -> dict | None:
        return self.status.get("test_metrics")


def _run_info(run_dir: Path) -> RunInfo:
    error = None
    try:
        config = rundir.read_config(run_dir)
    except RunError as err:
        config, error = {}, str(err)
    status = read_status(run_dir)
    if error is None and status.get("state") == "unknown":
        error = status.get("error")
    run_id = str(config.get("run_id") or run_dir.name)
    return RunInfo(run_id, run_dir, config, status, rundir.last_epoch_record(run_dir), error)


def _sort_key(info: RunInfo) -> tuple[float, str]:
    """When the run was created (its folder's time if the config is unreadable), then its id."""
    with contextlib.suppress(TypeError, ValueError):
        return datetime.fromisoformat(info.config.get("created")).timestamp(), info.run_id
    with contextlib.suppress(OSError):
        return info.path.stat().st_mtime, info.run_id
    return 0.0, info.run_id


def list_runs(root: Path | None = None) -> list[RunInfo]:
    """Every run folder under `root`, newest first; damaged ones carry `error` and never raise."""
    root = Path(root) if root is not None else paths.runs_dir()
    try:
        dirs = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    except OSError:
        return []
    return sorted((_run_info(d) for d in dirs), key=_sort_key, reverse=True)


def check_idle(root: Path | None = None) -> None:
    """RunError naming the active run, if one is training (for a Start button, before create_run)."""
    root = Path(root) if root is not None else paths.runs_dir()
    busy = active_run(root)
    if busy is not None:
        raise RunError(_busy_message(busy, read_status(busy)))
