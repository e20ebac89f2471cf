"""Samplers, k-diffusion style: plain functions over a denoiser, no torch import.

Every sampler only does arithmetic on the state (`x * a + b * y` with python-float
coefficients from the numpy schedule, and `.clip(-1, 1)`), so the same function runs on
torch tensors and on numpy arrays.

Denoiser protocol: `denoiser(x, t) -> (x0_hat, eps_hat)` for the whole batch at the integer
timestep t (0..T-1). Labels, classifier-free guidance and the model's parametrisation
(eps or v) are bound inside it by the backend. Samplers never divide by sqrt(abar_t), which
is 0 at the last step of a zero-terminal-SNR schedule; they use the (x0, eps) pair.

Common arguments:
- `x`: the initial noise, already scaled (x_T ~ N(0, 1) for a VP schedule);
- `alphas_cumprod`: `Schedule.alphas_cumprod()`; `timesteps`: descending indices; after
  the last one every sampler steps to "t = -1" (abar = 1) and so returns the final x0_hat;
- `noise(i)`: standard normal noise like x for step i; called only by steps that add
  noise, in increasing i (so one seeded generator yields the same stream to every backend);
- `callback(i, total)`: called after each step with i = 1..total.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

from scarlet_moon.diffusion.schedule import Schedule
from scarlet_moon.diffusion.schedule import timesteps as pick_timesteps
from scarlet_moon.errors import BadInput

Array = Any  # numpy.ndarray or torch.Tensor; only arithmetic is used on it
Denoiser = Callable[[Array, int], "tuple[Array, Array]"]
NoiseFn = Callable[[int], Array]
Callback = Callable[[int, int], None]

DEFAULT_SAMPLER = "dpmpp-2m"
DEFAULT_STEPS = 20


def guided(cond: Array, uncond: Array, w: float) -> Array:
    """Classifier-free guidance (Ho & Salimans 2022): uncond + w * (cond - uncond); w=1 is cond."""
    return uncond + (cond - uncond) * float(w)


def clipped(denoiser: Denoiser, alphas_cumprod: np.ndarray) -> Denoiser:
    """Wrap a denoiser so x0_hat is clipped to [-1, 1] and eps_hat is made consistent with it."""
    abar = np.asarray(alphas_cumprod, dtype=np.float64)

    def wrapped(x: Array, t: int) -> tuple[Array, Array]:
        x0, _ = denoiser(x, t)
        x0 = x0.clip(-1, 1)
        a, s = math.sqrt(abar[t]), math.sqrt(1.0 - abar[t])  # 1 - abar_t > 0 for every t >= 0
        return x0, (x - x0 * a) * (1.0 / s)

    return wrapped


def _abar_pairs(
    alphas_cumprod: np.ndarray, timesteps: Sequence[int], abar_end: float = 1.0
) -> list[tuple[int, float, float]]:
    """(t, abar_t, abar_prev) per step; the step after the last goes to abar_end (1: clean data)."""
    abar = np.asarray(alphas_cumprod, dtype=np.float64)
    ts = [int(t) for t in timesteps]
    if not ts:
        raise BadInput("a sampler needs at least one timestep")
    if any(not 0 <= t < len(abar) for t in ts) or any(a <= b for a, b in zip(ts, ts[1:])):
        raise BadInput(f"timesteps must be strictly descending in 0..{len(abar) - 1}; got {ts[:8]}...")
    if not float(abar[ts[-1]]) < abar_end <= 1.0:
        raise BadInput(f"abar_end {abar_end} must lie in (abar of the last timestep {ts[-1]}, 1]")
    prevs = [float(abar[t]) for t in ts[1:]] + [float(abar_end)]
    return [(t, float(abar[t]), p) for t, p in zip(ts, prevs)]


def _need(noise: NoiseFn | None, name: str) -> NoiseFn:
    if noise is None:
        raise BadInput(f"sampler {name} adds noise: pass noise=callable(i) -> standard normal like x")
    return noise


def _step_to(
    x0: Array, eps: Array, abar_prev: float, sigma: float, z: Array | None, eps_coef: float | None = None
) -> Array:
    """x_prev = sqrt(abar_prev) x0 + c * eps + sigma z, c = sqrt(1 - abar_prev - sigma^2) unless given."""
    if eps_coef is None:
        eps_coef = math.sqrt(max(1.0 - abar_prev - sigma * sigma, 0.0))
    out = x0 * math.sqrt(abar_prev) + eps * eps_coef
    return out if z is None or sigma == 0.0 else out + z * sigma


def sample_ddpm(
    denoiser: Denoiser,
    x: Array,
    alphas_cumprod: np.ndarray,
    timesteps: Sequence[int],
    *,
    variance: str | None = None,
    noise: NoiseFn | None = None,
    callback: Callback | None = None,
) -> Array:
    """Ancestral DDPM sampling (Ho et al. 2020, Algorithm 2), strided steps allowed.

    With b = 1 - abar_t / abar_prev (beta_t on contiguous steps) the mean is
    sqrt(abar_prev) x0 + sqrt(1 - b) (1 - abar_prev) / sqrt(1 - abar_t) eps, the same as
    (x_t - b / sqrt(1 - abar_t) eps) / sqrt(1 - b) without the division. `variance`:
    "beta" (sigma^2 = b, the ancestor's), "posterior" (sigma^2 = b (1 - abar_prev) / (1 - abar_t),
    the true posterior); None picks "beta" for contiguous steps and "posterior" for strided.
    No noise at the last step.
    """
    steps = _abar_pairs(alphas_cumprod, timesteps)
    ts = [s[0] for s in steps]
    if variance is None:
        variance = "beta" if all(a - b == 1 for a, b in zip(ts, ts[1:])) else "posterior"
    if variance not in ("beta", "posterior"):
        raise BadInput(f"unknown DDPM variance {variance!r}; expected beta or posterior")
    for i, (t, a_t, a_prev) in enumerate(steps):
        x0, eps = denoiser(x, t)
        b = 1.0 - a_t / a_prev
        coef = math.sqrt(1.0 - b) * (1.0 - a_prev) / math.sqrt(1.0 - a_t)
        last = i == len(steps) - 1
        var = b if variance == "beta" else b * (1.0 - a_prev) / (1.0 - a_t)
        sigma = 0.0 if last else math.sqrt(var)
        z = _need(noise, "ddpm")(i) if sigma > 0.0 else None
        x = _step_to(x0, eps, a_prev, sigma, z, eps_coef=coef)
        if callback is not None:
            callback(i + 1, len(steps))
    return x


def sample_ddim(
    denoiser: Denoiser,
    x: Array,
    alphas_cumprod: np.ndarray,
    timesteps: Sequence[int],
    *,
    eta: float = 0.0,
    noise: NoiseFn | None = None,
    callback: Callback | None = None,
    abar_end: float = 1.0,
) -> Array:
    """DDIM (Song et al. 2020, eq. 12): eta=0 deterministic, eta=1 the DDPM posterior variance."""
    steps = _abar_pairs(alphas_cumprod, timesteps, abar_end)
    for i, (t, a_t, a_prev) in enumerate(steps):
        x0, eps = denoiser(x, t)
        sigma = float(eta) * math.sqrt((1.0 - a_prev) / (1.0 - a_t) * (1.0 - a_t / a_prev))
        z = _need(noise, "ddim (eta > 0)")(i) if sigma > 0.0 else None
        x = _step_to(x0, eps, a_prev, sigma, z)
        if callback is not None:
            callback(i + 1, len(steps))
    return x


def _vp(abar: float) -> tuple[float, float, float]:
    """(alpha, sigma, lambda = log(alpha / sigma)); lambda = -inf at abar = 0, +inf at abar = 1."""
    alpha, sigma = math.sqrt(abar), math.sqrt(1.0 - abar)
    if alpha == 0.0:
        return alpha, sigma, -math.inf
    if sigma == 0.0:
        return alpha, sigma, math.inf
    return alpha, sigma, math.log(alpha) - math.log(sigma)


def sample_dpmpp_2m(
    denoiser: Denoiser,
    x: Array,
    alphas_cumprod: np.ndarray,
    timesteps: Sequence[int],
    *,
    noise: NoiseFn | None = None,
    callback: Callback | None = None,
    abar_end: float = 1.0,
) -> Array:
    """DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2): multistep data prediction in lambda = log-SNR/2.

    x_i = (sigma_i / sigma_{i-1}) x_{i-1} + alpha_i (1 - e^{-h_i}) D_i with
    D_i = (1 + 1/(2 r_i)) x0_{i-1} - 1/(2 r_i) x0_{i-2}, r_i = h_{i-1} / h_i.
    First-order (D = x0) on the first step, on the final step to abar = 1 (which then returns
    x0_hat, as k-diffusion does), and after an infinite step: zsnr's first step starts at
    lambda = -inf, where the first-order update is exactly sigma_1 x + alpha_1 x0_hat (= DDIM),
    and its infinite h gives no slope for the second step. Deterministic: `noise` is unused.
    `abar_end` < 1 stops on the way (x at that noise level: a segment, as few-step distillation uses).
    """
    del noise
    steps = _abar_pairs(alphas_cumprod, timesteps, abar_end)
    old_x0, h_prev = None, math.inf
    for i, (t, a_t, a_prev) in enumerate(steps):
        x0, _ = denoiser(x, t)
        _, s_t, lam_t = _vp(a_t)
        al_n, s_n, lam_n = _vp(a_prev)
        h = lam_n - lam_t
        if s_n == 0.0:  # final step to clean data
            x = x0
        else:
            if old_x0 is None or not math.isfinite(h_prev) or not math.isfinite(h):
                d = x0
            else:
                r = h_prev / h
                d = x0 * (1.0 + 1.0 / (2.0 * r)) - old_x0 * (1.0 / (2.0 * r))
            x = x * (s_n / s_t) + d * (-al_n * math.expm1(-h))
        old_x0, h_prev = x0, h
        if callback is not None:
            callback(i + 1, len(steps))
    return x


SAMPLERS: dict[str, Callable[..., Array]] = {
    "ddpm": sample_ddpm,
    "ddim": sample_ddim,
    "dpmpp-2m": sample_dpmpp_2m,
}


def run_sampler(
    name: str,
    denoiser: Denoiser,
    x: Array,
    schedule: Schedule,
    steps: int = DEFAULT_STEPS,
    *,
    eta: float = 0.0,
    noise: NoiseFn | None = None,
    callback: Callback | None = None,
    spacing: str = "trailing",
    clip_x0: bool = False,
    timesteps: Sequence[int] | None = None,
) -> Array:
    """Run sampler `name` for `steps` model evaluations (ddpm with steps == T uses all T);
    `timesteps` (descending indices) replaces the ones `steps` and `spacing` would pick."""
    if name not in SAMPLERS:
        raise BadInput(f"unknown sampler {name!r}; expected one of {', '.join(SAMPLERS)}")
    if eta != 0.0 and name != "ddim":
        raise BadInput(f"eta={eta} applies to the ddim sampler only, not {name}")
    abar = schedule.alphas_cumprod()
    ts = pick_timesteps(schedule, steps, spacing) if timesteps is None else list(timesteps)
    if clip_x0:
        denoiser = clipped(denoiser, abar)
    if name == "ddim":
        return sample_ddim(denoiser, x, abar, ts, eta=eta, noise=noise, callback=callback)
    return SAMPLERS[name](denoiser, x, abar, ts, noise=noise, callback=callback)
