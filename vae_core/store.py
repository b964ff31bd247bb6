"""The model store: trained models as `<name>.keras` (the composite) plus a `<name>.json` sidecar.

Two roots: the user's store (writable, created on demand) and the models shipped with the project
(read-only). Writes are atomic (temp file in the same folder, fsync, os.replace), so a listing never
sees half a model; loads are always in Keras safe mode, so a file cannot run code on this machine.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import re
import secrets
import shutil
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import keras

from vae_core import kinds, models, paths
from vae_core.errors import StoreError, UserError
from vae_core.fsutil import fsync_dir, fsync_file, json_default, why_not_writable
from vae_core.specs import ModelSpec

MODEL_SUFFIX, META_SUFFIX = ".keras", ".json"
MAX_IMPORT_BYTES = 100 * 1024 * 1024  # an MNIST model is a few MB; this leaves ample room
MAX_UNPACKED_BYTES = 512 * 1024 * 1024  # guards against zip bombs before Keras sees the file
MAX_META_BYTES = 1024 * 1024  # a sidecar is a few hundred bytes; refuse to parse anything huge
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
        metrics = self.meta.get("test_metrics") or {}
        nelbo = next(
            (metrics[k] for k in ("neg_elbo", "negative_elbo", "nelbo") if k in metrics), None
        )
        if nelbo is not None and math.isfinite(nelbo):
            parts.append(f"−ELBO {nelbo:.1f} nats")
        elif _is_number(metrics.get("psnr")) and math.isfinite(metrics["psnr"]):
            parts.append(f"PSNR {metrics['psnr']:.1f} dB")
        return f"{self.name} — {', '.join(parts)}{suffix}"


# ---------------------------------------------------------------- the store
class Store:
    """The user's models (under `root`) and the shipped ones (under `shipped_root`, read-only)."""

    def __init__(
        self, root: Path | None = None, shipped_root: Path | None = paths.SHIPPED_MODELS_DIR
    ):
        self.root = Path(root) if root is not None else paths.store_dir()
        self.shipped_root = Path(shipped_root) if shipped_root is not None else None

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

    def shipped_of_kind(self, kind: str) -> StoreEntry | None:
        """The best usable shipped model of a kind (by its headline test metric), if any."""
        metric, higher = kinds.get(kind).headline
        scored = [
            e for e in self.list()
            if e.shipped and e.error is None and e.kind == kind
            and _is_number((e.meta.get("test_metrics") or {}).get(metric))
        ]  # fmt: skip
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
        """Load a stored model in safe mode and split it into encoder, decoder and composite."""
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
        try:
            return models.bundle_from_composite(composite, spec, entry.meta)
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
        try:
            for path in paths_:
                path.unlink(missing_ok=True)
        except OSError as err:
            raise self._not_writable(err) from err

    def import_file(
        self, data: bytes, name: str, meta: dict | None = None, overwrite: bool = False
    ) -> StoreEntry:
        """Check an uploaded `.keras` file, load it in safe mode and save it under `name`."""
        self._check_writable_name(name, overwrite)
        meta = validate_meta(dict(meta or {}), "The description given with this model")
        config = _check_archive(data)
        _refuse_unsafe_config(config)

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

        spec = _vae_lab_spec(composite)
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


# How far below the shipped model of its kind a new model may fall before the page says so:
# a quarter more nats (a VAE's -ELBO), or 2 dB less PSNR (a denoiser).
MUCH_WORSE_NATS_RATIO, MUCH_WORSE_DB = 1.25, 2.0


def much_worse_than_shipped(
    store: Store, kind: str, test_metrics: dict
) -> tuple[StoreEntry, float, float] | None:
    """(the shipped model, its score, this score) when a trained model is far weaker than the
    shipped one of its kind, so the page can say so before offering it; else None."""
    metric, higher = kinds.get(kind).headline if kinds.known(kind) else ("", False)
    ours = (test_metrics or {}).get(metric)
    reference = store.shipped_of_kind(kind) if _is_number(ours) else None
    if reference is None:
        return None
    theirs = reference.meta["test_metrics"][metric]
    worse = ours < theirs - MUCH_WORSE_DB if higher else ours > theirs * MUCH_WORSE_NATS_RATIO
    return (reference, float(theirs), float(ours)) if worse else None


