"""Training on several machines, played by worker processes on 127.0.0.1 (CPU only, free ports).

Two workers train like one; a killed worker interrupts the run and the same commands resume it;
a wrong address, list or setting ends in one sentence within a stated time. Every child process
has a timeout and is killed at the end, whatever happens.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from benchmarks.common import free_ports
from vae_core import cluster, rundir, runs
from vae_core.errors import RunError, UserError
from vae_core.machine import LOST_WORKER_WITHIN_S
from vae_core.store import Store

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# float32 everywhere: "auto" may pick bfloat16 on one run and not compare like with like.
TINY = ["--hidden", "32", "--dataset", "sample", "--precision", "float32"]
# The DAE draws no z: two workers and one differ only in the order of their float sums.
LOSS_TOLERANCE = 1e-3  # relative, per epoch, on the training and the validation loss
START_S = 120  # a worker's process start (TensorFlow's import), the handshake and a tiny run


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("VAE_LAB_HOME", str(home))
    monkeypatch.setenv("VAE_LAB_OFFLINE", "1")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    return home


def _train(run_dir: Path, *flags: str) -> list[str]:
    return [sys.executable, "-m", "vae_core.train", "--run-dir", str(run_dir), *flags]


def _spawn(children, args: list[str], log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            args, cwd=PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    children.append(proc)
    return proc


def _workers(children, run_dir: Path, ports: list[int], *flags: str) -> list[subprocess.Popen]:
    """The same command on every "machine", each with its own --task-index."""
    listed = ",".join(f"127.0.0.1:{p}" for p in ports)
    return [
        _spawn(
            children,
            _train(run_dir, *flags, "--workers", listed, "--task-index", str(i)),
            run_dir.parent / f"{run_dir.name}_worker{i}.log",
        )
        for i in range(len(ports))
    ]


def _finish(proc: subprocess.Popen, timeout: float, log: Path) -> int:
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"a worker ran past {timeout} s:\n{log.read_text()[-3000:]}")


def _epochs(run_dir: Path) -> list[dict]:
    return [r for r in rundir.read_progress(run_dir) if r.get("kind") == "epoch"]


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


# ---------------------------------------------------------------- two workers train like one
@pytest.mark.slow
def test_two_workers_train_like_one_and_the_chief_saves_one_model(home, tmp_path, children):
    flags = [*TINY, "--model", "conv_dae", "--epochs", "2", "--join-timeout-s", "60"]
    two, one = tmp_path / "two", tmp_path / "one"
    workers = _workers(children, two, free_ports(2), *flags, "--save-as", "two_workers")
    alone = _spawn(children, _train(one, *flags, "--no-save"), tmp_path / "one.log")
    for i, proc in enumerate(workers):
        log = tmp_path / f"two_worker{i}.log"
        assert _finish(proc, START_S, log) == 0, log.read_text()[-3000:]
    assert _finish(alone, START_S, tmp_path / "one.log") == 0

    status = runs.read_status(two)
    assert status["state"] == "completed" and status["model_name"] == "two_workers"
    assert status["devices"]["strategy"] == "multiworker" and status["devices"]["replicas"] == 2
    assert [w["name"] for w in status["cluster"]["workers"]] == ["worker_0", "worker_1"]
    # One model, saved by the chief; the other worker wrote its own status and nothing else.
    assert [e.name for e in Store(home / "models", shipped_root=None).list()] == ["two_workers"]
    assert sorted(p.name for p in (two / "workers" / "worker_1").iterdir()) == ["status.json"]
    assert runs.read_status(two / "workers" / "worker_1")["state"] == "completed"
    assert [w["state"] for w in runs.worker_states(two, status)] == ["completed", "completed"]

    # Per epoch, the same losses as one process with the same global batch and seed.
    pairs = list(zip(_epochs(two), _epochs(one), strict=True))
    assert [a["epoch"] for a, _ in pairs] == [1, 2]
    for a, b in pairs:
        for key in ("loss", "val_loss"):
            assert a[key] == pytest.approx(b[key], rel=LOSS_TOLERANCE), (key, a["epoch"])


@pytest.mark.slow
def test_the_recommender_trains_on_two_workers_as_the_readme_shows(home, tmp_path, children):
    """The README's ML-20M command, on the shipped ml-latest-small: sparse click batches too."""
    run_dir = tmp_path / "ml"
    flags = ["--model", "mult_vae", "--dataset", "ml-latest-small", "--epochs", "1"]
    flags += ["--precision", "float32", "--join-timeout-s", "60"]
    for i, proc in enumerate(_workers(children, run_dir, free_ports(2), *flags)):
        log = tmp_path / f"ml_worker{i}.log"
        assert _finish(proc, START_S, log) == 0, log.read_text()[-3000:]
    status = runs.read_status(run_dir)
    assert status["state"] == "completed" and status["devices"]["replicas"] == 2
    assert 0 < status["test_metrics"]["ndcg@100"] < 1
    assert [e.name for e in Store(home / "models", shipped_root=None).list()] == [
        status["model_name"]
    ]
    assert sorted(p.name for p in (run_dir / "workers" / "worker_1").iterdir()) == ["status.json"]


