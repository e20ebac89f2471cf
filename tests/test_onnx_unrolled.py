"""The unrolled N-step graph (m.unrolled.onnx): the export that writes it and the loop that runs a whole
sampling in one onnxruntime run, here on the CPU provider (the code path CUDA takes, minus CUDA graphs)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import request, sprites_of

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
pytest.importorskip("onnxscript")

META = "scarlet_moon.unrolled_graph"


@pytest.fixture(scope="module")
def exported(tiny_model: Path, tmp_path_factory):
    """The tiny model's export with an unrolled graph of 6 dpmpp-2m steps at guidance 2 (two rows a step)."""
    from scarlet_moon.onnx.export import export_onnx
    from scarlet_moon.options import SamplingOptions

    out = tmp_path_factory.mktemp("unrolled") / "m.onnx"
    return export_onnx(tiny_model, out, unroll=SamplingOptions(steps=6))


def props(path: Path) -> dict[str, str]:
    import onnx

    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}


def test_export_writes_an_unrolled_graph_with_shared_weights(exported):
    import onnx

    assert exported.unrolled_path == exported.path.with_name("m.unrolled.onnx") and exported.unrolled_path.is_file()
    assert exported.unrolled_diff == 0.0  # the very ops of the step graph: the step loop's floats exactly
    proto, step = onnx.load(str(exported.unrolled_path)), onnx.load(str(exported.step_path))
    assert [i.name for i in proto.graph.input] == ["x", "y"]
    assert [o.name for o in proto.graph.output] == ["x0", "bad"]
    meta = json.loads(props(exported.unrolled_path)[META])
    assert meta["format"] == "scarlet-moon-unrolled" and meta["steps"] == 6 and len(meta["timesteps"]) == 6
    assert (meta["sampler"], meta["guidance"], meta["eta"]) == ("dpmpp-2m", 2.0, 0.0)
    weights = sorted(i.name for i in step.graph.initializer if i.name.startswith("net/"))
    assert weights and sorted(i.name for i in proto.graph.initializer if i.name.startswith("net/")) == weights
    convs = sum(n.op_type == "Conv" for n in step.graph.node)
    assert sum(n.op_type == "Conv" for n in proto.graph.node) == 6 * convs  # six steps, one set of weights
    assert (
        props(exported.unrolled_path)["scarlet_moon.source_fingerprint"]
        == props(exported.path)["scarlet_moon.source_fingerprint"]
    )


def test_unrolled_loop_gives_the_step_loops_sprites_in_one_run(exported):
    from scarlet_moon.backends.onnx_backend import OnnxDenoiser

    req = request((0, 1, 2, 2, 0, 1, 1), seed=5, steps=6)
    host = OnnxDenoiser(exported.path, "cpu", loop="host")
    dev = OnnxDenoiser(exported.path, "cpu", loop="device")
    unr = OnnxDenoiser(exported.path, "cpu", loop="unrolled")
    a, b, c = sprites_of(host, req), sprites_of(dev, req), sprites_of(unr, req)
    assert c.shape == (7, 8, 8, 4)
    assert np.array_equal(b, c)  # byte for byte the step-by-step device loop
    assert np.abs(a.astype(int) - c.astype(int)).max() <= 1  # and the host loop up to float rounding
    assert unr.calls == 0 and dev._unrolled is None and unr._step is None  # each took its own path
    assert [loop.runs for loop in unr._unrolled_loops.values()] == [1]  # one run for the whole sampling
    assert np.array_equal(sprites_of(unr, req), c)  # buffers reused: same sprites again
    big = request(tuple(range(3)) * 5, seed=1, steps=6)  # another batch size: its own bound loop
    assert np.array_equal(sprites_of(unr, big), sprites_of(dev, big))
    assert sorted(unr._unrolled_loops) == [7, 15]


