"""The Train page, driven through AppTest: settings per kind, Start, one run at a time, history."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.apptest import open_app
from vae_core import data, rundir, runs
from vae_core.specs import ModelSpec, TrainSpec, named_preset, preset


def _open() -> AppTest:
    return open_app("app_pages/train.py")


def _start_button(at: AppTest):
    return next(b for b in at.button if "Start training" in b.label)


def _fake_run(
    root: Path,
    run_id: str,
    *,
    kind="mlp_vae",
    state="completed",
    epochs=3,
    done=3,
    status_extra=None,
    dataset="sample",
) -> Path:
    """A run folder as the training child leaves it: config, status and progress lines."""
    run_dir = root / run_id
    run_dir.mkdir(parents=True)
    rundir.write_config(
        run_dir, ModelSpec(kind=kind), TrainSpec(dataset=dataset, epochs=epochs), run_id=run_id
    )
    status = {"state": state, "epoch": done, "epochs": epochs, **(status_extra or {})}
    (run_dir / "status.json").write_text(json.dumps(status))
    lines = []
    for epoch in range(1, done + 1):
        loss = 200.0 / epoch
        for step in (5, 10):
            lines.append(
                {
                    "kind": "step",
                    "epoch": epoch,
                    "step": step,
                    "steps_per_epoch": 10,
                    "loss": loss + 10 - step,
                    "reconstruction_loss": loss - 5,
                    "kl_loss": 5.0,
                }
            )
        lines.append(
            {
                "kind": "epoch",
                "epoch": epoch,
                "steps_per_epoch": 10,
                "loss": loss,
                "reconstruction_loss": loss - 5,
                "kl_loss": 5.0,
                "val_loss": loss + 3,
                "val_reconstruction_loss": loss - 2,
                "val_kl_loss": 5.0,
            }
        )
    (run_dir / "progress.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    return run_dir


@pytest.fixture
def runs_root(empty_lab_home) -> Path:
    root = empty_lab_home / "runs"
    root.mkdir()
    return root


@pytest.fixture
def busy_run(runs_root):
    """A run whose status says running, with a live process that looks like a training child."""
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)", "vae_core.train"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    run_dir = _fake_run(
        runs_root,
        "20260101-000000-busy",
        state="running",
        epochs=5,
        done=2,
        status_extra={"pid": child.pid, "host": socket.gethostname()},
    )
    try:
        yield run_dir
    finally:
        child.kill()
        child.wait()


def test_empty_page_says_what_to_do(runs_root):
    at = _open()
    assert at.title[0].value.endswith("Train")
    assert any("No runs yet" in i.value for i in at.info)
    # All of MNIST ships with the app: it is the default data, and the Quick demo is offered.
    assert at.radio(key="tr_data_mlp_vae").value == "mnist"
    assert any(b.label == "Start the quick demo" for b in at.button)
    assert not at.error


def test_without_any_mnist_the_page_says_how_to_get_it_and_offers_the_sample(
    runs_root, sample_only
):
    at = _open()
    text = " ".join(i.value for i in at.info)
    assert "VAE_LAB_DATA_DIR" in text
    assert at.radio(key="tr_data_mlp_vae").options == [
        "The bundled sample: 400 digits to train, 100 to validate (the fastest tries)"
    ]
    assert any("It needs the full MNIST" in c.value for c in at.caption)
    assert not any(b.label == "Start the quick demo" for b in at.button)
    assert not at.error


def test_choosing_a_kind_changes_the_settings(runs_root, monkeypatch):
    monkeypatch.setattr(data, "dataset_available", lambda name: True)  # MNIST's own widgets
    at = _open()
    assert at.number_input(key="tr_latent_mlp_vae").value == 2  # the MLP preset
    assert at.number_input(key="tr_beta_mlp_vae") is not None
    assert not [w for w in at.selectbox if w.key and w.key.startswith("tr_noise")]

    at.selectbox(key="tr_kind").set_value("conv_dae").run()
    assert at.number_input(key="tr_latent_conv_dae").value == preset("conv_dae")[0].latent_dim
    assert at.selectbox(key="tr_noise_conv_dae").value == "keras"
    assert at.slider(key="tr_strength_conv_dae").value == 0.5
    # A DAE has no KL term, so no beta and no warm-up.
    assert not [w for w in at.number_input if w.key and "beta" in w.key]
    assert not at.exception


def test_the_quick_demo_button_starts_the_quick_preset(runs_root, monkeypatch):
    started = []
    monkeypatch.setattr(runs, "start_run", lambda run_dir: started.append(Path(run_dir)) or 4242)
    at = _open()
    next(b for b in at.button if b.label == "Start the quick demo").click().run()
    assert not at.exception and not at.error
    assert len(started) == 1
    config = json.loads((started[0] / "config.json").read_text())
    model, train = named_preset("quick")
    assert config["model"] == model.to_dict() and config["train"] == train.to_dict()
    assert any(started[0].name in m.value for m in at.markdown)


def test_a_prior_can_be_chosen_for_the_kinds_that_allow_one(runs_root, monkeypatch):
    started = []
    monkeypatch.setattr(runs, "start_run", lambda run_dir: started.append(Path(run_dir)) or 4242)
    at = _open()
    at.selectbox(key="tr_prior_mlp_vae").set_value("class_mixture")  # in the form: sent by Start
    _start_button(at).click().run()
    config = json.loads((started[0] / "config.json").read_text())
    assert config["model"]["prior"] == "class_mixture"
    at.selectbox(key="tr_kind").set_value("cvae").run()  # a conditional VAE has N(0, I) only
    assert not [w for w in at.selectbox if w.key and w.key.startswith("tr_prior_cvae")]


def test_start_creates_and_starts_a_run_with_the_chosen_settings(runs_root, monkeypatch):
    started = []
    monkeypatch.setattr(runs, "start_run", lambda run_dir: started.append(Path(run_dir)) or 4242)
    # Without the full MNIST on disk, the bundled sample is what the page offers first.
    monkeypatch.setattr(data, "dataset_available", lambda name: False)
    at = _open()
    at.selectbox(key="tr_kind").set_value("conv_dae").run()
    # The sample's widgets are its own (they start from the sample's preset).
    at.number_input(key="tr_epochs_conv_dae_sample").set_value(2)
    at.selectbox(key="tr_noise_conv_dae_sample").set_value("gaussian")
    at.slider(key="tr_strength_conv_dae_sample").set_value(0.3)
    at.text_input(key="tr_name_conv_dae_sample").input("my_dae")
    _start_button(at).click().run()
    assert not at.exception and not at.error
    assert len(started) == 1 and started[0].parent == runs_root
    config = json.loads((started[0] / "config.json").read_text())
    assert config["model"]["kind"] == "conv_dae"
    # What the page does not ask about comes from the preset (the DAE's loss and schedule).
    dae_model, dae_train = preset("conv_dae", "sample")
    assert config["model"]["reconstruction"] == dae_model.reconstruction
    assert config["train"]["lr_schedule"] == dae_train.lr_schedule
    assert config["train"] == {
        **config["train"],
        "epochs": 2,
        "noise": "gaussian",
        "noise_strength": 0.3,
        "dataset": "sample",
    }
    assert config["save_as"] == "my_dae"
    # The new run is the one on view, and listed.
    assert any(started[0].name in m.value for m in at.markdown)


def test_a_second_start_says_one_run_at_a_time(busy_run, runs_root):
    at = _open()
    # The busy run is on view with its progress, and polled.
    assert at.get("progress") and "Epoch 2 of 5" in at.get("progress")[0].proto.text
    _start_button(at).click().run()
    assert not at.exception
    assert any("already in progress" in e.value and busy_run.name in e.value for e in at.error)
    assert [r.path.name for r in runs.list_runs(runs_root)] == [busy_run.name]  # no orphan folder


def test_the_runs_table_gives_a_denoisers_result_as_its_kind_states_it(runs_root):
    _fake_run(
        runs_root,
        "20260104-000001-dddd",
        kind="conv_dae",
        status_extra={"test_metrics": {"psnr": 24.13, "ssim": 0.8731, "mse": 0.004}},
    )
    at = _open()
    assert not at.exception
    assert at.dataframe[0].value.iloc[0]["test result"] == "PSNR 24.1 dB, SSIM 0.873"


def test_past_runs_table_lists_fabricated_runs_and_survives_a_corrupt_one(runs_root):
    _fake_run(
        runs_root,
        "20260101-000001-aaaa",
        kind="mlp_vae",
        status_extra={"model_name": "mlp_a", "test_metrics": {"neg_elbo": 151.25}},
    )
    _fake_run(
        runs_root,
        "20260102-000001-bbbb",
        kind="conv_dae",
        state="stopped",
        epochs=5,
        done=2,
        status_extra={"test_metrics": None},
    )
    bad = runs_root / "20260103-000001-cccc"
    bad.mkdir()
    (bad / "config.json").write_text("{ not json")
    (bad / "status.json").write_bytes(b"\x00\xff garbage")
    (bad / "progress.jsonl").write_text("not json\n{\n")
    at = _open()
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["run"]) == [
        "20260103-000001-cccc",
        "20260102-000001-bbbb",
        "20260101-000001-aaaa",
    ] or set(table["run"]) == {
        "20260103-000001-cccc",
        "20260102-000001-bbbb",
        "20260101-000001-aaaa",
    }
    row = table[table["run"] == "20260101-000001-aaaa"].iloc[0]
    assert row["model name"] == "mlp_a" and "151.2" in row["test result"]
    assert row["epochs done"] == "3 of 3" and "completed" in row["state"]
    stopped = table[table["run"] == "20260102-000001-bbbb"].iloc[0]
    assert "stopped" in stopped["state"] and stopped["epochs done"] == "2 of 5"
    broken = table[table["run"] == "20260103-000001-cccc"].iloc[0]
    assert "damaged" in broken["problem"]

    # Opening the stopped run shows its curves and offers Resume.
    at.selectbox[-1].set_value(str(runs_root / "20260102-000001-bbbb")).run()
    assert not at.exception
    assert any("Stopped after epoch 2 of 5" in i.value for i in at.info)
    assert any("Resume" in b.label for b in at.button)
    assert at.get("plotly_chart")
    # Opening the completed run shows its final metrics and where the model went.
    at.selectbox[-1].set_value(str(runs_root / "20260101-000001-aaaa")).run()
    assert any(m.label == "Test −ELBO" and m.value == "151.2 nats" for m in at.metric)
    assert any("mlp_a" in s.value and "sidebar" in s.value for s in at.success)
    # The corrupt one explains itself instead of crashing.
    at.selectbox[-1].set_value(str(bad)).run()
    assert not at.exception
    assert any("damaged" in e.value for e in at.error)


def test_a_finished_recommender_run_shows_its_ranking_and_links_to_recommend(runs_root):
    metrics = {"ndcg@100": 0.331, "recall@20": 0.284, "recall@50": 0.41, "ease_ndcg@100": 0.358,
               "popularity_ndcg@100": 0.191}  # fmt: skip
    _fake_run(runs_root, "20260101-000001-aaaa", kind="rec_vae", dataset="ml-latest-small",
              status_extra={"test_metrics": metrics, "model_name": "my_recvae"})  # fmt: skip
    at = _open()
    assert not at.exception
    assert any(m.label == "Test NDCG@100" and m.value == "0.331" for m in at.metric)
    assert any(m.label == "Test Recall@20" and m.value == "0.284" for m in at.metric)
    assert any("EASE 0.358, popularity 0.191" in c.value for c in at.caption)
    (saved,) = [s.value for s in at.success]
    assert "my_recvae" in saved and "Round trip" not in saved and "Generate" not in saved
    links = at.get("page_link")
    (to_recommend,) = [link.proto for link in links if "recommend" in link.proto.page]
    assert to_recommend.query_string == "model=my_recvae"  # it opens with the new model chosen
    assert all("round_trip" not in link.proto.page for link in links)
    assert at.dataframe[0].value.iloc[0]["test result"] == "NDCG@100 0.331"
    chart = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert chart["layout"]["yaxis"]["title"]["text"] == "nats per user"


def test_resume_restarts_a_stopped_run(runs_root, monkeypatch):
    resumed = []
    monkeypatch.setattr(runs, "resume_run", lambda run_dir: resumed.append(Path(run_dir)) or 1)
    run_dir = _fake_run(runs_root, "20260102-000001-bbbb", state="interrupted", epochs=5, done=2)
    at = _open()
    assert any("ended without finishing" in w.value for w in at.warning)
    next(b for b in at.button if "Resume" in b.label).click().run()
    assert resumed == [run_dir]
    assert not at.exception


@pytest.mark.slow
def test_a_real_one_epoch_run_on_the_sample_finishes_and_lands_in_the_store(runs_root):
    """The real child process: 1 epoch of a small MLP VAE on the bundled sample."""
    if not Path(runs.PROJECT_ROOT, "vae_core", "train.py").is_file():
        pytest.skip("vae_core/train.py is not there yet")
    at = _open()
    at.radio(key="tr_data_mlp_vae").set_value("sample").run()
    at.number_input(key="tr_epochs_mlp_vae_sample").set_value(1)
    at.select_slider(key="tr_hidden_mlp_vae_sample").set_value(64)
    at.text_input(key="tr_name_mlp_vae_sample").input("tiny_mlp")
    _start_button(at).click().run()
    assert not at.error, [e.value for e in at.error]
    (run_dir,) = [r.path for r in runs.list_runs(runs_root)]  # not runs/.start.lock
    deadline = time.time() + 90
    while runs.read_status(run_dir)["state"] in runs.ACTIVE_STATES and time.time() < deadline:
        time.sleep(1)
    status = runs.read_status(run_dir)
    assert status["state"] == "completed", (run_dir / "train.log").read_text()[-2000:]
    at.run()
    assert not at.exception
    assert any("tiny_mlp" in s.value for s in at.success)
    # The sidebar lists every usable store entry; AppTest drops the entrypoint's sidebar after
    # switch_page, so ask the store the sidebar reads.
    from vae_core.store import default_store

    entry = default_store().get("tiny_mlp")
    assert entry.error is None and entry.kind == "mlp_vae"
    assert entry.meta["test_metrics"] == status["test_metrics"]


# ---------------------------------------------------------------- training from the page
def test_the_sample_has_its_own_longer_preset_and_says_how_it_is_split(runs_root, monkeypatch):
    monkeypatch.setattr(data, "dataset_available", lambda name: False)
    at = _open()
    (label,) = at.radio(key="tr_data_mlp_vae").options
    assert "400 digits to train, 100 to validate" in label
    sample_model, sample_train = preset("mlp_vae", "sample")
    assert at.number_input(key="tr_epochs_mlp_vae_sample").value == sample_train.epochs
    assert sample_train.epochs > preset("mlp_vae")[1].epochs  # 400 digits need more passes
    assert not any("400 digits)" in i.value for i in at.info)


def test_a_stop_part_way_says_its_steps_are_kept(runs_root):
    _fake_run(
        runs_root,
        "20260102-000001-stop",
        state="stopped",
        epochs=5,
        done=2,
        status_extra={"step": 12, "steps_per_epoch": 25},
    )
    at = _open()
    assert any(
        "Stopped at step 12 of 25 in epoch 3 of 5; those steps are kept" in i.value for i in at.info
    )
    assert any("Resume" in b.label for b in at.button)


def test_a_resumed_run_does_not_show_the_stale_step_line(runs_root):
    # Resume was pressed: the status says "starting" (no pid yet) while progress.jsonl still ends
    # with the step the stop left behind.
    _fake_run(
        runs_root,
        "20260102-000001-strt",
        state="starting",
        epochs=5,
        done=2,
        status_extra={"pid": None, "updated": time.time(), "step": 5},
    )
    with open(runs_root / "20260102-000001-strt" / "progress.jsonl", "a") as f:
        f.write(
            json.dumps(
                {
                    "kind": "step",
                    "epoch": 3,
                    "step": 5,
                    "steps_per_epoch": 10,
                    "eta_s": 44.0,
                    "loss": 3.0,
                }
            )
            + "\n"
        )
    at = _open()
    text = at.get("progress")[0].proto.text
    assert "starting" in text and "step 5 of 10" not in text and "44 s left" not in text


def _warning_after(runs: Path, run_id: str, neg_elbo: float, dataset: str = "sample") -> str:
    """The Train page's warnings once a conv VAE run on `dataset` has finished at `neg_elbo`."""
    _fake_run(
        runs,
        run_id,
        kind="conv_vae",
        dataset=dataset,
        status_extra={
            "model_name": run_id.rsplit("-", 1)[1],
            "test_metrics": {"neg_elbo": neg_elbo},
        },
    )
    return " ".join(w.value for w in _open().warning)


