"""What every page shares: the store, cached models, the active model in the sidebar, error display.

The active model lives in `st.query_params["model"]`, so a copied URL opens the same model.
"""

from __future__ import annotations

import gc
import json
import re

import keras
import streamlit as st

from app_pages import glossary
from vae_core import kinds
from vae_core import store as store_module
from vae_core.errors import StoreError, UserError
from vae_core.models import ModelBundle
from vae_core.store import MAX_META_BYTES, Store, StoreEntry

MODEL_PARAM = "model"


def store() -> Store:
    """The model store (cheap to make: it only holds paths, so a fresh one sees new models)."""
    return store_module.default_store()  # looked up at call time, so tests can swap it


def settle_heap() -> None:
    """Hide everything alive now from the garbage collector's full sweeps.

    After every script run (a click, a slider, a fragment) Streamlit collects garbage twice: its
    `runner.postScriptGC` and its Keras clean-up (`keras.backend.clear_session()` collects too).
    With TensorFlow and the models loaded that is ~350,000 objects, ~150 ms each time, holding the
    GIL that every other visitor's run is waiting for. Frozen objects are skipped, so those sweeps
    take about a millisecond. Unfreezing first lets this one collection free what the model cache
    has evicted since the last call (an evicted model's cycles wait for the next load; objects
    only reference counting frees go at once). What is created after a load stays in the sweeps, so
    they slowly grow again until the next load settles the heap once more.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def keep_keras_session() -> None:
    """Make the `keras.backend.clear_session()` that Streamlit calls after every script run a no-op.

    Streamlit clears Keras for scripts that build models on each run; this app builds none per
    run and keeps its models for the server's life. The clearing also empties TensorFlow's kernel
    cache, so the first model call of every click re-created its kernels: ~60 ms of a Shuffle.
    Only the public name is replaced; Keras's own code calls its internal one.
    """
    keras.backend.clear_session = _keep_session


def _keep_session(*args, **kwargs) -> None:
    """What Streamlit's clean-up calls instead of keras.backend.clear_session (see above)."""


@st.cache_resource(show_spinner="Loading the model…", max_entries=16)
def _load(name: str, stamp: float) -> ModelBundle:
    # `stamp` (the file's mtime) keys the cache, so a retrained model under the same name reloads.
    bundle = store().load(name)
    keep_keras_session()
    settle_heap()  # TensorFlow and this model are here for the server's life
    return bundle


def load_bundle(entry: StoreEntry) -> ModelBundle:
    """A store entry's models, loaded once per server and shared by every visitor."""
    return _load(entry.name, entry.path.stat().st_mtime)


def usable_entries(wanted: tuple[str, ...] | None = None) -> list[StoreEntry]:
    """Store entries that can be loaded, optionally only of the given kinds."""
    return [e for e in store().list() if e.error is None and (wanted is None or e.kind in wanted)]


# How the sidebar names a prior other than N(0, I).
PRIOR_WORDS = {
    "mixture": "prior: a learned mixture of Gaussians",
    "class_mixture": "prior: a Gaussian per digit",
}


def _describe(entry: StoreEntry) -> str:
    meta = entry.meta
    parts = [kinds.label(entry.kind), f"latent size {entry.latent_dim}"]
    prior = (meta.get("spec") or {}).get("prior", "normal")
    if prior != "normal":
        parts.append(PRIOR_WORDS.get(prior, prior))
    if meta.get("dataset"):
        parts.append(
            f"trained on {meta['dataset']}"
            + (
                f", {meta['epochs']} epoch{'' if meta['epochs'] == 1 else 's'}"
                if meta.get("epochs")
                else ""
            )
        )
    metrics = meta.get("test_metrics") or {}
    if "neg_elbo" in metrics:
        parts.append(f"test −ELBO {metrics['neg_elbo']:.1f} nats")
    if "psnr" in metrics:
        parts.append(f"test PSNR {metrics['psnr']:.1f} dB, SSIM {metrics.get('ssim', 0):.3f}")
    elif "neg_elbo" not in metrics and kinds.headline_text(entry.kind, metrics):
        parts.append(f"test {kinds.headline_text(entry.kind, metrics)}")  # e.g. a recommender's
    if entry.shipped:
        parts.append("shipped with VAE Lab")
    return " · ".join(parts)


# The first view of a fresh install: the 2-D VAE shows the most (latent map, manifold, sampling).
PREFERRED_FIRST = ("mlp_vae_2d",)


def _default_index(entries: list[StoreEntry]) -> int:
    """Which model a visitor without a choice sees: the preferred shipped one, else the first VAE."""
    names = [e.name for e in entries]
    for name in PREFERRED_FIRST:
        if name in names:
            return names.index(name)
    return next(
        (i for i, e in enumerate(entries) if kinds.known(e.kind) and kinds.get(e.kind).variational),
        0,
    )