def test_another_sampling_is_refused_or_left_to_the_other_loops(exported):
    from scarlet_moon.backends.onnx_backend import OnnxDenoiser
    from scarlet_moon.diffusion.editing import Edit
    from scarlet_moon.errors import BadInput

    unr = OnnxDenoiser(exported.path, "cpu", loop="unrolled")
    for other in (dict(steps=7), dict(steps=6, guidance=3.0), dict(steps=6, sampler="ddim")):
        with pytest.raises(
            BadInput, match=r"m\.unrolled\.onnx.*runs sampler dpmpp-2m, steps 6, guidance 2, eta 0\.0; asked: "
        ):
            sprites_of(unr, request((0, 1), seed=0, **other))
    auto = OnnxDenoiser(exported.path, "cpu")  # auto on the CPU: the host loop
    assert sprites_of(auto, request((0, 1), seed=0, steps=6)).shape == (2, 8, 8, 4) and auto.calls == 6
    ran = sprites_of(unr, request((0,), seed=0, steps=6, edit=Edit(tileable=True)))  # edits: the host loop
    assert ran.shape == (1, 8, 8, 4) and unr.calls > 0 and not unr._unrolled_loops


def test_unrolled_loop_needs_its_graph_from_this_checkpoint(exported, tmp_path: Path):
    import onnx

    from scarlet_moon.backends.onnx_backend import OnnxDenoiser
    from scarlet_moon.errors import BadInput

    lone = tmp_path / "lone.onnx"
    shutil.copy(exported.path, lone)
    with pytest.raises(BadInput, match="lone.unrolled.onnx"):
        sprites_of(OnnxDenoiser(lone, "cpu", loop="unrolled"), request((0,), seed=0, steps=6))
    proto = onnx.load(str(exported.unrolled_path))
    for p in proto.metadata_props:
        if p.key == "scarlet_moon.source_fingerprint":
            p.value = "0" * 16
    onnx.save(proto, str(tmp_path / "lone.unrolled.onnx"))
    with pytest.raises(BadInput, match="another checkpoint"):
        sprites_of(OnnxDenoiser(lone, "cpu", loop="unrolled"), request((0,), seed=0, steps=6))


def test_nan_is_reported_with_its_step(exported, tmp_path: Path):
    import onnx

    from scarlet_moon.backends.onnx_backend import OnnxDenoiser
    from scarlet_moon.backends.onnx_device import unrolled_plan
    from scarlet_moon.errors import RunFailed
    from scarlet_moon.onnx.unrolled_graph import build_unrolled_proto

    card = OnnxDenoiser(exported.path, "cpu").card
    plan = unrolled_plan(card.schedule, sampler="ddim", steps=3, guidance=2.0)
    plan["steps"][1]["coef"][4] = 1e39  # step 2's guidance: inf in float32
    meta = {"sampler": "ddim", "guidance": 2.0, "eta": 0.0, "timesteps": [int(s["t"]) for s in plan["steps"]]}
    onnx.save(build_unrolled_proto(onnx.load(str(exported.step_path)), plan, meta), str(tmp_path / "m.unrolled.onnx"))
    shutil.copy(exported.path, tmp_path / "m.onnx")
    unr = OnnxDenoiser(tmp_path / "m.onnx", "cpu", loop="unrolled")
    with pytest.raises(RunFailed, match=rf"NaN/inf at step 2 \(timestep {meta['timesteps'][1]}\)"):
        sprites_of(unr, request((0, 1), seed=0, sampler="ddim", steps=3))


def test_a_sampler_that_adds_noise_gets_no_unrolled_graph(tiny_model: Path, exported, tmp_path: Path):
    from scarlet_moon.onnx.export import export_onnx
    from scarlet_moon.options import SamplingOptions

    out = tmp_path / "m.onnx"
    shutil.copy(exported.unrolled_path, tmp_path / "m.unrolled.onnx")  # left by an earlier export
    res = export_onnx(tiny_model, out, unroll=SamplingOptions(sampler="ddpm", steps=5))
    assert res.unrolled_path is None and "adds noise" in res.unrolled_note and res.step_path.is_file()
    assert not (tmp_path / "m.unrolled.onnx").exists()  # a stale one would name another sampling
    res = export_onnx(tiny_model, out, unroll=SamplingOptions(sampler="ddim", steps=4, eta=0.5))
    assert res.unrolled_path is None and "eta 0.5 adds noise" in res.unrolled_note


