"""Training on several machines: who the workers are, and a handshake before TensorFlow joins them.

A person names the cluster with `--workers host1:port,host2:port --task-index 0` on each machine
(or with TF_CONFIG, which is what MultiWorkerMirroredStrategy reads; `--workers` writes it). Worker 0
(or TF_CONFIG's "chief") is the chief: it owns the run folder and saves the model.

TensorFlow itself waits forever for a worker that never comes, and says nothing useful when two
machines were started with different lists or settings. So before it starts, the chief calls every
other worker on its own port, each side shows the other its list, its place in it and its
settings, and any difference ends both in one sentence, within `timeout_s`. The ports are free
again before TensorFlow takes them. No TensorFlow here.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import time
from dataclasses import dataclass
from typing import Any

from vae_core.errors import ChiefAbsent, RunError, UserError

TF_CONFIG = "TF_CONFIG"
JOIN_TIMEOUT_S = 120.0  # how long a worker waits for the others to start (typing on each machine)
REPLY_TIMEOUT_S = 10.0  # a connected peer that says nothing for this long is not a VAE Lab worker
RETRY_S = 0.25  # between tries to reach a worker that is not listening yet
PROTOCOL = "vae-lab-cluster/1"


# ---------------------------------------------------------------- who the workers are
@dataclass(frozen=True)
class Member:
    """One process of the cluster: its TF_CONFIG job ("chief" or "worker"), index and address."""

    job: str
    index: int
    address: str  # "host:port"

    @property
    def name(self) -> str:
        """A folder name and the status's key: "worker_1", "chief_0"."""
        return f"{self.job}_{self.index}"

    @property
    def label(self) -> str:
        """ "worker 1", or "the chief" where TF_CONFIG names one."""
        return "the chief" if self.job == "chief" else f"worker {self.index}"

    @property
    def words(self) -> str:
        """How a sentence names it: "worker 1 (10.0.0.2:2222)"."""
        return f"{self.label} ({self.address})"

    @property
    def host(self) -> str:
        return self.address.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.address.rpartition(":")[2])


@dataclass(frozen=True)
class Cluster:
    """Every member in TF_CONFIG's order (the chief first) and which one this process is."""

    members: tuple[Member, ...]
    me: int  # position of this process in `members`

    @property
    def own(self) -> Member:
        return self.members[self.me]

    @property
    def chief(self) -> bool:
        return self.me == 0

    @property
    def addresses(self) -> list[str]:
        return [m.address for m in self.members]

    def tf_config(self) -> str:
        """The TF_CONFIG that tells MultiWorkerMirroredStrategy the same thing."""
        jobs: dict[str, list[str]] = {}
        for m in self.members:
            jobs.setdefault(m.job, []).append(m.address)
        task = {"type": self.own.job, "index": self.own.index}
        return json.dumps({"cluster": jobs, "task": task})

    def describe(self) -> dict:
        """For status.json: how many workers, each one's name and address, which one this is."""
        return {
            "workers": [{"name": m.name, "address": m.address} for m in self.members],
            "me": self.own.name,
        }

    def commands(self, command: str) -> list[str]:
        """The command each machine runs (again, to resume), given the run's one-machine command."""
        listed = ",".join(self.addresses)
        if any(m.job == "chief" for m in self.members):
            return [f"TF_CONFIG='{_tf_config_of(self, i)}' {command}" for i in range(len(self))]
        return [f"{command} --workers {listed} --task-index {i}" for i in range(len(self))]

    def __len__(self) -> int:
        return len(self.members)


def _tf_config_of(cluster: Cluster, position: int) -> str:
    return Cluster(cluster.members, position).tf_config()


