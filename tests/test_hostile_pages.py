"""Hostile uploads, models and full disks through the pages (AppTest): one clear sentence each, the
page keeps working, and nothing is written outside the app's own folders."""

from __future__ import annotations

import errno
import json
import os
import tempfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests import hostile
from tests.apptest import open_app
from vae_core import runs
from vae_core import store as store_mod


def _open(page: str | None = None) -> AppTest:
    return open_app(page, timeout=90)


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """cwd and the system temp folder inside tmp_path, to catch anything written where it should not be."""
    systmp = tmp_path / "systmp"
    systmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(systmp))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _base(name: str) -> str:
    return name.replace("\\", "/").rsplit("/", 1)[-1]


@pytest.mark.slow
def test_every_hostile_upload_on_the_denoise_page(lab_home, sandbox):
    cases = hostile.uploads()
    before = hostile.tree(lab_home)
    at = _open("app_pages/denoise.py")
    at.radio(key="dn_input").set_value("My own images").run()
    items = list(cases.items())
    notes = ""
    for batch in (items[:10], items[10:]):  # the page compares at most 12 images at a time
        at.file_uploader(key="dn_files").set_value(
            [(name, data, "image/png") for _, (name, data, _) in batch]
        ).run()
        assert not at.exception, [e.value for e in at.exception]
        errors = [e.value for e in at.error]
        expanders = [e.label for e in at.expander]
        for case, (name, _, want) in batch:
            base = _base(name)
            mine = [e for e in errors if base in e]
            if want.startswith("error"):
                words = want.split(":", 1)[1]
                assert len(mine) == 1, (case, errors)
                assert words in mine[0] and mine[0].endswith("."), (case, mine)
                assert "../" not in mine[0] and "Traceback" not in mine[0]
            else:
                assert not mine, (case, mine)
                assert any(base in label for label in expanders), (case, expanders)
        # The good ones went through the models: the comparison is drawn.
        assert any("Denoised by the DAE" in m.value for m in at.markdown)
        notes += " ".join(c.value for c in at.caption)
    assert "only the first one was used" in notes and "almost empty" in notes
    # The page keeps working: back to the test digits, which are scored again.
    at.radio(key="dn_input").set_value("Test digits").run()
    assert not at.exception and not at.error
    assert any(m.label.startswith("Denoised by the DAE") for m in at.metric)
    # Nothing was written: not by the upload named ../../../tmp/..., not anywhere.
    assert hostile.tree(lab_home) == before
    assert list((sandbox / "systmp").iterdir()) == []
    assert not Path("/tmp/e2e_escape.png").exists()
    assert sorted(p.name for p in sandbox.iterdir()) == ["systmp"]


@pytest.mark.slow
def test_hostile_uploads_on_the_round_trip_page(lab_home, sandbox):
    at = _open()
    at.segmented_control(key="rt_mode").set_value("Upload").run()
    for case in ("bomb", "html_as_png", "empty", "exif_rotated"):
        name, data, want = hostile.uploads()[case]
        uploader = at.file_uploader[0]
        uploader.set_value((name, data, "image/png")).run()
        assert not at.exception, [e.value for e in at.exception]
        errors = [e.value for e in at.error]
        if want.startswith("error"):
            assert len(errors) == 1 and want.split(":", 1)[1] in errors[0], errors
        else:
            assert not errors
            assert any("Digit 1" in m.value for m in at.markdown)


# ---------------------------------------------------------------- hostile models, through the sidebar
def _import(at: AppTest, files, name: str = "") -> AppTest:
    at.file_uploader(key="sb_import_files").set_value(files)
    if name:
        at.text_input(key="sb_import_name").input(name)
    at.run()
    at.button(key="sb_import").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _sidebar_errors(at: AppTest) -> list[str]:
    return [e.value for e in at.sidebar.error]