def test_cli_export_writes_and_skips_the_unrolled_graph(tiny_model: Path, tmp_path: Path):
    from scarlet_moon.cli.main import sm

    res = CliRunner().invoke(sm, ["export-onnx", "--model", str(tiny_model), "--out", str(tmp_path / "a.onnx")])
    assert res.exit_code == 0, res.output
    assert "unrolled graph vs step loop 0.00e+00" in " ".join(res.output.split())
    assert str(tmp_path / "a.unrolled.onnx") in res.output.splitlines()
    from scarlet_moon.backends import read_card

    default = read_card(tiny_model).defaults()  # the card's default sampling
    meta = json.loads(props(tmp_path / "a.unrolled.onnx")[META])
    assert (meta["sampler"], meta["steps"], meta["guidance"]) == (
        default["sampler"],
        default["steps"],
        default["guidance"],
    )
    res = CliRunner().invoke(
        sm, ["export-onnx", "--model", str(tiny_model), "--out", str(tmp_path / "a.onnx"), "--no-unrolled", "--force"]
    )
    assert res.exit_code == 0 and not (tmp_path / "a.unrolled.onnx").exists()
    res = CliRunner().invoke(sm, ["export-onnx", "--model", str(tiny_model), "--out", str(tmp_path / "b.step.onnx")])
    assert res.exit_code == 2 and "b.step.onnx" in res.output and not (tmp_path / "b.step.onnx").exists()


@pytest.mark.parametrize("change", ["steps", "timesteps", "sampler", "format", "io"])
def test_a_tampered_unrolled_graph_is_one_error(exported, tmp_path: Path, change: str):
    import onnx

    from scarlet_moon.backends.onnx_backend import OnnxDenoiser
    from scarlet_moon.errors import BadInput

    shutil.copy(exported.path, tmp_path / "m.onnx")
    proto = onnx.load(str(exported.unrolled_path))
    entry = next(p for p in proto.metadata_props if p.key == META)
    meta = json.loads(entry.value)
    if change == "io":
        proto.graph.output[1].name = "flags"  # a graph onnxruntime loads, with other outputs
        proto.graph.node[-1].output[0] = "flags"
    else:
        meta[change] = {"steps": "6", "timesteps": [1, 2], "sampler": 3, "format": "other"}[change]
        entry.value = json.dumps(meta)
    onnx.save(proto, str(tmp_path / "m.unrolled.onnx"))
    with pytest.raises(
        BadInput,
        match=r"unrolled\.onnx beside the model has (malformed metadata|inputs)"
        if change != "format"
        else "not a Scarlet Moon unrolled graph",
    ):
        sprites_of(OnnxDenoiser(tmp_path / "m.onnx", "cpu", loop="unrolled"), request((0,), seed=0, steps=6))


def test_a_folder_in_the_way_of_a_side_graph_is_refused_before_anything_is_written(tiny_model: Path, tmp_path: Path):
    from scarlet_moon.cli.main import sm

    for side in ("m.unrolled.onnx", "m.step.onnx"):
        folder = tmp_path / side
        folder.mkdir()
        res = CliRunner().invoke(sm, ["export-onnx", "--model", str(tiny_model), "--out", str(tmp_path / "m.onnx")])
        assert res.exit_code == 2 and f"{side}' is in the way" in " ".join(res.output.split()), res.output
        assert sorted(p.name for p in tmp_path.iterdir()) == [side]  # no model, no other graph, no temp
        folder.rmdir()
