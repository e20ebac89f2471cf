"""One generation path: the Python API, `sm sample`, `sm sheet` (and `sm eval`, sharded sheets) run the
same loop, so the same model, seed and options give the same sprites, at any count, on either backend."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import scarlet_moon
from scarlet_moon.cli.main import sm

OPTIONS = ["--label", "hero", "--count", "600", "--seed", "3"]  # more than two chunks of 256


@pytest.fixture(scope="module")
def bundled_onnx(tmp_path_factory) -> Path:
    """The bundled model exported to ONNX (the onnx backend's own file)."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from scarlet_moon.onnx.export import export_onnx

    return export_onnx(None, tmp_path_factory.mktemp("bundled-onnx") / "bundled.onnx", step_graph=False).path


def sheet_frames(sheet: Path, atlas: Path) -> dict[str, np.ndarray]:
    pixels = np.asarray(Image.open(sheet).convert("RGBA"))
    frames = json.loads(atlas.read_text())["frames"]
    return {
        name: pixels[
            f["frame"]["y"] : f["frame"]["y"] + f["frame"]["h"], f["frame"]["x"] : f["frame"]["x"] + f["frame"]["w"]
        ]
        for name, f in frames.items()
    }


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_api_sample_and_sheet_give_identical_sprites(backend: str, request: pytest.FixtureRequest, tmp_path: Path):
    model = None if backend == "torch" else request.getfixturevalue("bundled_onnx")
    model_args = ["--backend", "torch"] if model is None else ["--model", str(model)]  # (default: onnx)
    api = [
        np.asarray(im)
        for im in scarlet_moon.generate(
            model,
            count=600,
            seed=3,
            label="hero",
            backend=scarlet_moon.BackendOptions("torch" if model is None else None),
        )
    ]
    assert len(api) == 600 and api[0].shape == (16, 16, 4)

    res = CliRunner().invoke(sm, ["sample", *OPTIONS, *model_args, "--out", str(tmp_path / "s")])
    assert res.exit_code == 0, res.output
    assert f"backend: {'torch' if backend == 'torch' else 'onnxruntime'}" in res.stderr
    sampled = [np.asarray(Image.open(tmp_path / "s" / f"hero_{i:03d}.png").convert("RGBA")) for i in range(600)]

    res = CliRunner().invoke(sm, ["sheet", *OPTIONS, *model_args, "--no-dedupe", "--out", str(tmp_path / "h.png")])
    assert res.exit_code == 0, res.output
    frames = sheet_frames(tmp_path / "h.png", tmp_path / "h.json")

    assert all(np.array_equal(a, b) for a, b in zip(api, sampled))
    assert all(np.array_equal(api[i], frames[f"hero_{i:03d}"]) for i in range(600))
    assert len({a.tobytes() for a in api}) > 590  # really 600 sprites, not one repeated


def test_api_takes_every_backend_option(tiny_model: Path):
    """backend, device, batch, fp16 and compile reach the API; bad values are one-line BadInput
    naming the parameter, not a flag."""
    from scarlet_moon.errors import BadInput

    two = scarlet_moon.SamplingOptions(steps=2)
    a = scarlet_moon.generate(
        tiny_model,
        label="red",
        count=3,
        seed=1,
        sampling=two,
        backend=scarlet_moon.BackendOptions("torch", "cpu"),
        batch=1,
    )
    b = scarlet_moon.generate(tiny_model, label="red", count=3, seed=1, sampling=two)
    assert [im.tobytes() for im in a] == [im.tobytes() for im in b]
    B, S = scarlet_moon.BackendOptions, scarlet_moon.SamplingOptions
    for kwargs, message in [
        (lambda: {"backend": B(fp16=True)}, "fp16 needs device cuda"),
        (lambda: {"backend": B("tpu")}, "backend 'tpu'"),
        (lambda: {"count": 0}, "count 0: must be at least 1"),
        (lambda: {"batch": 0}, "batch 0"),
        (lambda: {"sampling": S(steps=10**6)}, "at most 50"),
        (lambda: {"sampling": S(guidance=float("nan"))}, "guidance nan"),
    ]:
        with pytest.raises(BadInput, match=message) as err:
            scarlet_moon.generate(tiny_model, **{"sampling": two, **kwargs()})
        assert "--" not in str(err.value)


def test_api_refuses_values_of_the_wrong_kind_with_one_line_naming_the_parameter(tmp_path: Path):
    """A dict where an option group goes, a format name given as a string, a label that is neither a name nor
    an index: BadInput naming the parameter, never an AttributeError from deep inside."""
    from scarlet_moon.errors import BadInput

    for kwargs, message in [
        ({"sampling": {"steps": 2}}, "sampling: expected a scarlet_moon.SamplingOptions, got dict"),
        ({"post": "none"}, "post: expected a scarlet_moon.PostOptions, got str"),
        ({"label": 1.5}, "unknown label '1.5'"),
        ({"label": b"hero"}, "unknown label"),
    ]:
        with pytest.raises(BadInput, match=message):
            scarlet_moon.generate(count=1, **kwargs)
    with pytest.raises(BadInput, match="pack: expected a scarlet_moon.exporters.PackOptions, got dict"):
        scarlet_moon.sheet(count=1, out=tmp_path / "a.png", pack={"padding": 1})
    written = scarlet_moon.sheet(count=1, out=tmp_path / "b.png", formats="json-hash,godot3")  # one string
    assert sorted(p.name for p in written) == ["b.json", "b.png", "b.png.import", "b.tres"]


def test_a_sheet_from_an_init_image_object_writes_the_same_atlas_every_time(tmp_path: Path):
    """An init given as a PIL image (no file) is not an output clash, and the atlas names it by its type,
    not by its repr's memory address (which made two identical requests write different bytes)."""
    init = Image.fromarray(np.full((16, 16, 4), 200, np.uint8), "RGBA")
    edit = scarlet_moon.EditOptions(init=init, strength=0.5)
    for name in ("a", "b"):
        scarlet_moon.sheet(count=2, out=tmp_path / f"{name}.png", edit=edit)
    a, b = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("a", "b"))
    frame = next(iter(a["frames"].values()))["data"]["meta"]
    assert frame["init"] == "<Image>" and frame["strength"] == 0.5
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    assert a["frames"] == b["frames"]