def _address(text: str, what: str) -> str:
    """'host:port' checked: a host, and a port from 1 to 65535."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host.strip("[]") or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(
            f"{what} '{text.strip()}' is not an address: write host:port, such as 10.0.0.2:2222."
        )
    return f"{host}:{int(port)}"


def parse_workers(text: str, task_index: int | None) -> Cluster:
    """The cluster `--workers a:p,b:q --task-index i` names (a UserError sentence if it cannot be)."""
    items = [item for item in text.split(",") if item.strip()]
    if not items:
        raise UserError("--workers needs at least one address, such as host1:2222,host2:2222.")
    addresses = [_address(item, "The worker address") for item in items]
    seen: set[str] = set()
    for address in addresses:
        if address in seen:
            raise UserError(f"The address {address} is listed twice in --workers.")
        seen.add(address)
    if task_index is None:
        raise UserError(
            f"Say which of the {len(addresses)} workers this machine is with --task-index "
            f"(0 to {len(addresses) - 1}; 0 is the chief)."
        )
    if not 0 <= task_index < len(addresses):
        raise UserError(
            f"--task-index {task_index} is not one of the {len(addresses)} workers listed "
            f"(0 to {len(addresses) - 1})."
        )
    members = tuple(Member("worker", i, a) for i, a in enumerate(addresses))
    return Cluster(members, task_index)


def from_tf_config(text: str) -> Cluster | None:
    """The cluster TF_CONFIG names (None: no cluster, one machine); a sentence if it is malformed."""
    if not text.strip():
        return None
    try:
        config = json.loads(text)
        jobs, task = config.get("cluster") or {}, config.get("task") or {}
        if not isinstance(jobs, dict) or not isinstance(task, dict):
            raise ValueError("not objects")
    except (ValueError, AttributeError) as err:
        raise UserError(
            "TF_CONFIG is not the JSON TensorFlow expects (cluster and task); or use --workers."
        ) from err
    if not jobs:
        return None
    other = sorted(set(jobs) - {"chief", "worker"})
    if other:
        raise UserError(
            f"TF_CONFIG names a {other[0]} job; VAE Lab trains with chief and worker jobs only."
        )
    if len(jobs.get("chief") or []) > 1:
        raise UserError("TF_CONFIG names more than one chief; there can be only one.")
    members = tuple(
        Member(job, i, _address(str(address), f"TF_CONFIG's {job} address"))
        for job in ("chief", "worker")
        for i, address in enumerate(jobs.get(job) or [])
    )
    own = (task.get("type"), task.get("index", 0))
    me = next((p for p, m in enumerate(members) if (m.job, m.index) == own), None)
    if me is None:
        raise UserError(
            f"TF_CONFIG's task ({own[0]} {own[1]}) is not one of the cluster's "
            f"{len(members)} members."
        )
    return Cluster(members, me)


def from_environment(strategy: str) -> Cluster | None:
    """The cluster of a "multiworker" run, from TF_CONFIG (None: none named, or another strategy)."""
    if strategy != "multiworker":
        return None
    return from_tf_config(os.environ.get(TF_CONFIG) or "")


# ---------------------------------------------------------------- before TensorFlow starts
def check_own_address(cluster: Cluster) -> None:
    """This machine can take its own address: the host is one of its own and the port is free."""
    own = cluster.own
    try:
        infos = socket.getaddrinfo(own.host, own.port, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        raise UserError(f"This worker's address {own.address}: {own.host} is not known.") from err
    family, _, _, _, sockaddr = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(sockaddr)
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                raise UserError(
                    f"Port {own.port} on this machine is taken by another program: give this "
                    "worker another port in --workers (on every machine)."
                ) from err
            raise UserError(
                f"{own.host} is not an address of this machine, so it cannot be "
                f"{own.label}: run each --task-index on the machine its address "
                "names."
            ) from err


def settings_of(config: dict) -> dict:
    """What every worker must agree on: the model and how it is trained."""
    return {"model": config.get("model") or {}, "train": config.get("train") or {}}


def handshake(
    cluster: Cluster, settings: dict, info: dict, timeout_s: float = JOIN_TIMEOUT_S
) -> dict[str, dict]:
    """Meet the other workers before TensorFlow does; returns {member name: what it said of
    itself (host, pid)}. Raises RunError with one sentence when a worker does not come within
    `timeout_s` or when the workers disagree about the list, their places or the settings."""
    hello = {
        "protocol": PROTOCOL,
        "workers": cluster.addresses,
        "me": cluster.me,
        "settings": settings,
        **info,
    }
    if len(cluster) == 1:
        return {cluster.own.name: info}
    deadline = time.monotonic() + timeout_s
    if cluster.chief:
        return _chief_meets(cluster, hello, deadline, timeout_s)
    return _worker_meets(cluster, hello, deadline, timeout_s)


def _chief_meets(cluster: Cluster, hello: dict, deadline: float, timeout_s: float) -> dict:
    """Call every other worker in turn, hear it, and tell them all the verdict at the end."""
    met = {cluster.own.name: {k: v for k, v in hello.items() if k in ("host", "pid")}}
    calls: list[tuple[socket.socket, Member]] = []
    try:
        problem = None
        try:
            for member in cluster.members[1:]:
                sock = _call(member, deadline, timeout_s)
                calls.append((sock, member))
                _send(sock, hello, member)
                theirs = _receive(sock, member)
                problem = _disagreement(cluster, hello, theirs, member)
                if problem:
                    break
                met[member.name] = {k: theirs.get(k) for k in ("host", "pid")}
        except RunError as err:
            problem = str(err)  # the workers already met hear it too, instead of waiting
        if problem:  # and so do those not called yet that listen already, instead of timing out
            calls += _listening(cluster.members[len(calls) + 1 :])
        for sock, member in calls:
            with contextlib.suppress(RunError):
                _send(sock, {"ok": problem is None, "error": problem}, member)
        if problem:
            raise RunError(problem)
        return met
    finally:
        for sock, _ in calls:
            sock.close()


def _worker_meets(cluster: Cluster, hello: dict, deadline: float, timeout_s: float) -> dict:
    """Listen on this worker's own port until the chief calls; answer; hear the verdict."""
    chief = cluster.members[0]
    # Every address of this machine, IPv6 too where it can take both, as TensorFlow's server does.
    both = socket.has_dualstack_ipv6()
    family = socket.AF_INET6 if both else socket.AF_INET
    listening = socket.create_server(
        ("", cluster.own.port), family=family, dualstack_ipv6=both, reuse_port=False
    )
    with listening as server:
        server.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            sock, _ = server.accept()
        except TimeoutError as err:
            raise ChiefAbsent(
                f"{cap(chief.words)} did not call this worker within "
                f"{timeout_s:.0f} s: start the same command there with its --task-index, and "
                f"check that port {cluster.own.port} here is open to it."
            ) from err
    with sock:
        theirs = verdict = _receive(sock, chief)  # a verdict at once: it stopped at another worker
        if "ok" not in theirs:
            _send(sock, hello, chief)
            problem = _disagreement(cluster, hello, theirs, chief)
            if problem:
                raise RunError(problem)
            # The chief may still be calling the others: wait for its verdict as long as they take.
            verdict = _receive(sock, chief, max(REPLY_TIMEOUT_S, deadline - time.monotonic() + 5))
    if not verdict.get("ok"):
        raise RunError(str(verdict.get("error") or "The chief refused this worker."))
    return {chief.name: {k: theirs.get(k) for k in ("host", "pid")}}


