"""Recommend: pick movies you like and see what a Mult-VAE or a RecVAE recommends -- with z = z_mean,
as the papers predict, and with sampled z, to see why; where your picks put you among the users;
for a RecVAE, what its prior made of last epoch's encoder; and how well the model finds held-out
users' movies next to the other VAE, EASE and popularity.

Picks, the held-out user, the mode and the seed live in the page address, so a copied link shows the
same lists.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st

from app_pages import digits, movielens_download, shared
from vae_core import figures, kinds
from vae_core.errors import UserError
from vae_core.models import ModelBundle
from vae_core.recsys import movielens as ml
from vae_core.recsys import recommend as rec
from vae_core.recsys.metrics import scored_users
from vae_core.recsys.recommend import SampledLists
from vae_core.recsys.split import Split
from vae_core.recsys.task import split_of
from vae_core.specs import TrainSpec

TOP_N = (5, 50)  # the list-length slider
STABLE_TOP = 10  # sampled lists are compared on their top 10 ...
SAMPLES = 20  # ... over this many draws of z
SEED_MAX = 10**6
MAP_USERS = 3000  # training users on the map (a random sample of bigger sets)
BIG_PICKS = 24  # more picks than this: the picker scrolls instead of pushing the page down
# Pixels per letter of a title in the grid's 14 px Source Sans: real titles measured 5.7-6.8 in
# Chromium; a little more, so none is cut. The widest column is capped (a rare 150-letter title).
TITLE_CHAR_PX, TITLE_MAX_PX = 7.0, 760
MODES = {"mean": "prediction (z = z_mean)", "sample": "sampling z"}


# ---------------------------------------------------------------- cached per dataset and model
@dataclass
class Catalogue:
    """A model's split (rebuilt from its metadata) and what the picker needs from it."""

    split: Split
    by_popularity: list[int]  # movie ids, most liked by the training users first
    column_of: dict[int, int]  # movie id -> the model's column
    labels: dict[int, str]  # movie id -> "Title (year)", as GroupLens writes it
    test_labels: list[str]  # one line per held-out test user


@st.cache_resource(
    show_spinner="Reading MovieLens and rebuilding this model's users and movies (first visit only)…",
    max_entries=4,
)
def _catalogue(dataset: str, min_item_users: int) -> Catalogue:
    # split_of reads only these two of a run's settings; models trained on the same data share it.
    # cache_resource, not cache_data: the split is read-only, and unpickling it on every rerun
    # would cost more than the model call.
    split = split_of(TrainSpec(dataset=dataset, min_item_users=min_item_users))
    items = split.items
    ids = [int(i) for i in items.ids]
    liked = np.asarray(split.train.sum(axis=0)).ravel()
    fans = rec.favourite_genres(split.test_in, items, relative=True)
    counts = np.diff(split.test_in.indptr)
    test_labels = [
        f"user {uid} · {n} movies liked" + (f" · loves {g}" if g else "")
        for uid, n, g in zip(split.test_users, counts, fans, strict=True)
    ]
    return Catalogue(
        split,
        [ids[c] for c in np.argsort(-liked, kind="stable")],
        {m: c for c, m in enumerate(ids)},
        dict(zip(ids, items.titles, strict=True)),
        test_labels,
    )


def _load_catalogue(entry, bundle: ModelBundle) -> Catalogue:
    """The model's split, rebuilt from the data its metadata names; UserError saying what is missing."""
    train_meta = entry.meta.get("train")
    if not isinstance(train_meta, dict):
        raise UserError(
            f"**{entry.name}** has no record of the MovieLens data it was trained on (its .json "
            "description), so its movies cannot be named; import it together with its .json file."
        )
    train = TrainSpec.from_dict(train_meta)
    try:
        catalogue = _catalogue(train.dataset, train.min_item_users)
    except UserError as err:
        raise UserError(
            f"To name the movies of **{entry.name}** this page needs the data it was trained on. {err}"
        ) from err
    if catalogue.split.n_items != bundle.spec.n_items:
        raise UserError(
            f"**{entry.name}** scores {bundle.spec.n_items} movies, but the {train.dataset} data "
            f"here gives {catalogue.split.n_items}: these are not the files it was trained on."
        )
    return catalogue


@dataclass
class UsersMap:
    xy: np.ndarray  # (U, 2) the users' z_mean on the two principal axes
    genres: list[str]  # each user's favourite genre
    hover: list[str]
    pca: rec.Pca2D


