"""This process's place in a torchrun job, read from the environment torchrun sets (the one parser).

Torch-free: sharded `sm sheet` on the onnx backend reads it too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from scarlet_moon.errors import BadInput

LAUNCHER_VARS = ("MASTER_ADDR", "TORCHELASTIC_RUN_ID")  # torchrun sets both for every rank


@dataclass(frozen=True)
class World:
    rank: int
    size: int
    local_rank: int
    run_id: str = "none"

    @property
    def main(self) -> bool:
        return self.rank == 0

    def chunks(self, n_chunks: int) -> list[int]:
        """This rank's chunks of a sharded generation: k % size == rank."""
        return list(range(self.rank, n_chunks, self.size))


def world_from_env(env: Mapping[str, str] | None = None) -> World | None:
    """The torchrun world when WORLD_SIZE > 1, else None (a plain single-process run)."""
    env = os.environ if env is None else env
    if "WORLD_SIZE" not in env:
        return None
    values = {}
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        raw = env.get(name, "0")
        try:
            values[name] = int(raw)
        except ValueError:
            raise BadInput(f"environment {name}={raw!r}: expected an integer (set by torchrun)") from None
    size, rank = values["WORLD_SIZE"], values["RANK"]
    if size < 1 or not 0 <= rank < size:
        raise BadInput(f"environment WORLD_SIZE={size}, RANK={rank}: expected 0 <= RANK < WORLD_SIZE")
    if size == 1:
        return None
    if not any(name in env for name in LAUNCHER_VARS):  # else rank 0 would wait for ranks that never come
        raise BadInput(
            f"environment WORLD_SIZE={size} is set, but this process was not started by torchrun "
            f"(none of {', '.join(LAUNCHER_VARS)} is set); unset WORLD_SIZE, or start it with torchrun"
        )
    return World(rank, size, values["LOCAL_RANK"], env.get("TORCHELASTIC_RUN_ID", "none"))
