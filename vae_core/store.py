"""The model store: trained models as `<name>.keras` (the composite) plus a `<name>.json` sidecar.

Two roots: the user's store (writable, created on demand) and the models shipped with the project
(read-only). Writes are atomic (temp file in the same folder, fsync, os.replace), so a listing never
sees half a model; loads are always in Keras safe mode, so a file cannot run code on this machine
(an upload's own checks are vae_core.safe_import's). Its length is its one job: a model is two
files, and saving, renaming and deleting them must never leave one without the other.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import re
import secrets
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import h5py
import keras

from vae_core import kinds, machine, models, paths, training_now
from vae_core.errors import StoreError, UserError
from vae_core.fsutil import fsync_dir, fsync_file, json_default, why_not_writable
from vae_core.safe_import import (
    MAX_META_BYTES,
    check_archive,
    refuse_unsafe_config,
    vae_lab_spec,
)
from vae_core.specs import ModelSpec

MODEL_SUFFIX, META_SUFFIX = ".keras", ".json"
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
NAME_RULE = "Model names may use letters, digits, '-' and '_' (up to 64), e.g. mlp_vae_2d."
UNSAFE_MESSAGE = "This model uses a Lambda layer or a custom class that cannot be loaded safely, so it was refused."


# ---------------------------------------------------------------- names and metadata
def validate_name(name: str) -> str:
    """Return `name` if it is a safe store name, else raise StoreError with the naming rule."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise StoreError(NAME_RULE)
    return name


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _optional(check):
    return lambda value: value is None or check(value)


# Known keys and the test their value must pass; unknown keys are kept as they are.
_META_CHECKS: dict[str, tuple[Any, str]] = {
    "spec": (lambda v: isinstance(v, dict), "a set of named values"),
    "train": (_optional(lambda v: isinstance(v, dict)), "a set of named values"),
    "test_metrics": (
        lambda v: (
            isinstance(v, dict) and all(isinstance(k, str) and _is_number(x) for k, x in v.items())
        ),
        "named numbers",
    ),
    "epochs": (lambda v: _is_int(v) and v >= 0, "a whole number"),
    "seed": (_optional(_is_int), "a whole number"),
    "dataset": (_optional(lambda v: isinstance(v, str)), "text"),
    "run_id": (_optional(lambda v: isinstance(v, str)), "text"),
    "created": (lambda v: isinstance(v, str), "text"),
    "description": (_optional(lambda v: isinstance(v, str)), "text"),
    "command": (
        _optional(
            lambda v: (
                isinstance(v, str) or (isinstance(v, list) and all(isinstance(x, str) for x in v))
            )
        ),
        "text",
    ),
}


def migrate_meta(meta: dict) -> dict:
    """Sidecars written before the spec was kept once carried it as `model` too, and its kind and
    latent size again at the top; read them as the spec alone (a disagreement is damage)."""
    meta = dict(meta)
    old_spec = meta.pop("model", None)
    if "spec" not in meta and isinstance(old_spec, dict):
        meta["spec"] = old_spec
    kind, latent_dim = meta.pop("kind", None), meta.pop("latent_dim", None)
    if kind is not None and not kinds.known(kind):
        raise StoreError(f"'kind' should be one of {', '.join(kinds.names())}")
    if latent_dim is not None and not (_is_int(latent_dim) and latent_dim >= 1):
        raise StoreError("'latent_dim' should be a whole number of at least 1")
    spec = meta.get("spec")
    if isinstance(spec, dict):
        if (kind is not None and kind != spec.get("kind")) or (
            latent_dim is not None and latent_dim != spec.get("latent_dim")
        ):
            raise StoreError("'kind' and 'latent_dim' disagree with its 'spec'")
    elif kind is not None:
        meta["spec"] = {"kind": kind, **({} if latent_dim is None else {"latent_dim": latent_dim})}
    return meta


