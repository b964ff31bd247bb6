"""GroupLens's download offered on the pages: licence first, then the zip from a local server
standing in for files.grouplens.org (nothing leaves this machine), and one sentence when it fails."""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import threading
import zipfile
from pathlib import Path

import pytest
import streamlit as st

from tests.apptest import open_app
from tests.movielens_files import synthetic_ratings, write_release
from vae_core.errors import DataError
from vae_core.recsys import movielens as ml


@pytest.fixture
def grouplens(tmp_path, monkeypatch):
    """A local web server holding ml-1m.zip (and a zip that is no MovieLens release), Keras's
    datasets folder in tmp, no data folder; yields the folder downloads land in."""
    served = tmp_path / "served"
    folder = write_release(tmp_path / "src", "ml-1m", *synthetic_ratings(40, 30, seed=1))
    served.mkdir()
    with zipfile.ZipFile(served / "ml-1m.zip", "w") as z:
        for f in folder.iterdir():
            z.write(f, f"ml-1m/{f.name}")
    with zipfile.ZipFile(served / "other.zip", "w") as z:
        z.writestr("other/notes.txt", "not ratings")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    urls = {
        **ml.GROUPLENS_URLS,
        "ml-1m": f"{base}/ml-1m.zip",
        "ml-100k": f"{base}/missing.zip",
        "ml-10m": f"{base}/other.zip",
    }
    monkeypatch.setattr(ml, "GROUPLENS_URLS", urls)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("VAE_LAB_DATA_DIR", str(tmp_path / "no_data_here"))
    monkeypatch.delenv("VAE_LAB_OFFLINE", raising=False)
    yield tmp_path / "keras" / "datasets"
    server.shutdown()
    # The pages keep what they read (the Recommend page its catalogue per release): drop this
    # test's synthetic ml-1m, so a later test does not find it.
    st.cache_resource.clear()
    st.cache_data.clear()


def test_the_licence_is_grouplens_usage_licence_from_the_shipped_readme():
    text = ml.licence_text()
    assert text.startswith("Neither the University of Minnesota")
    assert "commercial or revenue-bearing purposes" in text and "grouplens-info@umn.edu" in text
    assert "Citation" not in text


def test_the_engine_refuses_a_zip_of_another_release_a_404_and_offline(grouplens, monkeypatch):
    with pytest.raises(DataError, match="holds no ratings.dat: it is not that release"):
        ml.download_movielens("ml-10m")
    with pytest.raises(DataError, match="127.0.0.1 answered 404"):
        ml.download_movielens("ml-100k")
    monkeypatch.setenv("VAE_LAB_OFFLINE", "1")
    with pytest.raises(DataError, match="Downloads are switched off"):
        ml.download_movielens("ml-1m")
    assert not grouplens.exists() or not any(grouplens.iterdir())  # nothing half-written


def test_train_page_downloads_a_release_after_its_licence_and_then_offers_it(
    grouplens, trained_home, monkeypatch
):
    monkeypatch.setenv("VAE_LAB_HOME", str(trained_home))
    at = open_app("app_pages/train.py")
    at.selectbox(key="tr_kind").set_value("mult_vae").run()
    (shipped,) = at.radio(key="tr_data_mult_vae").options  # labels: only the shipped small set
    assert shipped.startswith("MovieLens small")
    (expander,) = [e for e in at.expander if "Download more MovieLens" in e.label]
    release = at.selectbox(key="tr_mldl_release")
    assert "ml-1m (about 6 MB)" in release.options
    assert not [o for o in release.options if o.startswith("ml-latest-small")]
    assert any("revenue-bearing purposes" in m.value for m in at.markdown)  # the licence, shown
    go = at.button(key="tr_mldl_go")
    assert go.disabled  # not before the terms are accepted

    release.set_value("ml-100k").run()
    at.checkbox(key="tr_mldl_agreed").check().run()
    at.button(key="tr_mldl_go").click().run()
    (error,) = at.error
    assert (
        error.value.startswith("MovieLens ml-100k could not be downloaded") and "404" in error.value
    )
    assert not at.exception

    at.selectbox(key="tr_mldl_release").set_value("ml-1m").run()
    at.button(key="tr_mldl_go").click().run()
    assert not at.exception and not at.error
    assert (grouplens / "ml-1m.zip").is_file()
    assert sorted(p.name for p in grouplens.iterdir()) == ["ml-1m.zip"]
    assert any("ml-1m is here" in s.value for s in at.success)
    assert any(o.startswith("MovieLens 1M") for o in at.radio(key="tr_data_mult_vae").options)
    assert "ml-1m (about 6 MB)" not in at.selectbox(key="tr_mldl_release").options


def test_recommend_page_offers_the_download_of_a_models_missing_data(
    grouplens, recommender_home, tmp_path, monkeypatch
):
    home = tmp_path / "home"
    (home / "models").mkdir(parents=True)
    for suffix in (".keras", ".json"):
        shutil.copyfile(recommender_home / "models" / f"mult_vae{suffix}",
                        home / "models" / f"copy{suffix}")  # fmt: skip
    meta_path = home / "models" / "copy.json"
    meta = json.loads(meta_path.read_text())
    meta["train"]["dataset"] = "ml-1m"
    meta_path.write_text(json.dumps(meta))
    monkeypatch.setenv("VAE_LAB_HOME", str(home))

    at = open_app("app_pages/recommend.py", model="copy")
    assert "ml-1m" in at.error[0].value and "ratings.dat" in at.error[0].value
    (expander,) = [e for e in at.expander if e.label == "Download ml-1m from GroupLens"]
    assert at.selectbox(key="rec_mldl_release").options == ["ml-1m (about 6 MB)"]
    at.checkbox(key="rec_mldl_agreed").check().run()
    at.button(key="rec_mldl_go").click().run()
    # The download was found: the page now says these are not the files the model learned from.
    assert (grouplens / "ml-1m.zip").is_file() and not at.exception
    assert "not the files it was trained on" in at.error[0].value


def test_no_download_is_offered_offline(grouplens, trained_home, monkeypatch):
    monkeypatch.setenv("VAE_LAB_HOME", str(trained_home))
    monkeypatch.setenv("VAE_LAB_OFFLINE", "1")
    at = open_app("app_pages/train.py")
    at.selectbox(key="tr_kind").set_value("mult_vae").run()
    assert not [e for e in at.expander if "Download more MovieLens" in e.label]
    assert not Path(grouplens).exists()
