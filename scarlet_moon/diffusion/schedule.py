"""Noise schedules (numpy, float64) and sampling-timestep selection.

No torch here: the onnxruntime backend uses this module on its own.

Index convention: timestep t = 0..T-1, t = 0 the least noisy. `alphas_cumprod()[t]` is
abar_t, so x_t = sqrt(abar_t) * x0 + sqrt(1 - abar_t) * eps. "t = -1" (clean data,
abar = 1) is where every sampler ends.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Mapping

import numpy as np

from scarlet_moon.errors import BadInput

KINDS = ("linear", "cosine", "linear-zsnr")
SPACINGS = ("trailing", "leading", "linspace")

_COSINE_S = 0.008  # Nichol & Dhariwal 2021, offset s
_MAX_BETA = 0.999  # Nichol & Dhariwal 2021, clip on beta_t for the cosine schedule


@dataclass(frozen=True)
class Schedule:
    """A discrete VP noise schedule with `num_steps` training timesteps."""

    kind: str  # "linear" | "cosine" | "linear-zsnr"
    num_steps: int  # T
    beta_start: float = 1e-4
    beta_end: float = 0.02

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise BadInput(f"unknown schedule {self.kind!r}; expected one of {', '.join(KINDS)}")
        if isinstance(self.num_steps, bool) or not isinstance(self.num_steps, int) or self.num_steps < 2:
            raise BadInput(f"bad schedule num_steps={self.num_steps!r}; expected an integer >= 2")
        if not 0.0 < self.beta_start <= self.beta_end < 1.0:
            raise BadInput(
                f"bad schedule betas {self.beta_start!r}..{self.beta_end!r}; expected 0 < beta_start <= beta_end < 1"
            )

    def alphas_cumprod(self) -> np.ndarray:
        """abar_t for t = 0..T-1 (float64, strictly decreasing, in [0, 1))."""
        if self.kind == "cosine":
            return _cosine_alphas_cumprod(self.num_steps)
        betas = np.linspace(self.beta_start, self.beta_end, self.num_steps, dtype=np.float64)
        abar = np.cumprod(1.0 - betas)
        if self.kind == "linear-zsnr":
            abar = _rescale_zero_terminal_snr(abar)
        return abar

    def betas(self) -> np.ndarray:
        """beta_t = 1 - abar_t / abar_{t-1} (abar_{-1} = 1); 1.0 at zsnr's last step."""
        abar = self.alphas_cumprod()
        prev = np.concatenate([[1.0], abar[:-1]])
        return 1.0 - abar / prev

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Schedule":
        known = {"kind", "num_steps", "beta_start", "beta_end"}
        unknown = sorted(set(d) - known)
        if unknown:
            raise BadInput(f"unknown schedule key(s) {', '.join(unknown)}; expected {', '.join(sorted(known))}")
        if "kind" not in d or "num_steps" not in d:
            raise BadInput("schedule needs 'kind' and 'num_steps'")
        return cls(
            kind=str(d["kind"]),
            num_steps=int(d["num_steps"]),
            beta_start=float(d.get("beta_start", 1e-4)),
            beta_end=float(d.get("beta_end", 0.02)),
        )


def _cosine_alphas_cumprod(T: int) -> np.ndarray:
    """Nichol & Dhariwal 2021 (Improved DDPM), betas clipped at 0.999."""

    def f(u: np.ndarray) -> np.ndarray:
        return np.cos((u + _COSINE_S) / (1.0 + _COSINE_S) * math.pi / 2.0) ** 2

    u = np.arange(T + 1, dtype=np.float64) / T
    abar_cont = f(u) / f(np.zeros(1))
    betas = np.minimum(1.0 - abar_cont[1:] / abar_cont[:-1], _MAX_BETA)
    return np.cumprod(1.0 - betas)


def _rescale_zero_terminal_snr(abar: np.ndarray) -> np.ndarray:
    """Lin et al. 2023 (Common Diffusion Noise Schedules are Flawed), Algorithm 1.

    Shift sqrt(abar) so the last value is exactly 0, scale so the first is unchanged.
    """
    s = np.sqrt(abar)
    first, last = s[0], s[-1]
    s = (s - last) * (first / (first - last))
    out = s * s
    out[-1] = 0.0
    return out


def timesteps(schedule: Schedule, steps: int, spacing: str = "trailing") -> list[int]:
    """`steps` distinct timestep indices, descending; steps == T gives T-1, ..., 0.

    "trailing" (Lin et al. 2023, table 2) always starts at T-1, the noisiest step;
    "leading" is DDIM's original t = k * (T // steps); "linspace" spans 0..T-1.
    """
    T = schedule.num_steps
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or not 1 <= steps <= T:
        raise BadInput(f"bad sampling steps={steps!r}; expected an integer in 1..{T}")
    steps = int(steps)
    if steps == T:
        return list(range(T - 1, -1, -1))
    if spacing == "trailing":
        ts = np.round(T - np.arange(steps) * (T / steps)).astype(np.int64) - 1
    elif spacing == "leading":
        ts = (np.arange(steps, dtype=np.int64) * (T // steps))[::-1]
    elif spacing == "linspace":
        ts = np.round(np.linspace(0, T - 1, steps)).astype(np.int64)[::-1]
    else:
        raise BadInput(f"unknown timestep spacing {spacing!r}; expected one of {', '.join(SPACINGS)}")
    out = [int(t) for t in ts[:steps]]
    if len(set(out)) != steps or out != sorted(out, reverse=True):  # pragma: no cover - guard
        raise BadInput(f"timestep spacing {spacing!r} with {steps} steps of {T} is degenerate")
    return out
