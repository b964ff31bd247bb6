"""Load: N browser sessions use the Generate and Round trip pages of one app server at once.

Each session is its own Chromium context (its own Streamlit session) and repeats what a person does:
on Generate a new seed and a nudge of a latent dial, on Round trip a shuffle of the digits and a change
of the number of samples. The latency of an interaction is the time from the click or key press until
the app's output has changed and the app is idle again, as the person sees it. It also reports where
the CPU went: the app server's share against the whole machine's (the rest is the browsers).

    python -m benchmarks.load [--sessions 8] [--seconds 60] [--url http://localhost:8501 --model NAME]

Without --url it starts its own server (the README's `streamlit run app.py`) with a temporary home.
Prints one JSON line; `run()` returns the same dict.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import tempfile
import time
from pathlib import Path

from benchmarks.common import median, p95, process_tree
from benchmarks.serve import CHROMIUM, CHROMIUM_ARGS, AppServer, Room

TRACE = re.compile(r"Traceback \(most recent call last\)|\b[A-Z]\w*(?:Error|Exception): ")
# The app's output as one string: the main area's text and its pictures' addresses, without the
# sliders (a slider shows its new value at once, before the server has run anything).
OUTPUT_JS = """(() => {
    const main = document.querySelector('[data-testid="stMainBlockContainer"]');
    if (!main) return null;
    const copy = main.cloneNode(true);
    copy.querySelectorAll('[data-testid="stSlider"]').forEach(e => e.remove());
    return copy.textContent + [...main.querySelectorAll('img')].map(i => i.src).join('|');
})()"""
SIGNATURE_JS = "() => " + OUTPUT_JS
# Done: the output differs from before the action (only the server changes it) and the app has
# been idle for two polls in a row. The script-state attribute alone cannot tell "ran": under load
# the browser may apply a whole short run in one render, so the attribute never reads "running".
IDLE_JS = (
    """([before]) => {
    const app = document.querySelector('[data-testid="stApp"]');
    const sig = """
    + OUTPUT_JS
    + """;
    if (!app || sig === null) return false;
    const idle = app.getAttribute('data-test-script-state') === 'notRunning'
        && app.getAttribute('data-test-connection-state') === 'CONNECTED'
        && !document.querySelector('[data-testid="stStatusWidget"]');
    const changed = before === null || sig !== before;
    window.__quiet = idle && changed ? (window.__quiet || 0) + 1 : 0;
    return window.__quiet >= 2;
}"""
)
ARM_JS = """() => {
    const app = document.querySelector('[data-testid="stApp"]');
    window.__ran = false;
    if (!window.__observer && app) {
        // A run may start and end between two callbacks: look at the old values too.
        window.__observer = new MutationObserver((records) => {
            const now = app.getAttribute('data-test-script-state');
            if (now === 'running' || records.some(r => r.oldValue === 'running')) window.__ran = true;
        });
        window.__observer.observe(app, {attributes: true, attributeOldValue: true,
                                        attributeFilter: ['data-test-script-state']});
    }
}"""
# What the page looked like when an interaction timed out: tells "the app never ran" from
# "it ran and nothing changed" from "it is still running".
STATE_JS = (
    """([before]) => {
    const app = document.querySelector('[data-testid="stApp"]');
    const sig = """
    + OUTPUT_JS
    + """;
    return {script: app && app.getAttribute('data-test-script-state'),
            connection: app && app.getAttribute('data-test-connection-state'),
            status_widget: !!document.querySelector('[data-testid="stStatusWidget"]'),
            ran: !!window.__ran, changed: sig !== before,
            sliders: [...document.querySelectorAll('[data-testid="stSlider"]')].map(
                s => s.innerText.replace(/\\s+/g, ' ').slice(0, 60))};
}"""
)
TIMEOUT_MS = 60_000


SHIPPED_MLP = "mlp_vae_2d"  # the shipped 2-D MLP VAE: the pages show it with the most parts


def _tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by process `pid` and its descendants."""
    total = 0.0
    for p in process_tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            # utime, stime, and cutime, cstime (children that exited and were waited for)
            total += sum(int(f) for f in fields[11:15])
        except (OSError, ValueError, IndexError):
            continue
    return total / os.sysconf("SC_CLK_TCK")


