"""Retake the README's four screenshots (docs/round_trip.png, round_trip_draw.png, generate.png,
recommend.png) in Debian's Chromium through Playwright.

Run it after a change to what those pages show (the sidebar, a heading, a figure):

    .venv/bin/python scripts/readme_screenshots.py

It starts the app itself on a free port with a fresh, empty VAE_LAB_HOME (so only the shipped models
are listed; VAE_LAB_DATA_DIR is passed through if set), takes the pictures at 1400x1000 and stops the
server, also on an error. The main area scrolls inside its own element, so each picture is framed by
scrolling an element to the top of it rather than by a full-page screenshot.
"""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
LOAD_MS = 240_000  # the first visit imports TensorFlow and loads a model: slow on a busy machine
# Toy Story, Heat, Star Wars IV, The Matrix (MovieLens movieIds in the shipped ml-latest-small).
PICKS = "1,6,260,2571"
# A 0 drawn on the 260x260 pad: one stroke around an ellipse, from its top, anticlockwise
# (pixels from the pad's top left; a smooth tests/e2e/test_browser_own_digits.py ZERO).
ZERO = [(140 - 65 * math.sin(t), 142 - 102 * math.cos(t)) for t in np.linspace(0, 2 * math.pi, 41)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(home: str, port: int) -> subprocess.Popen:
    """`streamlit run app.py` on `port`, then wait until /_stcore/health answers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STREAMLIT_", "VAE_LAB_"))}
    env.update(VAE_LAB_HOME=home, VAE_LAB_OFFLINE="1", TF_CPP_MIN_LOG_LEVEL="2")
    if os.environ.get("VAE_LAB_DATA_DIR"):
        env["VAE_LAB_DATA_DIR"] = os.environ["VAE_LAB_DATA_DIR"]
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
           "--server.port", str(port)]  # fmt: skip
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://localhost:{port}/_stcore/health", timeout=5):
                return proc
        except OSError:
            time.sleep(0.5)
    proc.terminate()
    raise RuntimeError("streamlit did not answer /_stcore/health in 2 minutes")


def settle(page, timeout: float = LOAD_MS) -> None:
    """Wait until the app's script run has ended and stayed ended for a few polls."""
    page.wait_for_function(
        """() => {
            const app = document.querySelector('[data-testid="stApp"]');
            const idle = app && app.getAttribute('data-test-script-state') === 'notRunning'
                && !document.querySelector('[data-testid="stStatusWidget"]')
                && !document.querySelector('[data-testid="stSkeleton"]');
            window.__quiet = idle ? (window.__quiet || 0) + 1 : 0;
            return window.__quiet >= 4;
        }""",
        polling=250,
        timeout=timeout,
    )
    page.evaluate("window.__quiet = 0")


def open_page(page, url: str, heading: str) -> None:
    page.goto(url)
    page.get_by_role("heading", name=heading).first.wait_for(timeout=LOAD_MS)
    settle(page)


def scroll_to(locator, above: int) -> None:
    """Scroll the main area (its own scroller) so that `locator` sits `above` pixels from the top."""
    locator.evaluate(
        """(el, above) => el.closest('[data-testid="stMain"]').scrollTop
            += el.getBoundingClientRect().top - above""",
        above,
    )


def shoot(page, name: str) -> None:
    page.mouse.move(1340, 500)  # over empty margin: no hover toolbar, no sidebar button
    page.wait_for_timeout(1500)  # charts finish drawing, scrollbars fade
    page.screenshot(path=str(DOCS / f"{name}.png"))
    print(f"docs/{name}.png")


def opened_at_top(page, url: str, heading: str, expander: str, chart: str, name: str) -> None:
    """A page with one of its expanders opened and its first `chart` (a data-testid) drawn,
    shot from the top."""
    main = page.locator('[data-testid="stMain"]')
    open_page(page, url, heading)
    main.get_by_text(expander).first.click()
    settle(page)
    main.locator(f'[data-testid="{chart}"]').first.wait_for()
    main.evaluate("m => m.scrollTo(0, 0)")
    shoot(page, name)


def take(page, base: str) -> None:
    main = page.locator('[data-testid="stMain"]')

    # Round trip: the three Keras models and how they are wired, at the top of the page.
    opened_at_top(page, f"{base}/?model=mlp_vae_2d", "Round trip",
                  "How the three models are wired", "stGraphVizChart", "round_trip")  # fmt: skip

    # Round trip, Draw: a 0 on the pad, its round trip and its star on the latent map.
    open_page(page, f"{base}/?model=mlp_vae_2d", "Round trip")
    main.locator('[data-testid="stButtonGroup"]').get_by_text("Draw", exact=True).first.click()
    settle(page)
    pad = main.locator("canvas").first
    pad.scroll_into_view_if_needed()
    box = pad.bounding_box()
    page.mouse.move(box["x"] + ZERO[0][0], box["y"] + ZERO[0][1])
    page.mouse.down()
    for x, y in ZERO[1:]:
        page.mouse.move(box["x"] + x, box["y"] + y, steps=2)
    page.mouse.up()
    settle(page)
    main.get_by_text("decoder(z_mean)", exact=True).first.wait_for()
    main.get_by_text("The star is your drawing's z_mean").first.wait_for()
    settle(page)
    scroll_to(main.get_by_text("How the three models are wired").first, above=24)
    shoot(page, "round_trip_draw")

    # Generate: the prior's digits and, opened, where the encoder puts the test digits.
    opened_at_top(page, f"{base}/generate?model=mlp_vae_2d", "Generate",
                  "Why draws from N(0, I) can miss", "stPlotlyChart", "generate")  # fmt: skip

    # Recommend: four picks, the z = z_mean list beside the 20 lists from sampled z.
    open_page(page, f"{base}/recommend?picks={PICKS}&z=sample", "Your movies")
    main.get_by_text("how stable is the top").first.wait_for()
    scroll_to(main.get_by_role("heading", name="Your movies").first, above=0)
    shoot(page, "recommend")


def main() -> None:
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="vae_lab_shots_") as home:
        app = start_app(home, port)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.set_default_timeout(120_000)
                take(page, f"http://localhost:{port}")
                browser.close()
        finally:
            app.terminate()
            try:
                app.wait(20)
            except subprocess.TimeoutExpired:
                app.kill()


if __name__ == "__main__":
    main()
