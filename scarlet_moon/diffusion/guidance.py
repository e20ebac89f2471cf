"""The denoiser the samplers call, built from any backend's network call (torch-free).

    run(x_in, t) -> pred     the network on a batch; x_in is [x; x] when guidance is on,
                             the backend having bound labels [y; null] to match
Both backends (torch in pipeline.py, onnxruntime in onnx_runtime.py) wrap their network with
`make_denoiser`, so guidance, the eps/v split and the NaN check are written once. Noise comes
from one numpy Generator for both, so the same seed gives the same draws on either backend.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from scarlet_moon.errors import RunFailed
from scarlet_moon.diffusion.samplers import guided

Array = Any  # numpy array or torch tensor


def split_prediction(pred: Array, x: Array, a: float, s: float, prediction: str) -> tuple[Array, Array]:
    """Network output -> (x0, eps), arithmetic only. a = sqrt(abar_t), s = sqrt(1 - abar_t)."""
    if prediction == "v":
        return x * a - pred * s, x * s + pred * a
    return (x - pred * s) * (1.0 / a), pred


def make_denoiser(run: Callable[[Array, int], Array], batch: int, guidance: float, abar: np.ndarray,
                  prediction: str, *, concat: Callable[[Array, Array], Array],
                  finite: Callable[[Array], bool]) -> Callable[[Array, int], tuple[Array, Array]]:
    """denoiser(x, t) -> (x0, eps) with classifier-free guidance in one batched call."""
    calls = [0]

    def denoise(x: Array, t: int) -> tuple[Array, Array]:
        calls[0] += 1
        a, s = float(np.sqrt(abar[t])), float(np.sqrt(1.0 - abar[t]))
        if guidance != 1.0:
            both = run(concat(x, x), t)
            pred = guided(both[:batch], both[batch:], guidance)
        else:
            pred = run(x, t)
        if not finite(pred):  # a NaN sprite must not be written out as black
            raise RunFailed(f"sampling produced NaN/inf at step {calls[0]} (timestep {t}); "
                            f"try a lower --guidance (now {guidance}) or another sampler")
        return split_prediction(pred, x, a, s, prediction)

    return denoise


class NoiseStream:
    """The initial noise and every later draw, from seeded numpy Generators (float32).

    `parts` ((count, seed), ...) makes one batch of several chunks (scarlet_moon.generation.chunks): each
    part draws from its own seed exactly what it would draw alone, so grouping chunks into one
    GPU batch changes no draw. Without parts, the whole batch draws from `seed`.
    """

    def __init__(self, seed: int, shape: Sequence[int], parts: Sequence[tuple[int, int]] | None = None):
        self.shape = tuple(shape)
        parts = tuple(parts) if parts else ((self.shape[0], seed),)
        if sum(n for n, _ in parts) != self.shape[0]:
            raise ValueError(f"noise parts {parts} do not add up to the batch {self.shape[0]}")
        self.parts = [(int(n), np.random.default_rng(s)) for n, s in parts]

    def __call__(self, i: int = 0) -> np.ndarray:
        if len(self.parts) == 1:
            return self.parts[0][1].standard_normal(self.shape, dtype=np.float32)
        return np.concatenate([rng.standard_normal((n, *self.shape[1:]), dtype=np.float32)
                               for n, rng in self.parts])
