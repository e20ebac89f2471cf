"""Multi-GPU / multi-node training on PyTorch's own engine: torchrun + DistributedDataParallel.

Under torchrun (WORLD_SIZE > 1) every rank runs the same `sm train`:
    - the process group is NCCL on GPUs (one GPU per rank, cuda:LOCAL_RANK), gloo on CPUs;
    - every rank draws the SAME global batch from the step-seeded RNG (indices, timesteps, noise,
      label dropout, flips) and trains on its contiguous slice of it; DDP averages the gradients,
      so a step equals the single-process step on that global batch (to float rounding), and a
      run resumed under torchrun continues exactly as an uninterrupted one;
    - the weights, optimizer and EMA are identical on every rank (same init, same averaged
      gradients), so only rank 0 writes the run folder, checkpoints, samples and tracking;
    - rank 0's decisions (run folder name, tracking ids) and its errors are broadcast, so every
      rank agrees or fails with the same error; Ctrl-C stops every rank after the same step.
Exceptions to the equality with one process: dropout masks (off by default) are drawn per rank,
and BatchNorm (the `seed` preset) uses per-rank batch statistics on CPUs (SyncBatchNorm on GPUs).
"""

from __future__ import annotations

import gc
import logging
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable, TypeVar

import torch
import torch.distributed as dist

from scarlet_moon import errors as error_types
from scarlet_moon.errors import BadInput, RunFailed, ScarletError, arg
from scarlet_moon.training.loop import StopFlag
from scarlet_moon.training.state import TrainState
from scarlet_moon.world import world_from_env

log = logging.getLogger(__name__)
T = TypeVar("T")
TIMEOUT_ENV = "SM_DIST_TIMEOUT"  # seconds a rank waits in a collective before giving up
DEFAULT_TIMEOUT_S = 600


@dataclass(frozen=True)
class Dist:
    """This process's place in the job; the default is a single process."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def agree(self, fn: Callable[[], T]) -> T:
        """Rank 0 runs `fn` (a file-system write, a tracker start); every rank gets its result or its error."""
        if not self.active:
            return fn()
        box: list[Any] = [None, None]
        error: BaseException | None = None
        if self.main:
            try:
                box[0] = fn()
            except Exception as exc:  # noqa: BLE001 - re-raised below, on every rank
                error, box[1] = exc, _portable(exc)
        dist.broadcast_object_list(box, src=0)
        if error is not None:
            raise error
        if box[1] is not None:
            raise _rebuild(box[1])
        return box[0]

    def together(self, fn: Callable[[], T]) -> T:
        """Every rank runs `fn` (reading data, a checkpoint); if any fails, all fail.

        A rank whose error differs from rank 0's says so (`rank N: ...`); the rest stay quiet."""
        if not self.active:
            return fn()
        result, error = None, None
        try:
            result = fn()
        except ScarletError as exc:
            error = exc
        errors: list[Any] = [None] * self.world
        dist.all_gather_object(errors, _portable(error) if error is not None else None)
        if not any(errors):
            return result  # type: ignore[return-value]
        at = next(r for r, e in enumerate(errors) if e)  # rank 0 reports the first failure
        first = errors[at] if at == 0 else (errors[at][0], f"rank {at}: {errors[at][1]}")
        if error is None:
            raise _rebuild(first)
        if not self.main and errors[self.rank] != errors[at]:
            said = type(error)(f"rank {self.rank}: {error.args[0] if error.args else error}")
            said.loud = True  # type: ignore[attr-defined]
            raise said from None
        raise error

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def check_batch(self, batch_size: int) -> None:
        check_batch(batch_size, self.world)

    def silent(self, exc: BaseException) -> bool:
        """Whether this rank should not print `exc`: other ranks than 0 print only their own errors."""
        return not self.main and not getattr(exc, "loud", False)


SINGLE = Dist()


def from_env() -> Dist:
    """This process's place in the torchrun job (scarlet_moon.world); a single process outside one."""
    w = world_from_env()
    return SINGLE if w is None else Dist(w.rank, w.size, w.local_rank)


def check_batch(batch_size: int, world: int) -> None:
    if world > 1 and batch_size % world:
        raise BadInput(
            f"batch size {batch_size} does not divide by {world} processes; use a multiple of "
            f"{world} ({arg('batch_size')}) or another process count"
        )


