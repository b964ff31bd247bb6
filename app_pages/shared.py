"""What every page shares: the store, cached models, each page's model in the sidebar, errors.

A page's sidebar lists only the models that page can show and opens on the best one for its job;
the choice is the page's own, kept across visits and in `st.query_params["model"]`, so a copied URL
opens the same model.
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


# ---------------------------------------------------------------- each page's own model
# Which shipped model a page opens on: the best for its job, as benchmarks/RESULTS.md measured it
# (the convolutional VAE's round trips and prior draws read as the right digit most often; the
# 2-D VAE, next, shows its whole latent space). A page without a listed one opens on its first VAE.
PREFERRED = {
    "round_trip": ("conv_vae_32d", "mlp_vae_2d"),
    "generate": ("conv_vae_32d", "mlp_vae_2d"),
    "denoise": ("conv_dae",),
    # One recommender is shipped, the better VAE on its split (scripts/train_rec_vae_small.py).
    "recommend": ("rec_vae_ml_latest_small", "mult_vae_ml_latest_small"),
}
# What the sidebar calls the list on each page; a page not named here lists every model.
HEADINGS = {
    "round_trip": "Model to explore",
    "generate": "Model to draw with",
    "denoise": "Denoiser",
    "recommend": "Recommender",
}
WITHOUT_MODELS = ("glossary",)  # pages about no model: their sidebar is the navigation alone
CHOSEN = "page_models"  # session state: {page: the model chosen there}, kept across page visits


def page_kinds(page: str) -> tuple[str, ...] | None:
    """The kinds a page's sidebar lists (vae_core.kinds says which pages explore which kind);
    None for a page that explores none (Train: every model, to look after them)."""
    if page not in kinds.PAGES:
        return None
    fit = kinds.for_page(page)
    if page == "denoise":  # the page's own model is the denoiser; it picks a VAE to compare itself
        fit = tuple(k for k in fit if not kinds.get(k).variational)
    return fit


def pages_for(kind: str) -> list[str]:
    """The pages whose sidebar lists a model of this kind."""
    return [p for p in kinds.PAGES if kind in (page_kinds(p) or ())]


def best_of(page: str, entries: list[StoreEntry]) -> str:
    """The model a page opens on: its preferred shipped one, else the first VAE, else the first."""
    names = [e.name for e in entries]
    for name in PREFERRED.get(page, ()):
        if name in names:
            return name
    vae = (e.name for e in entries if kinds.known(e.kind) and kinds.get(e.kind).variational)
    return next(vae, names[0])


def picker_key(page: str) -> str:
    """The session-state key of a page's model picker."""
    return f"sb_model_{page}"


def _choose(page: str, good: list[StoreEntry], entries: list[StoreEntry]) -> tuple[str, bool]:
    """Set the page's picker to its model before it is drawn: the one a link names, else the one
    chosen on this page before, else the page's default. Returns the picker's key, and whether a
    link names a model this page cannot show (the page still opens on one it can)."""
    names = [e.name for e in good]
    chosen = st.session_state.setdefault(CHOSEN, {})
    key = picker_key(page)
    linked = st.query_params.get(MODEL_PARAM)
    unfit = linked is not None and linked != chosen.get(page) and linked not in names
    if linked in names and linked != chosen.get(page):
        st.session_state[key] = linked
    if st.session_state.get(key) not in names:
        # Streamlit forgets a widget's value on a page it is not drawn on: the page's own record.
        remembered = chosen.get(page)
        st.session_state[key] = remembered if remembered in names else best_of(page, good)
    return key, unfit


def _say_unfit(page: str, name: str, entries: list[StoreEntry]) -> None:
    """Why the model a link asks for is not this page's, and links to the pages that show it."""
    entry = next((e for e in entries if e.name == name), None)
    if entry is None:
        st.info(f"The link asks for **{name}**, which is not in this lab's store.")
        return
    where = [p for p in pages_for(entry.kind) if p != page]
    st.info(
        f"The link asks for **{name}**, a {kinds.label(entry.kind)}, which this page cannot "
        "show" + ("; it opens here:" if where else ".")
    )
    for other in where:
        st.page_link(page_file(other))


def page_file(page: str) -> str:
    """A page's script, for st.page_link (app.py registers each as app_pages/<page>.py)."""
    return f"app_pages/{page}.py"