def validate_meta(meta: Any, what: str = "The model's description") -> dict:
    """Check the types of the known metadata keys (old forms migrated first); raise StoreError
    naming the first bad one."""
    if not isinstance(meta, dict):
        raise StoreError(f"{what} is damaged: it is not a set of named values.")
    try:
        meta = migrate_meta(meta)
    except StoreError as err:
        raise StoreError(f"{what} is damaged: {err}.") from None
    for key, (check, expected) in _META_CHECKS.items():
        if key in meta and not check(meta[key]):
            raise StoreError(f"{what} is damaged: '{key}' should be {expected}.")
    if "spec" in meta:
        try:
            ModelSpec.from_dict(meta["spec"])
        except (UserError, TypeError, ValueError) as err:
            raise StoreError(
                f"{what} is damaged: its 'spec' is not a valid model ({err})."
            ) from err
    return meta


def read_meta(path: Path) -> dict:
    """Read and check a `.json` sidecar; StoreError with a sentence if unreadable or ill-typed."""
    what = f"The description file of model '{Path(path).stem}'"
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_META_BYTES + 1)
    except OSError as err:
        raise StoreError(f"{what} cannot be read ({err.strerror or err}).") from err
    if len(raw) > MAX_META_BYTES:
        raise StoreError(f"{what} is damaged: it is far larger than a description should be.")
    try:
        meta = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise StoreError(f"{what} is damaged: it is not valid JSON.") from err
    return validate_meta(meta, what)


