"""Opening VAE Lab in Streamlit's AppTest the way a visitor arrives: the entrypoint, then a page."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "app.py")
TIMEOUT = 60  # the first run imports TensorFlow and loads a model


def open_app(
    page: str | None = None, *, model: str | None = None, timeout: int = TIMEOUT, **params: str
) -> AppTest:
    """The app after its first run, on `page` (e.g. "app_pages/generate.py"; None: the default).

    The URL (`model` and `params`) is the link's. Switching pages before a first run would skip
    app.py and its sidebar, so the default page always runs first, on the same link. Fails on any exception shown.
    """
    link = {**({"model": model} if model else {}), **params}
    at = AppTest.from_file(APP, default_timeout=timeout)
    at.query_params.update(link)
    at.run()
    if page:
        # The page opens on the link's address, as a browser would, not on what the home page
        # wrote into it (its own model, its digits).
        at.query_params.clear()
        at.query_params.update(link)
        at.switch_page(page)
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def record_downloads(monkeypatch) -> dict[str, bytes]:
    """{file name: bytes} of every download button the app makes from now on, as a browser saves it."""
    from streamlit.runtime.media_file_manager import MediaFileManager
    from streamlit.runtime.media_file_storage import MediaFileKind
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    files: dict[str, bytes] = {}
    real = MemoryMediaFileStorage.load_and_get_id

    def load_and_get_id(self, path_or_data, mimetype, kind, filename=None):
        if kind == MediaFileKind.DOWNLOADABLE and filename:
            files[filename] = path_or_data if isinstance(path_or_data, bytes) else b""
        return real(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", load_and_get_id)
    # A download made only when clicked (data given as a callable): made here at once instead.
    deferred = MediaFileManager.add_deferred

    def add_deferred(self, data_callable, mimetype, coordinates, file_name=None, **kw):
        if file_name:
            data = data_callable()
            files[file_name] = data.encode() if isinstance(data, str) else bytes(data)
        return deferred(self, data_callable, mimetype, coordinates, file_name=file_name, **kw)

    monkeypatch.setattr(MediaFileManager, "add_deferred", add_deferred)
    return files
