"""The Recommend page, driven through AppTest with a small Mult-VAE trained on the shipped MovieLens."""

from __future__ import annotations

import base64
import json
import shutil

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.apptest import open_app
from vae_core.recsys.task import split_of
from vae_core.specs import ModelSpec, TrainSpec
from vae_core.store import Store

PAGE = "app_pages/recommend.py"
pytestmark = pytest.mark.usefixtures("recommender_lab")


@pytest.fixture(scope="module")
def split(recommender_home):
    """The model's split as the page must rebuild it (from the metadata's train settings)."""
    meta = json.loads((recommender_home / "models" / "mult_vae.json").read_text())
    return split_of(TrainSpec.from_dict(meta["train"]))


def _open(model: str = "mult_vae", **params: str) -> AppTest:
    at = open_app(PAGE, model=model, **params)
    assert not at.error, [e.value for e in at.error]
    return at


# Each table on the page, told apart by its columns.
TABLES = {
    "rec_list": lambda cols: "genres" in cols,  # the top-N with z = z_mean
    "rec_mean_list": lambda cols: "score" in cols and "genres" not in cols,  # beside the samples
    "rec_stability": lambda cols: "lists" in cols,
    "rec_scores": lambda cols: "method" in cols,
}


def _tables(at: AppTest, key: str) -> list:
    frames = [d.value for d in at.dataframe] + [t.value.reset_index() for t in at.table]
    return [f for f in frames if TABLES[key](set(f.columns))]


def _table(at: AppTest, key: str):
    """The one table of this kind on the page, as a DataFrame."""
    (frame,) = _tables(at, key)
    return frame


def _has_chart(at: AppTest, key: str) -> bool:
    return any(e.proto.id.endswith(key) for e in at.get("plotly_chart"))


def _chart(at: AppTest, key: str) -> dict:
    return json.loads(
        next(e for e in at.get("plotly_chart") if e.proto.id.endswith(key)).proto.spec
    )


def _ids(split, columns) -> list[int]:
    return [int(split.items.ids[c]) for c in columns]


def _popular(split, n: int) -> list[int]:
    """Movie ids of the n movies the training users liked most."""
    liked = np.asarray(split.train.sum(axis=0)).ravel()
    return _ids(split, np.argsort(-liked, kind="stable")[:n])


def _linked(at: AppTest) -> list[str]:
    """The pages the sidebar links to, by URL (Round trip, the home page, is ""), its glossary aside."""
    return [
        link.proto.page for link in at.sidebar.get("page_link") if link.proto.page != "glossary"
    ]


def test_picks_change_the_list_which_never_holds_them(split):
    at = _open()
    assert any("Pick at least one movie" in i.value for i in at.info)
    assert not _tables(at, "rec_list")
    titles = {int(m): t for m, t in zip(split.items.ids, split.items.titles, strict=True)}

    first = _popular(split, 40)[-1:]  # a less obvious movie, so the list has room to move
    at.multiselect(key="rec_picks").set_value(first).run()
    one = _table(at, "rec_list")
    assert len(one) == 10 and list(one["#"]) == list(range(1, 11))
    assert (np.diff(one["score"]) <= 0).all()
    picked_title = titles[first[0]].rsplit(" (", 1)[0]
    assert picked_title not in set(one["title"])

    more = first + _popular(split, 3)
    at.multiselect(key="rec_picks").set_value(more).run()
    two = _table(at, "rec_list")
    assert list(two["title"]) != list(one["title"])
    assert not {titles[m].rsplit(" (", 1)[0] for m in more} & set(two["title"])
    assert at.query_params["picks"] == ",".join(map(str, more))
    # The star on the users' map moves with the picks.
    assert _chart(at, "rec_map")["data"][-1]["name"] == "your picks"