def _check_model_file(path: Path) -> None:
    """Cheap structural check of a `.keras` file (a zip with config and weights), no loading."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
    except FileNotFoundError as err:
        raise StoreError("Its model file is missing, so it cannot be used.") from err
    except (OSError, zipfile.BadZipFile, ValueError) as err:
        raise StoreError(
            "Its model file is damaged (perhaps cut short), so it cannot be used."
        ) from err
    if "config.json" not in names or not names & {"model.weights.h5", "model.weights.npz"}:
        raise StoreError("Its model file is incomplete, so it cannot be used.")


def _copy_compressed(source: h5py.Group, target: h5py.Group) -> None:
    target.attrs.update(source.attrs)
    for name, item in source.items():
        if isinstance(item, h5py.Group):
            _copy_compressed(item, target.create_group(name))
            continue
        data = item[()]
        packed = dict(chunks=data.shape, shuffle=True, compression="gzip", compression_opts=9)
        copy = target.create_dataset(name, data=data, **(packed if data.size >= 1024 else {}))
        copy.attrs.update(item.attrs)


def compressed_keras(composite: keras.Model) -> bytes:
    """The bytes of `composite` as a `.keras` file whose weights are compressed without loss: each
    array one HDF5 chunk through the shuffle and gzip filters, which h5py undoes on reading. How the
    shipped models are written (their 15 MB budget); Keras loads such a file as any other."""
    with tempfile.TemporaryDirectory() as tmp:
        plain = Path(tmp) / f"model{MODEL_SUFFIX}"
        composite.save(plain)
        with zipfile.ZipFile(plain) as zin:
            weights = io.BytesIO()
            with (
                h5py.File(io.BytesIO(zin.read("model.weights.h5")), "r") as source,
                h5py.File(weights, "w") as target,
            ):
                _copy_compressed(source, target)
            out = io.BytesIO()
            with zipfile.ZipFile(out, "w") as zout:  # the same members, stored as Keras does
                for info in zin.infolist():
                    is_weights = info.filename == "model.weights.h5"
                    zout.writestr(info, weights.getvalue() if is_weights else zin.read(info))
    return out.getvalue()


# ---------------------------------------------------------------- entries
@dataclass
class StoreEntry:
    """One model in the store; `error` holds a sentence when it cannot be used."""

    name: str
    path: Path  # the .keras file
    meta: dict
    shipped: bool
    error: str | None = None

    @property
    def kind(self) -> str | None:
        kind = (self.meta.get("spec") or {}).get("kind")
        return kind if kinds.known(kind) else None

    @property
    def latent_dim(self) -> int | None:
        dim = (self.meta.get("spec") or {}).get("latent_dim")
        return dim if _is_int(dim) else None

    @property
    def label(self) -> str:
        """A short line for pickers: name, kind, latent size, data and headline quality."""
        suffix = " (shipped)" if self.shipped else ""
        if self.error:
            return f"{self.name} — cannot be used{suffix}"
        parts = [kinds.label(self.kind)]
        if self.latent_dim is not None:
            parts.append(f"latent {self.latent_dim}")
        if isinstance(self.meta.get("dataset"), str):
            parts.append(self.meta["dataset"])
        headline = kinds.headline_text(self.kind, self.meta.get("test_metrics"))
        if headline:
            parts.append(headline)
        return f"{self.name} — {', '.join(parts)}{suffix}"


# ---------------------------------------------------------------- the store
class Store:
    """The user's models (under `root`) and the shipped ones (under `shipped_root`, read-only)."""

    def __init__(
        self,
        root: Path | None = None,
        shipped_root: Path | None = paths.SHIPPED_MODELS_DIR,
        runs_root: Path | None = None,
    ):
        self.root = Path(root) if root is not None else paths.store_dir()
        self.shipped_root = Path(shipped_root) if shipped_root is not None else None
        # The runs that save into this store: the app's runs folder when this is the app's store.
        if runs_root is None and root is None:
            runs_root = paths.runs_dir()
        self.runs_root = Path(runs_root) if runs_root is not None else None

    # ------------------------------------------------------------ paths
    @staticmethod
    def _path(root: Path, name: str, suffix: str) -> Path:
        """`root/<name><suffix>`, refusing names (or symlinks) that would lead outside `root`."""
        path = root / f"{validate_name(name)}{suffix}"
        if not path.resolve().is_relative_to(root.resolve()):
            raise StoreError(
                f"The model '{name}' points outside the model store, so it was refused."
            )
        return path

    def _is_shipped(self, name: str) -> bool:
        if self.shipped_root is None:
            return False
        return any(
            self._path(self.shipped_root, name, s).exists() for s in (MODEL_SUFFIX, META_SUFFIX)
        )

    def _names(self, root: Path | None) -> list[str]:
        """Entry names under a root: stems of .keras/.json files; temp and odd files are skipped."""
        if root is None or not root.is_dir():
            return []
        try:
            files = list(root.iterdir())
        except OSError:  # an unreadable folder lists as empty rather than breaking the page
            return []
        names = set()
        for path in files:
            # Temp files start with "." (and end in .tmp...); they are half-written by design.
            if path.suffix in (MODEL_SUFFIX, META_SUFFIX) and NAME_RE.fullmatch(path.stem):
                names.add(path.stem)
        return sorted(names)

    def _entry(self, root: Path, name: str, shipped: bool) -> StoreEntry:
        """Build an entry without loading the model; problems become `error`, never exceptions."""
        meta: dict = {}
        error = None
        try:
            model_path = self._path(root, name, MODEL_SUFFIX)
        except StoreError as err:
            return StoreEntry(name, root / f"{name}{MODEL_SUFFIX}", {}, shipped, str(err))
        try:
            meta_path = self._path(root, name, META_SUFFIX)
            if meta_path.exists():
                meta = read_meta(meta_path)
            _check_model_file(model_path)
        except StoreError as err:
            error = str(err)
        return StoreEntry(name, model_path, meta, shipped, error)

    # ------------------------------------------------------------ reading
    def list(self) -> list[StoreEntry]:
        """Shipped models first, then the user's, each sorted by name; damaged ones carry `error`."""
        shipped = [self._entry(self.shipped_root, n, True) for n in self._names(self.shipped_root)]
        taken = {e.name for e in shipped}
        # A user file with a shipped name is unreachable (get() returns the shipped one), so hide it.
        user = [self._entry(self.root, n, False) for n in self._names(self.root) if n not in taken]
        return shipped + user

    def shipped_of_kind(self, kind: str, dataset: str | None = None) -> StoreEntry | None:
        """The best usable shipped model of a kind (by its headline test metric), if any; with a
        dataset, among those scored the same way: a score on binarized digits is not one on grey
        digits (MNIST itself, or the bundled sample of it)."""
        metric, higher = kinds.get(kind).headline
        scored = [
            e
            for e in self.list()
            if e.shipped
            and e.error is None
            and e.kind == kind
            and (dataset is None or _binarized(e.meta.get("dataset")) == _binarized(dataset))
            and _is_number((e.meta.get("test_metrics") or {}).get(metric))
        ]
        best = max if higher else min
        return best(scored, key=lambda e: e.meta["test_metrics"][metric], default=None)

    def get(self, name: str) -> StoreEntry:
        """The entry called `name` (shipped first); StoreError if there is none."""
        validate_name(name)
        if self._is_shipped(name):
            return self._entry(self.shipped_root, name, True)
        if any(self._path(self.root, name, s).exists() for s in (MODEL_SUFFIX, META_SUFFIX)):
            return self._entry(self.root, name, False)
        raise StoreError(f"There is no model named '{name}' in the store.")

    def load(self, name: str) -> models.ModelBundle:
        """Load a stored model in safe mode, split it into encoder, decoder and composite, float32."""
        entry = self.get(name)
        if entry.error:
            raise StoreError(f"The model '{name}' cannot be loaded: {entry.error}")
        try:
            composite = keras.saving.load_model(entry.path, safe_mode=True, compile=False)
        except Exception as err:  # Keras raises many types for a damaged or foreign file
            raise StoreError(
                f"The model '{name}' could not be loaded: its file is damaged or was saved by an "
                "incompatible version."
            ) from err
        spec = ModelSpec.from_dict(entry.meta["spec"]) if "spec" in entry.meta else None
        loader = kinds.get(spec.kind).load if spec else "vae_core.models:bundle_from_composite"
        try:
            # Kept in float16 or int8 (the shipped models) or a mixed policy: used in float32.
            return machine.float32_bundle(kinds.resolve(loader)(composite, spec, entry.meta))
        except (ValueError, UserError) as err:
            raise StoreError(
                f"The model '{name}' is not a VAE Lab model (no 'encoder' and 'decoder' inside)."
            ) from err

    def export(self, name: str) -> bytes:
        """The `.keras` file's bytes, for a download button."""
        entry = self._usable(name)
        try:
            return entry.path.read_bytes()
        except OSError as err:
            raise StoreError(f"The model '{name}' cannot be read ({err.strerror or err}).") from err

    def export_meta(self, name: str) -> bytes:
        """The metadata as pretty JSON bytes, for a download button."""
        return json.dumps(self._usable(name).meta, indent=2, sort_keys=True).encode("utf-8")

    def _usable(self, name: str) -> StoreEntry:
        entry = self.get(name)
        if entry.error:
            raise StoreError(f"The model '{name}' cannot be used: {entry.error}")
        return entry

    # ------------------------------------------------------------ writing
    def _check_writable_name(self, name: str, overwrite: bool) -> None:
        validate_name(name)
        if self._is_shipped(name):
            raise StoreError(
                f"'{name}' is the name of a shipped model, and shipped models cannot be "
                "overwritten; pick another name."
            )
        if not overwrite and any(
            self._path(self.root, name, s).exists() for s in (MODEL_SUFFIX, META_SUFFIX)
        ):
            raise StoreError(f"A model named '{name}' already exists; pick another name.")

    def _not_writable(self, err: OSError) -> StoreError:
        reason = why_not_writable(err)
        return StoreError(f"The model store at {self.root} is not writable: {reason}.")

    def _temp(self, name: str, suffix: str) -> Path:
        # Leading "." hides it from list(); Keras insists the model file ends in ".keras".
        return self.root / f".{name}.{secrets.token_hex(6)}.tmp{suffix}"

    def save(
        self,
        name: str,
        bundle: models.ModelBundle,
        meta: dict | None = None,
        overwrite: bool = False,
    ) -> StoreEntry:
        """Save atomically: model then sidecar, each via a temp file and os.replace."""
        self._check_writable_name(name, overwrite)
        meta = {
            **migrate_meta(meta or {}),
            "spec": bundle.spec.to_dict(),
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "keras_version": keras.__version__,
        }
        try:
            text = json.dumps(meta, indent=2, sort_keys=True, default=json_default)
            meta = validate_meta(json.loads(text), "The model's description")
        except (TypeError, ValueError) as err:
            raise StoreError(f"The model's description cannot be saved: {err}.") from err

        model_path = self._path(self.root, name, MODEL_SUFFIX)
        meta_path = self._path(self.root, name, META_SUFFIX)
        tmp_model, tmp_meta = self._temp(name, MODEL_SUFFIX), self._temp(name, META_SUFFIX)
        backup = None
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            bundle.composite.save(tmp_model)
            fsync_file(tmp_model)
            with open(tmp_meta, "x", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            if model_path.exists():
                # Keep the old model reachable so a failure between the two replaces can undo.
                backup = self._temp(name, ".old")
                try:
                    os.link(model_path, backup)
                except OSError:  # no hard links here (some network or FAT disks): copy instead
                    shutil.copyfile(model_path, backup)
            os.replace(tmp_model, model_path)
            try:
                os.replace(tmp_meta, meta_path)
            except BaseException:
                if backup is not None:
                    restoring, backup = backup, None  # if the restore fails, keep the copy on disk
                    os.replace(restoring, model_path)
                else:
                    model_path.unlink(missing_ok=True)
                raise
            fsync_dir(self.root)
        except OSError as err:
            raise self._not_writable(err) from err
        except StoreError:
            raise
        except Exception as err:  # Keras may refuse a model it cannot serialise
            raise StoreError(f"The model '{name}' could not be saved ({err}).") from err
        finally:
            for path in (tmp_model, tmp_meta, backup):
                if path is not None:
                    with contextlib.suppress(OSError):
                        path.unlink(missing_ok=True)
        return StoreEntry(name, model_path, meta, shipped=False)

    def delete(self, name: str) -> None:
        """Remove a user's model (sidecar first, so a listing never shows a sidecar alone)."""
        validate_name(name)
        if self._is_shipped(name):
            raise StoreError(f"'{name}' is a shipped model; shipped models cannot be deleted.")
        paths_ = [self._path(self.root, name, s) for s in (META_SUFFIX, MODEL_SUFFIX)]
        if not any(p.exists() for p in paths_):
            raise StoreError(f"There is no model named '{name}' in the store.")
        self._refuse_if_training(name)
        try:
            for path in paths_:
                path.unlink(missing_ok=True)
        except OSError as err:
            raise self._not_writable(err) from err

    def rename(self, old: str, new: str) -> StoreEntry:
        """Give a user's model a new name: its files move together or not at all.

        Each file is hard-linked (else copied) to the new name, which never replaces a file there,
        and only then is the old name removed (sidecar first, as in delete).
        """
        validate_name(old)
        validate_name(new)
        if self._is_shipped(old):
            raise StoreError(f"'{old}' is a shipped model; shipped models cannot be renamed.")
        if new == old:
            raise StoreError(f"The model is already called '{old}'.")
        self._check_writable_name(new, overwrite=False)
        present = {
            s: p
            for s in (MODEL_SUFFIX, META_SUFFIX)
            if (p := self._path(self.root, old, s)).exists()
        }
        if not present:
            raise StoreError(f"There is no model named '{old}' in the store.")
        self._refuse_if_training(old)
        target = self._training_target()
        if target is not None and target[1] == new:
            raise StoreError(
                f"The training run {target[0]} will save its model as '{new}' when it finishes; "
                "pick another name."
            )
        made: list[Path] = []  # new names written so far, removed again if anything fails
        removed: list[tuple[Path, Path]] = []  # (old name, new name holding the same file)
        try:
            for suffix, source in present.items():  # the model first, as save() writes it
                dest = self._path(self.root, new, suffix)
                self._place(source, dest, new, suffix)
                made.append(dest)
            fsync_dir(self.root)
            for suffix in (META_SUFFIX, MODEL_SUFFIX):  # the sidecar first, as delete() removes it
                if suffix in present:
                    present[suffix].unlink()
                    removed.append((present[suffix], self._path(self.root, new, suffix)))
            fsync_dir(self.root)
        except OSError as err:
            for back, holder in removed:
                with contextlib.suppress(OSError):
                    os.link(holder, back)
            for path in made:
                with contextlib.suppress(OSError):
                    path.unlink(missing_ok=True)
            if isinstance(err, FileExistsError):  # someone saved that name a moment ago
                raise StoreError(
                    f"A model named '{new}' already exists; pick another name."
                ) from err
            raise self._not_writable(err) from err
        return self.get(new)

    def _place(self, source: Path, dest: Path, name: str, suffix: str) -> None:
        """`dest` gets `source`'s file without replacing anything (a hard link, else a copy)."""
        try:
            os.link(source, dest)
            return
        except FileExistsError:
            raise
        except OSError as err:  # no hard links here (some network or FAT disks): copy instead
            if err.errno not in (errno.EPERM, errno.EXDEV, errno.ENOTSUP, errno.EMLINK):
                raise
        tmp = self._temp(name, suffix)
        try:
            shutil.copyfile(source, tmp)
            fsync_file(tmp)
            if dest.exists():
                raise FileExistsError(errno.EEXIST, "File exists", str(dest))
            os.replace(tmp, dest)
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)

    def _training_target(self) -> tuple[str, str | None] | None:
        return training_now.training_target(self.runs_root) if self.runs_root is not None else None

    def _refuse_if_training(self, name: str) -> None:
        """StoreError if the run training now will save as `name` or has saved this very model."""
        target = self._training_target()
        if target is None:
            return
        run_id, save_as = target
        meta = self._entry(self.root, name, False).meta
        if name == save_as or meta.get("run_id") == run_id:
            raise StoreError(
                f"The model '{name}' is in use by the training run {run_id}; stop that run or wait "
                "until it finishes, then try again."
            )

    def import_file(
        self, data: bytes, name: str, meta: dict | None = None, overwrite: bool = False
    ) -> StoreEntry:
        """Check an uploaded `.keras` file, load it in safe mode and save it under `name`."""
        self._check_writable_name(name, overwrite)
        meta = validate_meta(dict(meta or {}), "The description given with this model")
        config = check_archive(data)
        refuse_unsafe_config(config)

        tmp = self._temp(name, ".import" + MODEL_SUFFIX)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with open(tmp, "xb") as f:
                f.write(data)
            try:
                composite = keras.saving.load_model(tmp, safe_mode=True, compile=False)
            except Exception as err:  # Keras raises ValueError, TypeError, KeyError, OSError, ...
                raise StoreError(UNSAFE_MESSAGE) from err
        except OSError as err:
            raise self._not_writable(err) from err
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)

        spec = vae_lab_spec(composite)
        if "spec" in meta:
            given = ModelSpec.from_dict(meta["spec"])
            # Trust the richer given spec (beta, loss) only when it describes this very model.
            if (given.kind, given.latent_dim, tuple(given.image_shape)) == (
                spec.kind,
                spec.latent_dim,
                tuple(spec.image_shape),
            ):
                spec = given
        bundle = models.bundle_from_composite(composite, spec, meta)
        return self.save(name, bundle, {**meta, "imported": True}, overwrite=overwrite)


