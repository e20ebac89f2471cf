"""`sm train --nproc N`: the same command, started by torchrun (PyTorch's launcher) on this machine.

    sm train --nproc 2 ARGS
    ==  python -m torch.distributed.run --standalone --nproc_per_node 2 -m scarlet_moon.cli.main train ARGS

What can be checked before any process starts is checked here (a one-line error, exit 2): the
global batch must divide by N, a new run folder must not exist, N GPUs must be visible for CUDA.
Rank 0 of the job leaves its exit code in a file, so `sm` exits as a single run would (2, 130...).
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import click

from scarlet_moon.errors import BadInput
from scarlet_moon.limits import MAX_PROCESSES

if TYPE_CHECKING:
    from scarlet_moon.cli.cmd_train import TrainArgs

log = logging.getLogger(__name__)
STATUS_ENV = "SM_DIST_STATUS_FILE"
ENTRY_MODULE = "scarlet_moon.cli.main"  # the module `sm` runs: `python -m scarlet_moon.cli.main` is `sm`


def torchrun_command(nproc: int, args: Sequence[str]) -> list[str]:
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        str(nproc),
        "-m",
        ENTRY_MODULE,
        *args,
    ]


def check_launch(nproc: int, world: int, args: TrainArgs) -> bool:
    """Whether `--nproc` means starting torchrun (N > 1); impossible requests are BadInput here."""
    from scarlet_moon.training.distributed import check_batch

    if world > 1:
        raise BadInput(
            f"--nproc starts torchrun, and this process is already a rank of a torchrun job "
            f"(WORLD_SIZE={world}); leave --nproc out"
        )
    if not 1 <= nproc <= MAX_PROCESSES:
        raise BadInput(f"--nproc {nproc}: expected a process count 1..{MAX_PROCESSES}")
    if nproc == 1:
        return False
    batch = args.cfg.batch_size
    if args.resume:
        from scarlet_moon.models.card import read_meta
        from scarlet_moon.training.runs import resolve_resume

        batch = int(read_meta(resolve_resume(args.resume, args.runs_root))["config"]["batch_size"])
    elif args.name:
        run_dir = args.runs_root / args.name
        if run_dir.is_dir() and any(run_dir.iterdir()):
            raise BadInput(f"run folder {str(run_dir)!r} already exists; pick another --name or --resume it")
    check_batch(batch, nproc)
    _check_gpus(args.device or "auto", nproc)
    return True


def _check_gpus(device: str, nproc: int) -> None:
    if device == "cpu":
        return
    import torch

    n = torch.cuda.device_count()
    if (device == "cuda" or n) and n < nproc:
        raise BadInput(f"--nproc {nproc} needs {nproc} GPUs, {n} visible; use --nproc {max(n, 1)} or --device cpu")


def launch(ctx: click.Context, nproc: int) -> int:
    """Run this very `sm train` command under torchrun with N processes; its exit code."""
    root = ctx.find_root()
    args = [*_as_args(root.command, root.params), ctx.info_name or "train", *_as_args(ctx.command, ctx.params)]
    cmd = torchrun_command(nproc, args)
    log.info("starting %s", shlex.join(cmd))
    with tempfile.TemporaryDirectory(prefix="sm-launch-") as tmp:
        status = Path(tmp) / "status"
        old = _hold_sigint()  # Ctrl-C reaches torchrun and every rank; they stop after the same step
        try:
            rc = subprocess.call(cmd, env=_worker_env(nproc, status))
        finally:
            if old is not None:
                signal.signal(signal.SIGINT, old)
        if status.is_file():
            return int(status.read_text().strip() or 1)
    return rc


def _worker_env(nproc: int, status: Path) -> dict[str, str]:
    """The status file, and this machine's cores shared out (torchrun's default is 1 thread each)."""
    env = dict(os.environ, **{STATUS_ENV: str(status)})
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    return env


def _hold_sigint() -> Any:
    """A do-nothing SIGINT handler (not SIG_IGN, which the children would inherit); the old handler."""
    try:
        return signal.signal(signal.SIGINT, lambda signum, frame: None)
    except ValueError:  # not the main thread
        return None


def _as_args(command: click.Command, values: dict[str, Any]) -> list[str]:
    """The options given (not None) as command-line arguments again, `--nproc` left out."""
    out: list[str] = []
    for p in command.params:
        if not isinstance(p, click.Option) or p.name == "nproc" or values.get(p.name) is None:
            continue
        value = values[p.name]
        if p.is_flag and p.secondary_opts:
            out.append(p.opts[0] if value else p.secondary_opts[0])
        elif p.is_flag:
            out += [p.opts[0]] if value else []
        else:
            out += [max(p.opts, key=len), str(value)]
    return out
