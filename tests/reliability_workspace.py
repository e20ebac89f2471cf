"""The files docs/errors.md's examples name: a tiny model, its run folder and data, and bad inputs.

`build_workspace(dst, run_dir, data_dir)` writes them under dst, so each documented example is
run from dst exactly as written in the table (file names are relative to it).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import Image

# A pickle (protocol 4) of the int 1: enough for the loader to recognise and refuse it.
PICKLE_BYTES = b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00K\x01."


def png(path: Path, size: int, colour: tuple[int, int, int, int] = (200, 40, 40, 255)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGBA", (size, size), colour).save(path)


def relabelled_model(src: Path, dst: Path, names: list[str]) -> None:
    """A copy of a model whose label names are `names` (unsafe names, or a tampered card)."""
    from scarlet_moon.models.checkpoint import load_checkpoint, save_checkpoint

    ckpt = load_checkpoint(src, with_optim=False)
    ckpt.meta["label_names"] = names
    save_checkpoint(dst, ckpt)


def npy_header_only(path: Path, shape: tuple[int, ...]) -> None:
    """A .npy file whose header claims `shape` (uint8) and that holds no data at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        np.lib.format.write_array_header_2_0(f, {"descr": "|u1", "fortran_order": False, "shape": shape})


def tampered_config(src: Path, dst: Path, **config: object) -> None:
    """A copy of a model whose card's config has `config` set."""
    from scarlet_moon.models.checkpoint import load_checkpoint, save_checkpoint

    ckpt = load_checkpoint(src, with_optim=False)
    ckpt.meta["config"] = {**ckpt.meta["config"], **config}
    save_checkpoint(dst, ckpt)


def deeply_nested(dst: Path, depth: int = 100_000) -> None:
    """A safetensors file whose Scarlet Moon metadata is JSON nested `depth` levels deep."""
    from safetensors.numpy import save as st_save

    dst.write_bytes(st_save({"w": np.zeros(2, np.float32)}, metadata={"scarlet_moon": "[" * depth + "]" * depth}))


def hostile_files(dst: Path, model: Path) -> None:
    """Inputs that would cost memory or time before a check, or lose a run: docs/errors.md, second part."""
    big = dst / "huge" / "a" / "0.png"
    big.parent.mkdir(parents=True)
    Image.new("1", (9000, 9000)).save(big)  # 81 Mpx, a few KB on disk
    (dst / "hugeframes").mkdir()
    shutil.copy(big, dst / "hugeframes" / "a.png")
    npy_header_only(dst / "bignpy" / "sprites.npy", (10**11, 16, 16, 4))
    np.save(dst / "bignpy" / "sprites_labels.npy", np.eye(2, dtype=np.float32))
    (dst / "emptynpy").mkdir()
    np.save(dst / "emptynpy" / "sprites.npy", np.zeros((0, 8, 8, 4), np.uint8))
    np.save(dst / "emptynpy" / "sprites_labels.npy", np.zeros((0, 3), np.float32))
    (dst / "nan.toml").write_text("[train]\nguidance = nan\n")
    (dst / "bogus.toml").write_text("[train]\nsampler = 'bogus'\n")
    (dst / "many.hex").write_text("".join(f"{i:06x}\n" for i in range(5000)))
    deeply_nested(dst / "deepnest.safetensors")
    tampered_config(model, dst / "nolevels.safetensors", channel_mult=[])


def build_workspace(dst: Path, run_dir: Path, data_dir: Path) -> Path:
    from safetensors.numpy import save as st_save

    from scarlet_moon.cli.cmd_doctor import tiny_onnx_bytes

    dst.mkdir(parents=True, exist_ok=True)
    model = run_dir / "model.safetensors"
    shutil.copy(model, dst / "model.safetensors")
    (dst / "run").mkdir()
    shutil.copy(run_dir / "checkpoint.safetensors", dst / "run" / "checkpoint.safetensors")
    shutil.copytree(data_dir, dst / "data")
    for label in ("cat", "dog"):  # other sprites: 16x16, other labels
        png(dst / "other" / label / "0.png", 16)
    blob = model.read_bytes()
    (dst / "truncated.safetensors").write_bytes(blob[: len(blob) // 2])
    (dst / "foreign.safetensors").write_bytes(st_save({"w": np.zeros(2, np.float32)}))
    (dst / "junk.safetensors").write_bytes(b"this is not a checkpoint at all")
    (dst / "model.pt").write_bytes(PICKLE_BYTES)
    (dst / "foreign.onnx").write_bytes(tiny_onnx_bytes())  # a valid ONNX model, without our metadata
    (dst / "junk.onnx").write_bytes(b"not a protobuf")
    png(dst / "mixed" / "a" / "0.png", 16)
    png(dst / "mixed" / "a" / "1.png", 8)
    png(dst / "odd" / "a" / "0.png", 12)  # a side that is not a multiple of 8
    png(dst / "notimage" / "a" / "0.png", 16)
    (dst / "notimage" / "a" / "1.png").write_text("not a PNG")
    png(dst / "emptyclass" / "a" / "0.png", 16)
    (dst / "emptyclass" / "b").mkdir()
    (dst / "notonehot").mkdir()
    np.save(dst / "notonehot" / "sprites.npy", np.full((2, 8, 8, 4), 255, np.uint8))
    np.save(dst / "notonehot" / "sprites_labels.npy", np.array([[1.0, 1.0], [0.0, 1.0]], np.float32))
    (dst / "nocolours.gpl").write_text("GIMP Palette\nName: empty\n# no colours\n")
    (dst / "afile").write_text("a file, not a folder\n")
    (dst / "inway.unrolled.onnx").mkdir()  # a folder where sm export-onnx --out inway.onnx writes a side graph
    png(dst / "taken.png", 4)
    (dst / "ro").mkdir()
    (dst / "ro").chmod(0o555)
    relabelled_model(model, dst / "evil.safetensors", ["../../x", 'a"b[/x]', "blue"])
    relabelled_model(model, dst / "tampered.safetensors", 5)  # type: ignore[arg-type]
    hostile_files(dst, model)
    return dst
