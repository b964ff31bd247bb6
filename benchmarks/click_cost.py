"""What one click costs the server: CPU-seconds of the app's server process per interaction.

A room of people on one server is limited by the server's CPU per click (issue 21), not by what a
single click's latency shows. For each interaction below, one Chromium session clicks N times, and
the server's CPU time (user + system, its whole process tree, from /proc) is read before and after.
With `--against REV`, the same clicks run against a second server started from that git revision
(a temporary worktree), alternating interaction by interaction, so both meet the same load:
`python -m benchmarks.click_cost --against HEAD~3`. Latency is reported too, but the CPU figure is
the one a room pays.
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import REPO, Recorder, log, median
from benchmarks.load import SHIPPED_MLP, _tree_cpu_s

# (name, page path, heading, what one click is, the model: a shipped one by name, or DEFAULT_VIEW)
DEFAULT_VIEW = None  # no ?model=: what the page opens on for a visitor who has chosen nothing
INTERACTIONS = (
    ("generate: New seed", "generate", "Generate", ("button", "New seed"), SHIPPED_MLP),
    ("generate: grid size +1", "generate", "Generate", ("slider", "Grid size"), SHIPPED_MLP),
    ("generate: walk steps +1", "generate", "Generate", ("slider", "Steps"), SHIPPED_MLP),
    ("round trip: Shuffle", "", "Round trip", ("button", "Shuffle"), SHIPPED_MLP),
    ("round trip: K +1", "", "Round trip", ("slider", "Samples of z per digit (K)"), SHIPPED_MLP),
    # A room's first view: since issue 18 the pages open on conv_vae_32d (AGAINST's opened on
    # mlp_vae_2d), so these rows compare what a visitor who chooses nothing pays, then and now.
    (
        "default view: generate, New seed",
        "generate",
        "Generate",
        ("button", "New seed"),
        DEFAULT_VIEW,
    ),
    ("default view: round trip, Shuffle", "", "Round trip", ("button", "Shuffle"), DEFAULT_VIEW),
    (
        "default view: round trip, K +1",
        "",
        "Round trip",
        ("slider", "Samples of z per digit (K)"),
        DEFAULT_VIEW,
    ),
)
# The full run compares with the revision before issue 21's second round of savings (compiled
# model calls, Streamlit's per-run Keras clearing undone, pictures sent as PNGs).
AGAINST = "ee85a5d"


def _click(page, ui, what: tuple[str, str]) -> None:
    kind, label = what
    if kind == "button":
        ui.main(page).get_by_role("button", name=label, exact=True).click()
    else:
        ui.press_slider(page, label, "ArrowRight", 1)
    ui.settle(page)


def _measure(server, browser, ui, interaction, clicks: int) -> dict:
    name, path, heading, what, model = interaction
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(180_000)
    try:
        ui.open_page(page, server, path, heading, **({} if model is None else {"model": model}))
        _click(page, ui, what)  # warm-up: caches, first fragment run
        pid = server.proc.pid
        cpu0, times = _tree_cpu_s(pid), []
        for _ in range(clicks):
            t0 = time.perf_counter()
            _click(page, ui, what)
            times.append(time.perf_counter() - t0)
        cpu = _tree_cpu_s(pid) - cpu0
    finally:
        context.close()
    return {"cpu_s_per_click": cpu / clicks, "median_s": median(times), "clicks": clicks}


@contextlib.contextmanager
def _worktree(rev: str):
    """A temporary checkout of `rev` (its own files, this checkout's .venv on the path)."""
    folder = Path(tempfile.mkdtemp(prefix="vae_click_rev_")) / "tree"
    subprocess.run(["git", "worktree", "add", "--detach", str(folder), rev], cwd=REPO, check=True,
                   capture_output=True)  # fmt: skip
    try:
        yield folder
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(folder)], cwd=REPO,
                       capture_output=True)  # fmt: skip


