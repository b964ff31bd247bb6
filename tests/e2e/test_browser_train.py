"""Training in a real browser: start a run on the bundled sample, watch it move, stop and resume it;
and the faults: the training process killed mid-epoch, the app server restarted during a run."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

import browser_ui as ui
import pytest

from vae_core import rundir, runs
from vae_core.specs import ModelSpec, TrainSpec

PROGRESS = re.compile(r"Epoch (\d+) of (\d+)")


def _progress_text(page) -> str:
    bar = ui.main(page).locator('[data-testid="stProgress"]')
    return bar.inner_text() if bar.count() else ""


def _epoch_lines(run_dir: Path) -> list[dict]:
    return [r for r in rundir.read_progress(run_dir) if r.get("kind") == "epoch"]


def _assert_every_epoch_once(run_dir: Path, epochs: int) -> None:
    assert [r["epoch"] for r in _epoch_lines(run_dir)] == list(range(1, epochs + 1))


def _state_text(page, state: str, timeout_s: float = 120) -> None:
    """Wait for the run's header line ("Run <id> · MLP VAE · bundled sample · <icon> state")."""
    line = re.compile(rf"^Run \S+ · .*\b{state}\s*$", re.MULTILINE)
    ui.wait_until(
        lambda: line.search(ui.main(page).inner_text()), timeout_s, f"the run shows '{state}'"
    )


def _sample_settings(page) -> None:
    """After choosing the sample: its own preset's settings are drawn anew; wait for them alone."""
    ui.settle(page)
    epochs = ui.main(page).get_by_role("spinbutton", name="Epochs", exact=True)
    ui.wait_until(lambda: epochs.count() == 1, 30, "the sample's settings")


@pytest.fixture
def runs_here(server, monkeypatch):
    """Start runs from the test into the server's runs folder (the child inherits this env)."""
    monkeypatch.setenv("VAE_LAB_HOME", str(server.home))
    monkeypatch.setenv("VAE_LAB_OFFLINE", "1")
    return server.home / "runs"


def _start(root: Path, epochs: int, name: str) -> tuple[Path, int]:
    run_dir = runs.create_run(
        ModelSpec("mlp_vae", latent_dim=2, hidden=512),
        # Slow motion and one step per call, so the test can catch the run part-way on any machine.
        TrainSpec(
            dataset="sample",
            epochs=epochs,
            batch_size=16,
            log_every_s=0.25,
            step_delay_s=0.02,
            steps_per_execution=1,
        ),
        root=root,
        save_as=name,
    )
    return run_dir, runs.start_run(run_dir)


