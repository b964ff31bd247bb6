"""The app in a real browser: cold start, page switches, server memory with every model loaded.

"Fully rendered" = the page's title (`h1`) is visible and Streamlit reports the script run finished
(`[data-testid=stApp][data-test-script-state=notRunning]`, the attribute Streamlit's own end-to-end
tests wait on) -- i.e. the running indicator is gone and nothing on the page is still being computed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

from benchmarks.common import REPO, child_env, free_ports, log, median, p95, process_tree
from benchmarks.serve import streamlit_command

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
DONE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
NAV_LINK = '[data-testid="stSidebarNavLink"]'


def rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants (/proc VmRSS)."""
    total = 0
    for p in process_tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except (OSError, ValueError):
            continue
    return total / 1024


def _seed_store(home: Path) -> tuple[list[str], str]:
    """The models the app will hold: the shipped ones, or (none shipped) one per preset in the store."""
    from vae_core import kinds, paths
    from vae_core.specs import preset
    from vae_core.store import Store

    store = Store(root=home / "models", shipped_root=paths.SHIPPED_MODELS_DIR)
    shipped = [e.name for e in store.list() if e.shipped and e.error is None]
    if shipped:
        return shipped, "shipped"
    names = []
    for kind in kinds.names():
        spec, _ = preset(kind)
        name = f"bench_{kind}"
        store.save(name, kinds.build(spec), {"description": "benchmark stand-in (untrained)"})
        names.append(name)
    return names, "untrained presets saved in a temporary store (no shipped models found)"


def _wait_rendered(page, title: str | None, timeout_ms: float) -> None:
    if title:
        page.locator("h1", has_text=title).first.wait_for(state="visible", timeout=timeout_ms)
    else:
        page.locator("h1").first.wait_for(state="visible", timeout=timeout_ms)
    page.wait_for_selector(DONE, state="attached", timeout=timeout_ms)


def run(rec, quick: bool) -> None:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        rec.emit("app", "skipped", reason=f"{CHROMIUM} not found")
        return
    home = Path(tempfile.mkdtemp(prefix="vae_bench_home_"))
    model_names, source = _seed_store(home)
    (port,) = free_ports(1)
    base = f"http://127.0.0.1:{port}"
    server_log = open(home / "streamlit.log", "w")  # noqa: SIM115 - closed in finally
    cmd = streamlit_command(port, "--server.address", "127.0.0.1")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        # Chromium is up before the clock starts: what is timed is the app, not the browser.
        t0 = time.perf_counter()
        server = subprocess.Popen(
            cmd,
            cwd=REPO,
            env=child_env(VAE_LAB_HOME=str(home), STREAMLIT_BROWSER_GATHER_USAGE_STATS="false"),
            stdout=server_log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_health(base, server, timeout_s=120)
            t_health = time.perf_counter() - t0
            page.goto(base, wait_until="domcontentloaded", timeout=60_000)
            _wait_rendered(page, None, 120_000)
            cold = time.perf_counter() - t0
            first_title = page.locator("h1").first.inner_text()
            rec.emit(
                "app",
                "cold_start",
                seconds=cold,
                server_ready_s=t_health,
                first_page=first_title,
                target_s=8.0,
                models=model_names,
                models_from=source,
                command=" ".join(["python", *cmd[1:]]),
            )
            log(f"app: cold start {cold:.2f} s (server ready {t_health:.2f} s)")

            # Page switches by the sidebar navigation, every page in turn, a few rounds.
            links = page.locator(NAV_LINK)
            labels = [_title_word(links.nth(i).inner_text()) for i in range(links.count())]
            rounds = 0 if quick else 4
            switches: dict[str, list[float]] = {}
            order = labels[1:] + labels[:1]
            for r in range(rounds + 1):  # round 0 is the warm-up: each page's first visit
                for label in order:
                    t = time.perf_counter()
                    page.locator(NAV_LINK, has_text=label).first.click()
                    _wait_rendered(page, label, 60_000)
                    dt = time.perf_counter() - t
                    if r > 0 or quick:
                        switches.setdefault(label, []).append(dt)
            all_switches = [t for ts in switches.values() for t in ts]
            rec.emit(
                "app",
                "page_switch",
                median_s=median(all_switches),
                p95_s=p95(all_switches),
                n=len(all_switches),
                target_s=1.5,
                per_page_median_s={k: median(v) for k, v in switches.items()},
            )
            log(f"app: page switch median {median(all_switches):.2f} s")

            # Every page with every model, so each model is loaded into the server's cache.
            paths_ = [_url_path(page, label) for label in labels]
            visited = 0
            # (The smoke run only loads each model once, on the default page.)
            for name in model_names:
                for path in paths_ if not quick else [""]:
                    page.goto(f"{base}/{path}?model={name}", wait_until="domcontentloaded")
                    _wait_rendered(page, None, 120_000)
                    visited += 1
            time.sleep(1.0)
            mem = rss_mb(server.pid)
            rec.emit(
                "app",
                "server_memory",
                rss_mb=mem,
                target_mb=1536,
                models=model_names,
                models_from=source,
                page_visits=visited,
                pages=paths_,
            )
            log(f"app: server RSS {mem:.0f} MB with {len(model_names)} models")
        finally:
            browser.close()
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            server_log.close()
            errors = _server_errors(home / "streamlit.log")
            if errors:
                rec.emit("app", "server_log_errors", lines=errors)
            if not os.environ.get("VAE_BENCH_KEEP"):
                shutil.rmtree(home, ignore_errors=True)


def _wait_health(base: str, server: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {server.returncode}")
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"streamlit did not answer within {timeout_s:.0f} s")


def _title_word(label: str) -> str:
    """The nav label without its icon: the page's h1 contains it ("🧽 Denoise" for "Denoise").
    A Material icon shows up in the text as its ligature name ("sync_alt" + "Round trip")."""
    lines = [ln.strip() for ln in label.splitlines() if ln.strip()]
    label = re.sub(r"^[a-z0-9_]+(?=[A-Z])", "", lines[-1] if lines else label)
    return " ".join("".join(ch for ch in label if ch.isalnum() or ch in " -'").split())


def _url_path(page, label: str) -> str:
    href = page.locator(NAV_LINK, has_text=label).first.get_attribute("href") or ""
    return urlparse(href).path.strip("/")  # "" for the default page


def _server_errors(path: Path) -> list[str]:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    return [ln for ln in lines if "Error" in ln or "Traceback" in ln][:10]
