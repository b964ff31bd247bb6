"""The model store: round trips, read-only shipped models, atomic writes, corrupt files, safe import."""

from __future__ import annotations

import errno
import io
import json
import os
import tempfile
import zipfile
from datetime import datetime
from pathlib import Path

import keras
import numpy as np
import pytest

from tests.hostile import zip_bytes
from vae_core import safe_import
from vae_core import store as store_mod
from vae_core.errors import StoreError
from vae_core.models import build_model
from vae_core.specs import ModelSpec
from vae_core.store import NAME_RULE, Store, StoreEntry, default_store, read_meta, validate_name

KINDS = ("mlp_vae", "cvae", "conv_dae")
META = {
    "dataset": "mnist",
    "epochs": 3,
    "test_metrics": {"neg_elbo": 146.23, "kl": 5.1},
    "run_id": "20250101-120000-mlp",
    "command": "python -m vae_core.train --kind mlp_vae",
    "seed": 7,
}


@pytest.fixture(autouse=True)
def _sandbox(tmp_path, monkeypatch):
    """Keep every file Keras or the store might write inside tmp_path, and check none leak."""
    systmp = tmp_path / "systmp"
    systmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(systmp))
    monkeypatch.setenv("VAE_LAB_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    yield
    assert list(systmp.iterdir()) == [], "a temporary file was left behind"


@pytest.fixture(scope="module")
def bundles():
    """One tiny untrained model per kind; building is the slow part, so share them."""
    return {
        kind: build_model(ModelSpec(kind, latent_dim=2, hidden=16, beta=0.5, reconstruction="mse"))
        for kind in KINDS
    }


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(root=tmp_path / "store", shipped_root=None)


def _inputs(spec: ModelSpec, n: int = 4):
    rng = np.random.default_rng(0)
    x = rng.random((n, *spec.image_shape), dtype=np.float32)
    if spec.is_conditional:
        return [x, np.arange(n, dtype=np.int32) % spec.num_classes]
    return x


def _latents(spec: ModelSpec, n: int = 4):
    z = np.random.default_rng(1).normal(size=(n, spec.latent_dim)).astype(np.float32)
    if spec.is_conditional:
        return [z, np.arange(n, dtype=np.int32)]
    return z


def _assert_same_model(a, b) -> None:
    """Composite, encoder and decoder give identical outputs on the same inputs."""
    x, z = _inputs(a.spec), _latents(a.spec)
    pairs = [
        (a.composite(x, training=False), b.composite(x, training=False)),
        *zip(
            keras.tree.flatten(a.encoder(x, training=False)),
            keras.tree.flatten(b.encoder(x, training=False)),
            strict=True,
        ),
        (a.decoder(z, training=False), b.decoder(z, training=False)),
    ]
    for out_a, out_b in pairs:
        np.testing.assert_array_equal(out_a.numpy(), out_b.numpy())


def _files(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def _keras_bytes(model: keras.Model, tmp_path: Path) -> bytes:
    path = tmp_path / f"{model.name}_upload.keras"
    model.save(path)
    data = path.read_bytes()
    path.unlink()
    return data


# ---------------------------------------------------------------- round trips
@pytest.mark.parametrize("kind", KINDS)
def test_save_list_load_keeps_outputs_and_metadata(store, bundles, kind):
    bundle = bundles[kind]
    entry = store.save(f"{kind}_tiny", bundle, META)
    assert entry == store.get(f"{kind}_tiny")
    assert _files(store.root) == [f"{kind}_tiny.json", f"{kind}_tiny.keras"]

    [listed] = store.list()
    assert (listed.name, listed.shipped, listed.error) == (f"{kind}_tiny", False, None)
    assert (listed.kind, listed.latent_dim) == (kind, 2)
    for key, value in META.items():
        assert listed.meta[key] == value
    assert datetime.fromisoformat(listed.meta["created"]).utcoffset().total_seconds() == 0

    loaded = store.load(f"{kind}_tiny")
    assert loaded.spec == bundle.spec  # beta and the loss survive, not just what infer_spec sees
    assert loaded.meta["run_id"] == META["run_id"]
    assert (loaded.encoder.name, loaded.decoder.name) == ("encoder", "decoder")
    _assert_same_model(bundle, loaded)


@pytest.mark.parametrize("kind", KINDS)
def test_a_compressed_file_loads_as_the_same_model(tmp_path, bundles, kind):
    """How the shipped models are written (store_mod.compressed_keras): compressed, nothing lost."""
    import h5py

    bundle = bundles[kind]
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    (shipped / "tiny.keras").write_bytes(store_mod.compressed_keras(bundle.composite))
    (shipped / "tiny.json").write_text(json.dumps({**META, "spec": bundle.spec.to_dict()}))
    plain = _keras_bytes(bundle.composite, tmp_path)
    with zipfile.ZipFile(shipped / "tiny.keras") as zf:
        assert zf.namelist() == zipfile.ZipFile(io.BytesIO(plain)).namelist()
        raw = zf.read("model.weights.h5")
    with h5py.File(io.BytesIO(raw), "r") as weights:
        arrays = []
        weights.visititems(lambda _, item: arrays.append(item) if hasattr(item, "dtype") else None)
        assert any(a.size >= 1024 for a in arrays)
        assert all(a.compression == "gzip" and a.shuffle for a in arrays if a.size >= 1024)
    loaded = Store(tmp_path / "store", shipped_root=shipped).load("tiny")
    _assert_same_model(bundle, loaded)


def test_label_reads_like_a_sentence(store, bundles):
    store.save("mlp_vae_2d", bundles["mlp_vae"], META)
    assert (
        store.get("mlp_vae_2d").label == "mlp_vae_2d — MLP VAE, latent 2, mnist, −ELBO 146.2 nats"
    )
    store.save("dae", bundles["conv_dae"], {"test_metrics": {"psnr": 18.04}})
    assert (
        store.get("dae").label
        == "dae — Convolutional denoising autoencoder, latent 2, PSNR 18.0 dB"
    )


def test_existing_name_needs_overwrite(store, bundles):
    store.save("m", bundles["mlp_vae"], META)
    with pytest.raises(StoreError, match="already exists"):
        store.save("m", bundles["cvae"], META)
    assert store.get("m").kind == "mlp_vae"
    store.save("m", bundles["cvae"], META, overwrite=True)
    assert store.get("m").kind == "cvae"
    assert _files(store.root) == ["m.json", "m.keras"]


def test_delete_removes_both_files(store, bundles):
    store.save("gone", bundles["mlp_vae"], META)
    store.delete("gone")
    assert _files(store.root) == [] and store.list() == []
    with pytest.raises(StoreError, match="no model named 'gone'"):
        store.delete("gone")
    with pytest.raises(StoreError, match="no model named 'gone'"):
        store.load("gone")


# ---------------------------------------------------------------- rename, and models in use
def test_rename_moves_both_files_and_keeps_the_model(store, bundles):
    store.save("old", bundles["cvae"], META)
    before = {n.replace("old", "new"): (store.root / n).read_bytes() for n in _files(store.root)}
    entry = store.rename("old", "new")
    assert (entry.name, entry.shipped, entry.error, entry.kind) == ("new", False, None, "cvae")
    assert {n: (store.root / n).read_bytes() for n in _files(store.root)} == before
    assert [e.name for e in store.list()] == ["new"]
    with pytest.raises(StoreError, match="no model named 'old'"):
        store.get("old")
    _assert_same_model(bundles["cvae"], store.load("new"))
    store.save("old", bundles["mlp_vae"], META)  # the old name is free again


def test_rename_collisions_and_refusals_each_get_a_sentence(shipped_store, bundles):
    s = shipped_store
    s.save("mine", bundles["mlp_vae"], META)
    s.save("taken", bundles["conv_dae"], META)
    before = _files(s.root), _files(s.shipped_root)
    refusals = {
        ("mine", "taken"): "A model named 'taken' already exists; pick another name.",
        ("mine", "mlp_vae_2d"): "'mlp_vae_2d' is the name of a shipped model, and shipped models "
        "cannot be overwritten; pick another name.",
        ("mine", "mine"): "The model is already called 'mine'.",
        (
            "mlp_vae_2d",
            "free",
        ): "'mlp_vae_2d' is a shipped model; shipped models cannot be renamed.",
        ("ghost", "free"): "There is no model named 'ghost' in the store.",
        ("mine", "has space"): NAME_RULE,
    }
    for (old, new), sentence in refusals.items():
        with pytest.raises(StoreError) as info:
            s.rename(old, new)
        assert str(info.value) == sentence
    assert (_files(s.root), _files(s.shipped_root)) == before
    assert s.get("taken").kind == "conv_dae" and s.get("mine").kind == "mlp_vae"


def test_a_rename_that_fails_halfway_leaves_the_old_model(store, bundles, monkeypatch):
    store.save("keep", bundles["mlp_vae"], META)
    before = {n: (store.root / n).read_bytes() for n in _files(store.root)}
    real_unlink = Path.unlink

    def refuse_model(self, *args, **kwargs):
        if self.name == "keep.keras":  # the sidecar is already gone by now
            raise OSError(errno.EIO, "Input/output error")
        return real_unlink(self, *args, **kwargs)

    monkeypatch.setattr(Path, "unlink", refuse_model)
    with pytest.raises(StoreError, match="not writable: Input/output error"):
        store.rename("keep", "moved")
    monkeypatch.undo()
    assert {n: (store.root / n).read_bytes() for n in _files(store.root)} == before
    _assert_same_model(bundles["mlp_vae"], store.load("keep"))


def test_rename_copies_where_the_disk_has_no_hard_links(store, bundles, monkeypatch):
    store.save("a", bundles["conv_dae"], META)
    data = (store.root / "a.keras").read_bytes()

    def no_links(src, dst):
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    store.rename("a", "b")
    assert _files(store.root) == ["b.json", "b.keras"]
    assert (store.root / "b.keras").read_bytes() == data


def _training(runs_root: Path, save_as: str | None, fakes: list) -> str:
    """A run that looks like it is training now (a stand-in child); returns its run id."""
    import subprocess
    import sys

    from vae_core import rundir, runs
    from vae_core.specs import TrainSpec

    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", runs.TRAIN_MODULE]
    )
    fakes.append(child)
    run_dir = runs.create_run(
        ModelSpec(hidden=16), TrainSpec(dataset="sample"), root=runs_root, save_as=save_as
    )
    rundir.write_json_atomic(
        run_dir / rundir.STATUS, {"state": "running", "pid": child.pid, "host": os.uname().nodename}
    )
    return run_dir.name


def test_a_model_in_use_by_a_running_training_cannot_be_deleted_or_renamed(tmp_path, bundles):
    runs_root = tmp_path / "runs"
    store = Store(root=tmp_path / "store", shipped_root=None, runs_root=runs_root)
    fakes: list = []
    try:
        run_id = _training(runs_root, "future", fakes)
        # The run saved its model already and is about to say "completed".
        store.save("just_saved", bundles["mlp_vae"], {**META, "run_id": run_id})
        store.save("other", bundles["mlp_vae"], META)
        in_use = (
            f"The model 'just_saved' is in use by the training run {run_id}; stop that run or "
            "wait until it finishes, then try again."
        )
        for call in (lambda: store.delete("just_saved"), lambda: store.rename("just_saved", "x")):
            with pytest.raises(StoreError) as info:
                call()
            assert str(info.value) == in_use
        with pytest.raises(StoreError, match=f"run {run_id} will save its model as 'future'"):
            store.rename("other", "future")
        store.rename("other", "renamed")  # models the run does not touch are free
    finally:
        for child in fakes:
            child.kill()
            child.wait()
    store.delete("just_saved")  # once the run is over
    assert [e.name for e in store.list()] == ["renamed"]


def test_the_apps_store_watches_the_apps_runs_folder(tmp_path):
    assert default_store().runs_root == tmp_path / "home" / "runs"
    assert Store(root=tmp_path / "elsewhere").runs_root is None


def test_default_store_lives_under_vae_lab_home(tmp_path, bundles):
    s = default_store()
    assert s.root == tmp_path / "home" / "models"
    assert not s.root.exists()  # created on demand, not by looking
    s.save("home_model", bundles["mlp_vae"], META)
    assert (tmp_path / "home" / "models" / "home_model.keras").is_file()
    assert "home_model" in [e.name for e in s.list()]


# ---------------------------------------------------------------- shipped models
@pytest.fixture
def shipped_store(tmp_path, bundles) -> Store:
    shipped = tmp_path / "shipped"
    Store(root=shipped, shipped_root=None).save("mlp_vae_2d", bundles["mlp_vae"], META)
    return Store(root=tmp_path / "store", shipped_root=shipped)


def test_shipped_models_are_listed_first_and_read_only(shipped_store, bundles):
    shipped_store.save("aaa_mine", bundles["conv_dae"], META)
    entries = shipped_store.list()
    assert [(e.name, e.shipped) for e in entries] == [("mlp_vae_2d", True), ("aaa_mine", False)]
    assert entries[0].label.endswith("(shipped)")
    before = _files(shipped_store.shipped_root)
    model_bytes = (shipped_store.shipped_root / "mlp_vae_2d.keras").read_bytes()

    with pytest.raises(StoreError, match="shipped models cannot be deleted"):
        shipped_store.delete("mlp_vae_2d")
    for overwrite in (False, True):
        with pytest.raises(StoreError, match="shipped models cannot be overwritten"):
            shipped_store.save("mlp_vae_2d", bundles["cvae"], META, overwrite=overwrite)
    with pytest.raises(StoreError, match="shipped"):
        shipped_store.import_file(shipped_store.export("mlp_vae_2d"), "mlp_vae_2d", overwrite=True)

    assert _files(shipped_store.shipped_root) == before
    assert (shipped_store.shipped_root / "mlp_vae_2d.keras").read_bytes() == model_bytes
    assert "mlp_vae_2d.keras" not in _files(shipped_store.root)
    _assert_same_model(bundles["mlp_vae"], shipped_store.load("mlp_vae_2d"))


def test_user_file_with_a_shipped_name_is_hidden(shipped_store, bundles):
    Store(root=shipped_store.root, shipped_root=None).save("mlp_vae_2d", bundles["cvae"], META)
    entries = shipped_store.list()
    assert [(e.name, e.shipped) for e in entries] == [("mlp_vae_2d", True)]
    assert shipped_store.get("mlp_vae_2d").kind == "mlp_vae"


# ---------------------------------------------------------------- names
BAD_NAMES = [
    "",
    "../x",
    "../../etc/passwd",
    "a/b",
    "a\\b",
    "/abs",
    ".hidden",
    "-dash",
    "_u",
    "a" * 65,
    "has space",
    "ümlaut",
    "name\n",
    "x.keras",
    None,
]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_names_are_refused_everywhere(store, bundles, name, tmp_path):
    calls = [
        lambda: validate_name(name),
        lambda: store.save(name, bundles["mlp_vae"], META),
        lambda: store.get(name),
        lambda: store.load(name),
        lambda: store.delete(name),
        lambda: store.rename(name, "fine"),
        lambda: store.rename("fine", name),
        lambda: store.export(name),
        lambda: store.import_file(b"PK", name),
    ]
    for call in calls:
        with pytest.raises(StoreError) as info:
            call()
        assert str(info.value) == NAME_RULE
    assert _files(store.root) == []
    assert not list(tmp_path.rglob("*.keras"))


@pytest.mark.parametrize("name", ["con", "a", "A-1_b", "9lives", "a" * 64])
def test_good_names_pass(name):
    assert validate_name(name) == name


def test_symlink_leading_outside_is_refused(store, bundles, tmp_path):
    outside = Store(root=tmp_path / "elsewhere", shipped_root=None)
    outside.save("secret", bundles["mlp_vae"], META)
    store.root.mkdir(parents=True)
    (store.root / "sneaky.keras").symlink_to(outside.root / "secret.keras")
    with pytest.raises(StoreError, match="outside the model store"):
        store.load("sneaky")
    [entry] = store.list()
    assert entry.error and "outside" in entry.error


# ---------------------------------------------------------------- atomic writes
def _leftovers(root: Path) -> list[str]:
    return [n for n in _files(root) if n.startswith(".")]


def test_failed_model_write_leaves_nothing(store, bundles, monkeypatch):
    def half_then_fail(self, filepath, *args, **kwargs):
        Path(filepath).write_bytes(b"PK\x03\x04 half a model")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(keras.Model, "save", half_then_fail)
    with pytest.raises(StoreError) as info:
        store.save("full", bundles["mlp_vae"], META)
    assert str(info.value) == f"The model store at {store.root} is not writable: the disk is full."
    assert _files(store.root) == []


def test_failed_overwrite_keeps_the_previous_model(store, bundles, monkeypatch):
    store.save("keep", bundles["mlp_vae"], META)
    before = {n: (store.root / n).read_bytes() for n in _files(store.root)}

    def fail(self, filepath, *args, **kwargs):
        Path(filepath).write_bytes(b"junk")
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(keras.Model, "save", fail)
    with pytest.raises(StoreError, match="not writable: Input/output error"):
        store.save("keep", bundles["cvae"], META, overwrite=True)
    assert {n: (store.root / n).read_bytes() for n in _files(store.root)} == before
    monkeypatch.undo()
    _assert_same_model(bundles["mlp_vae"], store.load("keep"))


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (PermissionError(errno.EACCES, "Permission denied"), "permission denied"),
        (OSError(errno.ENOSPC, "No space left on device"), "the disk is full"),
        (OSError(errno.EROFS, "Read-only file system"), "the disk is read-only"),
    ],
)
def test_unwritable_store_gives_a_sentence(store, bundles, monkeypatch, error, reason):
    # Tests run as root, where chmod stops nothing; a refusing os.replace stands in for the disk.
    def refuse(src, dst):
        raise error

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(StoreError) as info:
        store.save("nope", bundles["mlp_vae"], META)
    assert str(info.value) == f"The model store at {store.root} is not writable: {reason}."
    assert _files(store.root) == []