@pytest.mark.slow
def test_recvae_takes_turns_on_two_workers_like_one_process(home, tmp_path, children):
    # Its encoder and decoder passes are separate compiled steps, chosen before each batch: no
    # optimizer update inside a tf.cond, which tf.distribute cannot keep in step.
    flags = ["--model", "rec_vae", "--dataset", "ml-latest-small", "--epochs", "2"]
    flags += ["--hidden", "64", "--latent-dim", "32", "--precision", "float32"]
    two, one = tmp_path / "two", tmp_path / "one"
    workers = _workers(children, two, free_ports(2), *flags, "--join-timeout-s", "60")
    for i, proc in enumerate(workers):
        log = tmp_path / f"two_worker{i}.log"
        assert _finish(proc, START_S, log) == 0, log.read_text()[-3000:]
    alone = _spawn(children, _train(one, *flags, "--no-save"), tmp_path / "one.log")
    assert _finish(alone, START_S, tmp_path / "one.log") == 0
    status = runs.read_status(two)
    assert status["state"] == "completed" and status["devices"]["replicas"] == 2
    # Each worker draws its own dropout and z, so the losses agree as one process's do from seed
    # to seed (here: loss within ~1%, the small KL term within ~12%), not to the last digit.
    pairs = list(zip(_epochs(two), _epochs(one), strict=True))
    assert len(pairs) == 2
    for a, b in pairs:
        for key, rel in (("loss", 0.02), ("reconstruction_loss", 0.02), ("kl_loss", 0.25)):
            assert a[key] == pytest.approx(b[key], rel=rel), (key, a["epoch"])


