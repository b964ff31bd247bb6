"""Small shared pieces: statistics, JSON-line records, the repository root, machine facts."""

from __future__ import annotations

import json
import math
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH_DIR = REPO / "benchmarks"


def free_ports(n: int) -> list[int]:
    """Loopback ports nobody listens on now (the kernel picks them; all held until all are picked)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def median(xs) -> float:
    xs = [x for x in xs if x is not None and math.isfinite(x)]
    return statistics.median(xs) if xs else float("nan")


def p95(xs) -> float:
    """The 95th percentile by linear interpolation (numpy's default)."""
    xs = sorted(x for x in xs if x is not None and math.isfinite(x))
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * 0.95
    lo, hi = math.floor(k), math.ceil(k)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


class Recorder:
    """Collects records and prints each as one JSON line the moment it is made."""

    def __init__(self, stream=None):
        self.records: list[dict] = []
        self.stream = stream or sys.stdout

    def emit(self, section: str, name: str, **values) -> dict:
        rec = {"section": section, "name": name, **values, "t": round(time.time(), 1)}
        self.records.append(rec)
        self.stream.write(json.dumps(rec, default=_plain) + "\n")
        self.stream.flush()
        return rec


def _plain(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def process_tree(pid: int) -> list[int]:
    """`pid` and all its living descendants, from /proc (psutil is not required)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        if p in out:
            continue
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(k) for k in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue  # gone meanwhile
        out.append(p)
    return out


def log(msg: str) -> None:
    """Progress for people goes to stderr; stdout is kept for the JSON lines."""
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {msg}\n")
    sys.stderr.flush()


def child_env(**extra: str) -> dict:
    """The environment for child processes: the repo importable, TF's start-up chatter quiet."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.update(extra)
    return env


def machine() -> dict:
    """What a reader needs to judge the numbers: CPU, cores, memory, load, versions."""
    info = {"platform": platform.platform(), "python": platform.python_version()}
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        names = [
            ln.split(":", 1)[1].strip()
            for ln in cpuinfo.splitlines()
            if ln.startswith("model name")
        ]
        info["cpu"] = names[0] if names else platform.processor()
        flags = next((ln for ln in cpuinfo.splitlines() if ln.startswith("flags")), "")
        info["simd"] = [
            f
            for f in ("avx2", "avx512f", "fma", "avx512_bf16", "amx_tile", "amx_bf16")
            if f" {f}" in flags
        ]
    except OSError:
        info["cpu"] = platform.processor()
    info["cores"] = os.cpu_count()
    try:
        info["cpus_allowed"] = len(os.sched_getaffinity(0))
    except AttributeError:
        pass
    try:
        mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
        info["memory_gib"] = round(int(mem) / 1024**2, 1)
    except (OSError, IndexError, ValueError):
        pass
    info["loadavg"] = list(os.getloadavg())
    for mod in ("tensorflow", "keras", "streamlit", "numpy", "playwright"):
        info[mod] = _version(mod)
    try:
        out = subprocess.run(
            ["/usr/bin/chromium", "--version"], capture_output=True, text=True, timeout=20
        )
        info["chromium"] = out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        info["chromium"] = None
    return info


def _version(mod: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(mod)
    except metadata.PackageNotFoundError:
        return None


# ---------------------------------------------------------------- report cells (report.py and the sections' own)
def fmt(value, spec: str = ".2f", unit: str = "") -> str:
    """A figure for a table cell: "—" when missing or not finite."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return f"{value:{spec}}{unit}"


def status(ok: bool | None, gap: str = "") -> str:
    """A target's status cell: met, **not met** (with the gap), or not measured."""
    if ok is None:
        return "not measured"
    return "met" if ok else f"**not met**{' — ' + gap if gap else ''}"