@pytest.mark.parametrize("existing", [False, True])
def test_failure_between_model_and_sidecar_is_undone(store, bundles, monkeypatch, existing):
    if existing:
        store.save("half", bundles["mlp_vae"], META)
    before = {n: (store.root / n).read_bytes() for n in _files(store.root)}
    real_replace = os.replace

    def fail_on_sidecar(src, dst):
        if str(dst).endswith(".json"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", fail_on_sidecar)
    with pytest.raises(StoreError, match="the disk is full"):
        store.save("half", bundles["cvae"], META, overwrite=True)
    assert {n: (store.root / n).read_bytes() for n in _files(store.root)} == before
    assert _leftovers(store.root) == []


def test_unserialisable_metadata_is_refused_before_writing(store, bundles):
    with pytest.raises(StoreError, match="description cannot be saved"):
        store.save("m", bundles["mlp_vae"], {"callback": object()})
    with pytest.raises(StoreError, match="'epochs' should be a whole number"):
        store.save("m", bundles["mlp_vae"], {"epochs": "ten"})
    assert _files(store.root) == []


def test_numpy_values_in_metadata_become_plain_json(store, bundles):
    meta = {"test_metrics": {"neg_elbo": np.float32(150.5)}, "epochs": np.int64(4)}
    entry = store.save("np", bundles["mlp_vae"], meta)
    assert entry.meta["test_metrics"] == {"neg_elbo": 150.5} and entry.meta["epochs"] == 4
    assert read_meta(store.root / "np.json")["epochs"] == 4


# ---------------------------------------------------------------- corrupt entries
def test_corrupt_entries_are_listed_with_a_sentence(store, bundles):
    store.save("good", bundles["mlp_vae"], META)
    good_keras = (store.root / "good.keras").read_bytes()
    root = store.root
    (root / "bad_json.keras").write_bytes(good_keras)
    (root / "bad_json.json").write_text("{not json")
    (root / "bad_types.keras").write_bytes(good_keras)
    (root / "bad_types.json").write_text(json.dumps({**META, "latent_dim": "two"}))
    (root / "truncated.keras").write_bytes(good_keras[: len(good_keras) // 2])
    (root / "truncated.json").write_text(json.dumps(META))
    (root / "no_model.json").write_text(json.dumps(META))
    (root / "not_a_dict.keras").write_bytes(good_keras)
    (root / "not_a_dict.json").write_text("[1, 2]")
    (root / ".good.1a2b.tmp.keras").write_bytes(b"half")  # temp files are invisible
    (root / ".good.1a2b.tmp.json").write_text("{")
    (root / "notes.txt").write_text("ignored")

    entries = {e.name: e for e in store.list()}
    assert list(entries) == sorted(entries)
    assert set(entries) == {"bad_json", "bad_types", "good", "no_model", "not_a_dict", "truncated"}
    assert entries["good"].error is None
    expected = {
        "bad_json": "not valid JSON",
        "bad_types": "'latent_dim' should be a whole number",
        "truncated": "damaged (perhaps cut short)",
        "no_model": "model file is missing",
        "not_a_dict": "not a set of named values",
    }
    for name, fragment in expected.items():
        entry = entries[name]
        assert fragment in entry.error and entry.error.endswith("."), entry.error
        assert entry.label == f"{name} — cannot be used"
        assert store.get(name).error == entry.error
        with pytest.raises(StoreError, match=f"The model '{name}' cannot be loaded"):
            store.load(name)
    _assert_same_model(bundles["mlp_vae"], store.load("good"))


def test_model_without_sidecar_still_loads(store, bundles):
    store.save("bare", bundles["conv_dae"], META)
    (store.root / "bare.json").unlink()
    entry = store.get("bare")
    assert (entry.error, entry.meta, entry.kind) == (None, {}, None)
    loaded = store.load("bare")
    assert loaded.spec.kind == "conv_dae"  # inferred from the model's structure
    _assert_same_model(bundles["conv_dae"], loaded)


@pytest.mark.parametrize(
    ("meta", "fragment"),
    [
        ({"kind": "gan"}, "'kind' should be one of"),
        ({"test_metrics": {"neg_elbo": "low"}}, "'test_metrics' should be named numbers"),
        ({"test_metrics": [1]}, "'test_metrics'"),
        ({"epochs": 2.5}, "'epochs'"),
        ({"latent_dim": True}, "'latent_dim'"),
        ({"spec": {"kind": "mlp_vae", "latent_dim": 0}}, "'spec' is not a valid model"),
        ({"spec": {"kind": "mlp_vae", "latent_dim": 2}, "latent_dim": 3}, "disagree"),
    ],
)
def test_read_meta_checks_types(tmp_path, meta, fragment):
    path = tmp_path / "m.json"
    path.write_text(json.dumps(meta))
    with pytest.raises(StoreError, match=fragment):
        read_meta(path)


# ---------------------------------------------------------------- import and export
def test_export_then_import_gives_the_same_model(store, bundles):
    store.save("orig", bundles["cvae"], META)
    data, meta = store.export("orig"), json.loads(store.export_meta("orig"))
    assert data == (store.root / "orig.keras").read_bytes()
    assert meta["run_id"] == META["run_id"]

    entry = store.import_file(data, "copy", meta)
    assert isinstance(entry, StoreEntry) and entry.error is None and entry.meta["imported"] is True
    loaded = store.load("copy")
    assert loaded.spec == bundles["cvae"].spec and loaded.meta["dataset"] == "mnist"
    _assert_same_model(bundles["cvae"], loaded)

    store.import_file(data, "copy_no_meta")  # without metadata the spec is inferred
    inferred = store.load("copy_no_meta")
    assert (inferred.spec.kind, inferred.spec.latent_dim) == ("cvae", 2)
    _assert_same_model(bundles["cvae"], inferred)
    assert _leftovers(store.root) == []


def test_import_of_a_plain_keras_vae_lab_model(store, bundles, tmp_path):
    data = _keras_bytes(bundles["conv_dae"].composite, tmp_path)
    store.import_file(data, "uploaded")
    _assert_same_model(bundles["conv_dae"], store.load("uploaded"))
    with pytest.raises(StoreError, match="already exists"):
        store.import_file(data, "uploaded")
    store.import_file(data, "uploaded", overwrite=True)


def _nested(encoder_out_layer, tmp_path) -> bytes:
    """A composite shaped like ours whose encoder ends in the given layer."""
    x = keras.Input((28, 28, 1))
    h = keras.layers.Flatten()(x)
    encoder = keras.Model(x, encoder_out_layer(keras.layers.Dense(2)(h)), name="encoder")
    z = keras.Input((2,))
    decoder = keras.Model(
        z, keras.layers.Reshape((28, 28, 1))(keras.layers.Dense(784)(z)), name="decoder"
    )
    image = keras.Input((28, 28, 1))
    return _keras_bytes(keras.Model(image, decoder(encoder(image)), name="sneaky"), tmp_path)


class Doubler(keras.layers.Layer):
    """A custom layer nobody registered: safe mode cannot know what its code does."""

    def call(self, x):
        return x * 2


def test_import_refuses_a_lambda_layer(store, tmp_path):
    data = _nested(keras.layers.Lambda(lambda t: t * 2), tmp_path)
    with pytest.raises(StoreError, match="Lambda layer") as info:
        store.import_file(data, "lam")
    assert "refused" in str(info.value)
    assert _files(store.root) == []


def test_import_refuses_an_unregistered_custom_class(store, tmp_path):
    data = _nested(Doubler(), tmp_path)
    with pytest.raises(StoreError, match=r"custom class \('Doubler'\)"):
        store.import_file(data, "custom")
    assert _files(store.root) == []


def test_keras_refusal_after_the_scan_is_still_a_sentence(store, tmp_path, monkeypatch):
    # Should a Lambda slip past our scan of config.json, Keras's safe mode is the second wall.
    monkeypatch.setattr(store_mod, "refuse_unsafe_config", lambda config: None)
    data = _nested(keras.layers.Lambda(lambda t: t * 2), tmp_path)
    with pytest.raises(StoreError) as info:
        store.import_file(data, "lam")
    assert str(info.value) == store_mod.UNSAFE_MESSAGE
    assert _leftovers(store.root) == [] and _files(store.root) == []


def test_import_refuses_a_model_that_is_not_vae_lab_shaped(store, tmp_path):
    x = keras.Input((28, 28, 1))
    plain = keras.Model(x, keras.layers.Dense(3)(keras.layers.Flatten()(x)), name="classifier")
    with pytest.raises(StoreError, match="'encoder'.*'decoder'"):
        store.import_file(_keras_bytes(plain, tmp_path), "plain")
    assert _files(store.root) == []


def test_import_refuses_paths_that_escape(store, bundles, tmp_path):
    good = zipfile.ZipFile(io.BytesIO(_keras_bytes(bundles["mlp_vae"].composite, tmp_path)))
    members = {n: good.read(n) for n in good.namelist()}
    for evil in (
        "../../evil.txt",
        "/tmp/evil.txt",
        "a/../../evil.txt",
        "..\\evil.txt",
        "C:evil.txt",
    ):
        with pytest.raises(StoreError, match="outside its own folder"):
            store.import_file(zip_bytes({**members, evil: b"gotcha"}), "evil")
    assert not list(tmp_path.rglob("evil.txt")) and not Path("/tmp/evil.txt").exists()
    assert _files(store.root) == []


@pytest.mark.parametrize(
    "make",
    [
        lambda good: os.urandom(4096),
        lambda good: b"",
        lambda good: good[: len(good) // 2],
        lambda good: zip_bytes({"hello.txt": b"hi"}),
        lambda good: zip_bytes({"config.json": b"{not json"}),
        lambda good: zip_bytes(
            {"config.json": zipfile.ZipFile(io.BytesIO(good)).read("config.json")}
        ),
    ],
    ids=["random", "empty", "truncated", "no_config", "bad_config", "no_weights"],
)
def test_import_refuses_files_that_are_not_models(store, bundles, tmp_path, make):
    good = _keras_bytes(bundles["mlp_vae"].composite, tmp_path)
    with pytest.raises(StoreError) as info:
        store.import_file(make(good), "junk")
    assert str(info.value).startswith(("That file is not a Keras model", "This model"))
    assert _files(store.root) == []


def test_import_size_limit(store, bundles, tmp_path, monkeypatch):
    data = _keras_bytes(bundles["mlp_vae"].composite, tmp_path)
    monkeypatch.setattr(safe_import, "MAX_IMPORT_BYTES", len(data) - 1)
    with pytest.raises(StoreError, match="larger than 100 MB"):
        store.import_file(data, "big")
    assert _files(store.root) == []


def test_import_checks_given_metadata(store, bundles, tmp_path):
    data = _keras_bytes(bundles["mlp_vae"].composite, tmp_path)
    with pytest.raises(StoreError, match="'latent_dim' should be"):
        store.import_file(data, "m", {"latent_dim": "two"})
    # A given spec that does not describe the uploaded model is ignored for the inferred one.
    wrong = ModelSpec("conv_vae", latent_dim=16).to_dict()
    store.import_file(data, "m", {"spec": wrong})
    assert store.load("m").spec.kind == "mlp_vae"