def start(device: str) -> tuple[Dist, str]:
    """Join the torchrun job (if any): the process group and this rank's device."""
    d = from_env()
    if not d.active:
        return d, device
    if device.startswith("cuda"):
        if torch.cuda.device_count() <= d.local_rank:
            raise BadInput(
                f"local rank {d.local_rank} has no GPU ({torch.cuda.device_count()} visible); "
                f"start at most one process per GPU, or use {arg('device')} cpu"
            )
        device = f"cuda:{d.local_rank}"
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", timeout=_timeout(), device_id=torch.device(device))
    else:
        dist.init_process_group("gloo", timeout=_timeout())
    if not d.main:
        logging.getLogger().setLevel(logging.WARNING)  # rank 0 speaks for the job
    return d, device


def stop(clean: bool = True) -> None:
    """Leave the job: after a barrier when every rank ended well, so no rank tears down under another."""
    if not (dist.is_available() and dist.is_initialized()):
        return
    if clean:
        dist.barrier()
    gc.collect()  # the DDP wrapper holds the process group: free it while the interpreter is whole
    dist.destroy_process_group()


def _timeout() -> timedelta:
    raw = os.environ.get(TIMEOUT_ENV, str(DEFAULT_TIMEOUT_S))
    try:
        seconds = float(raw)
    except ValueError:
        raise BadInput(f"{TIMEOUT_ENV}={raw!r}: expected seconds") from None
    return timedelta(seconds=seconds)


def wrap(state: TrainState, d: Dist, device: str) -> None:
    """Give `state` this rank's DDP wrapper and batch slice (nothing for a single process)."""
    if not d.active:
        return
    has_bn = any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in state.model.modules())
    if has_bn and device.startswith("cuda"):
        state.model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(state.model)
    elif has_bn and d.main:
        log.warning("BatchNorm on CPUs uses each rank's batch statistics: close to, not equal to, one process")
    ids = [torch.device(device).index] if device.startswith("cuda") else None
    state.net = torch.nn.parallel.DistributedDataParallel(state.model, device_ids=ids)
    state.rank, state.world = d.rank, d.world
    state.mean_loss = lambda loss: mean_over_ranks(loss, d.world)


def mean_over_ranks(value: torch.Tensor, world: int) -> float:
    """The global-batch mean of a per-rank mean (equal slices): one all-reduce."""
    if world <= 1:
        return float(value)
    total = value.detach().clone().reshape(1)
    dist.all_reduce(total)
    return float(total) / world


class AgreedStop(StopFlag):
    """Ctrl-C under torchrun: every rank stops after the same step.

    torchrun sends the SIGINT on to its workers, so a second one is not an abort here."""

    def __init__(self, device: str) -> None:
        super().__init__()
        self.device = device

    def _handle(self, signum: int, frame: Any) -> None:
        self.set, self.signum = True, signum

    def should_stop(self) -> bool:
        flag = torch.tensor([1.0 if self.set else 0.0], device=self.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    def agreed_seconds(self, seconds: float) -> float:
        """The slowest rank's clock: with --time each rank's own would end the loop (and set the LR) at
        different steps, and the rank still stepping would wait for the others' gradients for ever."""
        t = torch.tensor([seconds], dtype=torch.float64, device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return float(t.item())


def stop_flag(d: Dist, device: str) -> StopFlag:
    return AgreedStop(device) if d.active else StopFlag()


def _portable(exc: BaseException) -> tuple[str, str]:
    """(class name, message as raised: parameter marks kept, so every rank renders it alike)."""
    kind = type(exc).__name__ if isinstance(exc, ScarletError) else "RunFailed"
    text = (
        str(exc.args[0])
        if isinstance(exc, ScarletError) and exc.args
        else f"rank 0 failed: {type(exc).__name__}: {exc}"
    )
    return kind, text


def _rebuild(portable: tuple[str, str]) -> ScarletError:
    kind, text = portable
    cls = getattr(error_types, kind, RunFailed)
    return cls(text) if isinstance(cls, type) and issubclass(cls, ScarletError) else RunFailed(text)


def check_in_sync(state: TrainState, d: Dist, device: str) -> None:
    """At the end of a run: the weights and EMA must be the same on every rank (one small all-gather)."""
    if not d.active:
        return
    nets = [state.model] + ([state.ema] if state.ema is not None else [])
    with torch.no_grad():
        sums = torch.stack([torch.stack([p.double().sum() for p in net.parameters()]).sum() for net in nets]).to(device)
    every = [torch.zeros_like(sums) for _ in range(d.world)]
    dist.all_gather(every, sums)
    if any(not torch.equal(every[0], other) for other in every[1:]):
        raise RunFailed(
            f"the ranks' weights drifted apart (checksums {[e.tolist() for e in every]}); the last checkpoint is kept"
        )