def render_sidebar() -> None:
    """The model picker every page shares; the choice is kept in the URL."""
    entries = store().list()
    good = [e for e in entries if e.error is None]
    with st.sidebar:
        st.subheader("Active model")
        if not good:
            st.info(
                "No trained models yet. Train one on the **Train** page; it appears here when done."
            )
            st.session_state["active_entry"] = None
        else:
            names = [e.name for e in good]
            wanted = st.query_params.get(MODEL_PARAM)
            index = names.index(wanted) if wanted in names else _default_index(good)
            # A radio, not a selectbox: each model's description wraps under its name, where a
            # selectbox would cut it off at the sidebar's width. However long the list, it is not
            # put in a box of its own: a box cut the descriptions off; the sidebar itself scrolls.
            name = st.radio(
                "Model",
                names,
                index=index,
                key="sidebar_model",
                format_func=lambda n: f"**{breakable(n, markdown=True)}**",
                captions=[_describe(e) for e in good],
                help="Every page uses this model. The choice is kept in the page address, "
                "so a copied link opens the same model. Under each model: its kind, latent "
                "size, training data and test score.\n\n"
                + glossary.tip("ELBO", "nats", "PSNR", "SSIM"),
            )
            if st.query_params.get(MODEL_PARAM) != name:
                st.query_params[MODEL_PARAM] = name
            entry = good[names.index(name)]
            st.session_state["active_entry"] = entry
        broken = [e for e in entries if e.error is not None]
        if broken:
            with st.expander(f"{len(broken)} model file(s) could not be read"):
                for e in broken:
                    st.caption(f"**{e.name}**: {e.error}")
        _import_export(st.session_state.get("active_entry"))
        if st.session_state.get("active_entry") is not None:
            _rename_or_delete(st.session_state["active_entry"])
        glossary.render()


def _name_from_file(filename: str) -> str:
    """A store name suggested by an upload's file name ("../My model (2).keras" -> "My_model_2")."""
    stem = filename.replace("\\", "/").rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_-")[:64]


def _uploaded_meta(files) -> dict | None:
    """The optional description (.json) uploaded with a model; StoreError if it is not JSON."""
    sidecar = next((f for f in files if f.name.lower().endswith(".json")), None)
    if sidecar is None:
        return None
    raw = sidecar.getvalue()
    try:
        if len(raw) > MAX_META_BYTES:
            raise ValueError("too large")
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise StoreError(
            f"The description file {_name_from_file(sidecar.name)}.json is not valid JSON; "
            "import the model without it or fix the file."
        ) from err


def _import_export(entry: StoreEntry | None) -> None:
    """Bring a .keras file into the store (safe mode), or take the active model away as one."""
    with st.expander("Import or download a model"):
        files = st.file_uploader(
            "Import a model (.keras, with its .json description if you have it)",
            type=["keras", "json"],
            accept_multiple_files=True,
            key="sb_import_files",
            help="Models are loaded in Keras safe mode: a file that would run "
            "code (a Lambda layer, an unknown custom class) is refused.",
        )
        model_file = next((f for f in files or [] if f.name.lower().endswith(".keras")), None)
        name = st.text_input(
            "Save it as",
            key="sb_import_name",
            max_chars=64,
            placeholder=_name_from_file(model_file.name) if model_file else "my_model",
            help="Letters, digits, '-' and '_'; empty: from the file name.",
        )
        if st.button("Import", key="sb_import", disabled=model_file is None):
            try:
                meta = _uploaded_meta(files)
                wanted = name.strip() or _name_from_file(model_file.name)
                imported = store().import_file(model_file.getvalue(), wanted, meta)
            except UserError as err:
                st.error(str(err))
            else:
                st.session_state["sb_imported"] = imported.name
                st.query_params[MODEL_PARAM] = imported.name
                st.session_state.pop("sidebar_model", None)  # the picker follows the URL
                st.rerun()
        elif files and model_file is None:
            st.caption("Add the model's .keras file; the .json description alone is not a model.")
        if st.session_state.get("sb_imported"):
            st.success(
                f"Imported **{st.session_state.pop('sb_imported')}**; it is the active model now."
            )
        if entry is not None:
            st.download_button(
                "Download this model (.keras)",
                lambda: store().export(entry.name),
                icon=":material/download:",
                file_name=f"{entry.name}.keras",
                mime="application/zip",
                key="sb_export",
                help="The model file; import it into another VAE Lab, or load it with "
                "keras.saving.load_model.",
            )
            st.download_button(
                "Its description (.json)",
                lambda: store().export_meta(entry.name),
                icon=":material/download:",
                file_name=f"{entry.name}.json",
                mime="application/json",
                key="sb_export_meta",
            )


# ---------------------------------------------------------------- rename and delete
def _pick(name: str | None) -> None:
    """Make `name` the active model (None: the default one); the picker follows the URL."""
    if name is None:
        st.query_params.pop(MODEL_PARAM, None)
    else:
        st.query_params[MODEL_PARAM] = name
    st.session_state.pop("sidebar_model", None)


def _do_rename(old: str) -> None:
    new = st.session_state.get("sb_rename_to", "").strip()
    if not new:
        st.session_state["sb_rename_error"] = f"Type the new name for {old} first."
        return
    try:
        renamed = store().rename(old, new)
    except UserError as err:
        st.session_state["sb_rename_error"] = str(err)
        return
    st.session_state["sb_rename_to"] = ""
    st.session_state["sb_managed"] = f"Renamed **{old}** to **{renamed.name}**."
    _pick(renamed.name)


