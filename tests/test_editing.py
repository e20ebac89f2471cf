"""Editing modes (issue 7): --init/--strength variations, --mask inpainting, --tileable; both backends."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import HANG, ROOT, TINY, request, sprites_of
from PIL import Image

from scarlet_moon.cli.main import sm

SIZE = 8
BACKENDS = ["torch", "onnx"]


def gradients(n: int = 30, size: int = SIZE, seed: int = 0) -> np.ndarray:
    """Opaque sprites, each a linear ramp between two random colours (even: left->right, odd: top->bottom).

    Ramps do not wrap (the far edges differ most), so a model of them shows whether --tileable works."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0.0, 1.0, size)
    imgs = np.zeros((n, size, size, 4), np.uint8)
    for i in range(n):
        c0, c1 = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        r = ramp[None, :, None] if i % 2 == 0 else ramp[:, None, None]
        imgs[i, ..., :3] = np.rint(c0 + (c1 - c0) * r)
        imgs[i, ..., 3] = 255
    return imgs


@pytest.fixture(scope="module")
def ramp_set(tmp_path_factory) -> tuple[Path, np.ndarray]:
    d = tmp_path_factory.mktemp("ramps")
    imgs = gradients()
    np.save(d / "sprites.npy", imgs)
    np.save(d / "sprites_labels.npy", np.eye(3, dtype=np.float32)[np.arange(len(imgs)) % 3])
    return d, imgs


@pytest.fixture(scope="module")
def ramp_model(tmp_path_factory, ramp_set) -> Path:
    """A tiny model trained 300 steps on the ramps (about 8 s on one core); model.onnx beside it
    when onnxruntime and the exporter are installed."""
    from scarlet_moon.data.sprites import load_sprites
    from scarlet_moon.training.config import DEFAULT
    from scarlet_moon.training.runs import train_run

    cfg = DEFAULT.replace({**TINY, "steps": 300, "attention": True, "lr": 2e-3, "ema_decay": 0.9})
    res = train_run(
        cfg, load_sprites(ramp_set[0]), runs_root=tmp_path_factory.mktemp("rampruns"), trackers={}, name="m"
    )
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        return res.model
    from scarlet_moon.onnx.export import export_onnx

    export_onnx(res.model, res.model.with_suffix(".onnx"))
    return res.model


def card_for(model: Path, backend: str):
    from scarlet_moon.backends import read_card

    if backend == "torch":
        return read_card(model)
    pytest.importorskip("onnxruntime")
    if not model.with_suffix(".onnx").is_file():
        pytest.skip("no ONNX export (onnx/onnxscript missing)")
    return read_card(model.with_suffix(".onnx"))


def edited(req, card, **edit):
    from scarlet_moon.generation.edits import load_edit

    return dataclasses.replace(req, edit=load_edit(**edit, size=card.size, channels=card.channels))


def run(card, req) -> np.ndarray:
    return sprites_of(card, req, raw=False)


def sample_array(card, req) -> np.ndarray:
    return sprites_of(card, req)


def base_request(sampler: str = "dpmpp-2m", steps: int = 6):
    return request((0, 1, 2, 0), seed=3, sampler=sampler, steps=steps)


@pytest.mark.parametrize("backend", BACKENDS)
def test_strength_zero_returns_the_init(ramp_model, ramp_set, backend):
    card = card_for(ramp_model, backend)
    init = ramp_set[1][4]
    out = run(card, edited(base_request(), card, init=init, strength=0.0))
    assert out.shape == (4, SIZE, SIZE, 4)
    assert (out == init).all()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("sampler", ["ddpm", "ddim", "dpmpp-2m"])
def test_strength_one_ignores_the_init_and_between_stays_near_it(ramp_model, ramp_set, backend, sampler):
    card = card_for(ramp_model, backend)
    init = ramp_set[1][4]
    req = base_request(sampler)
    plain = sample_array(card, req)
    assert np.array_equal(sample_array(card, edited(req, card, init=init, strength=1.0)), plain)
    near = sample_array(card, edited(req, card, init=init, strength=0.3))
    assert not np.array_equal(near, plain)
    dist = lambda a: np.abs(a.astype(int) - init.astype(int)).mean()  # noqa: E731
    assert dist(near) < 0.5 * dist(plain), (dist(near), dist(plain))


