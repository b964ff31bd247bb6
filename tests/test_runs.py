"""Run folders without training: configs, progress files, derived states, listing, start/stop rules.

The child processes here are stand-ins (`python -c "sleep" vae_core.train`): their command line
names the training module, so they look like a run to `runs`, and they cost no TensorFlow start-up.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from vae_core import rundir, runs, training_now
from vae_core.errors import RunError
from vae_core.specs import ModelSpec, TrainSpec

FAKE_CHILD = [sys.executable, "-c", "import time; time.sleep(60)", rundir.TRAIN_MODULE]


@pytest.fixture
def root(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("VAE_LAB_HOME", str(tmp_path / "home"))
    return tmp_path / "home" / "runs"


def _fake(children) -> subprocess.Popen:
    """A stand-in child leading its own session, as runs starts the real one."""
    proc = subprocess.Popen(FAKE_CHILD, start_new_session=True)
    children.append(proc)
    return proc


def _make_run(root: Path, **status) -> Path:
    run_dir = runs.create_run(
        ModelSpec(hidden=32), TrainSpec(dataset="sample", epochs=10), root=root
    )
    if status:
        rundir.write_json_atomic(run_dir / rundir.STATUS, {"host": os.uname().nodename, **status})
    return run_dir


# ---------------------------------------------------------------- configs
def test_create_run_writes_a_config_with_the_equivalent_command(root):
    spec, train = ModelSpec("conv_dae", latent_dim=8, hidden=64), TrainSpec("sample", epochs=3)
    run_dir = runs.create_run(spec, train, root=root)

    assert run_dir.parent == root
    assert re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{6}", run_dir.name)
    config = json.loads((run_dir / rundir.CONFIG).read_text())
    assert config["run_id"] == run_dir.name
    assert ModelSpec.from_dict(config["model"]) == spec
    assert TrainSpec.from_dict(config["train"]) == train
    args = shlex.split(config["command"])
    assert args[:3] == ["python", "-m", "vae_core.train"]
    assert args[args.index("--run-dir") + 1] == str(run_dir)
    assert args[args.index("--model") + 1] == "conv_dae"
    assert args[args.index("--epochs") + 1] == "3"
    assert runs.read_status(run_dir)["state"] == "created"


def test_run_ids_are_unique_and_sort_by_time():
    ids = {rundir.new_run_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{6}", i) for i in ids)


# ---------------------------------------------------------------- progress files
def _write_lines(path: Path, records: list[dict], tail: bytes = b"") -> None:
    path.write_bytes(b"".join(json.dumps(r).encode() + b"\n" for r in records) + tail)


def test_read_progress_skips_a_torn_last_line_and_garbage(tmp_path):
    records = [{"kind": "step", "epoch": 1, "step": i} for i in range(3)]
    _write_lines(tmp_path / rundir.PROGRESS, records, tail=b'{"kind": "epoch", "ep')
    with open(tmp_path / rundir.PROGRESS, "r+b") as f:  # damage line 1 in place
        data = f.read().replace(b'"step": 1}', b'"step": 1 ')
        f.seek(0)
        f.write(data)

    got = rundir.read_progress(tmp_path)
    assert [r["step"] for r in got] == [0, 2]
    assert [r["_line"] for r in got] == [0, 2]
    assert rundir.read_progress(tmp_path, since_line=got[-1]["_line"] + 1) == []
    assert rundir.read_progress(tmp_path / "nothing-here") == []


def test_cut_progress_keeps_what_the_checkpoint_holds(tmp_path):
    lines = [
        {"kind": "start", "epoch": 0},
        {"kind": "step", "epoch": 1, "step": 5},
        {"kind": "epoch", "epoch": 1},
        {"kind": "step", "epoch": 2, "step": 5},
        {"kind": "epoch", "epoch": 2},  # written, then killed before its checkpoint
        {"kind": "step", "epoch": 3, "step": 5},
    ]
    _write_lines(tmp_path / rundir.PROGRESS, lines, tail=b'{"kind": "st')

    assert rundir.cut_progress(tmp_path, completed_epochs=1) == 3
    assert [r["kind"] for r in rundir.read_progress(tmp_path)] == ["start", "step", "epoch"]
    assert (tmp_path / rundir.PROGRESS).read_bytes().endswith(b"\n")
    assert rundir.cut_progress(tmp_path, completed_epochs=0) == 0
    assert (tmp_path / rundir.PROGRESS).read_bytes() == b""


def test_epoch_pngs_are_numbered_by_epoch_not_by_name(tmp_path):
    assert rundir.epoch_pngs(tmp_path) == {}
    (tmp_path / "epochs").mkdir()
    for epoch in (2, 999, 1000):
        rundir.epoch_png_path(tmp_path, epoch).write_bytes(b"png")
    (tmp_path / "epochs" / ".epoch_1001.png.tmp").write_bytes(b"half")
    assert rundir.epoch_pngs(tmp_path)[max(rundir.epoch_pngs(tmp_path))].name == "epoch_1000.png"


# ---------------------------------------------------------------- derived state
def test_a_running_status_whose_process_is_gone_reads_interrupted(root, children):
    proc = _fake(children)
    run_dir = _make_run(root, state="running", pid=proc.pid, epoch=3, epochs=10)
    assert runs.read_status(run_dir)["state"] == "running"

    proc.kill()
    proc.wait()
    status = runs.read_status(run_dir)
    assert status["state"] == "interrupted"
    assert status["recorded_state"] == "running"
    # Derived, not written: the file still says what the child last wrote.
    assert json.loads((run_dir / rundir.STATUS).read_text())["state"] == "running"


def test_a_reused_pid_or_a_zombie_is_not_a_live_run(root):
    # This very process is alive, but it is not a training process.
    reused = _make_run(root, state="running", pid=os.getpid())
    assert runs.read_status(reused)["state"] == "interrupted"

    # A child of ours that exited and was never waited for is a zombie: not running either.
    zombie = subprocess.Popen([sys.executable, "-c", "pass", rundir.TRAIN_MODULE])
    training_now.adopt(zombie)
    deadline = time.time() + 10
    while training_now._proc_stat_state(zombie.pid) not in ("Z", None) and time.time() < deadline:
        time.sleep(0.02)
    run_dir = _make_run(root, state="starting", pid=zombie.pid)
    assert runs.read_status(run_dir)["state"] == "interrupted"
    assert zombie.returncode == 0  # read_status reaped it
    assert zombie.pid not in training_now._CHILDREN


def test_starting_without_a_pid_is_believed_only_briefly(root):
    fresh = _make_run(root, state="starting", pid=None, updated=time.time())
    stale = _make_run(root, state="starting", pid=None, updated=time.time() - 3600)
    assert runs.read_status(fresh)["state"] == "starting"
    assert runs.read_status(stale)["state"] == "interrupted"


def test_list_runs_survives_damaged_folders(root):
    good = _make_run(root, state="completed", test_metrics={"neg_elbo": 150.0})
    _write_lines(good / rundir.PROGRESS, [{"kind": "epoch", "epoch": 1, "loss": 3.0}])
    time.sleep(0.01)  # "created" has millisecond resolution
    bad_status = _make_run(root)
    (bad_status / rundir.STATUS).write_text('{"state": "runn')
    bad_config = root / "20000101-000000-dead"
    bad_config.mkdir()
    (bad_config / rundir.CONFIG).write_text("not json")
    (root / ".start.lock").write_text("")

    infos = {info.path.name: info for info in runs.list_runs(root)}
    assert set(infos) == {good.name, bad_status.name, bad_config.name}
    assert infos[good.name].state == "completed" and infos[good.name].error is None
    assert infos[good.name].test_metrics == {"neg_elbo": 150.0}
    assert infos[good.name].last_epoch["loss"] == 3.0
    assert infos[bad_status.name].state == "unknown"
    assert "damaged" in infos[bad_status.name].error
    assert "damaged" in infos[bad_config.name].error
    # Newest first: the folder with an unreadable config sorts by its time on disk.
    ordered = [info.path.name for info in runs.list_runs(root)]
    assert ordered.index(bad_status.name) < ordered.index(good.name)
    assert runs.list_runs(root / "missing") == []


# ---------------------------------------------------------------- start / stop rules
def test_only_one_run_at_a_time_with_a_sentence(root, children):
    proc = _fake(children)
    busy = _make_run(root, state="running", pid=proc.pid, epoch=2, epochs=10)
    other = _make_run(root)

    assert runs.active_run(root) == busy
    with pytest.raises(RunError, match=f"already in progress \\(run {busy.name}"):
        runs.check_idle(root)  # what the Start button asks before it creates a folder
    with pytest.raises(RunError) as err:
        runs.start_run(other)
    assert str(err.value) == (
        f"A training run is already in progress (run {busy.name}, epoch 3 of 10). "
        "Stop it or wait for it to finish."
    )
    with pytest.raises(RunError, match="still running"):
        runs.resume_run(busy)
    proc.kill()
    proc.wait()
    runs.check_idle(root)  # an interrupted run does not block the next one
    assert runs.active_run(root) is None


def test_two_simultaneous_starts_give_one_run(root, children, monkeypatch):
    real_popen = subprocess.Popen

    def fake_popen(args, **kwargs):  # the real spawn path, with a stand-in instead of TensorFlow
        proc = real_popen(FAKE_CHILD, **kwargs)
        children.append(proc)
        return proc

    monkeypatch.setattr(runs.subprocess, "Popen", fake_popen)
    run_dirs = [_make_run(root) for _ in range(4)]
    outcomes: list[object] = []
    barrier = threading.Barrier(len(run_dirs))

    def click(run_dir):
        barrier.wait()
        try:
            outcomes.append(runs.start_run(run_dir))
        except RunError as err:
            outcomes.append(err)

    threads = [threading.Thread(target=click, args=(d,)) for d in run_dirs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    pids = [o for o in outcomes if isinstance(o, int)]
    assert len(pids) == 1
    assert all("already in progress" in str(o) for o in outcomes if not isinstance(o, int))
    started = runs.active_run(root)
    status = runs.read_status(started)
    assert status["state"] == "starting" and status["pid"] == pids[0]
    assert (started / rundir.LOG_FILE).exists()


def test_stop_run_signals_the_child_and_leaves_a_stop_file(root, children):
    proc = _fake(children)
    run_dir = _make_run(root, state="running", pid=proc.pid, epoch=1, epochs=10)

    assert runs.stop_run(run_dir) is True
    assert (run_dir / rundir.STOP_FILE).exists()
    assert proc.wait(timeout=10) == -signal.SIGTERM
    assert runs.read_status(run_dir)["state"] == "interrupted"
    assert runs.stop_run(run_dir) is False  # nothing left to signal


def test_resume_refuses_finished_and_unknown_runs(root):
    done = _make_run(root, state="completed")
    with pytest.raises(RunError, match="already finished"):
        runs.resume_run(done)
    with pytest.raises(RunError, match="already finished"):
        runs.start_run(done)
    damaged = _make_run(root)
    (damaged / rundir.STATUS).write_text("{")
    with pytest.raises(RunError, match="cannot be resumed"):
        runs.resume_run(damaged)


def test_start_run_refuses_a_folder_without_settings(root):
    empty = root / "empty"
    empty.mkdir(parents=True)
    with pytest.raises(RunError, match="no settings"):
        runs.start_run(empty)


def test_finished_children_are_reaped_even_when_nobody_reads_their_run(tmp_path):
    """A completed run's child must not stay a zombie of the app server."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    training_now.adopt(child)
    deadline = time.time() + 10
    while child.pid in training_now._CHILDREN and time.time() < deadline:
        runs.active_run(tmp_path)
        time.sleep(0.05)
    assert child.pid not in training_now._CHILDREN
    assert child.returncode == 0
