"""Few-step distillation (scarlet_moon.training.fewstep, `sm distill --few-step N`): the student's target,
the teacher's segments, the card the sampling defaults follow, that it learned, and bad input."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import request, sprites_of

from scarlet_moon.backends import read_card
from scarlet_moon.backends.torch_backend import TorchDenoiser, load_torch_model
from scarlet_moon.cli.main import sm
from scarlet_moon.diffusion.guidance import split_prediction
from scarlet_moon.diffusion.samplers import sample_ddim
from scarlet_moon.diffusion.schedule import Schedule, timesteps
from scarlet_moon.errors import BadInput
from scarlet_moon.training.fewstep import distill_fewstep, segments, target


@pytest.fixture(scope="module")
def teacher(tiny_model: Path) -> Path:
    """The tiny model (30 training steps, guidance 2, two rows per step)."""
    return tiny_model


@pytest.fixture(scope="module")
def student(teacher: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fs_student") / "two.safetensors"
    info = distill_fewstep(teacher, out, sample_steps=2, substeps=6, steps=600, batch=16, lr=2e-3, seed=0)
    assert info["steps"] == 2 and info["teacher_steps_per_step"] == 6
    return out


@pytest.mark.parametrize("prediction", ["v", "eps"])
@pytest.mark.parametrize("t,s", [(40, 20), (20, -1), (49, 0)])
def test_the_target_of_a_one_step_teacher_is_its_own_prediction(prediction: str, t: int, s: int):
    """One DDIM step of the teacher from z_t to z_s: the student must predict exactly what it did."""
    abar = Schedule("cosine", 50).alphas_cumprod()
    g = np.random.default_rng(1)
    z_t, pred = g.normal(size=(3, 4, 8, 8)), g.normal(size=(3, 4, 8, 8))
    a_s = 1.0 if s < 0 else float(abar[s])
    x0, eps = split_prediction(pred, z_t, math.sqrt(abar[t]), math.sqrt(1 - abar[t]), prediction)
    z_s = x0 * math.sqrt(a_s) + eps * math.sqrt(1 - a_s)
    got = target(torch.from_numpy(z_t), torch.from_numpy(z_s), float(abar[t]), a_s, prediction).numpy()
    assert np.allclose(got, pred, atol=1e-9)
    # and through the library's own DDIM: the same z_s
    out = sample_ddim(lambda x, tt: (x0, eps), z_t, abar, [t], abar_end=a_s)
    assert np.allclose(out, z_s)


def test_segments_cover_the_students_grid(teacher: Path):
    card = read_card(teacher)
    segs = segments(card, 2, 6)
    grid = timesteps(card.schedule, 2)
    abar = card.schedule.alphas_cumprod()
    assert [s[0][0] for s in segs] == grid and all(len(s[0]) == 6 and s[2] == "dpmpp-2m" for s in segs)
    assert segs[0][1] == pytest.approx(float(abar[grid[1]])) and segs[-1][1] == 1.0
    assert all(a > b for s in segs for a, b in zip(s[0], s[0][1:])) and segs[0][0][-1] > grid[1]
    for bad in [(0, 6), (17, 1), (2, 26)]:
        with pytest.raises(BadInput):
            segments(card, *bad)


def test_student_card_and_its_default_sampling(teacher: Path, student: Path):
    """The card names ddim with 2 steps; sampling with no options runs exactly that (2 network calls)."""
    card, tcard = read_card(student), read_card(teacher)
    assert card.defaults() == {"sampler": "ddim", "steps": 2, "guidance": tcard.defaults()["guidance"]}
    assert card.meta["fewstep"]["steps"] == 2 and card.meta["fewstep"]["teacher"]
    assert "Salimans" in card.meta["fewstep"]["method"] and card.config["clip_x0"] is False
    model = load_torch_model(card)
    calls: list[int] = []
    model.register_forward_pre_hook(lambda mod, args: calls.append(args[0].shape[0]))
    den = TorchDenoiser(card, model, "cpu")
    a = sprites_of(den, request((0, 1, 2, 0), seed=5))
    assert calls == [4, 4]  # two steps of one row: the guidance of the teacher's segments is folded in
    assert card.guidance_base == 2.0 and tcard.guidance_base == 1.0
    b = sprites_of(den, request((0, 1, 2, 0), seed=5, sampler="ddim", steps=2))
    assert np.array_equal(a, b)
    c = sprites_of(den, request((0, 1, 2, 0), seed=5, sampler="ddim", steps=6))  # more steps still run
    assert c.shape == a.shape


def test_the_student_learned_the_teachers_segments(teacher: Path, student: Path, tiny_set: Path):
    """On fresh noise, one student step from each grid point lands closer to where the teacher's
    6 dpmpp-2m substeps land than one teacher step does (what the student was trained for)."""
    from scarlet_moon.data.sprites import load_sprites
    from scarlet_moon.diffusion.scaling import to_model_range
    from scarlet_moon.training.fewstep import _teacher_segment

    tcard, scard = read_card(teacher), read_card(student)
    t_net, s_net = load_torch_model(tcard), load_torch_model(scard)
    abar = tcard.schedule.alphas_cumprod()
    ds = load_sprites(tiny_set)
    x0, y = torch.from_numpy(to_model_range(ds.images)), torch.from_numpy(ds.labels.astype(np.int64))
    g = torch.Generator().manual_seed(7)
    for seg in segments(tcard, 2, 6):
        t = seg[0][0]
        z = x0 * math.sqrt(abar[t]) + torch.randn(x0.shape, generator=g) * math.sqrt(1 - abar[t])
        tt = torch.full((len(z),), float(t))
        with torch.no_grad():
            want = target(z, _teacher_segment(t_net, tcard, z, y, seg), float(abar[t]), seg[1], tcard.prediction)
            err_teacher = (t_net(z, tt, y) - want).pow(2).mean()
            err_student = (s_net(z, tt, y) - want).pow(2).mean()
        assert err_student < 0.7 * err_teacher, (t, float(err_student), float(err_teacher))  # 0.08, 0.46 measured


def test_a_second_round_walks_the_teachers_own_grid(student: Path, tmp_path: Path):
    card = read_card(student)
    with pytest.raises(BadInput, match="divisor of 2"):
        segments(card, 3, 6)
    segs = segments(card, 1, 6)
    assert segs == [(timesteps(card.schedule, 2), 1.0, "ddim")]
    out = tmp_path / "one.safetensors"
    info = distill_fewstep(student, out, sample_steps=1, steps=3, batch=4)
    assert info["teacher_sampling"] == "ddim" and info["teacher_steps_per_step"] == 2
    assert read_card(out).defaults()["steps"] == 1


def test_cli_few_step_and_bad_input(teacher: Path, student: Path, tmp_path: Path):
    out = tmp_path / "s.safetensors"
    res = CliRunner().invoke(
        sm,
        [
            "distill",
            "--model",
            str(teacher),
            "--out",
            str(out),
            "--few-step",
            "2",
            "--substeps",
            "3",
            "--steps",
            "3",
            "--batch",
            "4",
            "--device",
            "cpu",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "2-step sampling distilled" in res.output and read_card(out).defaults()["steps"] == 2
    for args, msg in [
        (["--model", str(student), "--few-step", "3"], "divisor of 2"),
        (["--model", str(teacher), "--few-step", "17"], "expected 1..16 student steps"),
        (["--model", str(teacher), "--few-step", "2", "--substeps", "40"], "--substeps 40"),
    ]:
        bad = tmp_path / "bad.safetensors"
        res = CliRunner().invoke(sm, ["distill", *args, "--out", str(bad), "--steps", "2", "--device", "cpu"])
        assert res.exit_code == 2 and msg in res.output and "Traceback" not in res.output, res.output
        assert len(res.output.strip().splitlines()) == 1 and not bad.exists()


def test_a_segment_must_end_between_its_last_step_and_clean_data():
    from scarlet_moon.diffusion.samplers import sample_dpmpp_2m

    abar = Schedule("cosine", 50).alphas_cumprod()
    x = np.zeros((1, 4, 8, 8))
    for end in (float(abar[20]), 1.5, 0.0):
        with pytest.raises(BadInput, match="abar_end"):
            sample_dpmpp_2m(lambda z, t: (z, z), x, abar, [30, 20], abar_end=end)
    out = sample_dpmpp_2m(lambda z, t: (z * 0, z), x + 1.0, abar, [30, 20], abar_end=float(abar[10]))
    assert out.shape == x.shape and np.isfinite(out).all()