def run(rec, quick: bool, against: str | None = None, clicks: int | None = None) -> None:
    against = against or (None if quick else AGAINST)
    sys.path.insert(0, str(REPO / "tests" / "e2e"))
    import browser_ui as ui
    from playwright.sync_api import sync_playwright

    from benchmarks import serve

    clicks = clicks or (2 if quick else 12)
    stack = contextlib.ExitStack()
    with stack:
        sides = {"this checkout": REPO}
        if against:
            sides[against] = stack.enter_context(_worktree(against))
        servers = {}
        for side, root in sides.items():
            home = Path(tempfile.mkdtemp(prefix="vae_click_"))
            server = serve.AppServer(home / "lab", home / "user")
            old_root, serve.PROJECT_ROOT = serve.PROJECT_ROOT, root  # the revision's own app.py
            try:
                server.start()
            finally:
                serve.PROJECT_ROOT = old_root
            stack.callback(server.stop)
            servers[side] = server
        with sync_playwright() as p:
            browser = serve.launch_chromium(p)
            for interaction in INTERACTIONS:
                row = {}
                for side, server in servers.items():  # side by side, one interaction at a time
                    log(f"{interaction[0]} on {side}: {clicks} clicks")
                    row[side] = _measure(server, browser, ui, interaction, clicks)
                rec.emit("clicks", interaction[0], sides=row, against=against)
            browser.close()


def markdown(records: list[dict]) -> str:
    rows = [r for r in records if r["section"] == "clicks" and "sides" in r]
    if not rows:
        return ""
    against = rows[0].get("against")
    out = ["## What a click costs the server\n"]
    out.append(
        "`python -m benchmarks.click_cost` (`--against REV` for a side-by-side run): one Chromium "
        "session per interaction on `streamlit run app.py` with the shipped 2-D model (the "
        "*default view* rows: with the model a page opens on when none is chosen, conv_vae_32d "
        "now, mlp_vae_2d before issue 18); CPU-seconds "
        "of the server's process tree per click (user + system, /proc), and the click's median "
        "time until the page is idle again. On Generate the prior draws, the map, the dials and "
        "the walk are `st.fragment`s, so a click there reruns only its own part. On Round trip a "
        "Shuffle or a new K changes what every section shows, so the page reruns (its likelihood "
        "bound is a fragment of its own for its K control)."
        + (f" Beside it, the same clicks against revision `{against}`, alternating." if against else "")
        + "\n"
    )  # fmt: skip
    if against:
        out.append(
            f"| Interaction | CPU s / click, now | CPU s / click, `{against}` | Then / now | Median click, now / then |"
        )
        out.append("|---|---|---|---|---|")
        for r in rows:
            now, then = r["sides"]["this checkout"], r["sides"][against]
            ratio = then["cpu_s_per_click"] / max(now["cpu_s_per_click"], 1e-9)
            out.append(f"| {r['name']} | {now['cpu_s_per_click']:.3f} | {then['cpu_s_per_click']:.3f} | "
                       f"{ratio:.1f}x | {now['median_s']:.2f} s / {then['median_s']:.2f} s |")  # fmt: skip
    else:
        out.append("| Interaction | CPU s / click | Median click |")
        out.append("|---|---|---|")
        for r in rows:
            now = r["sides"]["this checkout"]
            out.append(f"| {r['name']} | {now['cpu_s_per_click']:.3f} | {now['median_s']:.2f} s |")
    out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.click_cost", description=__doc__.splitlines()[0]
    )
    ap.add_argument("--against", help="a git revision to run the same clicks against, side by side")
    ap.add_argument(
        "--clicks", type=int, default=12, help="clicks per interaction (after one warm-up)"
    )
    args = ap.parse_args(argv)
    rec = Recorder()  # one JSON line per interaction on stdout
    run(rec, quick=False, against=args.against, clicks=args.clicks)
    # RESULTS.md takes this section from `python -m benchmarks.run --only clicks` (against AGAINST).
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
