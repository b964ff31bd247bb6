"""Checks on a `.keras` file someone uploads, before and after Keras opens it: a zip with safe
member names and sizes, no Lambda layers or classes this process cannot vouch for, and the
encoder/decoder structure VAE Lab explores. Every refusal is one sentence (a StoreError)."""

from __future__ import annotations

import io
import json
import re
import zipfile
from typing import Any

import keras

from vae_core import models
from vae_core.errors import StoreError, UserError
from vae_core.specs import ModelSpec

MAX_IMPORT_BYTES = 100 * 1024 * 1024  # an MNIST model is a few MB; this leaves ample room
MAX_UNPACKED_BYTES = 512 * 1024 * 1024  # guards against zip bombs before Keras sees the file
MAX_META_BYTES = 1024 * 1024  # a sidecar is a few hundred bytes; refuse to parse anything huge


def _safe_member(name: str) -> bool:
    """A zip member name that cannot land outside the folder it is extracted to."""
    if not name or "\\" in name or "\x00" in name or name.startswith("/"):
        return False
    if re.match(r"[A-Za-z]:", name):  # a Windows drive
        return False
    return ".." not in name.split("/")


def check_archive(data: bytes) -> Any:
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


def refuse_unsafe_config(config: Any) -> None:
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


def vae_lab_spec(composite: Any) -> ModelSpec:
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
