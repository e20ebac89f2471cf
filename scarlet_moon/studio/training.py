"""Fine-tuning runs started from the studio: the user's sprites (one folder per label, sent by the page)
are written under the runs folder, and `sm train --init-from MODEL --time T` runs on them as a child
process, tracked like any run (its loss curve and grids show in the Runs panel as they are written).

    {"name": "my-heroes", "model": "bundled", "time": "10m",
     "files": [{"path": "hero/knight.png", "data": "<base64>"}, ...]}

The data goes to <runs>/.studio-data/<name>/<label>/<file>.png: every path part is checked, nothing
outside the runs folder is written. The command line comes from the CLI (StudioConfig.train_command).
"""

from __future__ import annotations

import base64
import binascii
import re
import signal
import subprocess
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from scarlet_moon.errors import BadInput, arg
from scarlet_moon.exporters.atomic import write_file
from scarlet_moon.studio.models import ModelShelf
from scarlet_moon.studio.uploads import MAX_UPLOAD_BYTES, check_image_header

DATA = ".studio-data"
PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}")
RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
MAX_FILES = 4096
MAX_TOTAL_BYTES = 32 << 20
LOG_TAIL = 20


@dataclass
class Training:
    """A child `sm train` and the last lines of its output (read by a thread: nothing is written for it)."""

    name: str
    proc: subprocess.Popen
    log: deque = field(default_factory=lambda: deque(maxlen=LOG_TAIL))

    def follow(self) -> None:
        assert self.proc.stdout is not None
        for line in iter(self.proc.stdout.readline, b""):
            self.log.append(line.decode("utf-8", "replace").rstrip())
        self.proc.stdout.close()

    def view(self) -> dict[str, Any]:
        code = self.proc.poll()
        return {"name": self.name, "live": code is None, "returncode": code, "log": list(self.log)}


def _files(value: object) -> list[tuple[str, str, bytes]]:
    """(label, file name, PNG bytes) of each uploaded sprite; paths `label/name.png`, every part plain."""
    if not isinstance(value, list) or not value:
        raise BadInput(f"{arg('files')}: send the sprites, one folder per label (label/name.png)")
    if len(value) > MAX_FILES:
        raise BadInput(f"{arg('files')}: {len(value):,} files, at most {MAX_FILES:,}")
    out, total = [], 0
    for f in value:
        path = f.get("path") if isinstance(f, dict) else None
        parts = path.split("/") if isinstance(path, str) else []
        if len(parts) != 2 or not all(PART.fullmatch(p) for p in parts) or not parts[1].lower().endswith(".png"):
            raise BadInput(
                f"{arg('files')}: {str(path)[:80]!r} is not label/name.png (plain names, one label folder per sprite)"
            )
        try:
            data = base64.b64decode(f.get("data", ""), validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise BadInput(f"{arg('files')}: {path!r} is not base64 data") from None
        total += len(data)
        if len(data) > MAX_UPLOAD_BYTES or total > MAX_TOTAL_BYTES:
            raise BadInput(f"{arg('files')}: more than {MAX_TOTAL_BYTES >> 20} MiB of sprites")
        check_image_header(f"{parts[0]}/{parts[1]}", data)
        out.append((parts[0], parts[1], data))
    return out


def _time(value: object) -> str:
    from scarlet_moon.limits import MAX_TIME_BUDGET_S
    from scarlet_moon.training.config import parse_duration

    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise BadInput(f"{arg('time')} {value!r}: expected a duration like 90s, 30m, 1.5h")
    seconds = parse_duration(value)
    if not 0 < seconds <= MAX_TIME_BUDGET_S:
        raise BadInput(f"{arg('time')} {value!r}: expected more than 0 s and at most {MAX_TIME_BUDGET_S // 86400} days")
    return str(value)


class Trainer:
    """Fine-tuning child processes by run name."""

    def __init__(self, runs_dir: Path, train_command: Callable[[dict[str, Any]], list[str]] | None) -> None:
        self.runs_dir, self.train_command = runs_dir, train_command
        self.runs: dict[str, Training] = {}
        self._lock = threading.Lock()

    def start(self, body: object, shelf: ModelShelf) -> Training:
        if self.train_command is None:
            raise BadInput("this studio cannot start training (started without a trainer)")
        if not isinstance(body, dict) or set(body) - {"name", "model", "time", "files"}:
            raise BadInput("expected a JSON object with name, model, time, files")
        name = body.get("name")
        if not isinstance(name, str) or not RUN_NAME.fullmatch(name):
            raise BadInput(f"{arg('name')} {str(name)[:80]!r}: expected 1-64 letters, digits, '_', '.' or '-'")
        ref = shelf.ref(body.get("model", shelf.refs()[0].id))
        duration, files = _time(body.get("time")), _files(body.get("files"))
        with self._lock:
            if (self.runs_dir / name).exists() or (self.runs_dir / DATA / name).exists() or name in self.runs:
                raise BadInput(f"{arg('name')} {name!r}: a run of that name exists in {str(self.runs_dir)!r}")
            data = self.runs_dir / DATA / name
            for label, fname, content in files:
                (data / label).mkdir(parents=True, exist_ok=True)
                write_file(data / label / fname, content)
            argv = self.train_command(
                {
                    "data": str(data),
                    "init_from": str(ref.path or "bundled"),
                    "time": duration,
                    "runs_dir": str(self.runs_dir),
                    "name": name,
                }
            )
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            t = self.runs[name] = Training(name, proc)
            threading.Thread(target=t.follow, name=f"train-log-{name}", daemon=True).start()
            return t

    def views(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {n: t.view() for n, t in self.runs.items()}

    def stop(self, name: str) -> Training:
        with self._lock:
            t = self.runs.get(name)
        if t is None:
            raise BadInput(f"{arg('name')} {name[:80]!r}: no run started by this studio")
        if t.proc.poll() is None:
            t.proc.send_signal(signal.SIGINT)  # `sm train` saves a checkpoint and stops (resumable)
        return t

    def close(self, timeout: float = 60.0) -> None:
        """Stop every child (Ctrl-C: each saves its checkpoint) and wait for it."""
        for t in list(self.runs.values()):
            if t.proc.poll() is None:
                t.proc.send_signal(signal.SIGINT)
        for t in list(self.runs.values()):
            try:
                t.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                t.proc.kill()
                t.proc.wait()