def _binarized(dataset: str | None) -> bool:
    return dataset == "mnist_binary"  # vae_core.data's black-and-white MNIST


# How far below the shipped model of its kind a new model may fall before the page says so:
# a quarter more nats (a VAE's -ELBO), 2 dB less PSNR (a denoiser), or a quarter lower NDCG@100 (a
# recommender, whose shipped one is scored on its own split: near enough for a warning).
MUCH_WORSE_NATS_RATIO, MUCH_WORSE_DB, MUCH_WORSE_RANKING_RATIO = 1.25, 2.0, 0.75


def much_worse_than_shipped(
    store: Store, kind: str, test_metrics: dict, dataset: str | None = None
) -> tuple[StoreEntry, float, float] | None:
    """(the shipped model, its score, this score) when a trained model is far weaker than the
    shipped one of its kind (and dataset), so the page can say so before offering it; else None."""
    metric, higher = kinds.get(kind).headline if kinds.known(kind) else ("", False)
    ours = (test_metrics or {}).get(metric)
    reference = store.shipped_of_kind(kind, dataset) if _is_number(ours) else None
    if reference is None:
        return None
    theirs = reference.meta["test_metrics"][metric]
    if metric == "psnr":
        worse = ours < theirs - MUCH_WORSE_DB
    elif higher:  # a ranking score (NDCG@100): a quarter below the shipped one's
        worse = ours < theirs * MUCH_WORSE_RANKING_RATIO
    else:
        worse = ours > theirs * MUCH_WORSE_NATS_RATIO
    return (reference, float(theirs), float(ours)) if worse else None


def default_store() -> Store:
    """The store the app uses: the user's folder under VAE_LAB_HOME plus the shipped models."""
    return Store()