def test_a_held_out_users_fold_in_movies_become_the_picks(split):
    at = _open()
    row = int(np.argmax(np.diff(split.test_out.indptr)))  # the user with most hidden movies
    at.selectbox(key="rec_user").set_value(row).run()
    fold_in = split.test_in.indices[split.test_in.indptr[row] : split.test_in.indptr[row + 1]]
    assert sorted(at.multiselect(key="rec_picks").value) == sorted(_ids(split, fold_in))
    assert at.query_params["user"] == str(split.test_users[row])
    listed = _table(at, "rec_list")
    assert "hidden pick" in listed.columns
    hidden = split.test_out.indices[split.test_out.indptr[row] : split.test_out.indptr[row + 1]]
    found = (listed["hidden pick"] == "yes").sum()
    assert any(c.value.startswith(f"{found} of this user's {len(hidden)} hidden movies")
               for c in at.caption)  # fmt: skip
    # Change a pick: the list is no longer that user's, so nothing is marked.
    at.multiselect(key="rec_picks").set_value(_ids(split, fold_in[:-1])).run()
    assert "hidden pick" not in _table(at, "rec_list").columns


def test_sampling_shows_how_stable_twenty_lists_are(split):
    at = _open(picks=",".join(map(str, _popular(split, 5))))
    at.radio(key="rec_mode").set_value("sample").run()
    assert not at.error
    mean = _table(at, "rec_mean_list")
    stability = _table(at, "rec_stability")
    assert len(mean) == 10
    assert stability["lists"].sum() == 20 * 10  # 20 lists of 10 places
    assert stability["lists"].between(1, 20).all() and len(stability) >= 10
    assert (np.diff(stability["lists"]) <= 0).all()  # most frequent first
    in_mean = stability[stability["z_mean rank"] != "—"]
    assert len(in_mean) <= 10
    assert _has_chart(at, "rec_spread")
    assert any("Why the paper predicts with the mean" in i.value for i in at.info)
    assert at.query_params["seed"] == "0" and at.query_params["z"] == "sample"

    at.number_input(key="rec_seed").set_value(7).run()
    other = _table(at, "rec_stability")
    assert at.query_params["seed"] == "7"
    assert list(_table(at, "rec_mean_list")["title"]) == list(mean["title"])  # z_mean: no noise
    assert not other.equals(stability)  # other z's, other lists


def test_the_address_keeps_picks_mode_and_seed(split):
    picks = _popular(split, 4)
    at = _open(picks=",".join(map(str, picks)), z="sample", seed="42")
    assert at.multiselect(key="rec_picks").value == picks
    assert at.radio(key="rec_mode").value == "sample"
    assert at.number_input(key="rec_seed").value == 42
    assert at.query_params["picks"] == ",".join(map(str, picks))
    assert not at.warning
    # Another page and back (the browser drops the other page's address): the picks stay.
    at.switch_page("app_pages/train.py").run()
    at.query_params.pop("picks", None)
    at.switch_page(PAGE).run()
    assert at.multiselect(key="rec_picks").value == picks
    assert at.query_params["picks"] == ",".join(map(str, picks))


def test_bad_picks_in_the_address_are_dropped_with_a_sentence(split):
    good = _popular(split, 1)[0]
    at = _open(picks=f"{good},abc,999999999")
    (warning,) = at.warning
    assert warning.value.startswith("2 of the movies in this page's address (abc, 999999999)")
    assert at.multiselect(key="rec_picks").value == [good]
    assert at.query_params["picks"] == str(good)


def test_a_link_to_a_digit_model_opens_the_recommender_and_says_where_the_digit_model_is():
    at = _open("digits")
    (info,) = at.sidebar.info
    assert info.value.startswith("The link asks for **digits**, a MLP VAE, which this page cannot")
    # ...with a link to each page that shows it (by URL: Round trip is the home page, "").
    assert _linked(at) == ["", "generate"]
    assert at.sidebar.radio(key="sb_model_recommend").options == ["**mult\\_\u200bvae**"]
    assert at.query_params["model"] == "mult_vae" and at.multiselect(key="rec_picks")