def test_truncated_timesteps():
    from scarlet_moon.diffusion.editing import start_timestep, truncated_timesteps
    from scarlet_moon.diffusion.schedule import Schedule, timesteps

    sched = Schedule(kind="cosine", num_steps=50)
    full = timesteps(sched, 10)
    assert truncated_timesteps(sched, 10, 1.0) == full
    assert truncated_timesteps(sched, 10, 0.0) == [] and start_timestep(0.0, 50) is None
    half = truncated_timesteps(sched, 10, 0.5)
    assert half[0] == 25 and half[1:] == [t for t in full if t < 25]
    assert truncated_timesteps(sched, 50, 0.2) == list(range(10, -1, -1))  # contiguous stays contiguous


@pytest.mark.parametrize("backend", BACKENDS)
def test_inpainting_keeps_unmasked_pixels_exactly(ramp_model, backend):
    card = card_for(ramp_model, backend)
    # colours far from the model's palette and more than its colour cap: post-processing must not touch them
    init = np.random.default_rng(1).integers(0, 256, (SIZE, SIZE, 4)).astype(np.uint8)
    init[..., 3] = 255
    mask = np.zeros((SIZE, SIZE), bool)
    mask[2:6, 1:5] = True
    for sampler in ("ddpm", "dpmpp-2m"):
        req = edited(base_request(sampler), card, init=init, mask=mask)
        assert req.edit.strength == 1.0
        out = run(card, req)
        assert (out[:, ~mask] == init[~mask]).all()
        assert (out[:, mask] != init[mask]).any()
        assert np.array_equal(out, run(card, req))  # the kept region's noise is seeded too


def edge_ratio(raw: np.ndarray) -> float:
    """Opposite edges' mean |difference| over that of neighbouring pixels (1: as seamless as inside)."""
    x = raw.astype(np.float64)
    edge = np.abs(x[:, :, 0] - x[:, :, -1]).mean() + np.abs(x[:, 0] - x[:, -1]).mean()
    inner = np.abs(np.diff(x, axis=2)).mean() + np.abs(np.diff(x, axis=1)).mean()
    return float(edge / inner)


@pytest.mark.parametrize("backend", BACKENDS)
def test_tileable_edges_match(ramp_model, backend):
    card = card_for(ramp_model, backend)
    req = request((0, 1, 2) * 8, seed=5, steps=10)
    plain = edge_ratio(sample_array(card, req))
    tiled = edge_ratio(sample_array(card, edited(req, card, tileable=True)))
    assert plain > 1.5 and tiled < 1.2 and tiled < 0.6 * plain, (plain, tiled)


def test_tile_weights_partition_and_vanish_at_cuts():
    from scarlet_moon.diffusion.editing import tile_weights

    passes = tile_weights((8, 6))
    assert [(dy, dx) for dy, dx, _ in passes] == [(0, 0), (0, 3), (4, 0), (4, 3)]
    assert np.allclose(sum(w for _, _, w in passes), 1.0)
    w00 = passes[0][2]
    assert (w00[0] == 0).all() and (w00[-1] == 0).all() and (w00[:, 0] == 0).all() and (w00[:, -1] == 0).all()


def test_edits_agree_across_backends(ramp_model, ramp_set):
    torch_card, onnx_card = card_for(ramp_model, "torch"), card_for(ramp_model, "onnx")
    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[:, :4] = 255
    req = edited(base_request("ddim"), torch_card, init=ramp_set[1][7], mask=mask, strength=0.6, tileable=True)
    a, b = run(torch_card, req), run(onnx_card, req)
    assert np.all(a == b, axis=-1).mean() >= 0.99


def test_python_api(ramp_model, ramp_set, tmp_path):
    import scarlet_moon

    init = tmp_path / "init.png"
    Image.fromarray(ramp_set[1][2], "RGBA").save(init)
    four = scarlet_moon.SamplingOptions(steps=4)
    images = scarlet_moon.generate(
        ramp_model, label=1, count=2, sampling=four, edit=scarlet_moon.EditOptions(init=init, strength=0.0)
    )
    assert all((np.asarray(im) == ramp_set[1][2]).all() for im in images)
    tiles = scarlet_moon.generate(
        ramp_model, label=1, count=2, sampling=four, edit=scarlet_moon.EditOptions(tileable=True)
    )
    assert len(tiles) == 2 and tiles[0].size == (SIZE, SIZE)


# ---------------------------------------------------------------- CLI
def invoke(*args: str):
    return CliRunner().invoke(sm, list(args))


