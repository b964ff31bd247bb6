"""A run as its steps see it: the Run they share, and the StopRequest that asks it to stop.

Its own module so that the trainer (vae_core.train), the monitors (vae_core.watch) and the tasks
(vae_core.tasks, vae_core.recsys.task) all import it from here, and none of them from another.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vae_core.rundir import StatusFile
from vae_core.specs import ModelSpec, TrainSpec

if TYPE_CHECKING:
    from vae_core.cluster import Cluster
    from vae_core.store import Store


# ---------------------------------------------------------------- stopping
SIGNALS = (signal.SIGTERM, signal.SIGINT)  # a request to stop (a second Ctrl-C: at once)


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

        previous = {s: signal.signal(s, self._on_signal) for s in SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def listen_again(self) -> None:
        """Take SIGTERM back: MultiWorkerMirroredStrategy's runtime installs a handler of its own
        (for preemption notices), and a Stop from the Train page would then go unheard."""
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                signal.signal(sig, self._on_signal)

    def _on_signal(self, signum, frame):
        if signum == signal.SIGINT and self.signalled:
            raise KeyboardInterrupt  # a second Ctrl-C means "now"
        self.signalled = True


# ---------------------------------------------------------------- the run
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
    chief: bool  # the one process that writes the run folder and saves the model
    cluster: Cluster | None = None  # the workers of a multi-worker run (None: one process)
    # Across workers: has any of them been asked to stop? (None: one process, only its own ask)
    agree: Callable[[bool], bool] | None = None
    # (completed epochs, steps) of the checkpoint the run goes on from, known before the model is
    # built: for a task whose data order depends on it (the chief's, on every worker).
    resume_at: tuple[int, int] = (0, 0)

    def should_stop(self) -> bool:
        """Stop now? Every worker asks at the same batch and all get the same answer."""
        asked = self.stop()
        return self.agree(asked) if self.agree is not None else asked

    @staticmethod
    def echo(line: str) -> None:
        print(line, flush=True)  # the CLI's stdout, which is the run's train.log