@st.cache_resource(show_spinner="Placing the users on the map (first visit only)…", max_entries=8)
def _users_map(name: str, stamp: float, _bundle: ModelBundle, _split: Split) -> UsersMap:
    # Keyed by the model's name and file time: a retrained model under the same name is redrawn.
    clicks, users = _split.train, _split.train_users
    if clicks.shape[0] > MAP_USERS:
        rows = np.sort(np.random.default_rng(0).choice(clicks.shape[0], MAP_USERS, replace=False))
        clicks, users = clicks[rows], users[rows]
    z = rec.user_latents(_bundle, clicks)
    pca = rec.pca_2d(z)
    genres = rec.favourite_genres(clicks, _split.items, relative=True)
    examples = rec.example_titles(clicks, _split.items, k=3)
    counts = np.diff(clicks.indptr)
    hover = [
        f"user {u} · {n} movies liked<br>" + "<br>".join(t)
        for u, n, t in zip(users, counts, examples, strict=True)
    ]
    return UsersMap(pca.transform(z), genres, hover, pca)


# Per set of picks: each call is one small batch through the model, cached so that changing one
# thing (the mode, the list length) recomputes only what depends on it.
@st.cache_data(show_spinner=False, max_entries=256)
def _top(name: str, stamp: float, picks: tuple[int, ...], n: int, _bundle: ModelBundle):
    return rec.recommend(_bundle, picks, n=n)


@st.cache_data(show_spinner=False, max_entries=256)
def _sampled(name: str, stamp: float, picks: tuple[int, ...], seed: int, _bundle: ModelBundle):
    return rec.sampled_recommendations(_bundle, picks, n=STABLE_TOP, samples=SAMPLES, seed=seed)


@st.cache_data(show_spinner=False, max_entries=256)
def _where(name: str, stamp: float, picks: tuple[int, ...], _bundle: ModelBundle) -> np.ndarray:
    return rec.picks_z_mean(_bundle, picks)


# ---------------------------------------------------------------- the picks
def _init_picks(cat: Catalogue) -> str | None:
    """Picks (movie ids) into the picker's state on the first run -- this visit's earlier picks, or
    the address's -- kept to this model's movies; a sentence on any left out."""
    items = cat.split.items
    if "rec_picks" not in st.session_state:
        kept = st.session_state.get("rec_kept")  # a widget's state goes when its page is left
        if kept is None:
            columns, dropped = rec.picks_from_text(items, st.query_params.get("picks"))
            st.session_state["rec_picks"] = [int(items.ids[c]) for c in columns]
            if dropped:
                shown = ", ".join(dropped[:3]) + (", …" if len(dropped) > 3 else "")
                one = len(dropped) == 1
                return (
                    f"{len(dropped)} of the movies in this page's address ({shown}) "
                    f"{'is' if one else 'are'} not among this model's movies and "
                    f"{'was' if one else 'were'} left out."
                )
        else:
            st.session_state["rec_picks"] = list(kept)
    picks = st.session_state["rec_picks"]
    known = [m for m in picks if m in cat.column_of]
    if len(known) < len(picks):
        st.session_state["rec_picks"] = known
        return (
            f"{len(picks) - len(known)} of your picks are not among this model's movies "
            "(it was trained on other data) and were left out."
        )
    return None


def _start_from_user(cat: Catalogue) -> None:
    """The chosen held-out user's fold-in movies become the picks."""
    row = st.session_state.get("rec_user")
    if row is not None:
        split = cat.split
        columns = split.test_in.indices[split.test_in.indptr[row] : split.test_in.indptr[row + 1]]
        st.session_state["rec_picks"] = [int(split.items.ids[c]) for c in columns]


def _user_row(cat: Catalogue) -> None:
    """The held-out user from the address (their MovieLens id) into the picker's state."""
    users = cat.split.test_users
    if "rec_user" not in st.session_state:
        uid = st.session_state.get("rec_user_kept", digits.param("user", None, int))
        rows = np.flatnonzero(users == uid) if uid is not None else []
        st.session_state["rec_user"] = int(rows[0]) if len(rows) else None
    elif st.session_state["rec_user"] is not None and st.session_state["rec_user"] >= len(users):
        st.session_state["rec_user"] = None  # the model changed to a smaller split


def _set_or_drop(name: str, value: str | None) -> None:
    if value:
        digits.set_param(name, value)
    elif name in st.query_params:
        del st.query_params[name]