def test_with_no_recommender_in_the_store_the_page_says_to_train_one(trained_home, monkeypatch):
    monkeypatch.setenv("VAE_LAB_HOME", str(trained_home))  # the digit models only
    at = open_app(PAGE)
    (info,) = at.info
    assert "Mult-VAE" in info.value and "train one on the **Train** page" in info.value
    assert not at.sidebar.radio
    assert not at.main.button


def test_the_scores_table_has_the_model_ease_and_popularity_from_its_metadata(recommender_home):
    at = _open()
    metrics = json.loads((recommender_home / "models" / "mult_vae.json").read_text())[
        "test_metrics"
    ]
    scores = _table(at, "rec_scores")
    # Drawn with the page's text, not as a grid whose code loads for seconds after it.
    (table,) = at.table
    assert not [d for d in at.dataframe if "method" in d.value.columns]
    assert list(scores["method"]) == [
        "Mult-VAE recommender (this model)",
        "EASE (item-item ridge regression)",
        "Popularity (most liked)",
    ]
    for prefix, row in zip(("", "ease_", "popularity_"), scores.itertuples(), strict=True):
        assert row[2:] == pytest.approx(
            (metrics[prefix + "recall@20"], metrics[prefix + "recall@50"],
             metrics[prefix + "ndcg@100"])
        )  # fmt: skip
    # The caption counts the users the scores average over: those with a movie hidden.
    from vae_core.recsys.metrics import evaluate
    from vae_core.recsys.task import split_of
    from vae_core.specs import TrainSpec

    meta = json.loads((recommender_home / "models" / "mult_vae.json").read_text())
    split = split_of(TrainSpec.from_dict(meta["train"]))
    scored = evaluate(lambda x: np.zeros(x.shape, np.float32), split.test_in, split.test_out)
    assert any(
        f"the {scored['users']} held-out test users" in c.value and "Recall@20" in c.value
        for c in at.caption
    )


@pytest.fixture
def copied_model(recommender_home, tmp_path, monkeypatch):
    """A store of its own holding a copy of the Mult-VAE whose metadata a test may change."""
    home = tmp_path / "home"
    (home / "models").mkdir(parents=True)
    for suffix in (".keras", ".json"):
        shutil.copyfile(recommender_home / "models" / f"mult_vae{suffix}",
                        home / "models" / f"copy{suffix}")  # fmt: skip
    monkeypatch.setenv("VAE_LAB_HOME", str(home))
    monkeypatch.setenv("VAE_LAB_DATA_DIR", str(tmp_path / "no_data_here"))

    def edit(change) -> None:
        path = home / "models" / "copy.json"
        meta = json.loads(path.read_text())
        change(meta)
        path.write_text(json.dumps(meta))

    return edit


def test_a_model_whose_data_is_missing_says_which_files_to_put_where(copied_model, tmp_path):
    copied_model(lambda meta: meta["train"].update(dataset="ml-1m"))
    at = open_app(PAGE, model="copy")
    (error,) = at.error
    assert "ml-1m" in error.value and "ratings.dat" in error.value
    assert str(tmp_path / "no_data_here") in error.value
    assert len(_table(at, "rec_scores")) == 3  # the scores come from the metadata alone
    assert not at.multiselect


def test_a_model_without_its_training_record_says_so(copied_model):
    copied_model(lambda meta: meta.pop("train"))
    at = open_app(PAGE, model="copy")
    (error,) = at.error
    assert "no record of the MovieLens data" in error.value and ".json" in error.value


def test_a_mult_dae_recommends_but_has_no_z_to_sample(
    recommender_home, tmp_path, monkeypatch, split
):
    from vae_core.recsys.model import build_recommender

    home = tmp_path / "home"
    meta = json.loads((recommender_home / "models" / "mult_vae.json").read_text())
    spec = ModelSpec("mult_dae", n_items=split.n_items, latent_dim=8, hidden=16)
    Store(home / "models", shipped_root=None).save(
        "dae", build_recommender(spec), {"train": meta["train"]}
    )
    monkeypatch.setenv("VAE_LAB_HOME", str(home))
    at = _open("dae", picks=str(_popular(split, 1)[0]))
    assert len(_table(at, "rec_list")) == 10
    assert any("no test scores" in i.value for i in at.info)
    at.radio(key="rec_mode").set_value("sample").run()
    assert any("no z to sample" in i.value for i in at.info)