def test_a_model_far_weaker_than_the_shipped_one_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_LAB_HOME", str(tmp_path))
    monkeypatch.setenv("VAE_LAB_OFFLINE", "1")
    warning = _warning_after(tmp_path / "runs", "20260101-000001-weak", 499.0)
    assert "much weaker than the shipped **conv_vae_32d**" in warning and "499" in warning
    # A good one does not get the warning.
    assert "much weaker" not in _warning_after(tmp_path / "runs", "20260102-000001-good", 99.0)


def test_a_recommender_far_weaker_than_the_shipped_one_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_LAB_HOME", str(tmp_path))
    monkeypatch.setenv("VAE_LAB_OFFLINE", "1")

    def warning(run_id, ndcg):
        _fake_run(tmp_path / "runs", run_id, kind="rec_vae", dataset="ml-latest-small",
                  status_extra={"model_name": run_id[-4:], "test_metrics": {"ndcg@100": ndcg}})  # fmt: skip
        return " ".join(w.value for w in _open().warning)

    weak = warning("20260101-000001-weak", 0.153)
    assert "much weaker than the shipped **rec_vae_ml_latest_small**" in weak
    assert "NDCG@100 0.153" in weak and "rank movies" in weak and "MNIST" not in weak
    assert "much weaker" not in warning("20260102-000001-good", 0.36)