def test_train_on_the_sample_watch_it_stop_and_resume(server, page):
    name = "e2e_trained_in_browser"
    ui.open_page(page, server, "train", "Train", model="e2e_mlp_vae")
    body = ui.main(page)
    body.get_by_text("The bundled sample: 400 digits").click()
    _sample_settings(page)
    body.get_by_role("spinbutton", name="Epochs", exact=True).fill("60")
    ui.press_slider(page, "Batch size", "Home", 1)  # 16 digits per step: 25 steps an epoch
    body.get_by_role("textbox", name="Model name (optional)").fill(name)
    body.get_by_role("button", name=re.compile("Start training")).click()

    # The progress bar moves: two different "Epoch N of 60" texts, the later one further on.
    _state_text(page, "running")
    seen: list[int] = []

    def moved():
        found = PROGRESS.search(_progress_text(page))
        if found:
            assert found.group(2) == "60"
            if not seen or int(found.group(1)) != seen[-1]:
                seen.append(int(found.group(1)))
        return len(seen) >= 2

    ui.wait_until(moved, 180, "the progress bar moved on by an epoch", every=0.3)
    assert seen == sorted(seen)
    # Curves and the per-epoch picture appear while it trains.
    body.locator('[data-testid="stPlotlyChart"]').first.wait_for(timeout=60_000)
    body.get_by_text(re.compile(r"^After epoch \d+")).first.wait_for(timeout=60_000)
    ui.assert_clean(page)
    ui.shot(page, "train_running")

    body.get_by_role("button", name=re.compile("Stop")).click()
    _state_text(page, "stopped", 120)
    # A Stop between epochs, or part-way through one (whose steps are kept).
    found = re.search(
        r"Stopped (?:after epoch (\d+)|at step \d+ of 25 in epoch (\d+)) of 60", body.inner_text()
    )
    stopped_at = int(found.group(1)) if found.group(1) else int(found.group(2)) - 1
    assert 1 <= stopped_at < 60
    run_dir = runs.active_run(server.home / "runs") or runs.list_runs(server.home / "runs")[0].path
    assert runs.read_status(run_dir)["state"] == "stopped"
    _assert_every_epoch_once(run_dir, stopped_at)
    ui.shot(page, "train_stopped")

    body.get_by_role("button", name=re.compile("Resume")).click()
    _state_text(page, "completed", 240)
    body.get_by_text(re.compile(f"The model {name} is saved")).wait_for(timeout=60_000)
    ui.settle(page)
    ui.assert_clean(page)
    _assert_every_epoch_once(run_dir, 60)
    assert (server.home / "models" / f"{name}.keras").is_file()
    # The new model is in the sidebar's list.
    ui.wait_until(lambda: name in ui.model_list(page), 30, f"{name} is in the model list")
    ui.shot(page, "train_completed")


def test_enter_in_a_settings_box_does_not_start_training(server, page, runs_here):
    before = {r.run_id for r in runs.list_runs(runs_here)}
    ui.open_page(page, server, "train", "Train", model="e2e_mlp_vae")
    body = ui.main(page)
    body.get_by_text("The bundled sample: 400 digits to train, 100 to validate").click()
    _sample_settings(page)
    epochs = body.get_by_role("spinbutton", name="Epochs", exact=True)
    epochs.fill("3")
    epochs.press("Enter")
    name = body.get_by_role("textbox", name="Model name (optional)")
    name.fill("not_yet")
    name.press("Enter")
    time.sleep(3)  # a submitted form would have made a run folder by now
    ui.settle(page)
    assert {r.run_id for r in runs.list_runs(runs_here)} == before
    assert "Training started" not in body.inner_text()
    ui.assert_clean(page)


def test_a_killed_training_process_shows_interrupted_and_resumes(server, page, runs_here):
    epochs, name = 40, "e2e_killed_then_resumed"
    models_before = {p.name: p.stat().st_mtime for p in (server.home / "models").iterdir()}
    ui.open_page(page, server, "train", "Train", model="e2e_mlp_vae")
    run_dir, pid = _start(runs_here, epochs, name)
    # A page opened before the run started only polls once a run is active: look again.
    ui.open_page(page, server, "train", "Train", model="e2e_mlp_vae")
    _state_text(page, "running")

    # Kill it mid-epoch, once a few epochs are checkpointed.
    def mid_epoch():
        status = json.loads((run_dir / "status.json").read_text())
        return status.get("epoch", 0) >= 3 and status.get("step", 0) > 0 and status

    ui.wait_until(mid_epoch, 180, "the run is part-way into epoch 4 or later", every=0.05)
    os.kill(pid, signal.SIGKILL)
    ui.wait_until(lambda: not runs.is_training_process(pid), 10, "the child is gone")
    checkpoint = json.loads((run_dir / "backup" / "checkpoint.json").read_text())["epoch"]
    kept = [r for r in rundir.read_progress(run_dir) if r.get("epoch", 0) <= checkpoint]
    assert [r["epoch"] for r in kept if r["kind"] == "epoch"] == list(range(1, checkpoint + 1))
    assert runs.read_status(run_dir)["state"] == "interrupted"

    _state_text(page, "interrupted")
    warning = ui.main(page).get_by_text("ended without finishing").inner_text()
    done = int(re.search(r"after epoch (\d+) of 40", warning).group(1))
    assert done >= checkpoint
    ui.assert_clean(page)
    ui.shot(page, "train_interrupted")

    ui.main(page).get_by_role("button", name=re.compile("Resume")).click()
    _state_text(page, "completed", 240)
    ui.settle(page)
    ui.assert_clean(page)
    # Nothing that was finished is lost: the lines of every checkpointed epoch are still there,
    # unchanged, and every epoch appears exactly once.
    after = rundir.read_progress(run_dir)
    assert after[: len(kept)] == kept
    _assert_every_epoch_once(run_dir, epochs)
    restart = next(r for r in after if r.get("kind") == "start" and r.get("resumed"))
    assert restart["epoch"] == checkpoint
    assert (runs_here.parent / "models" / f"{name}.keras").is_file()
    for model, mtime in models_before.items():  # the other stored models are untouched
        assert (server.home / "models" / model).stat().st_mtime == mtime
    ui.shot(page, "train_resumed_after_kill")


