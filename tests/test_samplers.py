"""Samplers against analytic denoisers: exact x0 posterior means for Gaussian / two-delta data.

Data N(mu, s^2) per pixel: with x_t = a x0 + sig eps, E[x0 | x_t] = mu + a s^2 / (a^2 s^2 + sig^2) (x_t - a mu).
Data +-1 with probability 1/2 each: E[x0 | x_t] = tanh(a x_t / sig^2).
Neither divides by a = sqrt(abar), so both hold at zero terminal SNR.
"""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from scarlet_moon.diffusion.samplers import (
    DEFAULT_SAMPLER,
    DEFAULT_STEPS,
    SAMPLERS,
    clipped,
    guided,
    run_sampler,
    sample_ddim,
    sample_ddpm,
    sample_dpmpp_2m,
)
from scarlet_moon.diffusion.schedule import KINDS, Schedule, timesteps
from scarlet_moon.errors import BadInput

MU, S = 0.3, 0.5
SHAPE = (64, 4, 8, 8)  # 16384 values: sampling error of the mean ~ 0.004, of the std ~ 0.6%


def gaussian_denoiser(abar: np.ndarray, mu: float = MU, s: float = S):
    def denoise(x, t):
        a, sig = math.sqrt(abar[t]), math.sqrt(1.0 - abar[t])
        x0 = (x - a * mu) * (a * s * s / (a * a * s * s + sig * sig)) + mu
        return x0, (x - x0 * a) * (1.0 / sig)

    return denoise


def two_delta_denoiser(abar: np.ndarray):
    def denoise(x, t):
        a, sig2 = math.sqrt(abar[t]), 1.0 - float(abar[t])
        x0 = (x * (a / sig2)).tanh() if hasattr(x, "tanh") else np.tanh(x * (a / sig2))
        return x0, (x - x0 * a) * (1.0 / math.sqrt(sig2))

    return denoise