def test_a_link_from_the_denoise_page_presets_the_noise(runs_root, monkeypatch):
    monkeypatch.setattr(data, "dataset_available", lambda name: True)  # MNIST's own widgets
    at = open_app("app_pages/train.py", kind="conv_dae", noise="salt_pepper", strength="0.35")
    assert at.selectbox(key="tr_kind").value == "conv_dae"
    assert at.selectbox(key="tr_noise_conv_dae").value == "salt_pepper"
    assert at.slider(key="tr_strength_conv_dae").value == pytest.approx(0.35)
    # "Every kind at once" is on offer too; a nonsense address falls back to the preset.
    assert any("blind denoiser" in o for o in at.selectbox(key="tr_noise_conv_dae").options)
    at = open_app("app_pages/train.py", kind="conv_dae", noise="blur", strength="7")
    assert at.selectbox(key="tr_noise_conv_dae").value == preset("conv_dae")[1].noise
    assert not at.exception


def test_a_binarized_model_is_compared_with_the_shipped_binarized_one(tmp_path, monkeypatch):
    # -ELBO on black-and-white digits is not the same figure as on grey ones: a grey conv VAE at
    # 110 nats is far weaker than the binarized conv_vae_binary (~89) but not than conv_vae_32d.
    monkeypatch.setenv("VAE_LAB_HOME", str(tmp_path))
    monkeypatch.setenv("VAE_LAB_OFFLINE", "1")
    runs = tmp_path / "runs"
    assert "much weaker" not in _warning_after(runs, "20260101-000001-grey", 112.0, "mnist")
    warning = _warning_after(runs, "20260102-000001-bin", 150.0, "mnist_binary")
    assert "much weaker than the shipped **conv_vae_binary**" in warning, warning