def _call(member: Member, deadline: float, timeout_s: float) -> socket.socket:
    """Connect to `member`, trying again until the deadline (it may not have started yet)."""
    while True:
        try:
            return socket.create_connection(
                (member.host, member.port), timeout=max(0.1, deadline - time.monotonic())
            )
        except socket.gaierror as err:
            raise RunError(
                f"The address of {member.words}: {member.host} is not a machine this one can find."
            ) from err
        except OSError as err:
            if time.monotonic() + RETRY_S >= deadline:
                raise RunError(
                    f"{cap(member.words)} did not answer within "
                    f"{timeout_s:.0f} s: check its address, that the same command runs there with "
                    f"--task-index {member.index}, and that port {member.port} is open."
                ) from err
            time.sleep(RETRY_S)


def _listening(members: tuple[Member, ...]) -> list[tuple[socket.socket, Member]]:
    """A connection to each of `members` that listens now, one try each (a missing one is left)."""
    found = []
    for member in members:
        with contextlib.suppress(OSError):
            found.append(
                (socket.create_connection((member.host, member.port), timeout=1.0), member)
            )
    return found


def cap(words: str) -> str:
    """`words` to start a sentence."""
    return words[0].upper() + words[1:]


def _send(sock: socket.socket, message: dict, member: Member) -> None:
    try:
        sock.sendall(json.dumps(message).encode("utf-8") + b"\n")
    except OSError as err:  # it closed the connection
        raise RunError(_not_ours(member)) from err


def _receive(sock: socket.socket, member: Member, timeout_s: float = REPLY_TIMEOUT_S) -> dict:
    """One line of JSON from `member`; a sentence if what answers is not a VAE Lab worker."""
    sock.settimeout(timeout_s)
    data = b""
    with contextlib.suppress(OSError):
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    try:
        message = json.loads(data.decode("utf-8"))
        if not isinstance(message, dict) or not (
            message.get("protocol") == PROTOCOL or "ok" in message
        ):
            raise ValueError("not ours")
    except (UnicodeDecodeError, ValueError) as err:
        raise RunError(_not_ours(member)) from err
    return message


def _not_ours(member: Member) -> str:
    return (
        f"What answers at {member.address} is not a VAE Lab worker of this run (or it gave up): "
        "check the address and the command there."
    )


def _disagreement(cluster: Cluster, ours: dict, theirs: dict, member: Member) -> str | None:
    """One sentence naming the first thing two workers disagree about (None: they agree)."""
    if theirs.get("workers") != ours["workers"]:
        listed = theirs.get("workers") or []
        if len(listed) != len(ours["workers"]):
            return (
                f"{cap(member.words)} was started with {len(listed)} "
                f"workers and {cluster.own.words} with {len(ours['workers'])}: start every "
                "machine with the same --workers list."
            )
        return (
            f"{cap(member.words)} was started with --workers "
            f"{','.join(map(str, listed))}, {cluster.own.words} with {','.join(ours['workers'])}: "
            "start every machine with the same list."
        )
    expected = cluster.members.index(member)
    if theirs.get("me") != expected:
        return (
            f"The process at {member.address} says it is worker {theirs.get('me')}, but the list "
            f"puts worker {expected} there: give each machine its own --task-index."
        )
    difference = _first_difference(ours["settings"], theirs.get("settings") or {})
    if difference:
        key, here, there = difference
        return (
            f"{cap(member.words)} was started with other settings: "
            f"{key} is {there!r} there and {here!r} on {cluster.own.words}. Start every machine "
            "with the same command (a run folder that exists keeps its own settings)."
        )
    return None


def _first_difference(ours: dict, theirs: dict) -> tuple[str, Any, Any] | None:
    for part in ("model", "train"):
        mine, other = ours.get(part) or {}, theirs.get(part) or {}
        for key in sorted(set(mine) | set(other)):
            if mine.get(key) != other.get(key):
                return key, mine.get(key), other.get(key)
    return None
