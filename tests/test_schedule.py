"""Noise schedules and timestep selection (numpy only)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from scarlet_moon.diffusion.schedule import KINDS, Schedule, timesteps
from scarlet_moon.errors import BadInput


def test_seed_preset_keeps_7_9_percent_signal_at_the_last_step():
    abar = Schedule("linear", 500, 1e-4, 0.02).alphas_cumprod()
    assert abar.shape == (500,) and abar.dtype == np.float64
    assert math.sqrt(abar[-1]) == pytest.approx(0.079, abs=0.001)
    assert abar[0] == pytest.approx(1 - 1e-4)


def test_zero_terminal_snr_is_exactly_zero_and_keeps_the_first_step():
    lin = Schedule("linear", 1000).alphas_cumprod()
    z = Schedule("linear-zsnr", 1000).alphas_cumprod()
    assert z[-1] == 0.0
    assert z[0] == pytest.approx(lin[0], rel=1e-12)
    assert np.all(z[:-1] > 0)
    assert Schedule("linear-zsnr", 1000).betas()[-1] == pytest.approx(1.0)


def test_cosine_matches_nichol_dhariwal():
    T = 1000
    abar = Schedule("cosine", T).alphas_cumprod()
    f = lambda u: math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    # index t is the paper's t+1; away from the 0.999 clip the closed form holds
    for t in (0, 10, 500, 900):
        assert abar[t] == pytest.approx(f((t + 1) / T) / f(0), rel=1e-9)
    assert 0 < abar[-1] < 1e-6


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_is_decreasing_in_0_1(kind):
    s = Schedule(kind, 300)
    abar = s.alphas_cumprod()
    assert abar.shape == (300,)
    assert np.all(np.diff(abar) < 0)
    assert np.all((abar >= 0) & (abar < 1))
    assert np.allclose(np.cumprod(1 - s.betas()), abar)


def test_to_from_dict_round_trip():
    s = Schedule("linear-zsnr", 750, 2e-4, 0.03)
    d = s.to_dict()
    assert d == {"kind": "linear-zsnr", "num_steps": 750, "beta_start": 2e-4, "beta_end": 0.03}
    assert Schedule.from_dict(d) == s
    with pytest.raises(BadInput):
        Schedule.from_dict({"kind": "linear", "num_steps": 10, "gamma": 1})


@pytest.mark.parametrize(
    "bad",
    [
        dict(kind="quadratic", num_steps=10),
        dict(kind="linear", num_steps=1),
        dict(kind="linear", num_steps=10, beta_start=0.1, beta_end=0.01),
    ],
)
def test_bad_schedules_raise_bad_input(bad):
    with pytest.raises(BadInput):
        Schedule(**bad)


@pytest.mark.parametrize("spacing", ["trailing", "leading", "linspace"])
@pytest.mark.parametrize("steps", [1, 2, 7, 20, 50, 333, 999, 1000])
def test_timesteps_descending_distinct_in_range(spacing, steps):
    ts = timesteps(Schedule("cosine", 1000), steps, spacing)
    assert len(ts) == steps and len(set(ts)) == steps
    assert ts == sorted(ts, reverse=True)
    assert all(isinstance(t, int) and 0 <= t < 1000 for t in ts)


def test_trailing_starts_at_the_noisiest_step_and_full_is_all():
    s = Schedule("linear", 500)
    assert timesteps(s, 500) == list(range(499, -1, -1))
    ts = timesteps(s, 20)
    assert ts[0] == 499 and ts[-1] == 24
    assert timesteps(Schedule("linear", 1000), 10) == [999, 899, 799, 699, 599, 499, 399, 299, 199, 99]
    assert timesteps(Schedule("linear", 1000), 10, "leading")[-1] == 0


@pytest.mark.parametrize("steps", [0, 501, 2.5, True])
def test_bad_step_counts_raise_bad_input(steps):
    with pytest.raises(BadInput):
        timesteps(Schedule("linear", 500), steps)
    with pytest.raises(BadInput):
        timesteps(Schedule("linear", 500), 10, "quadratic")
