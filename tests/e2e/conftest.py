"""Real-browser fixtures: one app server for the session (started as the README does), Debian's
Chromium through Playwright, a fresh browser context per test.

The server's store starts with conftest's small trained models, copied in as e2e_<kind>, so pages
have something to show at once; shipped models (vae_core/pretrained) may be listed beside them.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

import pytest

from benchmarks.serve import CHROMIUM, AppServer, copy_models, launch_chromium
from vae_core import runs

PREFIX = "e2e_"
SCREENSHOTS = Path(__file__).resolve().parents[1] / "screenshots"


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).resolve().parent
    for item in items:
        if Path(str(item.fspath)).resolve().parent == here:
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.slow)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failure, keep a screenshot of what the browser showed and the server's log tail."""
    outcome = yield
    report = outcome.get_result()
    page = item.funcargs.get("page") if hasattr(item, "funcargs") else None
    if report.when == "call" and report.failed and page is not None:
        with contextlib.suppress(Exception):
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / f"FAILED_{item.name}.png"), full_page=True)
        server = item.funcargs.get("server")
        if server is not None:
            report.sections.append(("streamlit log", server.log_tail()))


@pytest.fixture(scope="session")
def chromium() -> str:
    """Skip without Chromium on a developer's machine; in CI (CI=true) a missing browser fails."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(
                f"CI=true but {CHROMIUM} is missing: the browser tests must run in CI "
                "(apt-get install -y chromium).",
                pytrace=False,
            )
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium); CI runs these")
    return CHROMIUM


def _kill_active_runs(home: Path) -> None:
    """End any training child a failed test left behind (its own session outlives the server)."""
    for info in runs.list_runs(home / "runs"):
        pid = info.status.get("pid")
        if info.state in runs.ACTIVE_STATES and runs.is_training_process(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def app_server(chromium, trained_home, tmp_path_factory):
    """The app on a free localhost port, its own VAE_LAB_HOME and HOME, small models in its store."""
    root = tmp_path_factory.mktemp("e2e")
    server = AppServer(root / "vae_lab_home", root / "user_home")
    copy_models(trained_home / "models", server.home / "models", PREFIX)
    server.start()
    yield server
    server.stop()
    _kill_active_runs(server.home)


@pytest.fixture
def server(app_server):
    """The session's server, made sure to be up (a restart test may have just replaced it)."""
    if not app_server.healthy():
        app_server.start()
    yield app_server
    _kill_active_runs(app_server.home)


@pytest.fixture(scope="session")
def browser(chromium):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch_chromium(p)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A fresh visitor (own cookies, own Streamlit session); JavaScript errors are collected."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.js_errors = []
    page.on("pageerror", lambda err: page.js_errors.append(str(err)))
    yield page
    context.close()
