"""Training on several machines, measured on this one: one process, one worker, two workers.

The same `python -m vae_core.train` command three times: the default one-process run, a cluster
of one worker (`--workers 127.0.0.1:P --task-index 0`: MultiWorkerMirroredStrategy with nobody to
wait for) and two workers on 127.0.0.1 (the same global batch, each worker half of it). Samples per
second come from the runs' own epoch lines (training steps only, no validation); the first epoch
(tracing) is left out. On one 2-core machine two workers cannot be faster than one: both share
the same two cores and every step waits for the all-reduce of the gradients, so the figure shows
what the synchronisation costs. The loss of every epoch is recorded beside it, to show the two
workers learn what one does.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import REPO, child_env, free_ports, log, median

SECTION = "multiworker"
# The MLP VAE's own preset (all of MNIST, batch 128) in float32: "auto" may pick bfloat16, which
# the strategies below would all share, but float32 is what a GPU cluster runs.
FULL = ["--dataset", "mnist", "--epochs", "4", "--precision", "float32"]
QUICK = ["--dataset", "sample", "--epochs", "2", "--precision", "float32"]
RUN_TIMEOUT_S = 900


def _train(run_dir: Path, flags: list[str], workers: int) -> dict:
    """Run the command (on `workers` processes, or one plain process for 0); the chief's numbers."""
    base = [sys.executable, "-m", "vae_core.train", "--run-dir", str(run_dir), "--no-save", *flags]
    if workers:
        listed = ",".join(f"127.0.0.1:{p}" for p in free_ports(workers))
        commands = [[*base, "--workers", listed, "--task-index", str(i)] for i in range(workers)]
    else:
        commands = [base]
    started = time.monotonic()
    # Each worker's stderr to a file: pipes read one process at a time can fill and stall the rest.
    logs = [run_dir.parent / f"{run_dir.name}_{i}.log" for i in range(len(commands))]
    procs = []
    for command, path in zip(commands, logs, strict=True):
        with open(path, "wb") as err:
            procs.append(subprocess.Popen(command, cwd=REPO, env=child_env(),
                                          stdout=subprocess.DEVNULL, stderr=err))  # fmt: skip
    try:
        for proc, path in zip(procs, logs, strict=True):
            if proc.wait(timeout=RUN_TIMEOUT_S) != 0:
                raise RuntimeError(f"{run_dir.name} failed: {path.read_text()[-1500:]}")
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    from vae_core import rundir

    epochs = [r for r in rundir.read_progress(run_dir) if r.get("kind") == "epoch"]
    timed = epochs[1:] or epochs  # the first epoch traces the step
    return {
        "samples_per_s": median([r["samples_per_s"] for r in timed]),
        "epoch_s": median([r["epoch_s"] for r in timed]),
        "loss": [round(r["loss"], 3) for r in epochs],
        "val_loss": [round(r["val_loss"], 3) for r in epochs],
        "wall_s": time.monotonic() - started,
    }


def run(rec, quick: bool) -> None:
    flags = QUICK if quick else FULL
    with tempfile.TemporaryDirectory(prefix="vae_lab_multiworker_") as tmp:
        for name, workers in (("one_process", 0), ("one_worker", 1), ("two_workers", 2)):
            log(f"multiworker: {name}")
            found = _train(Path(tmp) / name, flags, workers)
            rec.emit(SECTION, name, workers=workers, command_flags=" ".join(flags), **found)


def markdown(records: list[dict]) -> str:
    rows = {r["name"]: r for r in records if r["section"] == SECTION and "samples_per_s" in r}
    if "two_workers" not in rows:
        return ""
    one = rows.get("one_worker") or rows.get("one_process")
    two = rows["two_workers"]
    out = ["## Training on several machines (two workers on this one)\n"]
    out.append(
        "`benchmarks/multiworker.py`: the MLP VAE (`python -m vae_core.train "
        f"{two['command_flags']}`) as one process, as a cluster of one worker and as two workers on "
        "127.0.0.1 (`--workers 127.0.0.1:P0,127.0.0.1:P1 --task-index 0` and `1`), the same global "
        "batch. Samples per second are the median over the epochs after the first, training steps "
        "only. **On one 2-core machine two workers cannot be faster than one**: they share the "
        "same two cores and every step waits for the all-reduce of the gradients between two "
        "processes, so the drop below is the price of that synchronisation. On separate machines "
        "each worker has its own cores; what the all-reduce costs then depends on the network.\n"
    )
    out.append("| Run | Workers | Samples/s | Epoch (s) | Loss per epoch |")
    out.append("|---|---|---|---|---|")
    labels = {"one_process": "one process (default strategy)", "one_worker": "a cluster of one worker",
              "two_workers": "two workers on 127.0.0.1"}  # fmt: skip
    for name in ("one_process", "one_worker", "two_workers"):
        r = rows.get(name)
        if r is None:
            continue
        losses = ", ".join(f"{x:.1f}" for x in r["loss"])
        out.append(f"| {labels[name]} | {max(r['workers'], 1)} | {r['samples_per_s']:,.0f} | "
                   f"{r['epoch_s']:.1f} | {losses} |")  # fmt: skip
    if one is not None:
        out.append(
            f"\nTwo workers train at {two['samples_per_s'] / one['samples_per_s']:.0%} of one "
            "worker's rate here."
        )
    out.append("")
    return "\n".join(out)