@pytest.mark.slow
def test_sidebar_import_refuses_hostile_models_with_a_sentence(own_store, sandbox):
    import keras

    from tests.test_store import Doubler

    before = sorted(p.name for p in own_store.iterdir())
    good = (own_store / "mlp_vae.keras").read_bytes()
    members = hostile.zip_bytes(
        {"config.json": b"{}", "model.weights.h5": b"", "../../evil.txt": b"x"}
    )
    cases = {
        "lambda.keras": (hostile.lambda_model(sandbox), "Lambda layer"),
        "custom.keras": (hostile.vae_shaped(Doubler(), sandbox), "custom class ('Doubler')"),
        "cut.keras": (good[: len(good) // 2], "not a Keras model"),
        "junk.keras": (os.urandom(3000), "not a Keras model"),
        "escape.keras": (members, "outside its own folder"),
    }
    at = _open()
    for filename, (data, words) in cases.items():
        at = _import(at, [(filename, data, "application/octet-stream")])
        errors = _sidebar_errors(at)
        assert len(errors) == 1 and words in errors[0], (filename, errors)
        assert errors[0].endswith("."), errors
    # A sidecar with wrong types is refused before anything is written.
    meta = json.dumps({"latent_dim": "two"}).encode()
    at = _import(
        at, [("m.keras", good, "application/octet-stream"), ("m.json", meta, "application/json")]
    )
    assert any("'latent_dim' should be" in e for e in _sidebar_errors(at))
    at = _import(
        at,
        [
            ("m.keras", good, "application/octet-stream"),
            ("m.json", b"{not json", "application/json"),
        ],
    )
    assert any("not valid JSON" in e for e in _sidebar_errors(at))
    assert sorted(p.name for p in own_store.iterdir()) == before  # nothing half-written
    assert not list(sandbox.rglob("evil.txt")) and not Path("/tmp/evil.txt").exists()
    del keras


@pytest.mark.slow
def test_sidebar_import_of_a_good_model_makes_it_active_and_exportable(own_store, sandbox):
    data = (own_store / "conv_dae.keras").read_bytes()
    meta = (own_store / "conv_dae.json").read_bytes()
    at = _open()
    at = _import(
        at,
        [
            ("../../My DAE (copy).keras", data, "application/octet-stream"),
            ("My DAE (copy).json", meta, "application/json"),
        ],
    )
    assert not _sidebar_errors(at)
    assert (own_store / "My_DAE_copy.keras").is_file()  # named from the file, made safe
    assert at.sidebar.radio(key="sb_model_round_trip").value == "My_DAE_copy"
    assert any("Imported" in s.value for s in at.sidebar.success)
    assert at.sidebar.get("download_button")  # the active model can be taken away again
    # Importing it again under the same name says so.
    at = _import(at, [("x.keras", data, "application/octet-stream")], name="My_DAE_copy")
    assert any("already exists" in e for e in _sidebar_errors(at))


@pytest.mark.slow
def test_damaged_store_entries_do_not_break_the_listing(own_store, sandbox):
    good = (own_store / "mlp_vae.keras").read_bytes()
    (own_store / "bad_types.keras").write_bytes(good)
    (own_store / "bad_types.json").write_text(json.dumps({"kind": 7, "latent_dim": "two"}))
    (own_store / "cut.keras").write_bytes(good[:1000])
    (own_store / "lonely.json").write_text("[]")
    at = _open()
    options = at.sidebar.radio(key="sb_model_round_trip").options
    options = [o.replace("\\", "").replace("\u200b", "").strip("*") for o in options]
    assert {"mlp_vae", "conv_vae", "conv_dae", "cvae"} <= set(options)
    assert not {"bad_types", "cut", "lonely"} & set(options)
    assert any("3 model file(s) could not be read" in e.label for e in at.sidebar.expander)
    captions = " ".join(c.value for c in at.sidebar.caption)
    assert "bad_types" in captions and "cut" in captions and "lonely" in captions


# ---------------------------------------------------------------- full or read-only disks
def _failing(real, error: int, when=lambda *a: True):
    def fake(*args, **kwargs):
        if when(*args):
            raise OSError(error, os.strerror(error))
        return real(*args, **kwargs)

    return fake


@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EACCES, errno.EROFS])
def test_create_run_on_a_full_or_read_only_disk_says_so_and_leaves_nothing(
    tmp_path, monkeypatch, error
):
    from vae_core.errors import RunError
    from vae_core.specs import ModelSpec, TrainSpec

    root = tmp_path / "runs"
    root.mkdir()
    monkeypatch.setattr(os, "replace", _failing(os.replace, error))
    with pytest.raises(RunError) as info:
        runs.create_run(ModelSpec("mlp_vae"), TrainSpec(dataset="sample"), root=root)
    message = str(info.value)
    assert str(root) in message and message.endswith(".") and "Errno" not in message
    assert list(root.iterdir()) == []  # no half-made run folder to list as "never started"


def test_start_run_on_a_full_disk_says_so(tmp_path, monkeypatch):
    from vae_core.errors import RunError
    from vae_core.specs import ModelSpec, TrainSpec

    run_dir = runs.create_run(ModelSpec("mlp_vae"), TrainSpec(dataset="sample"), root=tmp_path)
    monkeypatch.setattr(os, "replace", _failing(os.replace, errno.ENOSPC))
    with pytest.raises(RunError, match="disk is full"):
        runs.start_run(run_dir)
    assert runs.read_status(run_dir)["state"] == "created"  # no status claiming a run started
    assert runs.active_run(tmp_path) is None


def test_train_page_start_on_a_full_disk_shows_one_sentence(empty_lab_home, monkeypatch):
    monkeypatch.setattr(os, "replace", _failing(os.replace, errno.ENOSPC))
    at = _open("app_pages/train.py")
    next(b for b in at.button if "Start training" in b.label).click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("disk is full" in e.value for e in at.error), [e.value for e in at.error]
    runs_root = empty_lab_home / "runs"
    assert not runs_root.exists() or [p for p in runs_root.iterdir() if p.is_dir()] == []


@pytest.mark.slow
def test_sidebar_import_into_a_full_store_says_so(own_store, sandbox, monkeypatch):
    before = sorted(p.name for p in own_store.iterdir())
    data = (own_store / "mlp_vae.keras").read_bytes()
    at = _open()
    monkeypatch.setattr(store_mod.os, "replace", _failing(os.replace, errno.ENOSPC))
    at = _import(at, [("copy.keras", data, "application/octet-stream")])
    assert any("not writable: the disk is full" in e for e in _sidebar_errors(at))
    assert sorted(p.name for p in own_store.iterdir()) == before