def _do_delete(name: str) -> None:
    st.session_state.pop("sb_delete_asked", None)
    try:
        store().delete(name)
    except UserError as err:
        st.session_state["sb_delete_error"] = str(err)
        return
    st.session_state["sb_managed"] = f"Deleted **{name}**."
    _pick(None)


def _pop_error(key: str) -> None:
    if st.session_state.get(key):
        st.error(st.session_state.pop(key))


def _rename_or_delete(entry: StoreEntry) -> None:
    """Rename or delete the active model (the user's own; shipped ones are read-only)."""
    with st.expander("Rename or delete this model"):
        if entry.shipped:
            st.caption(
                f"**{entry.name}** is shipped with VAE Lab and is read-only. To keep a copy under "
                "your own name, download it above and import it again."
            )
        else:
            st.text_input(
                "New name",
                key="sb_rename_to",
                max_chars=64,
                placeholder=entry.name,
                help=store_module.NAME_RULE,
            )
            st.button("Rename", key="sb_rename", on_click=_do_rename, args=(entry.name,))
            _pop_error("sb_rename_error")  # each sentence right under the button that caused it
            if st.session_state.get("sb_delete_asked") != entry.name:
                st.button(
                    "Delete this model…",
                    key="sb_delete",
                    on_click=lambda: st.session_state.update(sb_delete_asked=entry.name),
                )
            else:
                st.warning(f"Delete **{entry.name}** for good? This cannot be undone.")
                st.button(
                    "Yes, delete it",
                    key="sb_delete_yes",
                    type="primary",
                    on_click=_do_delete,
                    args=(entry.name,),
                )
                st.button(
                    "Cancel",
                    key="sb_delete_no",
                    on_click=lambda: st.session_state.pop("sb_delete_asked", None),
                )
            _pop_error("sb_delete_error")
    if st.session_state.get("sb_managed"):
        st.success(st.session_state.pop("sb_managed"))


def active_entry() -> StoreEntry | None:
    """The model chosen in the sidebar, or None when the store is empty."""
    return st.session_state.get("active_entry")


def _use_model(name: str) -> None:
    # A callback runs before the next script run, so the sidebar's picker (already drawn in this
    # run) can still be set; the browser then shows the new choice too.
    st.session_state["sidebar_model"] = name
    st.query_params[MODEL_PARAM] = name


def active_bundle(
    wanted: tuple[str, ...] | None = None, purpose: str = "", page: str | None = None
) -> ModelBundle | None:
    """Load the active model; if it is missing, of the wrong kind, or of another kind of data than
    `page` explores (vae_core.kinds says which), say what to do and return None."""
    entry = active_entry()
    if entry is None:
        st.info(
            "There is no trained model yet. Go to **Train**, start a run, and come back when it finishes."
        )
        return None
    if page is not None and kinds.known(entry.kind):
        domains = {kinds.get(k).domain for k in kinds.for_page(page)}
        if kinds.get(entry.kind).domain not in domains:
            names = " or ".join(kinds.label(k) for k in kinds.for_page(page))
            # Name the models that would do, or say where one comes from.
            fits = [e.name for e in usable_entries(kinds.for_page(page))]
            where = (
                f"pick one in the sidebar ({', '.join(fits[:5])}{', …' if len(fits) > 5 else ''})."
                if fits
                else "there is none in the store yet: train one on the **Train** page."
            )
            st.info(
                f"**{entry.name}** is a {kinds.label(entry.kind)}, which this page cannot show: it "
                f"works with a {names}; {where}"
            )
            if fits:
                st.button(f"Use {fits[0]}", key=f"use_model_{page}", on_click=_use_model,
                          args=(fits[0],))  # fmt: skip
            return None
    if wanted is not None and entry.kind not in wanted:
        names = " or ".join(kinds.label(k) for k in wanted)
        st.warning(f"{purpose or 'This page'} needs a {names}; pick one in the sidebar.")
        return None
    try:
        return load_bundle(entry)
    except UserError as err:
        st.error(str(err))
        return None


def file_name(
    page: str, what: str, model: str | None = None, seed: int | None = None, ext: str = "png"
) -> str:
    """A download's name that says what it is: vae_lab-<page>-<what>-<model>-seed<seed>.<ext>."""
    parts = ["vae_lab", page, what, model, None if seed is None else f"seed{int(seed)}"]
    return "-".join(p for p in parts if p) + f".{ext}"


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]|<>~$])")  # never at a line's start here


def breakable(text: str, markdown: bool = False) -> str:
    """Text (a file name) that may wrap after '_', '-' and '.', never in the middle of a part.

    With `markdown`, characters Markdown would read as formatting are escaped first.
    """
    if markdown:
        text = _MARKDOWN_SPECIAL.sub(r"\\\1", text)
    return re.sub(r"([_.-])", "\\1\u200b", text)


def show_error(err: UserError) -> None:
    """One clear sentence in the page, never a traceback."""
    st.error(str(err))