def render_sidebar(page: str) -> None:
    """The page's own model picker, with each model's description, and the tools to import,
    download, rename and delete models. The choice is kept in the page's URL."""
    if page in WITHOUT_MODELS:
        st.session_state["active_entry"] = None
        return
    entries = store().list()
    fit = page_kinds(page)
    good = [e for e in entries if e.error is None and (fit is None or e.kind in fit)]
    with st.sidebar:
        st.subheader(HEADINGS.get(page, "Your models"))
        entry = None
        st.session_state["active_page"] = page
        if not good:
            linked = st.query_params.get(MODEL_PARAM)
            if linked:
                _say_unfit(page, linked, entries)
            st.caption("None yet: the page says where one comes from.")
        else:
            names = [e.name for e in good]
            key, unfit = _choose(page, good, entries)
            if unfit:  # said above the list, where it is seen
                _say_unfit(page, st.query_params[MODEL_PARAM], entries)
            # A radio, not a selectbox: each model's description wraps under its name, where a
            # selectbox would cut it off at the sidebar's width. However long the list, it is not
            # put in a box of its own: a box cut the descriptions off; the sidebar itself scrolls.
            name = st.radio(
                "Model",
                names,
                key=key,
                format_func=lambda n: f"**{breakable(n, markdown=True)}**",
                captions=[_describe(e) for e in good],
                help=(
                    "The models this page can show; each page keeps its own choice, and the "
                    "page's address keeps it too, so a copied link opens the same model."
                    if fit is not None
                    else "Every model in this lab. Pick one to download, rename or delete it; "
                    "each page lists the ones it can show."
                )
                + " Under each model: its kind, latent size, training data and test score.\n\n"
                + glossary.tip("ELBO", "nats", "PSNR", "SSIM"),
            )
            st.session_state[CHOSEN][page] = name
            if st.query_params.get(MODEL_PARAM) != name:
                st.query_params[MODEL_PARAM] = name
            entry = good[names.index(name)]
        st.session_state["active_entry"] = entry
        broken = [e for e in entries if e.error is not None]
        if broken:
            with st.expander(f"{len(broken)} model file(s) could not be read"):
                for e in broken:
                    st.caption(f"**{e.name}**: {e.error}")
        _import_export(page, entry)
        if entry is not None:
            _rename_or_delete(page, entry)
        glossary.link()


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


def _import_export(page: str, entry: StoreEntry | None) -> None:
    """Bring a .keras file into the store (safe mode), or take the page's model away as one."""
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
                st.session_state["sb_imported"] = (imported.name, imported.kind)
                fit = page_kinds(page)
                if fit is None or imported.kind in fit:
                    st.query_params[MODEL_PARAM] = imported.name  # the picker follows the link
                st.rerun()
        elif files and model_file is None:
            st.caption("Add the model's .keras file; the .json description alone is not a model.")
        if st.session_state.get("sb_imported"):
            _say_imported(page, *st.session_state.pop("sb_imported"))
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


def _say_imported(page: str, name: str, kind: str) -> None:
    """Where an imported model is to be found: on this page, or on the pages that show it."""
    fit = page_kinds(page)
    if fit is None or kind in fit:
        st.success(f"Imported **{name}**; it is this page's model now.")
        return
    where = pages_for(kind)
    st.success(
        f"Imported **{name}**, a {kinds.label(kind)}"
        + ("; this page cannot show it, these can:" if where else ".")
    )
    for other in where:
        st.page_link(page_file(other))


# ---------------------------------------------------------------- rename and delete
def _pick(page: str, name: str | None) -> None:
    """Make `name` the page's model (None: its default one); the picker follows the URL."""
    st.session_state.get(CHOSEN, {}).pop(page, None)
    st.session_state.pop(picker_key(page), None)
    if name is None:
        st.query_params.pop(MODEL_PARAM, None)
    else:
        st.query_params[MODEL_PARAM] = name


def _do_rename(page: str, old: str) -> None:
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
    chosen = st.session_state.get(CHOSEN, {})
    chosen.update({p: renamed.name for p, n in chosen.items() if n == old})  # other pages too
    _pick(page, renamed.name)


def _do_delete(page: str, name: str) -> None:
    st.session_state.pop("sb_delete_asked", None)
    try:
        store().delete(name)
    except UserError as err:
        st.session_state["sb_delete_error"] = str(err)
        return
    st.session_state["sb_managed"] = f"Deleted **{name}**."
    _pick(page, None)


def _pop_error(key: str) -> None:
    if st.session_state.get(key):
        st.error(st.session_state.pop(key))


def _rename_or_delete(page: str, entry: StoreEntry) -> None:
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
            st.button("Rename", key="sb_rename", on_click=_do_rename, args=(page, entry.name))
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
                    args=(page, entry.name),
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
    """The model chosen in this page's sidebar, or None when the store has none for the page."""
    return st.session_state.get("active_entry")


def active_bundle() -> ModelBundle | None:
    """Load this page's model; None (after saying why) when there is none or it cannot load.

    The sidebar only lists models the page can show, so there is no wrong kind to turn away."""
    entry = active_entry()
    if entry is None:
        fit = page_kinds(st.session_state.get("active_page", "")) or kinds.names()
        what = " or ".join(kinds.label(k) for k in fit)
        st.info(
            f"There is no {what} in this lab yet: train one on the **Train** page; it appears "
            "in the sidebar here when it finishes."
        )
        st.page_link("app_pages/train.py", icon=":material/model_training:")
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