def test_the_title_column_is_wide_enough_for_every_title_on_the_list(split):
    # The grid cuts text at a column's edge and cannot wrap it. In Chromium, real MovieLens titles
    # in the page's 14 px Source Sans measured up to 6.8 px a letter; the cell pads ~16 px.
    at = _open(picks="1,2571")
    (frame,) = [d for d in at.dataframe if "genres" in d.value.columns]
    width = json.loads(frame.proto.columns)["title"]["width"]
    longest = max(len(t) for t in frame.value["title"])
    assert width >= 6.8 * longest + 16, (width, longest)
    # The year beside each title, and the score before the long genres (which may scroll).
    assert list(frame.value.columns)[:4] == ["#", "title", "year", "score"]


@pytest.fixture
def rec_vae_home(recommender_home, tmp_path, monkeypatch, split):
    """A store holding a small RecVAE on the Mult-VAE's split, its metadata scoring both VAEs."""
    from vae_core.recsys.recvae import build_rec_vae

    meta = json.loads((recommender_home / "models" / "mult_vae.json").read_text())
    scores = {"recall@20": 0.31, "recall@50": 0.42, "ndcg@100": 0.37}
    metrics = {**scores, **{f"mult_vae_{k}": v - 0.01 for k, v in scores.items()},
               **{k: v for k, v in meta["test_metrics"].items() if k.startswith(("ease_", "popularity_"))}}  # fmt: skip
    spec = ModelSpec("rec_vae", n_items=split.n_items, latent_dim=8, hidden=16)
    Store(tmp_path / "home" / "models", shipped_root=None).save(
        "rv", build_rec_vae(spec, seed=0), {"train": meta["train"], "test_metrics": metrics}
    )
    monkeypatch.setenv("VAE_LAB_HOME", str(tmp_path / "home"))
    return metrics


def test_a_rec_vae_shows_both_vaes_scores_and_what_its_prior_does(rec_vae_home, split):
    at = _open("rv")
    scores = _table(at, "rec_scores")
    assert list(scores["method"]) == [
        "RecVAE recommender (this model)",
        "Mult-VAE recommender",
        "EASE (item-item ridge regression)",
        "Popularity (most liked)",
    ]
    for prefix, row in zip(
        ("", "mult_vae_", "ease_", "popularity_"), scores.itertuples(), strict=True
    ):
        assert row[-1] == pytest.approx(rec_vae_home[prefix + "ndcg@100"])
    assert "A prior that remembers you" in [h.value for h in at.header]
    assert not _has_chart(at, "rec_prior")  # no picks yet: a sentence says what picks show
    assert any("prior RecVAE gives you" in i.value for i in at.info)

    at = _open("rv", picks=",".join(map(str, _popular(split, 5))))
    assert len(_table(at, "rec_list")) == 10
    figure = _chart(at, "rec_prior")
    names = [trace["name"] for trace in figure["data"]]
    assert names[0] == "the prior (their sum)" and "last epoch's encoder, for you" in names
    # The prior is the sum of its parts.
    total, *parts = (_values(trace["y"]) for trace in figure["data"])
    assert np.allclose(total, sum(parts)) and total.max() > 0
    assert any("last epoch's encoder" in m.value and "drifting" in m.value for m in at.markdown)


def _values(data) -> np.ndarray:
    """A figure's numbers as plotly's JSON has them: a list, or a typed array in base64."""
    if isinstance(data, dict):
        return np.frombuffer(base64.b64decode(data["bdata"]), dtype=data["dtype"])
    return np.asarray(data, dtype=float)


def test_a_mult_vae_has_no_prior_lesson(split):
    at = _open(picks=",".join(map(str, _popular(split, 3))))
    assert "A prior that remembers you" not in [h.value for h in at.header]
    assert not _has_chart(at, "rec_prior")
