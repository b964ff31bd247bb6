"""Training runs end to end on the bundled sample: files, the CLI, stop, kill and resume, strategies.

Models are tiny (hidden 32) so a run costs a second or two; the tests that start child processes
pay TensorFlow's start-up (a few seconds each) and are marked slow.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.stops import StopAfter
from vae_core import rundir, runs, training_now
from vae_core.errors import DataError
from vae_core.specs import ModelSpec, TrainSpec
from vae_core.store import Store

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TINY = dict(hidden=32)
UNTRAINED_NATS = 784 * math.log(2)  # -ELBO of a model that predicts 0.5 for every pixel


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("VAE_LAB_HOME", str(home))
    monkeypatch.setenv("VAE_LAB_OFFLINE", "1")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    return home


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(tmp_path / "store", shipped_root=None)


def _cli(run_dir: Path, *flags: str) -> list[str]:
    return [sys.executable, "-m", "vae_core.train", "--run-dir", str(run_dir), *flags]


def _spawn(children, args: list[str]) -> subprocess.Popen:
    proc = subprocess.Popen(
        args,
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    children.append(proc)
    return proc


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _epoch_lines(run_dir: Path) -> list[dict]:
    return [r for r in rundir.read_progress(run_dir) if r["kind"] == "epoch"]


def _all_lines_are_json(run_dir: Path) -> list[dict]:
    text = (run_dir / rundir.PROGRESS).read_text()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def _newest_png(run_dir: Path) -> Path:
    pngs = rundir.epoch_pngs(run_dir)
    return pngs[max(pngs)]


def _png_size(path: Path) -> tuple[int, int]:
    with Image.open(io.BytesIO(path.read_bytes())) as img:
        return img.size


def _grid_size(rows: int) -> tuple[int, int]:
    """(width, height) of an 8-column grid of 28-pixel digits, 2-pixel gaps, drawn at scale 2."""
    return (8 * 30 + 2) * 2, (rows * 30 + 2) * 2


def _scalars(log_dir: Path, tag: str) -> list[float]:
    """The values TensorBoard would plot for `tag`, read back from the event files."""
    import tensorflow as tf

    values = []
    for path in sorted(log_dir.glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.tag == tag:
                    assert value.metadata.plugin_data.plugin_name == "scalars"
                    values.append(pytest.approx(float(tf.make_ndarray(value.tensor))))
    return values


# ---------------------------------------------------------------- one run, in this process
def test_run_training_writes_every_file_and_stores_the_model(home, store, tmp_path):
    from vae_core.train import run_training

    run_dir = tmp_path / "run"
    status = run_training(
        run_dir,
        ModelSpec("mlp_vae", latent_dim=2, **TINY),
        TrainSpec("sample", epochs=2, batch_size=32, log_every_s=0),
        store=store,
    )

    assert status["state"] == "completed" and status["epoch"] == 2
    assert json.loads((run_dir / rundir.STATUS).read_text())["state"] == "completed"
    assert status["devices"]["replicas"] == 1
    config = json.loads((run_dir / rundir.CONFIG).read_text())
    assert config["model"]["kind"] == "mlp_vae" and config["train"]["epochs"] == 2
    assert config["command"].startswith(f"python -m vae_core.train --run-dir {run_dir}")

    lines = _all_lines_are_json(run_dir)
    kinds = {line["kind"] for line in lines}
    assert {"start", "step", "epoch"} <= kinds
    epochs = [line for line in lines if line["kind"] == "epoch"]
    assert [e["epoch"] for e in epochs] == [1, 2]
    for e in epochs:
        for key in ("loss", "reconstruction_loss", "kl_loss", "val_loss", "kl_weight", "eta_s"):
            assert math.isfinite(e[key]), key
        assert e["steps_per_epoch"] == 13  # 400 training digits in batches of 32
    assert epochs[1]["eta_s"] == 0
    steps = [line for line in lines if line["kind"] == "step"]
    assert all(math.isfinite(s["loss"]) and 1 <= s["step"] <= 13 for s in steps)

    # Inputs, reconstructions, two rows of prior samples; one grid per epoch.
    assert sorted(rundir.epoch_pngs(run_dir)) == [1, 2]
    assert _png_size(_newest_png(run_dir)) == _grid_size(rows=4)
    assert _scalars(run_dir / "tb" / "train", "epoch_loss") == [e["loss"] for e in epochs]
    assert _scalars(run_dir / "tb" / "validation", "epoch_loss") == [e["val_loss"] for e in epochs]
    assert (run_dir / "backup" / "epoch_0002.weights.h5").is_file()

    entry = store.get(status["model_name"])
    assert entry.name == f"mlp_vae_{run_dir.name}"
    neg_elbo = entry.meta["test_metrics"]["neg_elbo"]
    assert math.isfinite(neg_elbo) and neg_elbo < UNTRAINED_NATS
    assert status["test_metrics"]["neg_elbo"] == pytest.approx(neg_elbo)
    assert entry.meta["run_id"] == run_dir.name and entry.meta["epochs"] == 2
    assert entry.meta["command"] == config["command"]
    assert store.load(entry.name).spec.hidden == 32


def test_kl_weight_warms_up_from_zero_to_beta(home, tmp_path):
    from vae_core.train import run_training

    run_dir = tmp_path / "warmup"
    run_training(
        run_dir,
        ModelSpec("mlp_vae", beta=0.5, **TINY),
        TrainSpec("sample", epochs=3, batch_size=64, kl_warmup_epochs=2, log_every_s=0),
        save=False,
    )
    records = rundir.read_progress(run_dir)
    assert [e["kl_weight"] for e in records if e["kind"] == "epoch"] == [0.0, 0.25, 0.5]
    weights = [r["kl_weight"] for r in records if r["kind"] in ("step", "epoch")]
    assert weights == sorted(weights) and weights[0] == 0.0 and weights[-1] == 0.5


@pytest.mark.parametrize(
    ("spec", "rows", "metric"),
    [
        (ModelSpec("cvae", latent_dim=2, **TINY), 4, "neg_elbo"),
        (ModelSpec("conv_dae", latent_dim=8, **TINY), 3, "psnr"),  # noisy, denoised, clean
    ],
    ids=["cvae", "conv_dae"],
)
def test_labels_and_noise_reach_their_models(home, store, tmp_path, spec, rows, metric):
    from vae_core.train import run_training

    run_dir = tmp_path / spec.kind
    status = run_training(
        run_dir, spec, TrainSpec("sample", epochs=1, batch_size=64, noise="gaussian"), store=store
    )
    assert status["state"] == "completed"
    assert math.isfinite(status["test_metrics"][metric])
    assert _png_size(_newest_png(run_dir)) == _grid_size(rows)
    epoch = _epoch_lines(run_dir)[0]
    assert ("kl_loss" in epoch) == spec.is_vae
    assert store.get(status["model_name"]).kind == spec.kind


def test_a_stop_mid_epoch_keeps_its_steps_and_resume_goes_on_from_that_step(
    home, store, tmp_path, capsys
):
    from vae_core.train import run_training

    run_dir = tmp_path / "stopped"
    # 400 digits / 8 = 50 steps, 5 per execution: 10 batch-end checks per epoch, 1 at its end,
    # 1 before fit. 15 checks pass, so the stop lands after step 20 of epoch 2.
    model, train = ModelSpec(**TINY), TrainSpec("sample", epochs=3, batch_size=8, log_every_s=0)
    train.steps_per_execution = 5
    status = run_training(run_dir, model, train, store=store, stop_event=StopAfter(15))

    assert status["state"] == "stopped" and (status["epoch"], status["step"]) == (1, 20)
    assert status["model_name"] is None
    assert [e["epoch"] for e in _epoch_lines(run_dir)] == [1]
    last_step = [r for r in rundir.read_progress(run_dir) if r["kind"] == "step"][-1]
    assert (last_step["epoch"], last_step["step"]) == (2, 20)
    backups = sorted(p.name for p in (run_dir / "backup").glob("epoch_*"))
    assert backups == ["epoch_0001.weights.h5", "epoch_0001_step_000020.weights.h5"]
    assert _restored_iterations(run_dir, model, train, steps=50)[:2] == ((1, 20), 70)
    assert "Stopped at step 20 of 50 in epoch 2 of 3" in capsys.readouterr().out

    status = run_training(run_dir, store=store)  # the stored config wins; no specs needed
    assert status["state"] == "completed" and status["epoch"] == 3
    records = rundir.read_progress(run_dir)
    assert [e["epoch"] for e in records if e["kind"] == "epoch"] == [1, 2, 3]
    starts = [i for i, r in enumerate(records) if r["kind"] == "start"]
    assert [(records[i]["epoch"], records[i]["step"]) for i in starts] == [(0, 0), (1, 20)]
    # Epoch 2's first 20 steps stay on the record, and its rest starts after them.
    before = [r["step"] for r in records[: starts[1]] if r.get("epoch") == 2]
    after = [r["step"] for r in records[starts[1] :] if r.get("epoch") == 2 and r["kind"] == "step"]
    assert before and max(before) == 20 and min(after) > 20
    # Not one step lost or done twice: 3 epochs of 50 steps.
    assert _restored_iterations(run_dir, model, train, steps=50)[:2] == ((3, 0), 150)
    assert status["attempt"] == 2


def test_a_failure_is_recorded_with_a_sentence(home, tmp_path, monkeypatch, capsys):
    from vae_core.train import main

    monkeypatch.setenv("VAE_LAB_DATA_DIR", str(tmp_path / "no-data"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "no-keras"))
    run_dir = tmp_path / "failed"
    code = main(["--run-dir", str(run_dir), "--dataset", "fashion_mnist", "--hidden", "32"])

    assert code == 2
    err = capsys.readouterr().err
    status = runs.read_status(run_dir)
    assert status["state"] == "failed"
    assert "Fashion-MNIST is not on this computer" in status["error"]
    assert status["error"] in err
    from vae_core.train import run_training

    with pytest.raises(DataError):  # run_training raises after recording it
        run_training(run_dir)


# ---------------------------------------------------------------- child processes
@pytest.mark.slow
def test_cli_trains_and_saves(home, tmp_path, children):
    run_dir = tmp_path / "cli-run"
    proc = _spawn(
        children,
        _cli(
            run_dir, "--model", "mlp_vae", "--hidden", "32", "--epochs", "1", "--dataset", "sample"
        ),
    )
    out = proc.communicate(timeout=120)[0].decode()

    assert proc.returncode == 0, out
    assert "epoch 1/1" in out
    status = runs.read_status(run_dir)
    assert status["state"] == "completed"
    assert Store(home / "models", shipped_root=None).get(status["model_name"]).kind == "mlp_vae"


@pytest.mark.slow
def test_sigkill_then_resume_loses_no_completed_epoch(home, tmp_path, children):
    run_dir = tmp_path / "killed"
    epochs = 20
    flags = ["--hidden", "32", "--dataset", "sample", "--epochs", str(epochs)]
    proc = _spawn(children, _cli(run_dir, *flags, "--batch-size", "16", "--log-every-s", "0"))
    before = _wait_for(
        lambda: (lines := _epoch_lines(run_dir)) and len(lines) >= 2 and lines, 120, "2 epochs"
    )
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()

    assert runs.read_status(run_dir)["state"] == "interrupted"
    assert len(_epoch_lines(run_dir)) < epochs
    _all_lines_are_json(run_dir)
    with open(run_dir / rundir.PROGRESS, "ab") as f:  # as if the kill had cut a write short
        f.write(b'{"kind": "step", "epoch": 9')
    assert len(rundir.read_progress(run_dir)) == len(_all_lines_are_json_but_last(run_dir))

    pid = runs.resume_run(run_dir)
    children.append(training_now._CHILDREN[pid])
    _wait_for(lambda: runs.read_status(run_dir)["state"] == "completed", 120, "completion")

    lines = _all_lines_are_json(run_dir)  # the torn line is gone
    epoch_lines = [line for line in lines if line["kind"] == "epoch"]
    assert [e["epoch"] for e in epoch_lines] == list(range(1, epochs + 1))
    start = [line for line in lines if line["kind"] == "start"]
    assert len(start) == 2 and start[1]["resumed"]
    resumed_at = start[1]["epoch"]
    # The kill may land between an epoch's line and its checkpoint; that epoch is trained again.
    assert max(1, len(before) - 1) <= resumed_at < epochs
    kept = {e["epoch"]: e["time"] for e in epoch_lines}
    assert all(kept[e["epoch"]] == e["time"] for e in before if e["epoch"] <= resumed_at)
    status = runs.read_status(run_dir)
    assert status["attempt"] == 2 and status["epoch"] == epochs
    assert Store(home / "models", shipped_root=None).get(status["model_name"])


def _all_lines_are_json_but_last(run_dir: Path) -> list[dict]:
    text = (run_dir / rundir.PROGRESS).read_text()
    return [json.loads(line) for line in text.split("\n")[:-1]]


@pytest.mark.slow
def test_stop_then_resume_through_runs_and_one_run_at_a_time(home, children):
    root = home / "runs"
    spec = ModelSpec(**TINY)
    run_dir = runs.create_run(
        spec, TrainSpec("sample", epochs=10, batch_size=8, log_every_s=0.2), root=root
    )
    pid = runs.start_run(run_dir)
    children.append(training_now._CHILDREN[pid])
    assert runs.read_status(run_dir)["state"] == "starting"

    other = runs.create_run(spec, TrainSpec("sample", epochs=1), root=root)
    with pytest.raises(runs.RunError, match=f"already in progress \\(run {run_dir.name}"):
        runs.start_run(other)

    _wait_for(lambda: _epoch_lines(run_dir), 120, "the first epoch")
    assert runs.stop_run(run_dir) is True
    _wait_for(lambda: runs.read_status(run_dir)["state"] == "stopped", 60, "the stop")
    status = runs.read_status(run_dir)
    done = status["epoch"]
    assert 1 <= done < 10
    assert [e["epoch"] for e in _epoch_lines(run_dir)] == list(range(1, done + 1))
    assert (run_dir / "backup" / f"epoch_{done:04d}.weights.h5").is_file()
    assert runs.active_run(root) is None
    assert re.search(r"Stopped (after epoch|at step)", (run_dir / rundir.LOG_FILE).read_text())

    pid = runs.resume_run(run_dir)
    children.append(training_now._CHILDREN[pid])
    assert not (run_dir / rundir.STOP_FILE).exists()
    _wait_for(lambda: runs.read_status(run_dir)["state"] == "completed", 120, "completion")
    assert [e["epoch"] for e in _epoch_lines(run_dir)] == list(range(1, 11))
    infos = runs.list_runs(root)
    assert [i.path.name for i in infos] == [other.name, run_dir.name]
    assert infos[1].state == "completed" and infos[1].last_epoch["epoch"] == 10


@pytest.mark.slow
def test_mirrored_strategy_over_two_logical_cpus(home, tmp_path, children):
    run_dir = tmp_path / "mirrored"
    env = {**os.environ, "VAE_LAB_LOGICAL_CPUS": "2"}
    flags = ["--hidden", "32", "--dataset", "sample", "--epochs", "1", "--strategy", "mirrored"]
    proc = subprocess.Popen(
        _cli(run_dir, *flags),
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    children.append(proc)
    out = proc.communicate(timeout=180)[0].decode()

    assert proc.returncode == 0, out
    status = runs.read_status(run_dir)
    assert status["state"] == "completed"
    assert status["devices"]["strategy"] == "mirrored"
    assert status["devices"]["replicas"] == 2
    assert len(status["devices"]["replica_devices"]) == 2
    assert np.isfinite(status["test_metrics"]["neg_elbo"])


# ---------------------------------------------------------------- compile settings and precision
def test_cpu_bf16_flags_are_read_from_cpuinfo():
    from vae_core.machine import cpu_has_bf16

    assert cpu_has_bf16("processor : 0\nflags\t\t: fpu avx2 avx512f avx512_bf16\n")
    assert cpu_has_bf16("flags : sse amx_bf16 amx_tile\n")
    assert not cpu_has_bf16("flags : fpu avx2 avx512f fma\n")
    assert not cpu_has_bf16("")


def test_compile_options_follow_the_kind_the_device_and_the_spec(monkeypatch):
    from vae_core import machine as train

    cpu, gpu = {"gpus": 0}, {"gpus": 1}
    monkeypatch.setattr(train, "cpu_has_bf16", lambda cpuinfo=None: True)
    mlp = train.compile_options(ModelSpec("mlp_vae"), TrainSpec(), cpu, n_train=60_000)
    # bfloat16 on a CPU: TensorFlow's oneDNN kernels (XLA's CPU GEMMs do not use bfloat16 math).
    assert mlp == {
        "precision": "mixed_bfloat16",
        "jit_compile": False,
        "steps_per_execution": train.STEPS_PER_EXECUTION,
        "drop_remainder": True,
    }
    # float32 on a CPU: XLA for the dense kinds, one step per call; small sets keep their last batch.
    f32 = train.compile_options(ModelSpec("cvae"), TrainSpec(precision="float32"), cpu, 400)
    assert f32["jit_compile"] is True and f32["steps_per_execution"] == 1
    assert not f32["drop_remainder"]
    conv = train.compile_options(ModelSpec("conv_dae"), TrainSpec(precision="float32"), cpu, 60_000)
    assert conv["jit_compile"] is False and conv["drop_remainder"]
    assert conv["steps_per_execution"] == train.CONV_CPU_STEPS_PER_EXECUTION
    on_gpu = train.compile_options(ModelSpec("mlp_vae"), TrainSpec(), gpu, 60_000)
    assert on_gpu["precision"] == "float32" and on_gpu["jit_compile"] == "auto"
    # tf.distribute gets no XLA and one step per call.
    spec = TrainSpec(precision="float32", strategy="mirrored")
    mirrored = train.compile_options(ModelSpec("mlp_vae"), spec, cpu, 60_000)
    assert mirrored["precision"] == "float32" and mirrored["jit_compile"] is False
    assert mirrored["steps_per_execution"] == 1
    monkeypatch.setattr(train, "cpu_has_bf16", lambda cpuinfo=None: False)
    assert (
        train.compile_options(ModelSpec("mlp_vae"), TrainSpec(), cpu, 10)["precision"] == "float32"
    )


def test_bad_precision_or_schedule_is_a_user_error():
    with pytest.raises(Exception, match="precision"):
        TrainSpec(precision="float16")
    with pytest.raises(Exception, match="schedule"):
        TrainSpec(lr_schedule="step")


def test_mixed_bfloat16_training_saves_a_float32_model(home, store, tmp_path):
    import keras

    from vae_core.train import run_training

    before = keras.config.dtype_policy().name
    run_dir = tmp_path / "bf16"
    train = TrainSpec("sample", epochs=1, batch_size=32, precision="mixed_bfloat16")
    status = run_training(run_dir, ModelSpec("mlp_vae", latent_dim=2, **TINY), train, store=store)

    assert status["state"] == "completed" and status["compile"]["precision"] == "mixed_bfloat16"
    assert keras.config.dtype_policy().name == before  # the caller's policy is back
    assert rundir.epoch_pngs(run_dir)
    assert math.isfinite(status["test_metrics"]["neg_elbo"])
    bundle = store.load(status["model_name"])
    policies = {layer.dtype_policy.name for layer in bundle.composite._flatten_layers()}
    assert policies == {"float32"}
    out = bundle.composite(np.zeros((2, 28, 28, 1), np.float32), training=False)
    assert np.asarray(out).dtype == np.float32
    assert store.get(status["model_name"]).meta["trained_with"]["precision"] == "mixed_bfloat16"


def _restored_iterations(run_dir: Path, model_spec: ModelSpec, train_spec: TrainSpec, steps: int):
    """optimizer.iterations and the learning rate as a fresh trainer restores them."""
    from vae_core.machine import make_optimizer
    from vae_core.models import Trainer, build_model
    from vae_core.watch import restore_checkpoint

    trainer = Trainer(build_model(model_spec))
    trainer.compile(optimizer=make_optimizer(train_spec, steps))
    trainer(np.zeros((1, 28, 28, 1), np.float32))
    trainer.optimizer.build(trainer.trainable_variables)
    position = restore_checkpoint(trainer, run_dir)
    lr = float(np.asarray(trainer.optimizer.learning_rate))
    return position, int(trainer.optimizer.iterations.numpy()), lr


def test_resume_continues_the_cosine_schedule(home, store, tmp_path):
    from vae_core.train import run_training

    run_dir = tmp_path / "cosine"
    model = ModelSpec(**TINY)
    # 400 digits / 40 = 10 steps, 5 per execution: 3 checks per epoch (2 batch ends, its end)
    # plus 1 before fit; 4 pass, so the stop lands after step 5 of epoch 2, which it keeps.
    train = TrainSpec("sample", epochs=3, batch_size=40, learning_rate=3e-3, lr_schedule="cosine")
    train.steps_per_execution = 5
    status = run_training(run_dir, model, train, store=store, stop_event=StopAfter(4))
    assert status["state"] == "stopped" and (status["epoch"], status["step"]) == (1, 5)
    epoch, iterations, lr = _restored_iterations(run_dir, model, train, steps=10)
    assert (epoch, iterations) == ((1, 5), 15)
    assert lr == pytest.approx(3e-3 * 0.5 * (1 + math.cos(math.pi * 15 / 30)), rel=1e-4)

    status = run_training(run_dir, store=store)
    assert status["state"] == "completed" and status["epoch"] == 3
    epoch, iterations, lr = _restored_iterations(run_dir, model, train, steps=10)
    assert (epoch, iterations) == ((3, 0), 30)  # the schedule went on from step 15
    assert lr == pytest.approx(0.0, abs=1e-9)
