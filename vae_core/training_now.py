"""Which run is training now, and into which store name: the one question both the runs module
(only one run at a time) and the store (never overwrite the model a run saves into) ask.

It lives here, importing neither of them, so imports run one way: runs -> store -> training_now.
It reads the run folders' files (vae_core.rundir) and asks the operating system whether a run's
process is alive. No TensorFlow here: the Train page asks on every poll.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

from vae_core import paths, rundir
from vae_core.errors import RunError
from vae_core.rundir import STATUS, TRAIN_MODULE

ACTIVE_STATES = ("starting", "running")
STARTING_GRACE_S = 60.0  # a "starting" status with no pid yet is believed for this long

# Children started by this process, so their exit is reaped (no zombies) and noticed at once.
_CHILDREN: dict[int, subprocess.Popen] = {}


def adopt(child: subprocess.Popen) -> None:
    """Remember a training child this process started (vae_core.runs does), to reap it later."""
    _CHILDREN[child.pid] = child


def reap_exited() -> None:
    """Collect every child of ours that has exited, whether or not anyone still looks at its run."""
    for pid, child in list(_CHILDREN.items()):
        if child.poll() is not None:
            _CHILDREN.pop(pid, None)


# ---------------------------------------------------------------- is this process training?
def _proc_stat_state(pid: int) -> str | None:
    """The one-letter state from /proc/<pid>/stat ("Z" = zombie), or None without /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[0] if ")" in stat else None


def is_training_process(pid: int | None) -> bool:
    """True if `pid` is a live (not zombie) `vae_core.train` process on this machine."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    child = _CHILDREN.get(pid)
    if child is not None and child.poll() is not None:  # ours and exited: poll() reaps it
        _CHILDREN.pop(pid, None)
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by someone else
    if Path("/proc").is_dir():
        if _proc_stat_state(pid) in ("Z", "X", None):
            return False
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False
        # The pid may have been reused by an unrelated process since the status was written.
        return TRAIN_MODULE.encode() in cmdline
    return True


# ---------------------------------------------------------------- is this run training?
def read_status(run_dir: Path) -> dict:
    """status.json with the state derived from the truth: a vanished child reads "interrupted".

    Never raises (see rundir.read_status_file for a missing or damaged file).
    """
    status = rundir.read_status_file(run_dir)
    state = status["state"]
    if state in ACTIVE_STATES and status.get("host", socket.gethostname()) == socket.gethostname():
        pid = status.get("pid")
        if pid is None:
            # start_run writes "starting" just before it has a pid; believe it for a short while.
            alive = time.time() - float(status.get("updated") or 0) < STARTING_GRACE_S
        else:
            alive = is_training_process(pid)
        if not alive:
            status["recorded_state"] = state
            status["state"] = "interrupted"
            status.setdefault("error", None)
    return status


# ---------------------------------------------------------------- which run, into which name
def active_run(root: Path | None = None) -> Path | None:
    """The run folder whose child is training now, if any."""
    reap_exited()  # the Train page asks this on every look, so finished children never linger
    root = Path(root) if root is not None else paths.runs_dir()
    try:
        dirs = [p for p in root.iterdir() if p.is_dir() and (p / STATUS).is_file()]
    except OSError:
        return None
    for run_dir in dirs:
        if read_status(run_dir)["state"] in ACTIVE_STATES:
            return run_dir
    return None


def training_target(root: Path | None = None) -> tuple[str, str | None] | None:
    """(run id, the store name it will save as or None for its default) of the run training now."""
    busy = active_run(root)
    if busy is None:
        return None
    try:
        config = rundir.read_config(busy)
    except RunError:
        return busy.name, None
    save_as = config.get("save_as")
    return str(config.get("run_id") or busy.name), save_as if isinstance(save_as, str) else None
