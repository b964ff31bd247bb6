"""The run folder: its file names, and the one place each of its files is read and written.

A run folder holds
- `config.json`: what was asked (model and train specs, the store name, the equivalent command);
- `status.json`: state, pid, phase, epoch (completed), step, devices, and at the end test_metrics and
  model_name (or error); replaced atomically on every update;
- `progress.jsonl`: append-only. A "start" line per process; "step" lines at least every
  `log_every_s` seconds ("epoch" is the epoch being trained, 1-based; "step" the steps done in it);
  an "epoch" line when an epoch ends ("epoch" is the epoch just completed, with val_* losses);
- `epochs/epoch_NNN.png`: the kind's picture after each epoch;
- `backup/epoch_NNNN.weights.h5` and `backup/checkpoint.json`: weights and optimizer state after each
  completed epoch; `backup/epoch_NNNN_step_SSSSSS.weights.h5` where a Stop cut epoch NNNN+1 short
  after SSSSSS steps (the file name carries the position, so a resume knows where to go on);
- `tb/train`, `tb/validation`: TensorBoard scalars; `train.log`: the child's output; `STOP`: a request;
- `workers/<name>/status.json`: in a multi-worker run, each other worker's own status (the chief's
  status.json lists them all under "cluster"), where the workers share the folder.

All state lives in these files, so a restarted app, a second viewer or a refreshed tab sees the same
truth. No TensorFlow here: the page reads the folder on every poll.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shlex
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from vae_core.errors import RunError
from vae_core.fsutil import fsync_dir, fsync_file, json_default, write_bytes_atomic
from vae_core.specs import ModelSpec, TrainSpec, cli_args

CONFIG, STATUS, PROGRESS = "config.json", "status.json", "progress.jsonl"
STOP_FILE, LOG_FILE = "STOP", "train.log"
EPOCHS_DIR, BACKUP_DIR, TB_DIR = "epochs", "backup", "tb"
WORKERS_DIR = "workers"  # a multi-worker run's other workers: workers/<name>/status.json each
CHECKPOINT_INFO = "checkpoint.json"
TRAIN_MODULE = "vae_core.train"
KEEP_CHECKPOINTS = 2  # the newest, and one more in case the newest is damaged
_EPOCH_PNG = re.compile(r"epoch_(\d+)\.png")
_CHECKPOINT = re.compile(r"epoch_(\d+)(?:_step_(\d+))?\.weights\.h5")
_TAIL_BYTES = 64 * 1024  # last_epoch_record looks for the last epoch line in this much of the end


# ---------------------------------------------------------------- JSON files
def write_json_atomic(path: Path, data: dict) -> None:
    """Write JSON so readers see the old or the new file, never half of one."""
    text = json.dumps(data, indent=2, sort_keys=True, default=json_default) + "\n"
    write_bytes_atomic(Path(path), text.encode("utf-8"))


def append_jsonl(path: Path, record: dict) -> None:
    """Append one complete line and make it durable, so a kill leaves at most a torn last line."""
    line = json.dumps(record, default=json_default, allow_nan=True) + "\n"
    with open(path, "a", encoding="utf-8") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


# ---------------------------------------------------------------- config.json
def new_run_id() -> str:
    """A sortable, unique id such as "20261121-101530-ab12cd" (create_run retries a clash)."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


def cli_command(
    run_dir: Path,
    model_spec: ModelSpec,
    train_spec: TrainSpec,
    save_as: str | None = None,
    save: bool = True,
) -> str:
    """The `python -m vae_core.train ...` command that starts (or resumes) exactly this run."""
    args = ["python", "-m", TRAIN_MODULE, "--run-dir", str(run_dir)]
    args += cli_args(model_spec, train_spec)
    if save_as:
        args += ["--save-as", save_as]
    if not save:
        args.append("--no-save")
    return shlex.join(args)


