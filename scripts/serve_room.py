"""Serve VAE Lab to a room: N app processes on one machine behind HAProxy, each browser kept on one.

One Streamlit process runs its Python under one interpreter lock, so one process uses about one
core however many people click. Several processes use several cores; HAProxy (deploy/haproxy.cfg)
sends each new browser to the least busy process and keeps it there with a cookie. Everything a
process writes (the model store, training runs) lives under VAE_LAB_HOME, which all of them share,
so a model trained or imported through one process is seen by all.

    python scripts/serve_room.py --processes 2 --port 8501      # then open http://HOST:8501

Ctrl-C (or SIGTERM) stops HAProxy and every app process. An app process that exits is started
again; meanwhile HAProxy sends its browsers to the others.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "deploy" / "haproxy.cfg"
SERVER_LINE = re.compile(r"^\s*server\s", re.M)
START_TIMEOUT_S = 180  # an app process imports TensorFlow before it answers its health check
RESTART_PAUSE_S = 5  # between restarts of a process that keeps exiting


def say(text: str) -> None:
    print(f"[room] {text}", flush=True)


def port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def haproxy_config(ports: list[int]) -> str:
    """deploy/haproxy.cfg with its `server` lines replaced by one per app process."""
    text = CONFIG.read_text()
    kept = [line for line in text.splitlines() if not SERVER_LINE.match(line)]
    servers = [
        f"    server app{i} 127.0.0.1:{p} check cookie app{i}" for i, p in enumerate(ports, 1)
    ]
    return "\n".join(kept + servers) + "\n"


class AppProcess:
    """One `streamlit run app.py` on a loopback port, its output in a log file."""

    def __init__(self, index: int, port: int, env: dict, logs: Path):
        self.index, self.port, self.env = index, port, env
        self.log = logs / f"app{index}.log"
        self.proc: subprocess.Popen | None = None
        self.started = 0.0

    def start(self) -> None:
        cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
               "--server.address", "127.0.0.1", "--server.port", str(self.port)]  # fmt: skip
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                cmd, cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
        self.started = time.monotonic()

    def healthy(self) -> bool:
        url = f"http://127.0.0.1:{self.port}/_stcore/health"
        try:
            with urllib.request.urlopen(url, timeout=3) as r:
                return r.status == 200 and r.read().strip() == b"ok"
        except OSError:
            return False

    def exited(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--processes", type=int, default=2, help="app processes (default 2)")
    ap.add_argument("--port", type=int, default=8501, help="the room's port (default 8501)")
    ap.add_argument(
        "--address", default="0.0.0.0", help="where HAProxy listens (default: every interface)"
    )
    ap.add_argument(
        "--first-app-port", type=int, default=None, help="app i listens on this + i - 1 (loopback)"
    )
    args = ap.parse_args(argv)
    if not 1 <= args.processes <= 64:
        ap.error("--processes must be between 1 and 64")
    haproxy = shutil.which("haproxy") or next(
        (p for p in ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy") if os.access(p, os.X_OK)),
        None,
    )
    if haproxy is None:
        say("HAProxy is not installed; on Debian or Ubuntu: sudo apt-get install -y haproxy")
        return 2
    first = args.first_app_port or args.port + 10
    ports = list(range(first, first + args.processes))
    busy = [p for p in ports if not port_free("127.0.0.1", p)]
    if not port_free(args.address, args.port) or busy:
        taken = ", ".join(str(p) for p in ([args.port] if args.port not in busy else []) + busy)
        say(f"Port {taken} is in use; choose others with --port / --first-app-port.")
        return 2

    run_dir = Path(tempfile.mkdtemp(prefix="vae_lab_room_"))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # One secret for all: an upload's XSRF cookie from one process is good at every other, so a
    # browser moved to another process (its own went down) can still upload.
    env.setdefault("STREAMLIT_SERVER_COOKIE_SECRET", secrets.token_hex(32))
    apps = [AppProcess(i, p, env, run_dir) for i, p in enumerate(ports, 1)]
    proxy: subprocess.Popen | None = None
    stopping = False

    def stop(signum, _frame) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        for app in apps:
            app.start()
        say(f"starting {len(apps)} app processes on ports {ports[0]}-{ports[-1]} (logs: {run_dir})")
        deadline = time.monotonic() + START_TIMEOUT_S
        waiting = list(apps)
        while waiting and not stopping:
            dead = [a for a in waiting if a.exited()]
            if dead:
                say(f"app process {dead[0].index} stopped while starting; see {dead[0].log}")
                return 1
            if time.monotonic() > deadline:
                say(f"the app processes did not answer within {START_TIMEOUT_S} s; see {run_dir}")
                return 1
            waiting = [a for a in waiting if not a.healthy()]
            time.sleep(0.5)
        if stopping:
            return 0
        cfg = run_dir / "haproxy.cfg"
        cfg.write_text(haproxy_config(ports))
        bind = (
            f"[{args.address}]:{args.port}"
            if ":" in args.address
            else f"{args.address}:{args.port}"
        )
        with open(run_dir / "haproxy.log", "ab") as log:
            proxy = subprocess.Popen(
                [haproxy, "-db", "-f", str(cfg)],
                env={**env, "VAE_LAB_ROOM_BIND": bind},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        host = "localhost" if args.address in ("0.0.0.0", "::") else args.address
        say(f"VAE Lab for a room: http://{host}:{args.port}  ({len(apps)} processes; Ctrl-C stops)")
        while not stopping:
            if proxy.poll() is not None:
                say(f"HAProxy stopped (exit {proxy.returncode}); see {run_dir / 'haproxy.log'}")
                return 1
            for app in apps:
                if app.exited() and time.monotonic() - app.started > RESTART_PAUSE_S:
                    say(
                        f"app process {app.index} exited ({app.proc.returncode}); starting it again"
                    )
                    app.start()
            time.sleep(0.5)
        return 0
    finally:
        if proxy is not None and proxy.poll() is None:
            proxy.terminate()
            proxy.wait(10)
        for app in apps:
            app.stop()
        say("stopped")


if __name__ == "__main__":
    raise SystemExit(main())
