"""What a person sees in the browser, read through Playwright: text, images, widgets, errors."""

from __future__ import annotations

import io
import re
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urljoin

import numpy as np
from PIL import Image

SCREENSHOTS = Path(__file__).resolve().parents[1] / "screenshots"
FIRST_LOAD_MS = (
    180_000  # the first visit imports TensorFlow and loads a model: slow on 2 busy cores
)
STEP_MS = 90_000
# Exception text that must never reach a page: a traceback, or "SomethingError: ..." from Python.
TRACE = re.compile(
    r"Traceback \(most recent call last\)|\b[A-Z]\w*(?:Error|Exception): |File \"[^\"]+\", line \d+"
)


def main(page):
    return page.locator('[data-testid="stMainBlockContainer"]')


def sidebar(page):
    return page.locator('[data-testid="stSidebar"]')


def settle(page, timeout: float = STEP_MS, quiet_checks: int = 3) -> None:
    """Wait until the script run the last action caused has finished (idle for a few polls)."""
    page.wait_for_function(
        """([n]) => {
            const app = document.querySelector('[data-testid="stApp"]');
            const idle = app && app.getAttribute('data-test-script-state') === 'notRunning'
                && app.getAttribute('data-test-connection-state') === 'CONNECTED'
                && !document.querySelector('[data-testid="stStatusWidget"]')
                && !document.querySelector('[data-testid="stSkeleton"]');
            window.__quiet = idle ? (window.__quiet || 0) + 1 : 0;
            return window.__quiet >= n;
        }""",
        arg=[quiet_checks],
        polling=250,
        timeout=timeout,
    )
    page.evaluate("window.__quiet = 0")


def open_page(page, server, path: str, heading: str, timeout: float = FIRST_LOAD_MS, **params):
    """Go to a page and wait for its heading and the end of its first run."""
    page.goto(server.url(path, **params))
    # Only the words: icons in titles come and go.
    title = re.compile(rf"(^|\s){re.escape(heading)}$")
    page.get_by_role("heading", name=title).first.wait_for(timeout=timeout)
    settle(page, timeout)
    assert_clean(page)


def assert_clean(page) -> None:
    """No Streamlit exception box and no traceback or `XxxError:` text anywhere on the page."""
    boxes = page.locator('[data-testid="stException"]')
    assert boxes.count() == 0, boxes.first.inner_text()
    text = page.locator('[data-testid="stApp"]').inner_text()
    assert "Page not found" not in page.locator("body").inner_text(), "Streamlit: Page not found"
    found = TRACE.search(text)
    assert found is None, f"exception text in the page: {text[max(0, found.start() - 200) :][:600]}"


def errors(page) -> list[str]:
    """The st.error sentences in the main area."""
    return [
        e.strip()
        for e in main(page).locator('[data-testid="stAlertContentError"]').all_inner_texts()
    ]


def shot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def image_srcs(locator) -> list[str]:
    return locator.locator("img").evaluate_all("els => els.map(e => e.getAttribute('src'))")


def upload(page, files: list[tuple[str, bytes, str]], where=None) -> None:
    """Choose files in a file uploader (the main area's unless `where` is given)."""
    box = (where if where is not None else main(page)).locator(
        '[data-testid="stFileUploaderDropzoneInput"]'
    )
    box.set_input_files(
        files=[{"name": name, "mimeType": mime, "buffer": data} for name, data, mime in files]
    )