def default_store() -> Store:
    """The store the app uses: the user's folder under VAE_LAB_HOME plus the shipped models."""
    return Store()


# ---------------------------------------------------------------- helpers
def _safe_member(name: str) -> bool:
    """A zip member name that cannot land outside the folder it is extracted to."""
    if not name or "\\" in name or "\x00" in name or name.startswith("/"):
        return False
    if re.match(r"[A-Za-z]:", name):  # a Windows drive
        return False
    return ".." not in name.split("/")


def _check_archive(data: bytes) -> Any:
    """Validate an upload as a `.keras` zip with safe member names; return its parsed config."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise StoreError("That upload is empty or could not be read.")
    if len(data) > MAX_IMPORT_BYTES:
        raise StoreError("That file is larger than 100 MB, which is far more than a VAE Lab model.")
    not_keras = "That file is not a Keras model (.keras); it may be damaged or cut short."
    try:
        with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
            infos = zf.infolist()
            if not all(_safe_member(i.filename) for i in infos):
                raise StoreError(
                    "That file contains paths that point outside its own folder, so it was refused."
                )
            if sum(i.file_size for i in infos) > MAX_UNPACKED_BYTES:
                raise StoreError(
                    "That file unpacks to far more than a VAE Lab model, so it was refused."
                )
            names = {i.filename for i in infos}
            if "config.json" not in names or not names & {"model.weights.h5", "model.weights.npz"}:
                raise StoreError(not_keras)
            if zf.getinfo("config.json").file_size > 64 * MAX_META_BYTES:
                raise StoreError(not_keras)
            raw = zf.read("config.json")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as err:
        raise StoreError(not_keras) from err
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise StoreError(not_keras) from err


def _walk_classes(config: Any):
    """Yield every (class_name, module, registered_name) in a Keras config, however nested."""
    if isinstance(config, dict):
        if isinstance(config.get("class_name"), str):
            yield config["class_name"], config.get("module"), config.get("registered_name")
        for value in config.values():
            yield from _walk_classes(value)
    elif isinstance(config, list):
        for value in config:
            yield from _walk_classes(value)


def _refuse_unsafe_config(config: Any) -> None:
    """Name the problem before loading: Lambda layers, or classes this process cannot vouch for."""
    for class_name, module, registered in _walk_classes(config):
        if class_name == "Lambda":
            raise StoreError(
                "This model uses a Lambda layer, which could run arbitrary code when loaded, so it "
                "was refused. VAE Lab's own models use the registered Sampling layer instead."
            )
        builtin = isinstance(module, str) and module.split(".")[0] == "keras"
        known = isinstance(registered, str) and keras.saving.get_registered_object(registered)
        if isinstance(module, str) and not builtin and not known:
            raise StoreError(
                f"This model uses a custom class ({class_name!r}) that VAE Lab does not know, so it "
                "cannot be loaded safely and was refused."
            )


def _vae_lab_spec(composite: Any) -> ModelSpec:
    """The spec of an imported composite, or StoreError if it is not shaped like a VAE Lab model."""
    not_ours = (
        "This is a Keras model, but not one VAE Lab can explore: it needs an inner model named "
        "'encoder' and one named 'decoder' that takes the latent vector, as VAE Lab saves them."
    )
    try:
        encoder, decoder = composite.get_layer("encoder"), composite.get_layer("decoder")
    except (ValueError, AttributeError) as err:
        raise StoreError(not_ours) from err
    if not (isinstance(encoder, keras.Model) and isinstance(decoder, keras.Model)):
        raise StoreError(not_ours)
    try:
        spec = models.infer_spec(composite)
        out_shape = tuple(decoder.outputs[0].shape[1:])
    except (UserError, ValueError, TypeError, IndexError, AttributeError) as err:
        raise StoreError(not_ours) from err
    if out_shape != tuple(spec.image_shape):
        raise StoreError(not_ours)
    return spec