def one_line_error(res) -> str:
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), res.output
    return lines[0]


def save(path: Path, arr: np.ndarray) -> str:
    Image.fromarray(arr).save(path)
    return str(path)


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--init", "{big}"], "is 9x8; this model makes 8x8"),
        (["--init", "{nope}"], "does not exist"),
        (["--init", "{init}", "--strength", "1.5"], "--strength 1.5: must be between 0 and 1"),
        (["--init", "{init}", "--strength", "-0.1"], "--strength -0.1"),
        (["--strength", "0.5"], "--strength 0.5 needs --init"),
        (["--mask", "{mask}"], "--mask needs --init"),
        (["--init", "{init}", "--mask", "{big}"], "--mask"),
    ],
)
def test_bad_edit_options_are_one_line_errors(ramp_model, tmp_path, args, expected):
    files = {
        "big": save(tmp_path / "big.png", np.zeros((8, 9, 4), np.uint8)),
        "init": save(tmp_path / "init.png", np.zeros((8, 8, 4), np.uint8)),
        "mask": save(tmp_path / "mask.png", np.zeros((8, 8), np.uint8)),
        "nope": str(tmp_path / "nope.png"),
    }
    res = invoke("sample", "--model", str(ramp_model), "--out", str(tmp_path / "o"), *[a.format(**files) for a in args])
    assert res.exit_code == 2, res.output
    line = one_line_error(res)
    assert expected in line, line
    if "{big}" in args:
        assert "big.png" in line


@pytest.mark.parametrize("backend", BACKENDS)
def test_cli_json_reports_edits_and_keeps_masked_out_pixels(ramp_model, ramp_set, tmp_path, backend):
    card_for(ramp_model, backend)  # skips the onnx case without onnxruntime
    init = ramp_set[1][3]
    rgba_mask = np.zeros((SIZE, SIZE, 4), np.uint8)  # transparent = keep
    rgba_mask[4:, :, :] = 255  # opaque white = generate
    args = [
        "sample",
        "--model",
        str(ramp_model),
        "--backend",
        backend,
        "--count",
        "2",
        "--steps",
        "4",
        "--init",
        save(tmp_path / "init.png", init),
        "--mask",
        save(tmp_path / "mask.png", rgba_mask),
        "--strength",
        "0.8",
        "--tileable",
        "--out",
        str(tmp_path / "o"),
        "--json",
    ]
    res = CliRunner().invoke(sm, args)
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout.strip().splitlines()[-1])
    meta = report["meta"]
    assert meta["init"].endswith("init.png") and meta["mask"].endswith("mask.png")
    assert meta["strength"] == 0.8 and meta["tileable"] is True
    for f in report["files"]:
        assert (np.asarray(Image.open(f["path"]).convert("RGBA"))[:4] == init[:4]).all()
    plain = CliRunner().invoke(
        sm,
        ["sample", "--model", str(ramp_model), "--count", "1", "--steps", "2", "--out", str(tmp_path / "p"), "--json"],
    )
    meta = json.loads(plain.stdout.strip().splitlines()[-1])["meta"]
    assert meta["init"] is None and meta["strength"] is None and meta["tileable"] is False


def test_sheet_onnx_edits_import_no_torch(ramp_model, ramp_set, tmp_path, sm_env):
    card_for(ramp_model, "onnx")
    code = (
        "import json, sys\nfrom scarlet_moon.cli.main import sm\ntry:\n"
        "    sm.main(sys.argv[1:], prog_name='sm', standalone_mode=False)\nfinally:\n"
        "    print(json.dumps('torch' in sys.modules), file=sys.stderr)\n"
    )
    out = tmp_path / "s.png"
    args = [
        "sheet",
        "--backend",
        "onnx",
        "--model",
        str(ramp_model),
        "--count",
        "2",
        "--steps",
        "3",
        "--init",
        save(tmp_path / "init.png", ramp_set[1][0]),
        "--strength",
        "0.5",
        "--tileable",
        "--out",
        str(out),
    ]
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, env=sm_env, capture_output=True, text=True, timeout=HANG
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stderr.strip().splitlines()[-1]) is False
    frames = json.loads(out.with_suffix(".json").read_text())["frames"]
    meta = next(iter(frames.values()))["data"]["meta"]
    assert meta["strength"] == 0.5 and meta["tileable"] is True and meta["init"].endswith("init.png")