def numpy_noise(seed: int, shape=SHAPE, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return lambda i: rng.standard_normal(shape).astype(dtype)


def start(seed: int = 0, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(SHAPE).astype(dtype)


CASES = [("ddpm", 500, 0.0), ("ddim", 50, 0.0), ("ddim", 50, 1.0), ("dpmpp-2m", 20, 0.0)]
# Relative std tolerance per case. Few-step samplers under-disperse even with the exact denoiser:
# DDIM-50 (first order) loses ~4.5%, DDIM-50 eta=1 (ancestral with the posterior *mean* of x0
# over 10-step strides) ~8%, DPM++2M-20 ~2% (mostly its last, long step in lambda), DDPM-500 ~0%.
STD_TOL = {("ddpm", 0.0): 0.03, ("ddim", 0.0): 0.06, ("ddim", 1.0): 0.10, ("dpmpp-2m", 0.0): 0.03}
MEAN_TOL = 0.025  # includes ~0.012 bias of non-zero terminal SNR (Lin et al. 2023) on "linear"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name,steps,eta", CASES)
def test_gaussian_data_statistics_are_recovered(kind, name, steps, eta):
    sched = Schedule(kind, 500)
    den = gaussian_denoiser(sched.alphas_cumprod())
    with np.errstate(all="raise"):  # no division by sqrt(abar) = 0, no overflow
        out = run_sampler(name, den, start(1), sched, steps, eta=eta, noise=numpy_noise(2))
    assert out.shape == SHAPE and np.all(np.isfinite(out))
    assert abs(out.mean() - MU) < MEAN_TOL, out.mean()
    assert abs(out.std() / S - 1) < STD_TOL[name, eta], out.std()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name,steps,eta", CASES)
def test_two_delta_data_lands_on_the_modes(kind, name, steps, eta):
    sched = Schedule(kind, 500)
    den = two_delta_denoiser(sched.alphas_cumprod())
    out = run_sampler(name, den, start(3), sched, steps, eta=eta, noise=numpy_noise(4))
    assert np.mean(np.abs(np.abs(out) - 1) < 0.05) > 0.99
    assert abs(out.mean()) < 0.05 and abs((out > 0).mean() - 0.5) < 0.03


def exact_ode_solution(sched: Schedule, x_T: np.ndarray, t_last: int) -> np.ndarray:
    """For Gaussian data the probability-flow ODE keeps (x_t - a mu) / sqrt(a^2 s^2 + sig^2) fixed."""
    abar = sched.alphas_cumprod()
    a0, a1 = math.sqrt(abar[-1]), math.sqrt(abar[t_last])
    z = (x_T - a0 * MU) / math.sqrt(a0 * a0 * S * S + 1 - abar[-1])
    x_last = a1 * MU + z * math.sqrt(a1 * a1 * S * S + 1 - abar[t_last])
    return gaussian_denoiser(abar)(x_last, t_last)[0]


@pytest.mark.parametrize("kind", KINDS)
def test_convergence_orders_ddim_1_dpmpp_2m_2(kind):
    """Uniform grids from t=999 to a fixed t=199: halving the step halves DDIM's error, quarters 2M's."""
    sched = Schedule(kind, 1000)
    abar, x = sched.alphas_cumprod(), start(5)
    den = gaussian_denoiser(abar)
    exact = exact_ode_solution(sched, x, 199)
    err = {}
    for n in (16, 32):
        ts = [int(round(v)) for v in np.linspace(999, 199, n + 1)]
        err["ddim", n] = np.abs(sample_ddim(den, x, abar, ts) - exact).max()
        err["dpm", n] = np.abs(sample_dpmpp_2m(den, x, abar, ts) - exact).max()
    assert 1.8 < err["ddim", 16] / err["ddim", 32] < 2.2, err
    assert 3.3 < err["dpm", 16] / err["dpm", 32] < 4.7, err
    assert err["dpm", 32] < 2e-3 and err["dpm", 16] < err["ddim", 16] / 4, err


@pytest.mark.parametrize("name,steps,eta", CASES)
def test_same_noise_same_output(name, steps, eta):
    sched = Schedule("cosine", 500)
    den = gaussian_denoiser(sched.alphas_cumprod())
    a = run_sampler(name, den, start(7), sched, steps, eta=eta, noise=numpy_noise(8))
    b = run_sampler(name, den, start(7), sched, steps, eta=eta, noise=numpy_noise(8))
    assert np.array_equal(a, b)
    if name == "ddpm" or eta > 0:
        c = run_sampler(name, den, start(7), sched, steps, eta=eta, noise=numpy_noise(9))
        assert not np.array_equal(a, c)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name,steps,eta", CASES)
def test_torch_and_numpy_agree(kind, name, steps, eta):
    torch = pytest.importorskip("torch")
    sched = Schedule(kind, 500)
    abar = sched.alphas_cumprod()
    for make in (gaussian_denoiser, two_delta_denoiser):
        den = make(abar)
        ref = run_sampler(
            name, den, start(11, np.float32), sched, steps, eta=eta, noise=numpy_noise(12, dtype=np.float32)
        )
        rng_t = numpy_noise(12, dtype=np.float32)
        out = run_sampler(
            name,
            den,
            torch.from_numpy(start(11, np.float32)),
            sched,
            steps,
            eta=eta,
            noise=lambda i, rng_t=rng_t: torch.from_numpy(rng_t(i)),
        )
        assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
        assert ref.dtype == np.float32
        np.testing.assert_allclose(out.numpy(), ref, atol=1e-5, rtol=0)


def test_ddpm_full_matches_the_ancestors_update():
    """x_{t-1} = (x_t - beta_t / sqrt(1 - abar_t) eps) / sqrt(alpha_t) + sqrt(beta_t) z."""
    sched = Schedule("linear", 500)
    abar, betas = sched.alphas_cumprod(), sched.betas()
    den = gaussian_denoiser(abar)
    x, zs = start(13), numpy_noise(14)
    out = sample_ddpm(den, x.copy(), abar, list(range(499, -1, -1)), noise=numpy_noise(14))
    for i, t in enumerate(range(499, -1, -1)):
        _, eps = den(x, t)
        mean = (x - eps * (betas[t] / math.sqrt(1 - abar[t]))) / math.sqrt(1 - betas[t])
        x = mean + (zs(i) * math.sqrt(betas[t]) if t > 0 else 0.0)
    np.testing.assert_allclose(out, x, atol=1e-9)


def test_ddim_eta_1_equals_ddpm_posterior_variance_when_strided():
    sched = Schedule("linear", 500)
    abar = sched.alphas_cumprod()
    den, ts = gaussian_denoiser(abar), timesteps(sched, 25)
    a = sample_ddim(den, start(15), abar, ts, eta=1.0, noise=numpy_noise(16))
    b = sample_ddpm(den, start(15), abar, ts, noise=numpy_noise(16))  # strided -> posterior variance
    np.testing.assert_allclose(a, b, atol=1e-12)


def test_noise_is_drawn_once_per_noisy_step_in_order_and_callback_counts():
    sched = Schedule("linear", 100)
    den = gaussian_denoiser(sched.alphas_cumprod())
    asked, progress = [], []

    def noise(i):
        asked.append(i)
        return np.zeros(SHAPE)

    run_sampler("ddpm", den, start(), sched, 100, noise=noise, callback=lambda i, n: progress.append((i, n)))
    assert asked == list(range(99)) and progress == [(i, 100) for i in range(1, 101)]
    asked.clear()
    run_sampler("dpmpp-2m", den, start(), sched, 10, noise=noise)
    run_sampler("ddim", den, start(), sched, 10, noise=noise)
    assert asked == []


def test_registry_and_errors():
    assert set(SAMPLERS) == {"ddpm", "ddim", "dpmpp-2m"}
    assert DEFAULT_SAMPLER == "dpmpp-2m" and DEFAULT_STEPS == 20
    sched = Schedule("linear", 50)
    den = gaussian_denoiser(sched.alphas_cumprod())
    with pytest.raises(BadInput, match="unknown sampler"):
        run_sampler("euler", den, start(), sched, 10)
    with pytest.raises(BadInput, match="noise"):
        run_sampler("ddpm", den, start(), sched, 50)
    with pytest.raises(BadInput, match="eta"):
        run_sampler("dpmpp-2m", den, start(), sched, 10, eta=1.0)
    with pytest.raises(BadInput):
        sample_ddim(den, start(), sched.alphas_cumprod(), [3, 10])


def test_guided_and_clipped_are_arithmetic():
    c, u = np.array([1.0, 2.0]), np.array([0.5, 0.0])
    np.testing.assert_allclose(guided(c, u, 1.0), c)
    np.testing.assert_allclose(guided(c, u, 0.0), u)
    np.testing.assert_allclose(guided(c, u, 3.0), [2.0, 6.0])
    abar = Schedule("linear-zsnr", 100).alphas_cumprod()
    den = clipped(lambda x, t: (x * 5.0, x), abar)
    x = np.linspace(-2, 2, 9)
    for t in (0, 50, 99):
        x0, eps = den(x, t)
        assert x0.min() >= -1 and x0.max() <= 1
        np.testing.assert_allclose(x0 * math.sqrt(abar[t]) + eps * math.sqrt(1 - abar[t]), x)


def test_samplers_do_not_import_torch():
    import subprocess

    code = (
        "import sys, scarlet_moon.diffusion.samplers, scarlet_moon.diffusion.schedule, scarlet_moon.data.pixels; "
        "sys.exit('torch' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