def test_after_a_server_restart_the_page_shows_the_true_state(server, page, runs_here):
    ui.open_page(page, server, "train", "Train", model="e2e_mlp_vae")
    # Long enough not to end while the server restarts on a slow machine; the test stops it.
    run_dir, pid = _start(runs_here, 1000, "e2e_survives_restart")
    ui.open_page(page, server, "train", "Train", model="e2e_mlp_vae")
    _state_text(page, "running")

    server.stop(signal.SIGKILL)  # the server dies; the child lives in its own session
    time.sleep(1)
    assert runs.is_training_process(pid), "the training child died with the server"
    server.start()

    ui.open_page(page, server, "train", "Train", model="e2e_mlp_vae")
    _state_text(page, "running")
    first = ui.wait_until(lambda: PROGRESS.search(_progress_text(page)), 60, "progress is shown")
    ui.wait_until(
        lambda: (m := PROGRESS.search(_progress_text(page))) and m.group(1) != first.group(1),
        120,
        "the progress bar keeps moving after the restart",
    )
    ui.shot(page, "train_after_server_restart")
    ui.main(page).get_by_role("button", name=re.compile("Stop")).click()
    _state_text(page, "stopped", 120)
    assert runs.read_status(run_dir)["state"] == "stopped"
    ui.assert_clean(page)


def test_the_quick_demo_trains_on_all_of_mnist_and_its_model_generates(server, page):
    ui.open_page(page, server, "train", "Train", model="e2e_mlp_vae")
    body = ui.main(page)
    # All 60,000 digits are the default data, shipped with the app (no data folder, no network).
    assert body.get_by_role("radio", name=re.compile("MNIST: 60,000")).is_checked()
    body.get_by_role("button", name=re.compile("Start the quick demo")).click()
    _state_text(page, "running")
    _state_text(page, "completed", 300)
    saved = re.search(r"The model (\S+) is saved", body.inner_text())
    assert saved, body.inner_text()[:2000]
    name = saved.group(1)
    run_dir = runs.list_runs(server.home / "runs")[0].path
    config = rundir.read_config(run_dir)
    assert config["model"]["prior"] == "class_mixture" and config["model"]["latent_dim"] == 2
    assert config["train"]["dataset"] == "mnist"
    status = runs.read_status(run_dir)
    assert status["state"] == "completed" and status["test_metrics"]["neg_elbo"] < 200
    # Not flagged as far weaker than the shipped 2-D model.
    assert "much weaker" not in body.inner_text()
    ui.wait_until(lambda: name in ui.model_list(page), 30, f"{name} is in the model list")
    ui.shot(page, "train_quick_demo")

    # Its digits come from its own prior, and the page says so.
    ui.open_page(page, server, "generate", "Generate", model=name)
    ui.main(page).get_by_text(re.compile("mixture of 10 Gaussians")).first.wait_for()
    ui.assert_clean(page)
