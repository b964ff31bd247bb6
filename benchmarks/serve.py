"""Start the app as the README does (`streamlit run app.py`) on a free port, for browser tests and the
load benchmark; and launch Debian's Chromium through Playwright.

The server gets its own VAE_LAB_HOME and HOME, so it reads and writes nothing of the user's.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

from benchmarks.common import free_ports

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-dev-shm-usage",
]


def streamlit_command(port: int, *extra: str) -> list[str]:
    """The README's `streamlit run app.py`, headless on `port` (settings: .streamlit/config.toml)."""
    return [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
            "--server.port", str(port), *extra]  # fmt: skip


class AppServer:
    """`python -m streamlit run app.py` in a subprocess; start, stop (or kill) and start again."""

    def __init__(
        self, home: Path, user_home: Path, port: int | None = None, log: Path | None = None
    ):
        self.home, self.user_home = Path(home), Path(user_home)
        self.port = port or free_ports(1)[0]
        self.log = Path(log) if log else self.user_home / "streamlit.log"
        self.proc: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://localhost:{self.port}"

    def url(self, page: str = "", **params) -> str:
        """The address of a page (url_path as in app.py) with query parameters."""
        query = f"?{urlencode(params)}" if params else ""
        return f"{self.base}/{page}{query}"

    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("STREAMLIT_", "VAE_LAB_"))}
        if os.environ.get("VAE_LAB_DATA_DIR"):
            env["VAE_LAB_DATA_DIR"] = os.environ["VAE_LAB_DATA_DIR"]
        env.update(
            VAE_LAB_HOME=str(self.home),
            VAE_LAB_OFFLINE="1",
            HOME=str(self.user_home),
            TF_CPP_MIN_LOG_LEVEL="2",
            PYTHONUNBUFFERED="1",
        )
        return env

    def command(self) -> list[str]:
        return streamlit_command(self.port)

    def start(self, timeout: float = 120.0) -> None:
        """Start the server and wait until /_stcore/health answers "ok"."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.user_home.mkdir(parents=True, exist_ok=True)
        cmd = self.command()
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                cmd,
                cwd=PROJECT_ROOT,
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so stop() ends all of it
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"streamlit exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            if self.healthy():
                return
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"streamlit did not become healthy in {timeout} s:\n{self.log_tail()}")

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base}/_stcore/health", timeout=5) as r:
                return r.status == 200 and r.read().strip() == b"ok"
        except OSError:
            return False

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> None:
        """Signal the server's process group (SIGKILL to simulate a crash) and wait for it."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)

    def restart(self, sig: int = signal.SIGTERM) -> None:
        self.stop(sig)
        self.start()

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


class Room(AppServer):
    """The README's "Serving a room": `scripts/serve_room.py`, N app processes behind HAProxy on
    127.0.0.1, `port` the proxy's. Healthy once HAProxy answers with an app process behind it."""

    def __init__(self, home: Path, user_home: Path, processes: int = 2, **kwargs):
        super().__init__(home, user_home, **kwargs)
        self.processes = processes
        # The app processes' ports: a free run of them, well away from the proxy's.
        self.first_app_port = _free_run(processes)

    def command(self) -> list[str]:
        return [sys.executable, "scripts/serve_room.py", "--processes", str(self.processes),
                "--port", str(self.port), "--address", "127.0.0.1",
                "--first-app-port", str(self.first_app_port)]  # fmt: skip

    def start(self, timeout: float = 240.0) -> None:
        super().start(timeout)


def _free_run(n: int) -> int:
    """The first of `n` consecutive free loopback ports."""
    for _ in range(50):
        (first,) = free_ports(1)
        if first + n < 65536 and all(_port_free(first + i) for i in range(n)):
            return first
    raise RuntimeError(f"no {n} consecutive free ports")


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def copy_models(src_store: Path, dst_store: Path, prefix: str = "") -> list[str]:
    """Copy every `<name>.keras` + `<name>.json` pair, renamed `<prefix><name>`; returns the names."""
    dst_store.mkdir(parents=True, exist_ok=True)
    names = []
    for model in sorted(Path(src_store).glob("*.keras")):
        name = prefix + model.stem
        shutil.copyfile(model, dst_store / f"{name}.keras")
        meta = model.with_suffix(".json")
        if meta.exists():
            shutil.copyfile(meta, dst_store / f"{name}.json")
        names.append(name)
    return names


def launch_chromium(playwright):
    """Debian's Chromium, headless; never a downloaded browser."""
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