# ---------------------------------------------------------------- a lost worker
@pytest.mark.slow
def test_a_killed_worker_interrupts_the_run_and_the_same_commands_resume(home, tmp_path, children):
    run_dir, ports = tmp_path / "lost", free_ports(2)
    # 13 steps an epoch, slowed down (6.5 s an epoch) so that the kill lands inside epoch 2.
    flags = [*TINY, "--epochs", "3", "--step-delay-s", "0.5", "--join-timeout-s", "60"]
    chief, other = _workers(children, run_dir, ports, *flags)
    _wait_for(
        lambda: any(
            r.get("kind") == "step" and r.get("epoch") == 2 for r in rundir.read_progress(run_dir)
        ),
        START_S,
        "a step of epoch 2",
    )
    os.killpg(other.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    log = tmp_path / "lost_worker0.log"
    assert _finish(chief, LOST_WORKER_WITHIN_S + 30, log) == 3
    assert time.monotonic() - killed_at < LOST_WORKER_WITHIN_S + 30
    rest = (
        " stopped answering, so this worker stopped too: the run is interrupted after epoch 1 of 3. "
        "Start the same command again on every machine to resume from there."
    )
    # Named when TensorFlow's first error says which worker is down (or there is only one other).
    sentences = [f"Worker 1 (127.0.0.1:{ports[1]}){rest}", f"Another worker{rest}"]
    status = runs.read_status(run_dir)
    assert status["state"] == "interrupted" and status["error"] in sentences
    assert f"Training interrupted: {status['error']}" in log.read_text()
    # The killed worker's status still says running; its pid is gone, so it reads interrupted.
    states = [w["state"] for w in runs.worker_states(run_dir, status)]
    assert states == ["interrupted", "interrupted"]
    assert [e["epoch"] for e in _epochs(run_dir)] == [1]

    # The same commands again, on every machine: on from epoch 1, nothing completed lost.
    for i, proc in enumerate(_workers(children, run_dir, ports, *flags)):
        log = tmp_path / f"lost_worker{i}.log"
        assert _finish(proc, START_S, log) == 0, log.read_text()[-3000:]
    status = runs.read_status(run_dir)
    assert status["state"] == "completed" and status["attempt"] == 2
    starts = [r for r in rundir.read_progress(run_dir) if r.get("kind") == "start"]
    assert [(s["epoch"], s["resumed"]) for s in starts] == [(0, False), (1, True)]
    assert [e["epoch"] for e in _epochs(run_dir)] == [1, 2, 3]
    assert runs.read_status(run_dir / "workers" / "worker_1")["state"] == "completed"
    assert [e.name for e in Store(home / "models", shipped_root=None).list()] == [
        status["model_name"]
    ]


@pytest.mark.slow
def test_a_stop_sent_to_the_chief_stops_every_worker_at_the_same_step(home, tmp_path, children):
    run_dir = tmp_path / "stop"
    # 6.5 s an epoch, and a third one: the Stop lands well before the run could end.
    flags = [*TINY, "--epochs", "3", "--step-delay-s", "0.5", "--join-timeout-s", "60"]
    chief, other = _workers(children, run_dir, free_ports(2), *flags)
    _wait_for(lambda: _epochs(run_dir), START_S, "the first epoch")
    # What the Train page's Stop does: a signal to the chief's process (the folder's status pid).
    assert runs.read_status(run_dir)["pid"] == chief.pid
    os.kill(chief.pid, signal.SIGTERM)
    for i, proc in enumerate((chief, other)):
        assert _finish(proc, 60, tmp_path / f"stop_worker{i}.log") == 0
    status, theirs = runs.read_status(run_dir), runs.read_status(run_dir / "workers" / "worker_1")
    assert status["state"] == theirs["state"] == "stopped"
    # At the same place (after epoch 1 or 2, or steps into the next: wherever the signal landed).
    where = (status["epoch"], status["step"])
    assert where == (theirs["epoch"], theirs["step"]) and 1 <= where[0] < 3 and where[1] < 13
    assert rundir.checkpoint_position(run_dir) == where
    assert sorted(p.name for p in (run_dir / "workers" / "worker_1").iterdir()) == ["status.json"]


def test_a_worker_that_completed_still_joins_a_chief_that_did_not(home, tmp_path, monkeypatch):
    """The chief died testing or saving after worker 1 completed: the rerun needs worker 1 again.
    A chief that never calls has completed too (it does not call then): worker 1 stays completed."""
    from vae_core import train
    from vae_core.specs import ModelSpec, TrainSpec

    run_dir, (a, b) = tmp_path / "done", (f"127.0.0.1:{p}" for p in free_ports(2))
    rundir.write_config(run_dir, ModelSpec(hidden=32), TrainSpec(strategy="multiworker"))
    own = run_dir / "workers" / "worker_1"
    own.mkdir(parents=True)
    rundir.write_json_atomic(own / "status.json", {"state": "completed", "epoch": 3, "attempt": 1})
    monkeypatch.setenv("TF_CONFIG", cluster.parse_workers(f"{a},{b}", 1).tf_config())
    # A chief started with other settings: worker 1 hears it, so it joined.
    other = {"model": {}, "train": {"epochs": 99}}
    called: list = []
    caller = threading.Thread(
        target=lambda: called.append(_meet([(f"{a},{b}", 0, other)], timeout_s=20)[0])
    )
    caller.start()
    try:
        with pytest.raises(RunError, match="was started with other settings"):
            train.run_training(run_dir, join_timeout_s=20)
    finally:
        caller.join(40)
    assert isinstance(called[0], RunError)
    assert runs.read_status(own)["state"] == "failed"

    rundir.write_json_atomic(own / "status.json", {"state": "completed", "epoch": 3, "attempt": 1})
    status = train.run_training(run_dir, join_timeout_s=1)
    assert status["state"] == "completed" and status["epoch"] == 3 and status["attempt"] == 2


# ---------------------------------------------------------------- bad values: one sentence each
@pytest.mark.slow
def test_a_worker_that_never_comes_ends_in_a_sentence_not_a_wait(home, tmp_path, children):
    run_dir, ports = tmp_path / "alone", free_ports(2)
    listed = f"127.0.0.1:{ports[0]},127.0.0.1:{ports[1]}"
    flags = [*TINY, "--workers", listed, "--task-index", "0", "--join-timeout-s", "3"]
    chief = _spawn(children, _train(run_dir, *flags), tmp_path / "alone.log")
    assert _finish(chief, START_S, tmp_path / "alone.log") == 2
    sentence = (
        f"Worker 1 (127.0.0.1:{ports[1]}) did not answer within 3 s: check its address, that the "
        f"same command runs there with --task-index 1, and that port {ports[1]} is open."
    )
    assert f"Training failed: {sentence}" in (tmp_path / "alone.log").read_text()
    assert runs.read_status(run_dir)["error"] == sentence


@pytest.mark.parametrize(
    ("flags", "sentence"),
    [
        (["--workers", "host1"], "The worker address 'host1' is not an address: write host:port"),
        (["--workers", "a:1,b:99999", "--task-index", "0"], "'b:99999' is not an address"),
        (["--workers", "a:1,a:1", "--task-index", "0"], "a:1 is listed twice in --workers."),
        (["--workers", "a:1,b:2"], "Say which of the 2 workers this machine is with --task-index"),
        (["--workers", "a:1,b:2", "--task-index", "2"], "--task-index 2 is not one of the 2"),
        (["--task-index", "1"], "--task-index goes with --workers"),
        (
            ["--workers", "a:1,b:2", "--task-index", "0", "--strategy", "mirrored"],
            "leave out --strategy mirrored.",
        ),
        (["--strategy", "multiworker"], "TF_CONFIG is not the JSON TensorFlow expects"),
        (
            ["--workers", "a:1,b:2", "--task-index", "0", "--join-timeout-s", "0"],
            "--join-timeout-s must be a number of seconds above 0.",
        ),
    ],
)
def test_bad_cluster_flags_are_one_sentence_before_anything_starts(
    home, tmp_path, monkeypatch, capsys, flags, sentence
):
    from vae_core import train

    monkeypatch.setenv("TF_CONFIG", "{not json")
    run_dir = tmp_path / "never"
    assert train.main(["--run-dir", str(run_dir), *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("Training failed: ") and sentence in err
    assert len(err.strip().splitlines()) == 1
    assert not run_dir.exists()
    assert os.environ["TF_CONFIG"] == "{not json"  # not replaced by a cluster that was refused


def test_a_one_machine_run_folder_is_not_resumed_on_several(home, tmp_path, capsys):
    from vae_core import train
    from vae_core.specs import ModelSpec, TrainSpec

    run_dir = tmp_path / "single"
    rundir.write_config(run_dir, ModelSpec(hidden=32), TrainSpec(dataset="sample"))
    flags = ["--workers", "127.0.0.1:1,127.0.0.1:2", "--task-index", "0"]
    assert train.main(["--run-dir", str(run_dir), *flags]) == 2
    assert capsys.readouterr().err == (
        f"Training failed: The run in {run_dir} trains on one machine (strategy default); start "
        "a new run folder to train on several.\n"
    )
    assert not (run_dir / "status.json").exists()


def test_help_documents_several_machines(capsys):
    from vae_core import train

    with pytest.raises(SystemExit):
        train.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--workers HOST:PORT,..." in text and "--task-index N" in text
    assert "implies --strategy multiworker" in text and "{default,mirrored,multiworker}" in text
    assert f"noticed within {LOST_WORKER_WITHIN_S} s" in text


def test_a_multi_worker_run_is_not_resumed_as_one_process(tmp_path):
    from vae_core.specs import ModelSpec, TrainSpec

    run_dir = tmp_path / "several"
    rundir.write_config(run_dir, ModelSpec(hidden=32), TrainSpec(strategy="multiworker"))
    workers = [{"name": "worker_0", "address": "a:1"}, {"name": "worker_1", "address": "b:1"}]
    status = {"state": "stopped", "cluster": {"workers": workers, "me": "worker_0"}}
    rundir.write_json_atomic(run_dir / "status.json", status)
    with pytest.raises(RunError, match="start the same command again on every machine"):
        runs.resume_run(run_dir)
    assert runs.read_status(run_dir)["state"] == "stopped"


def test_a_last_batch_too_small_to_share_between_workers_is_dropped():
    from vae_core.machine import compile_options
    from vae_core.specs import ModelSpec, TrainSpec

    spec, train = ModelSpec("mlp_vae"), TrainSpec(batch_size=128, strategy="multiworker")
    two, one = {"gpus": 0, "replicas": 2}, {"gpus": 0, "replicas": 1}
    # 129 samples: one worker would get the 129th and the other nothing (a NaN loss).
    assert compile_options(spec, train, two, n_train=129)["drop_remainder"]
    assert not compile_options(spec, train, one, n_train=129)["drop_remainder"]
    assert not compile_options(spec, train, two, n_train=130)["drop_remainder"]


def test_tensorflows_private_health_check_is_reached_only_by_a_multi_worker_run(monkeypatch):
    """Every page imports vae_core.machine: a TensorFlow that moves its private module must not
    break them, and one that drops a setting leaves that setting at TensorFlow's default."""
    import ast

    from tensorflow.python.distribute import collective_all_reduce_strategy as private

    from vae_core import machine

    tree = ast.parse(Path(machine.__file__).read_text())
    top = [n.module or "" for n in tree.body if isinstance(n, ast.ImportFrom)]
    top += [a.name for n in tree.body if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in top if m.startswith("tensorflow.python")]

    extended = private.CollectiveAllReduceExtended
    for setting in ("interval", "timeout", "retry_limit", "initial_timeout"):
        monkeypatch.setattr(extended, f"_check_health_{setting}", -1)  # put back at the end
    monkeypatch.delattr(extended, "_check_health_retry_limit")
    machine._set_worker_check(7.0)
    assert extended._check_health_interval == machine.WORKER_CHECK["interval"]
    assert extended._check_health_initial_timeout == 7.0
    assert not hasattr(extended, "_check_health_retry_limit")


def test_only_a_peer_that_is_gone_is_called_a_lost_worker():
    import tensorflow as tf

    from vae_core.machine import lost_peer

    def error(kind, message):
        return kind(None, None, message)

    down = "cluster check alive failed, /job:worker/replica:0/task:2 is down"
    # The health check names the one that is down, whichever other worker the message names first.
    said = f"Collective ops is aborted by: /job:worker/replica:0/task:1 {down}"
    assert lost_peer(error(tf.errors.UnavailableError, said), "worker_0") == "worker_2"
    # Another worker named, not as down: with three workers it may be a healthy one.
    both = "from /job:worker/replica:0/task:1 to /job:worker/replica:0/task:2: Connection reset"
    assert lost_peer(error(tf.errors.CancelledError, both), "worker_0") == ""
    assert (
        lost_peer(error(tf.errors.InternalError, "unexpected exception in check alive"), "w") == ""
    )
    # A real error of the run's own, of a kind a lost peer can raise too: not a lost worker.
    own = "Incompatible shapes: [64,784] vs. [32,784] on /job:worker/replica:0/task:0"
    for kind in (tf.errors.InternalError, tf.errors.FailedPreconditionError):
        assert lost_peer(error(kind, own), "worker_0") is None
    assert lost_peer(ValueError(down), "worker_0") is None


def test_the_recommenders_last_batch_too_small_to_share_is_dropped_too():
    import scipy.sparse as sp

    from vae_core.recsys.fit import click_dataset

    clicks = sp.random(129, 20, density=0.3, format="csr", random_state=0)
    sizes = [int(b.dense_shape[0]) for b in click_dataset(clicks, 64, 0, drop_remainder=True)]
    assert sizes == [64, 64]
    assert [int(b.dense_shape[0]) for b in click_dataset(clicks, 64, 0)] == [64, 64, 1]


# ---------------------------------------------------------------- the cluster and the handshake
def test_workers_flag_and_tf_config_name_the_same_cluster():
    named = cluster.parse_workers("10.0.0.1:2222, 10.0.0.2:2223", 1)
    config = json.loads(named.tf_config())
    assert config == {
        "cluster": {"worker": ["10.0.0.1:2222", "10.0.0.2:2223"]},
        "task": {"type": "worker", "index": 1},
    }
    assert cluster.from_tf_config(named.tf_config()) == named
    assert not named.chief and named.own.name == "worker_1"
    assert named.commands("python -m vae_core.train --run-dir r")[1] == (
        "python -m vae_core.train --run-dir r --workers 10.0.0.1:2222,10.0.0.2:2223 --task-index 1"
    )
    # TF_CONFIG's own chief job comes first: it is the one that owns the run folder.
    chiefly = cluster.from_tf_config(
        json.dumps({"cluster": {"worker": ["b:2"], "chief": ["a:1"]}, "task": {"type": "chief"}})
    )
    assert chiefly.chief and chiefly.addresses == ["a:1", "b:2"]
    assert cluster.from_tf_config("") is None and cluster.from_tf_config("{}") is None
    with pytest.raises(UserError, match="names a ps job"):
        cluster.from_tf_config(json.dumps({"cluster": {"ps": ["a:1"]}, "task": {}}))
    with pytest.raises(UserError, match=r"task \(worker 5\) is not one of the cluster's 1"):
        cluster.from_tf_config(
            json.dumps({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 5}})
        )


SETTINGS = {"model": {"kind": "mlp_vae", "hidden": 32}, "train": {"epochs": 2, "seed": 0}}


def _meet(members: list[tuple[str, int, dict]], timeout_s: float = 10.0) -> list:
    """Run each (addresses, index, settings) handshake in a thread; its result or its error."""
    results: list = [None] * len(members)

    def one(i, addresses, index, settings):
        try:
            named = cluster.parse_workers(addresses, index)
            info = {"host": "h", "pid": i}
            results[i] = cluster.handshake(named, settings, info, timeout_s)
        except RunError as err:
            results[i] = err

    threads = [threading.Thread(target=one, args=(i, *m)) for i, m in enumerate(members)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout_s + 30)
    assert not any(t.is_alive() for t in threads)
    return results


def test_workers_that_agree_meet_and_say_who_they_are():
    a, b, c = (f"127.0.0.1:{p}" for p in free_ports(3))
    listed = f"{a},{b},{c}"
    chief, one, two = _meet([(listed, i, SETTINGS) for i in range(3)])
    assert chief == {f"worker_{i}": {"host": "h", "pid": i} for i in range(3)}
    assert one == two == {"worker_0": {"host": "h", "pid": 0}}


def test_workers_that_disagree_each_end_in_a_sentence():
    a, b, c = (f"127.0.0.1:{p}" for p in free_ports(3))
    # A worker started with a longer list than the chief's.
    chief, other = _meet([(f"{a},{b}", 0, SETTINGS), (f"{a},{b},{c}", 1, SETTINGS)])
    assert str(chief) == (
        f"Worker 1 ({b}) was started with 3 workers and worker 0 ({a}) with 2: start every "
        "machine with the same --workers list."
    )
    assert str(other) == (
        f"Worker 0 ({a}) was started with 2 workers and worker 1 ({b}) with 3: start every "
        "machine with the same --workers list."
    )
    # The same list, other settings.
    longer = {**SETTINGS, "train": {"epochs": 3, "seed": 0}}
    chief, other = _meet([(f"{a},{b}", 0, SETTINGS), (f"{a},{b}", 1, longer)])
    assert str(chief) == (
        f"Worker 1 ({b}) was started with other settings: epochs is 3 there and 2 on worker 0 "
        f"({a}). Start every machine with the same command (a run folder that exists keeps its "
        "own settings)."
    )
    assert isinstance(other, RunError) and "epochs is 2 there and 3 on worker 1" in str(other)


def test_workers_not_called_yet_hear_the_chiefs_verdict_at_once():
    a, b, c = (f"127.0.0.1:{p}" for p in free_ports(3))
    listed, longer = f"{a},{b},{c}", {**SETTINGS, "train": {"epochs": 3, "seed": 0}}
    started = time.monotonic()
    chief, _, two = _meet([(listed, 0, SETTINGS), (listed, 1, longer), (listed, 2, SETTINGS)], 30)
    assert time.monotonic() - started < 15  # not the 30 s join timeout
    assert str(two) == str(chief) and "epochs is 3 there and 2 on worker 0" in str(two)


def test_a_missing_chief_or_worker_is_a_sentence_within_the_timeout():
    a, b = (f"127.0.0.1:{p}" for p in free_ports(2))
    started = time.monotonic()
    (chief,) = _meet([(f"{a},{b}", 0, SETTINGS)], timeout_s=1.0)
    (other,) = _meet([(f"{a},{b}", 1, SETTINGS)], timeout_s=1.0)
    assert time.monotonic() - started < 10
    assert str(chief).startswith(f"Worker 1 ({b}) did not answer within 1 s: check its address")
    assert str(other) == (
        f"Worker 0 ({a}) did not call this worker within 1 s: start the same command there with "
        f"its --task-index, and check that port {b.rpartition(':')[2]} here is open to it."
    )


def test_something_else_at_a_workers_address_is_named():
    a, b = (f"127.0.0.1:{p}" for p in free_ports(2))
    stranger = socket.create_server(("127.0.0.1", int(b.rpartition(":")[2])))

    def answer_nonsense():
        conn, _ = stranger.accept()
        with conn:
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

    thread = threading.Thread(target=answer_nonsense)
    thread.start()
    try:
        (chief,) = _meet([(f"{a},{b}", 0, SETTINGS)])
    finally:
        thread.join(10)
        stranger.close()
    assert str(chief).startswith(f"What answers at {b} is not a VAE Lab worker of this run")


def test_this_machine_must_be_able_to_take_its_own_address():
    (port,) = free_ports(1)
    with socket.create_server(("127.0.0.1", port)):
        with pytest.raises(UserError, match=f"Port {port} on this machine is taken"):
            cluster.check_own_address(cluster.parse_workers(f"127.0.0.1:{port}", 0))
    # 192.0.2.1 is TEST-NET-1: documentation only, never a machine's own address.
    with pytest.raises(UserError, match="192.0.2.1 is not an address of this machine"):
        cluster.check_own_address(cluster.parse_workers(f"127.0.0.1:1,192.0.2.1:{port}", 1))