def _machine_busy_s() -> float:
    """CPU seconds the whole machine has spent busy (all cores, /proc/stat)."""
    parts = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0)  # idle + iowait
    return (sum(parts[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _stats(xs: list[float]) -> dict:
    if not xs:
        return {"n": 0}
    return {
        "n": len(xs),
        "p50_ms": round(median(xs), 1),
        "p95_ms": round(p95(xs), 1),
        "max_ms": round(max(xs), 1),
    }


def _kinds(errors: list[str]) -> dict[str, int]:
    """Errors counted by kind: the exception's type, or "exception box" / "exception text"."""
    kinds: dict[str, int] = {}
    for e in errors:
        kind = e.split(": ", 2)[1] if e.count(": ") >= 2 else e
        kinds[kind] = kinds.get(kind, 0) + 1
    return dict(sorted(kinds.items(), key=lambda kv: -kv[1]))


async def _until_changed(page, before: str | None) -> None:
    await page.evaluate("window.__quiet = 0")
    try:
        await page.wait_for_function(IDLE_JS, arg=[before], polling=100, timeout=TIMEOUT_MS)
    except Exception as err:  # noqa: BLE001 -- say what the page looked like, then re-raise
        try:
            state = await page.evaluate(STATE_JS, [before])
        except Exception as inner:  # noqa: BLE001
            state = f"unreadable ({type(inner).__name__})"
        if type(err).__name__ != "TimeoutError":
            raise
        raise TimeoutError(f"{str(err)[:80]} page state: {json.dumps(state)}") from err


async def _check_page(page) -> str | None:
    """An exception box or traceback text on the page, described; None when clean."""
    if await page.locator('[data-testid="stException"]').count():
        return (
            "exception box: "
            + (await page.locator('[data-testid="stException"]').first.inner_text())[:200]
        )
    text = await page.locator('[data-testid="stApp"]').inner_text()
    found = TRACE.search(text)
    return f"exception text: {text[found.start() : found.start() + 200]}" if found else None


async def _act(page, action: str, turn: int) -> None:
    main = page.locator('[data-testid="stMainBlockContainer"]')
    key = "ArrowRight" if turn % 2 == 0 else "ArrowLeft"
    if action == "new_seed":
        await main.get_by_role("button", name="New seed").click()
    elif action == "shuffle":
        await main.get_by_role("button", name="Shuffle").click()
    else:  # a slider nudged with the keyboard: the first dial, or the number of samples
        label = "z[0]" if action == "dial" else "Samples of z per digit"
        thumb = (
            page.locator('[data-testid="stSlider"]').filter(has_text=label).get_by_role("slider")
        )
        await thumb.focus()
        await thumb.press(key)


async def _open(i: int, browser, base: str, model: str, out: dict):
    """Session i's page, loaded: even sessions use Generate, odd ones Round trip."""
    generate = i % 2 == 0
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    t0 = time.perf_counter()
    try:
        await page.goto(f"{base}/{'generate' if generate else ''}?model={model}")
        heading = re.compile("Generate" if generate else "Round trip")
        await page.get_by_role("heading", name=heading).first.wait_for(timeout=TIMEOUT_MS)
        await _until_changed(page, None)
    except Exception as err:  # noqa: BLE001 -- a page that never loads is an error, not a crash
        out["errors"].append(f"session {i} load: {type(err).__name__}: {str(err)[:200]}")
        await context.close()
        return None
    out["page_load"].append((time.perf_counter() - t0) * 1000)
    return context, page, ("new_seed", "dial") if generate else ("shuffle", "samples")


async def _loop(i: int, opened, stop_at: float, out: dict) -> None:
    context, page, actions = opened
    turn = 0
    try:
        while time.perf_counter() < stop_at:
            action = actions[turn % 2]
            before = await page.evaluate(SIGNATURE_JS)
            await page.evaluate(ARM_JS)
            t0 = time.perf_counter()
            try:
                await _act(page, action, turn // 2)
                await _until_changed(page, before)
            except Exception as err:  # noqa: BLE001 -- a timeout or a vanished element is an error
                out["errors"].append(
                    f"session {i} {action}: {type(err).__name__}: {str(err)[:600]}"
                )
            else:
                ms = (time.perf_counter() - t0) * 1000
                out["latency"].setdefault(action, []).append(ms)
                if turn >= 2:  # past each session's first two (all sessions start together)
                    out["steady"].append(ms)
                problem = await _check_page(page)
                if problem:
                    out["errors"].append(f"session {i} {action}: {problem}")
            turn += 1
    finally:
        await context.close()


async def _drive(
    base: str, model: str, sessions: int, seconds: float, server_pid: int | None = None
) -> dict:
    from playwright.async_api import async_playwright

    out: dict = {"latency": {}, "errors": [], "page_load": [], "steady": []}
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            # All sessions load their page first (the first load imports TensorFlow and loads
            # the model); then the clock starts, so the measured time is all interaction.
            opened = await asyncio.gather(
                *(_open(i, browser, base, model, out) for i in range(sessions))
            )
            t0, busy0 = time.perf_counter(), _machine_busy_s()
            server0 = _tree_cpu_s(server_pid) if server_pid else None
            await asyncio.gather(
                *(_loop(i, o, t0 + seconds, out) for i, o in enumerate(opened) if o is not None)
            )
            wall, busy = time.perf_counter() - t0, _machine_busy_s() - busy0
            server = _tree_cpu_s(server_pid) - server0 if server_pid else None
        finally:
            await browser.close()
    all_ms = [ms for xs in out["latency"].values() for ms in xs]
    return {
        "benchmark": "load",
        "sessions": sessions,
        "seconds": seconds,
        "model": model,
        "interactions": len(all_ms),
        "interactions_per_s": round(len(all_ms) / wall, 2),
        "errors": len(out["errors"]),
        # Of those, interactions that took longer than TIMEOUT_MS (a person would give up).
        "timeouts": sum("TimeoutError" in e for e in out["errors"]),
        "timeout_s": TIMEOUT_MS / 1000,
        "error_kinds": _kinds(out["errors"]),
        "error_samples": out["errors"][:5],
        "latency": _stats(all_ms),
        "steady_latency": _stats(out["steady"]),
        "by_action": {k: _stats(v) for k, v in sorted(out["latency"].items())},
        "page_load": _stats(out["page_load"]),
        "cpus": os.cpu_count(),
        # Where the CPU went while the sessions ran: the app server (with its children) and the
        # whole machine (the rest is the browsers, this driver and anything else running).
        "cpu": {
            "wall_s": round(wall, 1),
            "machine_busy_core_s": round(busy, 1),
            "server_core_s": None if server is None else round(server, 1),
            "server_per_interaction_s": (
                round(server / len(all_ms), 3) if server is not None and all_ms else None
            ),
        },
    }


def _own_server(processes: int = 1) -> tuple[AppServer, str]:
    """A server with a temporary home (with processes > 1, a Room of them behind HAProxy); the
    shipped 2-D MLP VAE, or an untrained one of its shape."""
    from vae_core import paths
    from vae_core.store import Store

    root = Path(tempfile.mkdtemp(prefix="vae_lab_load_"))
    if processes > 1:
        server = Room(root / "home", root / "user", processes)
    else:
        server = AppServer(root / "home", root / "user")
    store = Store(root / "home" / "models", shipped_root=paths.SHIPPED_MODELS_DIR)
    shipped = {e.name for e in store.list() if e.shipped and e.error is None}
    if SHIPPED_MLP in shipped:
        model = SHIPPED_MLP
    else:
        from vae_core.models import build_model
        from vae_core.specs import preset

        model = "load_mlp_vae"
        store.save(model, build_model(preset("mlp_vae")[0]), {"dataset": "sample"})
    server.start()
    return server, model


def run(
    sessions: int = 8, seconds: float = 60, url: str | None = None, model: str | None = None
) -> dict:
    """Drive `sessions` browser sessions for `seconds` against `url` (or a server of its own)."""
    server = None
    if url is None:
        server, model = _own_server()
        url = server.base
    elif model is None:
        raise ValueError("with --url, name the model to use (--model)")
    try:
        pid = server.proc.pid if server is not None and server.proc is not None else None
        result = asyncio.run(_drive(url.rstrip("/"), model, sessions, seconds, pid))
    finally:
        if server is not None:
            server.stop()
    return result


def bench(rec, quick: bool) -> None:
    """The `load` section of `python -m benchmarks.run`: 2 sessions x 5 s quick, 8 x 60 s full."""
    sessions, seconds = (2, 5) if quick else (8, 60)
    r = run(sessions, seconds)
    s = lambda st, k: None if st.get(k) is None else round(st[k] / 1000, 3)  # noqa: E731
    rec.emit(
        "load",
        "sessions",
        sessions=r["sessions"],
        seconds=r["seconds"],
        model=r["model"],
        interactions=r["interactions"],
        interactions_per_s=r["interactions_per_s"],
        p50_s=s(r["latency"], "p50_ms"),
        p95_s=s(r["latency"], "p95_ms"),
        max_s=s(r["latency"], "max_ms"),
        steady={k: s(r["steady_latency"], k + "_ms") for k in ("p50", "p95", "max")}
        | {"n": r["steady_latency"]["n"]},
        by_action={
            a: {"n": st["n"], "p50_s": s(st, "p50_ms"), "p95_s": s(st, "p95_ms")}
            for a, st in r["by_action"].items()
        },
        page_load_p50_s=s(r["page_load"], "p50_ms"),
        page_load_max_s=s(r["page_load"], "max_ms"),
        errors=r["errors"],
        timeouts=r["timeouts"],
        timeout_s=r["timeout_s"],
        error_kinds=r["error_kinds"],
        error_samples=r["error_samples"],
        cpus=r["cpus"],
        cpu=r["cpu"],
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--url", help="an app that is already running (default: start one)")
    parser.add_argument("--model", help="the store model to use with --url (a VAE)")
    args = parser.parse_args(argv)
    result = run(args.sessions, args.seconds, args.url, args.model)
    print(json.dumps(result), flush=True)
    return 0 if result["errors"] == 0 and result["interactions"] > 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