# ---------------------------------------------------------------- tables
def _list_rows(
    items, top: rec.Recommendations, hidden: set[int] | None, compact: bool = False
) -> list[dict]:
    rows = []
    for rank, (c, score) in enumerate(zip(top.items, top.scores, strict=True), start=1):
        if compact:  # beside the sampled lists: title and score only
            row = {"#": rank, "title": items.titles[c], "score": float(score)}
        else:
            row = {  # the score before the genres: a wide title pushes the last column off
                "#": rank,
                "title": rec.plain_title(items.titles[c]),
                "year": int(items.years[c]) or None,
                "score": float(score),
                "genres": ", ".join(items.genres[c]) or "—",
            }
        if hidden is not None:
            row["hidden pick"] = "yes" if int(c) in hidden else ""
        rows.append(row)
    return rows


def _show_list(
    items, top: rec.Recommendations, hidden: set[int] | None, key: str, compact: bool = False
) -> None:
    config = {
        "#": st.column_config.NumberColumn(width=44),
        "year": st.column_config.NumberColumn(format="%d", width=60),
        "score": st.column_config.ProgressColumn(
            "score",
            min_value=0.0,
            max_value=float(top.scores.max()),
            format="%.4f",
            help="The decoder's probability that your next movie is this one (softmax over all "
            "movies).",
        ),  # fmt: skip
        "hidden pick": st.column_config.TextColumn(
            help="One of this user's liked movies that the model was not shown."
        ),
    }
    rows = _list_rows(items, top, hidden, compact)
    # The grid cuts text at its column's edge and cannot wrap it: the title column is made as wide
    # as the longest title on the list, so every title shows whole.
    longest = max((len(r["title"]) for r in rows), default=0)
    config["title"] = st.column_config.TextColumn(width=title_width(longest))
    st.dataframe(rows, hide_index=True, column_config=config, key=key)


def title_width(chars: int) -> int:
    """Pixels for a title of `chars` characters in the grid's 14 px font, with its cell padding."""
    return min(TITLE_MAX_PX, int(TITLE_CHAR_PX * chars) + 24)


def _stability_rows(items, lists: SampledLists) -> list[dict]:
    mean_rank = {int(c): r for r, c in enumerate(lists.mean.items, start=1)}
    return [
        {
            "movie": rec.plain_title(items.titles[c]),
            "lists": int(count),
            "ranks": f"{best}" if best == worst else f"{best}–{worst}",
            "z_mean rank": str(mean_rank.get(int(c), "—")),
        }
        for c, count, best, worst in zip(lists.items, lists.appearances, lists.best_rank,
                                         lists.worst_rank, strict=True)
    ]  # fmt: skip


def _short(title: str, most: int = 40) -> str:
    return title if len(title) <= most else title[: most - 1] + "…"


# ---------------------------------------------------------------- the sections
def _sampling(bundle: ModelBundle, entry, stamp: float, picks: tuple[int, ...], items) -> None:
    """20 lists from sampled z next to the z_mean list: how much the top 10 wobbles."""
    c = st.columns([1, 1, 3])
    digits.init_state("rec_seed", digits.param_int("seed", 0, 0, SEED_MAX))

    def _new_seed() -> None:
        st.session_state["rec_seed"] = int(np.random.default_rng().integers(0, SEED_MAX))

    seed = c[0].number_input("Seed", 0, SEED_MAX, key="rec_seed",
                             help="The same seed draws the same 20 z's.")  # fmt: skip
    c[1].button("New seed", on_click=_new_seed, key="rec_new_seed")
    digits.set_param("seed", seed)
    lists = _sampled(entry.name, stamp, picks, int(seed), bundle)
    left, right = st.columns([2, 3])
    with left:
        st.subheader("z = z_mean: one list")
        _show_list(items, lists.mean, None, "rec_mean_list", compact=True)
    with right:
        st.subheader(f"{SAMPLES} sampled z: how stable is the top {STABLE_TOP}?")
        st.dataframe(
            _stability_rows(items, lists), hide_index=True, key="rec_stability",
            column_config={
                "movie": st.column_config.TextColumn(width="medium"),
                "lists": st.column_config.ProgressColumn(
                    f"in lists (of {SAMPLES})", min_value=0, max_value=SAMPLES, format="%d",
                    width="small",
                    help=f"In how many of the {SAMPLES} lists from sampled z the movie appears."),
                "ranks": st.column_config.TextColumn(
                    help="Its best and worst rank in the lists where it appears."),
                "z_mean rank": st.column_config.TextColumn(
                    help="Its rank in the one list from z = z_mean (—: not in it)."),
            },
        )  # fmt: skip
    shown = min(len(lists.items), 20)
    labels = [_short(rec.plain_title(items.titles[c])) for c in lists.items[:shown]]
    st.plotly_chart(figures.rank_spread(labels, lists.items[:shown], lists.lists, lists.mean.items),
                    key="rec_spread", config={"displayModeBar": False})  # fmt: skip
    always = int((lists.appearances == SAMPLES).sum())
    st.caption(
        f"{len(lists.items)} different movies share the {SAMPLES} lists' "
        f"{SAMPLES * STABLE_TOP} places; {always} of them are in every list. On average a sampled "
        f"list keeps {lists.overlap.mean() * STABLE_TOP:.1f} of the {STABLE_TOP} movies of the "
        f"z = z_mean list (seed {seed})."
    )
    st.info(
        "Why the paper predicts with the mean: sampling z around z_mean adds noise that helps "
        "while training (the model learns that nearby codes mean similar tastes), but when "
        "recommending it only makes the list wobble, so Mult-VAE and RecVAE recommend with z = z_mean."
    )


