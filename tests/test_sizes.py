"""Every command beyond 16x16: per sprite size, train a tiny model a few steps, sample it with
both backends, export it to ONNX and pack a sheet; sizes outside the rule are one line, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from test_train import _tiny_toml

from scarlet_moon.cli.main import sm


def invoke(*args: str):
    return CliRunner().invoke(sm, list(args))


def sprite_set(root: Path, h: int, w: int, n: int = 6) -> Path:
    """n RGBA sprites of h x w (height x width) in two labels, Kaggle npy layout."""
    rng = np.random.default_rng(h * 100 + w)
    imgs = np.zeros((n, h, w, 4), np.uint8)
    for i in range(n):
        imgs[i, h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = (*rng.integers(0, 256, 3), 255)
    root.mkdir(parents=True)
    np.save(root / "sprites.npy", imgs)
    np.save(root / "sprites_labels.npy", np.eye(2, dtype=np.float32)[np.arange(n) % 2])
    (root / "labels.txt").write_text("a\nb\n")
    return root


def png_sizes(folder: Path) -> set[tuple[int, int]]:
    return {Image.open(p).size for p in folder.glob("*.png")}


def train_tiny(tmp_path: Path, h: int, w: int) -> Path:
    """`sm train` 2 steps on an h x w set, the depth left to the size (TINY without channel_mult)."""
    data = sprite_set(tmp_path / "set", h, w)
    toml = _tiny_toml(tmp_path, steps=2, batch_size=4, hflip=False)
    toml.write_text("\n".join(line for line in toml.read_text().splitlines() if not line.startswith("channel_mult")))
    res = invoke(
        "-q",
        "train",
        "--data",
        str(data),
        "--config",
        str(toml),
        "--tracking",
        "none",
        "--runs-dir",
        str(tmp_path / "runs"),
        "--name",
        "m",
    )
    assert res.exit_code == 0, res.output
    return tmp_path / "runs" / "m" / "model.safetensors"


# (height, width); the depth the size gets: 8 -> 2 levels, 16/24 -> 3, 32 -> 4, 64 -> 5
@pytest.mark.parametrize("h, w, levels", [(8, 8, 2), (24, 24, 3), (32, 32, 4), (64, 64, 5), (16, 24, 3)])
def test_train_sample_export_pack_at_size(tmp_path: Path, h: int, w: int, levels: int):
    model = train_tiny(tmp_path, h, w)
    from scarlet_moon.models.checkpoint import read_meta

    meta = read_meta(model)
    assert meta["image_size"] == [h, w] and len(meta["config"]["channel_mult"]) == levels

    common = ("--count", "3", "--steps", "2", "--label", "b")
    res = invoke("-q", "sample", "--model", str(model), *common, "--out", str(tmp_path / "t"))
    assert res.exit_code == 0, res.output
    assert png_sizes(tmp_path / "t") == {(w, h)} and len(list((tmp_path / "t").glob("*.png"))) == 3
    # editing at this size: an init sprite with a mask (the left half kept), and tileable
    init = next((tmp_path / "t").glob("*.png"))
    mask = Image.new("L", (w, h), 255)
    mask.paste(0, (0, 0, w // 2, h))
    mask.save(tmp_path / "mask.png")
    res = invoke(
        "-q",
        "sample",
        "--model",
        str(model),
        *common,
        "--init",
        str(init),
        "--mask",
        str(tmp_path / "mask.png"),
        "--tileable",
        "--out",
        str(tmp_path / "e"),
    )
    assert res.exit_code == 0, res.output
    edited = [np.asarray(Image.open(p).convert("RGBA")) for p in sorted((tmp_path / "e").glob("*.png"))]
    assert len(edited) == 3 and all(e.shape == (h, w, 4) for e in edited)

    onnx = tmp_path / "m.onnx"
    res = invoke("-q", "export-onnx", "--model", str(model), "--out", str(onnx))
    assert res.exit_code == 0, res.output
    res = invoke("-q", "sample", "--model", str(onnx), *common, "--out", str(tmp_path / "o"))
    assert res.exit_code == 0, res.output
    assert png_sizes(tmp_path / "o") == {(w, h)}

    res = invoke("-q", "sheet", "--model", str(onnx), *common, "--out", str(tmp_path / "sheet.png"))
    assert res.exit_code == 0, res.output
    atlas = json.loads((tmp_path / "sheet.json").read_text())
    frames = [f["frame"] for f in atlas["frames"].values()]
    assert len(frames) == 3 and all((f["w"], f["h"]) == (w, h) for f in frames)


def test_tileset_and_distill_non_square(tmp_path: Path):
    model = train_tiny(tmp_path, 16, 24)
    res = invoke(
        "-q",
        "tileset",
        "--model",
        str(model),
        "--label",
        "a",
        "--second-label",
        "b",
        "--steps",
        "2",
        "--format",
        "json-hash",
        "--out",
        str(tmp_path / "tiles.png"),
    )
    assert res.exit_code == 0, res.output
    atlas = json.loads((tmp_path / "tiles.json").read_text())
    frames = [f["frame"] for f in atlas["frames"].values()]
    assert len(frames) == 16 and all((f["w"], f["h"]) == (24, 16) for f in frames)
    res = invoke(
        "-q",
        "distill",
        "--model",
        str(model),
        "--data",
        str(tmp_path / "set"),
        "--steps",
        "2",
        "--batch",
        "4",
        "--device",
        "cpu",
        "--out",
        str(tmp_path / "d.safetensors"),
    )
    assert res.exit_code == 0, res.output
    res = invoke(
        "-q",
        "sample",
        "--model",
        str(tmp_path / "d.safetensors"),
        "--count",
        "2",
        "--steps",
        "2",
        "--out",
        str(tmp_path / "ds"),
    )
    assert res.exit_code == 0 and png_sizes(tmp_path / "ds") == {(24, 16)}, res.output


@pytest.mark.parametrize("h, w", [(8, 10), (72, 72), (4, 4)])
def test_unsupported_sizes_are_one_line_exit_2_and_no_run(tmp_path: Path, h: int, w: int):
    data = sprite_set(tmp_path / "set", h, w)
    res = invoke(
        "train",
        "--data",
        str(data),
        "--config",
        str(_tiny_toml(tmp_path)),
        "--tracking",
        "none",
        "--runs-dir",
        str(tmp_path / "runs"),
    )
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and f"sprite size {w}x{h} is not supported" in lines[0], lines
    assert "multiple of 8 from 8 to 64" in lines[0] and "Traceback" not in res.output
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_card_of_an_unsupported_size_is_one_line_exit_2(tiny_model: Path, tmp_path: Path):
    from scarlet_moon.models.checkpoint import load_checkpoint, read_meta, save_checkpoint

    ckpt = load_checkpoint(tiny_model, with_optim=False)
    ckpt.meta["image_size"] = [10, 8]
    bad = tmp_path / "odd.safetensors"
    save_checkpoint(bad, ckpt)
    res = invoke("sample", "--model", str(bad), "--count", "1", "--out", str(tmp_path / "o"))
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "sprite size 8x10 is not supported" in lines[0], lines
    assert not (tmp_path / "o").exists() and read_meta(tiny_model)["image_size"] == [8, 8]


def test_depth_follows_the_size_and_16x16_keeps_the_bundled_depth():
    from scarlet_moon.models.config import ModelConfig, channel_mult_for

    assert channel_mult_for(16, 16) == (1, 2, 4) == ModelConfig.from_dict({"arch": "unet"}).channel_mult
    assert [len(channel_mult_for(s, s)) for s in range(8, 65, 8)] == [2, 3, 3, 4, 4, 4, 4, 5]
    assert channel_mult_for(16, 24) == channel_mult_for(32, 16) == (1, 2, 4)
    assert ModelConfig(channel_mult=(1, 2)).for_size(64, 64).channel_mult == (1, 2)  # given: kept
    from scarlet_moon.training.config import DEFAULT, TrainConfig

    assert TrainConfig.from_dict({}).model.channel_mult == (1, 2, 4)  # a stored config without it: as before
    assert DEFAULT.model.channel_mult is None and DEFAULT.replace({"channel_mult": "auto"}) == DEFAULT


@pytest.mark.parametrize("arch", ["seed", "unet"])
def test_both_archs_build_and_run_non_square(arch: str):
    import torch

    from scarlet_moon.models.config import ModelConfig
    from scarlet_moon.models.unet import build_model

    cfg = ModelConfig(arch=arch, n_feat=8, attention=arch == "unet")
    for h, w in [(16, 24), (32, 16)]:
        net = build_model(cfg, channels=4, size=(h, w), num_classes=2, timesteps=50).eval()
        x = torch.randn(2, 4, h, w)
        assert net(x, torch.tensor([1.0, 30.0]), torch.tensor([0, 2])).shape == x.shape
    # at 16x16 the seed network's weights keep their shapes (checkpoints load as before)
    weights = build_model(cfg, channels=4, size=16, num_classes=2, timesteps=50).state_dict()
    if arch == "seed":
        assert weights["up0.0.weight"].shape == (16, 16, 4, 4)
