"""Serving a room (README): two app processes behind HAProxy, started by scripts/serve_room.py.

Several browsers at once: each is kept on one process by the proxy's cookie, every page and picture
loads, an upload works through each process, and a model imported through one process is listed
by the other (the store is shared through VAE_LAB_HOME)."""

from __future__ import annotations

import os
import shutil

import browser_ui as ui
import pytest

from benchmarks.serve import Room, copy_models

BROWSERS = 3
COOKIE = "VAE_LAB_PROCESS"  # deploy/haproxy.cfg's
PREFIX = "e2e_"  # conftest copies the small trained models in under it


@pytest.fixture(scope="module")
def room(chromium, trained_home, tmp_path_factory):
    if shutil.which("haproxy") is None and not os.access("/usr/sbin/haproxy", os.X_OK):
        if os.environ.get("CI") == "true":
            pytest.fail(
                "CI=true but HAProxy is missing (apt-get install -y haproxy)", pytrace=False
            )
        pytest.skip("HAProxy is not installed (apt-get install -y haproxy); CI runs this")
    root = tmp_path_factory.mktemp("room")
    room = Room(root / "home", root / "user", processes=2)
    copy_models(trained_home / "models", room.home / "models", PREFIX)
    room.start()
    yield room
    room.stop()


def _process(page) -> str:
    return next(c["value"] for c in page.context.cookies() if c["name"] == COOKIE)


def _pictures_loaded(page) -> bool:
    sizes = (
        ui.main(page)
        .locator("img")
        .evaluate_all("els => els.map(e => e.complete ? e.naturalWidth : 0)")
    )
    return bool(sizes) and min(sizes) > 0


def _import(page, data: bytes, name: str) -> None:
    """Import a .keras file through the sidebar: an upload, then a write to the store."""
    side = ui.sidebar(page)
    side.get_by_text("Import or download a model").click()
    ui.upload(page, [(f"{name}.keras", data, "application/octet-stream")], where=side)
    ui.settle(page)
    side.get_by_role("button", name="Import", exact=True).click()
    side.get_by_text(f"Imported {name}").wait_for(timeout=ui.STEP_MS)
    ui.settle(page)
    ui.assert_clean(page)


def test_a_room_of_browsers_is_spread_over_two_processes_that_share_one_store(
    room, browser, trained_home
):
    contexts = [
        browser.new_context(viewport={"width": 1400, "height": 1000}) for _ in range(BROWSERS)
    ]
    try:
        pages = [c.new_page() for c in contexts]
        for page in pages:
            page.set_default_timeout(60_000)
            ui.open_page(page, room, "", "Round trip", model=f"{PREFIX}mlp_vae")
        # Each browser was given one process, and the room used both.
        on = [_process(page) for page in pages]
        assert set(on) == {"app1", "app2"}, on
        for page in pages:
            ui.wait_until(lambda p=page: _pictures_loaded(p), 30, "every picture loaded")
            ui.main(page).get_by_role("button", name="Shuffle").click()
            ui.settle(page)
            ui.assert_clean(page)
            ui.wait_until(lambda p=page: _pictures_loaded(p), 30, "the new pictures loaded")
        # An upload through each process, each a write to the one store...
        first = {process: pages[on.index(process)] for process in ("app1", "app2")}
        data = (trained_home / "models" / "mlp_vae.keras").read_bytes()
        for process, page in first.items():
            _import(page, data, f"room_{process}")
            assert _process(page) == process  # the upload went to the session's own process
        # ...and each process lists what the other imported.
        for page in first.values():
            page.reload()
            ui.settle(page, ui.FIRST_LOAD_MS)
            ui.wait_until(
                lambda p=page: {"room_app1", "room_app2"} <= set(ui.model_list(p)),
                30,
                "both imported models are listed",
            )
        ui.shot(pages[0], "room_two_processes")
    finally:
        for context in contexts:
            context.close()