def _users_section(bundle, entry, stamp: float, cat: Catalogue, picks: tuple[int, ...]) -> None:
    users = _users_map(entry.name, stamp, bundle, cat.split)
    marker = users.pca.transform(_where(entry.name, stamp, picks, bundle)) if picks else None
    st.plotly_chart(
        figures.users_map(users.xy, users.genres, users.hover, marker, users.pca.explained),
        key="rec_map", config={"displayModeBar": False},
    )  # fmt: skip
    n = len(users.xy)
    total = cat.split.train.shape[0]
    st.caption(
        f"{n} of the {total} training users"
        + ("" if n == total else " (a random sample)")
        + ", each at their z_mean, flattened to the two directions in which users differ most "
        "(PCA). Colour: the genre each user likes most compared with how common it is among all "
        "movies (Drama is half the catalogue, so by plain counts it would colour almost everyone). "
        + (
            "The star is you: it moves as you change your picks."
            if picks
            else "Pick movies and a star shows where they put you."
        )
    )


def _prior_section(bundle, picks: tuple[int, ...]) -> None:
    """RecVAE's composite prior for these picks: most of it sits where last epoch's encoder put them."""
    if not picks:
        st.info("Pick movies and this shows the prior RecVAE gives you.")
        return
    picture = rec.prior_picture(bundle, picks)
    st.markdown(
        "RecVAE's prior for you is mostly (3/4) the Gaussian where **last epoch's encoder** put "
        "you; a z that strays from it costs KL, so training keeps your z from drifting from one "
        "epoch to the next, while the other parts (N(0, 1), 3/20, and a very wide one, 1/10) "
        "leave room to move."
    )
    st.plotly_chart(
        figures.composite_prior(picture.grid, picture.parts, picture.mixture, picture.mean,
                                picture.dim),
        key="rec_prior", config={"displayModeBar": False},
    )  # fmt: skip
    st.caption(
        f"Dimension {picture.dim} of z, the one where the encoder is surest about your picks "
        f"(z_mean {picture.mean:.2f}, spread {picture.std:.2f}); the dashed line is your z_mean. "
        "A trained model's frozen copy is its own encoder, so the picture uses that."
    )


def _scores_section(entry, n_test: int | None) -> None:
    meta = entry.meta
    metrics = meta.get("test_metrics") or {}
    rows = rec.scores_table(metrics, f"{kinds.label(entry.kind)} (this model)")
    if not rows:
        st.info(
            "This model's description holds no test scores (it was imported without its .json "
            "file, or trained before they were recorded)."
        )
        return
    # A plain table, drawn with the text around it: the interactive grid's code loads on first
    # use, and on a page without recommendations yet that left an empty grey bar for seconds.
    frame = pd.DataFrame(rows).set_index("method")
    st.table(frame.style.format("{:.3f}", na_rep="—"))
    who = f"the {n_test} held-out test users" if n_test else "the held-out test users"
    best = metrics.get("best_epoch")
    st.caption(
        f"Measured on {who}, whom the model never trained on: 80% of the movies each one liked go "
        "in (like your picks) and the other 20% are hidden. Recall@20 is the share of the hidden "
        "movies found in the top 20 (out of at most 20), Recall@50 the same in the top 50, and "
        "NDCG@100 also gives more credit for finding them near the top of a 100-long list: 1 is "
        "perfect, 0 found nothing. Popularity recommends the same most-liked movies to everyone; "
        "EASE (Steck 2019) is a strong, simple baseline."
        + (
            f" This model is its epoch {int(best)}, the best on the validation users."
            if best
            else ""
        )
    )
    if not any(r["method"] == rec.BASELINES["ease"] for r in rows):
        st.caption("EASE was not measured for this model (it is skipped for very many movies).")


# ---------------------------------------------------------------- the page
st.title("Recommend")
st.markdown(
    "Pick movies you like. The **encoder** turns your picks into a point **z** in the latent "
    "space, a summary of your taste; the **decoder** turns z into a score for every movie, and the "
    "best ones you have not picked are your recommendations. A Mult-VAE (Liang et al. 2018) "
    "or a RecVAE (Shenbin et al. 2020), trained on real MovieLens ratings; the sidebar says which."
)

