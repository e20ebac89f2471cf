from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from scarlet_moon.errors import BadInput
from scarlet_moon.models.card import read_meta
from scarlet_moon.models.checkpoint import Checkpoint, load_checkpoint, save_checkpoint


def small_ckpt() -> Checkpoint:
    return Checkpoint(
        meta={"config": {"arch": "unet"}, "label_names": ["a", "b"], "step": 3},
        model={"w": torch.arange(6.0).reshape(2, 3)},
        ema={"w": torch.ones(2, 3)},
        optim={"0.exp_avg": torch.zeros(2, 3)},
    )


def test_round_trip_keeps_tensors_and_metadata(tmp_path: Path):
    p = tmp_path / "c.safetensors"
    save_checkpoint(p, small_ckpt())
    got = load_checkpoint(p)
    assert torch.equal(got.model["w"], torch.arange(6.0).reshape(2, 3))
    assert torch.equal(got.weights["w"], torch.ones(2, 3))  # EMA preferred for sampling
    assert got.meta["label_names"] == ["a", "b"] and got.meta["step"] == 3
    assert got.meta["package_version"]
    assert read_meta(p)["format"] == "scarlet-moon-checkpoint"
    assert not list(tmp_path.glob(".*.tmp"))


def test_pickle_is_refused_without_unpickling(tmp_path: Path):
    p = tmp_path / "model.pt"
    p.write_bytes(pickle.dumps({"x": 1}, protocol=4))
    with pytest.raises(BadInput, match="pickle"):
        load_checkpoint(p)
    zp = tmp_path / "model.pth"
    torch.save({"x": torch.zeros(1)}, zp)  # torch's zip container
    with pytest.raises(BadInput, match="pickle"):
        load_checkpoint(zp)


@pytest.mark.parametrize("content", [b"", b"hello world, not a checkpoint", b"\x10\x00\x00\x00\x00\x00\x00\x00{bad"])
def test_foreign_or_corrupt_files_are_one_line_errors(tmp_path: Path, content: bytes):
    p = tmp_path / "x.safetensors"
    p.write_bytes(content)
    with pytest.raises(BadInput) as err:
        load_checkpoint(p)
    assert "\n" not in str(err.value) and "x.safetensors" in str(err.value)


def test_truncated_checkpoint_is_refused(tmp_path: Path):
    p = tmp_path / "c.safetensors"
    save_checkpoint(p, small_ckpt())
    data = p.read_bytes()
    p.write_bytes(data[: len(data) - 10])
    with pytest.raises(BadInput):
        load_checkpoint(p)


def test_safetensors_without_our_metadata_is_refused(tmp_path: Path):
    p = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(p), metadata={"scarlet_moon": json.dumps({"format": "x"})})
    with pytest.raises(BadInput, match="not a Scarlet Moon checkpoint"):
        load_checkpoint(p)
    save_file({"w": torch.zeros(2)}, str(p))
    with pytest.raises(BadInput, match="without Scarlet Moon metadata"):
        load_checkpoint(p)


def test_missing_file(tmp_path: Path):
    with pytest.raises(BadInput, match="does not exist"):
        load_checkpoint(tmp_path / "nope.safetensors")


def test_written_files_get_the_usual_permissions(tmp_path: Path):
    import os

    old = os.umask(0o022)
    try:
        save_checkpoint(tmp_path / "c.safetensors", small_ckpt())
    finally:
        os.umask(old)
    assert (tmp_path / "c.safetensors").stat().st_mode & 0o777 == 0o644