# ---------------------------------------------------------------- a run on several machines
def _cluster(run_id: str, chief_host: str = "box-a") -> dict:
    addresses = ["10.0.0.1:2222", "10.0.0.2:2222"]
    commands = [
        f"python -m vae_core.train --run-dir runs/{run_id} --workers "
        f"{','.join(addresses)} --task-index {i}"
        for i in range(2)
    ]
    return {
        "workers": [{"name": f"worker_{i}", "address": a} for i, a in enumerate(addresses)],
        "me": "worker_0",
        "met": {"worker_0": {"host": chief_host}, "worker_1": {"host": "box-b"}},
        "commands": commands,
    }


def _workers_table(at: AppTest):
    return next(d.value for d in at.dataframe if "worker" in d.value.columns)


def test_a_multi_worker_run_shows_its_workers_and_each_ones_state(runs_root):
    """The chief trains here; worker 1 shares the run folder and keeps its own status there."""
    children = [
        subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(120)", "vae_core.train"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(2)
    ]
    try:
        here = socket.gethostname()
        run_id = "20260104-000001-many"
        run_dir = _fake_run(
            runs_root,
            run_id,
            state="running",
            epochs=5,
            done=2,
            status_extra={"pid": children[0].pid, "host": here, "cluster": _cluster(run_id, here)},
        )
        worker = run_dir / "workers" / "worker_1"
        worker.mkdir(parents=True)
        (worker / "status.json").write_text(
            json.dumps({"state": "running", "pid": children[1].pid, "host": here})
        )
        at = _open()
        assert not at.exception
        assert any("**2 workers** train this run together" in m.value for m in at.markdown)
        table = _workers_table(at)
        assert list(table["worker"]) == ["worker 0 (chief)", "worker 1"]
        assert list(table["address"]) == ["10.0.0.1:2222", "10.0.0.2:2222"]
        assert list(table["machine"]) == [here, "box-b"]
        assert list(table["state"]) == ["running", "running"]
        # Worker 1's process ends without a word: its own status now reads interrupted.
        children[1].kill()
        children[1].wait()
        at.run()
        assert list(_workers_table(at)["state"]) == ["running", "interrupted"]
    finally:
        for child in children:
            child.kill()
            child.wait()


def test_a_multi_worker_run_that_lost_a_worker_says_so_and_how_to_resume(runs_root):
    """Worker 1 ran on another machine (no status of its own here); the chief saw it go."""
    run_id = "20260104-000002-lost"
    sentence = (
        "Worker 1 (10.0.0.2:2222) stopped answering, so this worker stopped too: the run is "
        "interrupted after epoch 2 of 5. Start the same command again on every machine to "
        "resume from there."
    )
    status = {"cluster": _cluster(run_id), "lost": "worker_1", "error": sentence}
    _fake_run(runs_root, run_id, state="interrupted", epochs=5, done=2, status_extra=status)
    at = _open()
    assert not at.exception
    assert list(_workers_table(at)["state"]) == ["interrupted", "stopped answering"]
    assert [w.value for w in at.warning] == [sentence]
    # A Resume button would restart the chief alone: every machine's command is shown instead.
    assert not any("Resume" in b.label for b in at.button)
    assert any("start the same command again on every machine" in m.value for m in at.markdown)
    assert at.code[0].value.splitlines() == _cluster(run_id)["commands"]