def wait_until(check: Callable[[], object], timeout_s: float, what: str, every: float = 0.5):
    """Poll `check` until it returns something truthy; fail saying `what` did not happen."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except Exception as err:  # noqa: BLE001 -- an element mid-rerun may vanish; try again
            last = err
        else:
            if last:
                return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting until {what} (last: {last!r})")


def press_slider(page, label: str, key: str, times: int) -> None:
    """Move a slider with the keyboard, as a person using arrow keys would."""
    thumb = page.locator('[data-testid="stSlider"]').filter(has_text=label).get_by_role("slider")
    thumb.focus()
    for _ in range(times):
        thumb.press(key)


# Text that a person cannot read whole: cut off by its box, a word split across two lines, or an
# element that sticks out of its column. Code blocks scroll, inline code breaks where Unicode allows
# it (after ")" before "["), and SVG charts draw their own text: those are left out.
_LAYOUT_JS = """(root) => {
    const scope = document.querySelector(root);
    const skip = (el) => el.closest('svg, pre, code, [data-testid="stPlotlyChart"], '
        + '[data-testid="stGraphVizChart"], [data-testid="stFileUploader"]');
    // (Streamlit's own file chip cuts long names by design; pages show the whole name elsewhere.)
    const shown = (el) => { const r = el.getBoundingClientRect(); return r.width > 2 && r.height > 2; };
    const cut = [], broken = [], spill = [];
    for (const el of scope.querySelectorAll('*')) {
        const text = el.innerText ? el.innerText.trim() : '';
        if (!text || text.length > 300 || skip(el) || !shown(el)) continue;
        const cs = getComputedStyle(el);
        const clips = ['hidden', 'clip'].includes(cs.overflowX) || cs.textOverflow === 'ellipsis';
        if (clips && el.scrollWidth > el.clientWidth + 1) cut.push(text);
    }
    const walker = document.createTreeWalker(scope, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        if (!node.parentElement || skip(node.parentElement) || !shown(node.parentElement)) continue;
        const text = node.textContent;
        // A word: what lies between spaces, hyphens and zero-width break opportunities.
        const re = /[^\\s\\u200b-]+-?/g;
        for (let m = re.exec(text); m; m = re.exec(text)) {
            const range = document.createRange();
            range.setStart(node, m.index);
            range.setEnd(node, m.index + m[0].length);
            const lines = new Set([...range.getClientRects()].filter(r => r.width > 0)
                .map(r => Math.round(r.bottom)));
            if (lines.size > 1) broken.push(m[0]);
        }
    }
    for (const el of scope.querySelectorAll('img, button')) {
        const col = el.closest('[data-testid="stColumn"]');
        if (!col || skip(el) || !shown(el)) continue;
        const a = el.getBoundingClientRect(), b = col.getBoundingClientRect();
        if (a.right > b.right + 1 || a.left < b.left - 1)
            spill.push(el.getAttribute('alt') || el.innerText.trim() || el.tagName);
    }
    return {cut: [...new Set(cut)], broken, spill};
}"""


def layout_problems(page, root: str = '[data-testid="stApp"]') -> dict[str, list[str]]:
    """{"cut": texts cut off by their box, "broken": words split over two lines, "spill":
    elements wider than their column} under `root`, as measured in the browser."""
    return page.evaluate(_LAYOUT_JS, root)


def model_list(page) -> list[str]:
    """The sidebar's model names, in order, as a person reads them (break opportunities removed)."""
    return [
        t.replace("\u200b", "").strip()
        for t in sidebar(page).locator('[data-testid="stRadioOption"]').all_inner_texts()
    ]


def active_model(page) -> str:
    """The model chosen in the sidebar's list."""
    option = (
        sidebar(page)
        .locator('[data-testid="stRadioOption"]')
        .filter(has=page.locator("input:checked"))
    )
    return option.inner_text().replace("\u200b", "").strip()


def choose_mode(page, mode: str) -> None:
    """Click one option of the page's main segmented control (Round trip: Mixed digits ... Camera)."""
    main(page).locator('[data-testid="stButtonGroup"]').get_by_text(mode, exact=True).first.click()
    settle(page)


def image_by_caption(page, caption: str):
    """The <img> of every picture (alone or in a list of pictures) whose caption is exactly `caption`."""
    exact = re.compile(rf"^\s*{re.escape(caption)}\s*$")
    cells = main(page).locator('[data-testid="stImageContainer"]')
    return cells.filter(has=page.locator('[data-testid="stImageCaption"]', has_text=exact)).locator(
        "img"
    )


def digit_pixels(page, img) -> np.ndarray:
    """An enlarged 28x28 picture shown in the page, fetched and shrunk back: float (28, 28) in [0, 1]."""
    src = img.get_attribute("src")
    body = page.request.get(urljoin(page.url, src)).body()
    arr = np.asarray(Image.open(io.BytesIO(body)).convert("L"), np.float32) / 255.0
    step = arr.shape[0] // 28
    return arr[::step, ::step][:28, :28]


def stroke(page, canvas, points: list[tuple[float, float]], steps: int = 5) -> None:
    """Draw one stroke with the mouse through `points` (pixels from the canvas's top left)."""
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(box["x"] + x, box["y"] + y, steps=steps)
    page.mouse.up()


def touch_stroke(page, canvas, points: list[tuple[float, float]], steps: int = 5) -> None:
    """The same stroke with a finger: touch events, as a tablet sends them."""
    box = canvas.bounding_box()
    cdp = page.context.new_cdp_session(page)
    path = [(box["x"] + x, box["y"] + y) for x, y in points]
    cdp.send(
        "Input.dispatchTouchEvent",
        {"type": "touchStart", "touchPoints": [{"x": path[0][0], "y": path[0][1]}]},
    )
    for (x0, y0), (x1, y1) in zip(path, path[1:], strict=False):
        for t in np.linspace(0, 1, steps + 1)[1:]:
            point = {"x": x0 + t * (x1 - x0), "y": y0 + t * (y1 - y0)}
            cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [point]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    cdp.detach()
