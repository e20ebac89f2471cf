"""The denoiser the samplers call, built from any backend's network call.

    run(x_in, t) -> pred     the network on a batch; x_in is [x; x] when guidance is on, the
                             backend having bound labels [y; null] to match
Every backend wraps its network with `make_denoiser`, so classifier-free guidance, the eps/v
split and the NaN check are written once.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from scarlet_moon.diffusion.samplers import guided
from scarlet_moon.errors import RunFailed, arg

Array = Any  # numpy array or torch tensor


def split_prediction(pred: Array, x: Array, a: float, s: float, prediction: str) -> tuple[Array, Array]:
    """Network output -> (x0, eps), arithmetic only. a = sqrt(abar_t), s = sqrt(1 - abar_t)."""
    if prediction == "v":
        return x * a - pred * s, x * s + pred * a
    return (x - pred * s) * (1.0 / a), pred


def nan_error(step: int, t: int, guidance: float) -> RunFailed:
    """A NaN sprite must not be written out as black: the run stops, naming the step."""
    return RunFailed(
        f"sampling produced NaN/inf at step {step} (timestep {t}); try a lower {arg('guidance')} "
        f"(now {guidance}) or another sampler"
    )


def make_denoiser(
    run: Callable[[Array, int], Array],
    batch: int,
    guidance: float,
    abar: np.ndarray,
    prediction: str,
    *,
    concat: Callable[[Array, Array], Array],
    finite: Callable[[Array], bool],
) -> Callable[[Array, int], tuple[Array, Array]]:
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
        if not finite(pred):
            raise nan_error(calls[0], t, guidance)
        return split_prediction(pred, x, a, s, prediction)

    return denoise