bundle = shared.active_bundle()
if bundle is None:
    st.stop()
entry = shared.active_entry()
stamp = entry.path.stat().st_mtime
catalogue: Catalogue | None = None
try:
    catalogue = _load_catalogue(entry, bundle)
except UserError as err:
    st.error(str(err))
    wanted = (entry.meta.get("train") or {}).get("dataset")
    if wanted in ml.DATASETS:  # GroupLens's download, when its files are what is missing
        movielens_download.offer(
            [wanted], key="rec_mldl", expanded=True, title=f"Download {wanted} from GroupLens"
        )

if catalogue is not None:
    split, items = catalogue.split, catalogue.split.items

    # ---- 1. your movies
    st.header("Your movies")
    _user_row(catalogue)
    note = _init_picks(catalogue)
    if note:
        st.warning(note)
    many = len(st.session_state["rec_picks"]) > BIG_PICKS
    with st.container(height=200 if many else "content", border=many):
        chosen = st.multiselect(
            "Movies you like", catalogue.by_popularity, key="rec_picks",
            format_func=catalogue.labels.__getitem__,
            placeholder="Type part of a title, e.g. Toy Story, Matrix, Amélie…",
            help="Most-liked movies come first. Your picks are kept in the page address.",
            # Enter adds the best match only: with "select all" on, Enter took every movie
            # the words matched (all eight Star Wars films for "Star Wars").
            select_all=False,
        )  # fmt: skip
    st.session_state["rec_kept"] = list(chosen)
    picks = tuple(catalogue.column_of[m] for m in chosen)
    _set_or_drop("picks", rec.picks_text(items, picks))

    with st.expander(
        "…or start from a held-out test user", expanded=st.session_state["rec_user"] is not None
    ):
        st.caption(
            f"The {len(split.test_users)} test users were kept away from training. Choose one: "
            "the 80% of their liked movies that the model may see become your picks, and the list "
            "marks the hidden 20% it finds."
        )
        row = st.selectbox(
            "Test user", [None, *range(len(split.test_users))], key="rec_user",
            format_func=lambda r: "—" if r is None else catalogue.test_labels[r],
            on_change=_start_from_user, args=(catalogue,),
        )  # fmt: skip
    uid = None if row is None else int(split.test_users[row])
    st.session_state["rec_user_kept"] = uid
    _set_or_drop("user", None if uid is None else str(uid))
    # The user's hidden movies are marked while the picks are exactly that user's fold-in.
    hidden = None
    if row is not None:
        fold_in = split.test_in.indices[split.test_in.indptr[row] : split.test_in.indptr[row + 1]]
        if set(fold_in.tolist()) == set(picks):
            out = split.test_out
            hidden = set(out.indices[out.indptr[row] : out.indptr[row + 1]].tolist())

    # ---- 2. the recommendations
    st.header("Recommended for you")
    digits.init_state("rec_mode", digits.param("z", "mean"))
    if st.session_state["rec_mode"] not in MODES:
        st.session_state["rec_mode"] = "mean"
    mode = st.radio("How z is chosen", list(MODES), key="rec_mode", format_func=MODES.get,
                    horizontal=True, help="The paper predicts with z = z_mean; sampling z shows "
                    f"what {SAMPLES} random draws around it would recommend.")  # fmt: skip
    digits.set_param("z", mode)
    try:
        if mode == "mean":
            digits.init_state("rec_n", digits.param_int("n", 10, *TOP_N))
            n = st.slider("How many", *TOP_N, key="rec_n")
            digits.set_param("n", n)
            top = _top(entry.name, stamp, picks, int(n), bundle)
            _show_list(items, top, hidden, "rec_list")
            if hidden is not None:
                found = sum(int(c) in hidden for c in top.items)
                st.caption(
                    f"{found} of this user's {len(hidden)} hidden movies are in this top {n}."
                )
        else:
            _sampling(bundle, entry, stamp, picks, items)
    except UserError as err:
        st.info(str(err))

    # ---- 3. the users' map
    st.header("Where you sit among the users")
    _users_section(bundle, entry, stamp, catalogue, picks)

    if rec.has_composite_prior(bundle):
        st.header("A prior that remembers you")
        _prior_section(bundle, picks)

# ---- 4. the scores
st.header("How good is this model?")
# The users the scores average over: those with a hidden movie among the model's.
_scores_section(entry, scored_users(catalogue.split.test_out) if catalogue is not None else None)