def write_config(
    run_dir: Path,
    model_spec: ModelSpec,
    train_spec: TrainSpec,
    *,
    save_as: str | None = None,
    save: bool = True,
    run_id: str | None = None,
) -> dict:
    """Create `run_dir` and its config.json; returns the config."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    config = new_config(run_dir, model_spec, train_spec, save_as=save_as, save=save, run_id=run_id)
    write_json_atomic(run_dir / CONFIG, config)
    return config


def new_config(
    run_dir: Path,
    model_spec: ModelSpec,
    train_spec: TrainSpec,
    *,
    save_as: str | None = None,
    save: bool = True,
    run_id: str | None = None,
) -> dict:
    """What config.json holds for a new run, not yet written."""
    run_dir = Path(run_dir)
    return {
        "model": model_spec.to_dict(),
        "train": train_spec.to_dict(),
        "save_as": save_as or None,
        "save": bool(save),
        "run_id": run_id or run_dir.name,
        "created": datetime.now().astimezone().isoformat(timespec="milliseconds"),
        "command": cli_command(run_dir, model_spec, train_spec, save_as, save),
    }


def read_config(run_dir: Path) -> dict:
    """config.json as a dict; RunError with a sentence if it is missing or damaged."""
    path = Path(run_dir) / CONFIG
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise RunError(f"The run folder {run_dir} has no settings file (config.json).") from err
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise RunError(f"The settings file of run {Path(run_dir).name} is damaged.") from err
    if not isinstance(config, dict) or not isinstance(config.get("model"), dict):
        raise RunError(f"The settings file of run {Path(run_dir).name} is damaged.")
    return config


def specs_from_config(config: dict) -> tuple[ModelSpec, TrainSpec]:
    """The ModelSpec and TrainSpec a config.json describes."""
    return ModelSpec.from_dict(config["model"]), TrainSpec.from_dict(config.get("train") or {})


# ---------------------------------------------------------------- status.json
def read_status_file(run_dir: Path) -> dict:
    """status.json as written, without asking whether its process still lives
    (training_now.read_status does that). Never raises: no file gives state "created" (or
    "missing" without a config); a damaged one gives state "unknown" with an `error` sentence."""
    run_dir = Path(run_dir)
    try:
        status = json.loads((run_dir / STATUS).read_text(encoding="utf-8"))
        if not isinstance(status, dict) or not isinstance(status.get("state"), str):
            raise ValueError("not a status")
    except FileNotFoundError:
        return {"state": "created" if (run_dir / CONFIG).is_file() else "missing"}
    except (OSError, UnicodeDecodeError, ValueError):
        return {"state": "unknown", "error": f"The status file of run {run_dir.name} is damaged."}
    return status


class StatusFile:
    """status.json as the training process keeps it: rewritten atomically on every update."""

    def __init__(self, path: Path, **fields):
        self.path, self.data = Path(path), dict(fields)

    def update(self, **fields) -> dict:
        self.data.update(fields, updated=time.time())
        write_json_atomic(self.path, self.data)
        return dict(self.data)


# ---------------------------------------------------------------- progress.jsonl
def _complete_lines(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """(start, end, line) for each newline-terminated line; a torn last line is not one."""
    start = 0
    while True:
        end = data.find(b"\n", start)
        if end < 0:
            return
        yield start, end + 1, data[start:end]
        start = end + 1


def _parse_line(raw: bytes) -> dict | None:
    try:
        record = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def read_progress(run_dir: Path, since_line: int = 0) -> list[dict]:
    """Progress records from line `since_line` on (0-based); each carries its line number in `_line`.

    Unparsable lines and a torn last line (a write cut short) are skipped, never raised. Poll with
    `since_line = records[-1]["_line"] + 1`. A resumed run cuts the file back to its last checkpointed
    epoch, so when status["started"] changes, read again from line 0.
    """
    try:
        data = (Path(run_dir) / PROGRESS).read_bytes()
    except OSError:
        return []
    records = []
    for index, (_, _, raw) in enumerate(_complete_lines(data)):
        if index < since_line:
            continue
        record = _parse_line(raw)
        if record is not None:
            record["_line"] = index
            records.append(record)
    return records


def cut_progress(run_dir: Path, completed_epochs: int, step: int = 0) -> int:
    """Cut progress.jsonl back to the checkpoint: epoch `completed_epochs` and `step` steps into the
    next one; returns the lines kept.

    What follows belongs to work the checkpoint does not hold (a torn line, steps of a lost partial
    epoch, an epoch line written just before a kill), and that work is about to be done again.
    """
    path = Path(run_dir) / PROGRESS
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return 0
    keep_bytes = keep_lines = 0
    for index, (_, end, raw) in enumerate(_complete_lines(data)):
        record = _parse_line(raw)
        if record is not None and _held_by_checkpoint(record, completed_epochs, step):
            keep_bytes, keep_lines = end, index + 1
    if keep_bytes != len(data):
        with open(path, "r+b") as f:
            f.truncate(keep_bytes)
            f.flush()
            os.fsync(f.fileno())
    return keep_lines


def _held_by_checkpoint(record: dict, completed_epochs: int, step: int) -> bool:
    epoch = record.get("epoch")
    if not isinstance(epoch, int):
        return False
    if record.get("kind") == "epoch":
        return epoch <= completed_epochs
    # A step line of the epoch a Stop cut short, up to where it stopped.
    done = record.get("step")
    return bool(
        step
        and record.get("kind") == "step"
        and epoch == completed_epochs + 1
        and isinstance(done, int)
        and done <= step
    )


def last_epoch_record(run_dir: Path) -> dict | None:
    """The last epoch line, reading only the end of the file unless that holds none."""
    path = Path(run_dir) / PROGRESS
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - _TAIL_BYTES))
            tail = f.read()
    except OSError:
        return None
    if size > _TAIL_BYTES:
        tail = tail[tail.find(b"\n") + 1 :]  # the first line there is probably cut
    for _, _, raw in reversed(list(_complete_lines(tail))):
        record = _parse_line(raw)
        if record is not None and record.get("kind") == "epoch":
            return record
    if size > _TAIL_BYTES:
        epochs = [r for r in read_progress(run_dir) if r.get("kind") == "epoch"]
        return epochs[-1] if epochs else None
    return None


# ---------------------------------------------------------------- epoch pictures
def epoch_png_path(run_dir: Path, epoch: int) -> Path:
    """Where the picture after epoch `epoch` (1-based) is written."""
    return Path(run_dir) / EPOCHS_DIR / f"epoch_{epoch:03d}.png"


def write_epoch_png(run_dir: Path, epoch: int, png: bytes) -> None:
    path = epoch_png_path(run_dir, epoch)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, png)


def epoch_pngs(run_dir: Path) -> dict[int, Path]:
    """{epoch: png path} for the per-epoch pictures present (temp files excluded)."""
    found = {}
    with contextlib.suppress(OSError):
        for path in (Path(run_dir) / EPOCHS_DIR).iterdir():
            match = _EPOCH_PNG.fullmatch(path.name)
            if match:
                found[int(match.group(1))] = path
    return found


def forget_after(run_dir: Path, completed_epochs: int, step: int = 0) -> None:
    """Drop the progress lines and pictures of work after the checkpoint (it will be done again)."""
    cut_progress(run_dir, completed_epochs, step)
    for epoch, png in epoch_pngs(run_dir).items():
        if epoch > completed_epochs:
            png.unlink(missing_ok=True)


# ---------------------------------------------------------------- checkpoints
# A checkpoint's position: (completed epochs, steps done in the next one); (3, 0) is "after epoch 3".
Position = tuple[int, int]


def checkpoints(run_dir: Path) -> list[tuple[Position, Path]]:
    """(position, file) of the complete checkpoints, newest first (temp files are not listed)."""
    found = []
    with contextlib.suppress(OSError):
        for path in (Path(run_dir) / BACKUP_DIR).iterdir():
            match = _CHECKPOINT.fullmatch(path.name)
            if match:
                found.append(((int(match.group(1)), int(match.group(2) or 0)), path))
    return sorted(found, reverse=True)


def checkpoint_position(run_dir: Path) -> Position:
    """Where the newest checkpoint is ((0, 0): none)."""
    found = checkpoints(run_dir)
    return found[0][0] if found else (0, 0)


def _checkpoint_name(position: Position) -> str:
    epoch, step = position
    return f"epoch_{epoch:04d}" + (f"_step_{step:06d}" if step else "") + ".weights.h5"


def checkpoint_temp(run_dir: Path, position: Position) -> Path:
    """Where to write a checkpoint before `commit_checkpoint` (Keras wants the .weights.h5 end)."""
    backup = Path(run_dir) / BACKUP_DIR
    backup.mkdir(parents=True, exist_ok=True)
    return backup / f"tmp_{_checkpoint_name(position)}"


def commit_checkpoint(run_dir: Path, written: Path, position: Position) -> Path:
    """Make a fully written checkpoint durable under its position's name; keep the newest few."""
    backup = Path(run_dir) / BACKUP_DIR
    final = backup / _checkpoint_name(position)
    fsync_file(written)
    os.replace(written, final)
    fsync_dir(backup)
    epoch, step = position
    info = {"epoch": epoch, "step": step, "weights": final.name, "time": time.time()}
    write_json_atomic(backup / CHECKPOINT_INFO, info)
    for _, old in checkpoints(run_dir)[KEEP_CHECKPOINTS:]:
        old.unlink(missing_ok=True)
    return final
