"""The device-resident onnxruntime loop (fused step graph + Lazy sampler state), run here on the
CPU provider with CPU OrtValues: the same code path CUDA takes, minus CUDA graphs."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import request, sprites_of

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
pytest.importorskip("onnxscript")


@pytest.fixture(scope="module")
def exported(tiny_model: Path, tmp_path_factory):
    from scarlet_moon.onnx.export import export_onnx

    out = tmp_path_factory.mktemp("device-loop") / "m.onnx"
    return export_onnx(tiny_model, out)


def test_export_writes_a_parity_checked_step_graph(exported):
    import onnx

    assert exported.step_path == exported.path.with_name("m.step.onnx") and exported.step_path.is_file()
    assert exported.step_diff is not None and exported.step_diff <= 1e-4
    proto = onnx.load(str(exported.step_path))
    assert [i.name for i in proto.graph.input] == ["b0", "b1", "b2", "b3", "coef", "t", "y"]
    assert [o.name for o in proto.graph.output] == ["x", "x0", "bad"]
    keys = {p.key for p in proto.metadata_props}
    assert {"scarlet_moon.step_graph", "scarlet_moon.card", "scarlet_moon.source_fingerprint"} <= keys


@pytest.mark.parametrize("sampler,eta,guidance", [("dpmpp-2m", 0.0, 2.0), ("ddim", 0.6, 3.0), ("ddpm", 0.0, 1.0)])
def test_device_loop_matches_host_loop(exported, sampler: str, eta: float, guidance: float):
    from scarlet_moon.backends.onnx_backend import OnnxDenoiser

    host = OnnxDenoiser(exported.path, "cpu", loop="host")
    dev = OnnxDenoiser(exported.path, "cpu", loop="device")
    req = request((0, 1, 2, 2, 0, 1, 1), seed=5, sampler=sampler, steps=7, guidance=guidance, eta=eta)
    a = sprites_of(host, req)
    b = sprites_of(dev, req)
    assert dev._step is not None and host._step is None  # each took its own path
    assert a.shape == b.shape == (7, 8, 8, 4)
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1  # float rounding only
    assert (a == b).mean() >= 0.99
    c = sprites_of(dev, req)  # buffers reused: same sprites again
    assert np.array_equal(b, c)


def test_device_loop_needs_its_step_graph(exported, tmp_path: Path):
    from scarlet_moon.backends.onnx_backend import OnnxDenoiser
    from scarlet_moon.errors import BadInput

    lone = tmp_path / "lone.onnx"
    shutil.copy(exported.path, lone)
    req = request((0, 1), seed=0, steps=2)
    with pytest.raises(BadInput, match="lone.step.onnx"):
        sprites_of(OnnxDenoiser(lone, "cpu", loop="device"), req)
    auto = OnnxDenoiser(lone, "cpu")  # auto on CPU: the host loop, no error
    assert sprites_of(auto, req).shape == (2, 8, 8, 4)


def test_step_graph_from_another_checkpoint_is_refused(exported, tmp_path: Path):
    import onnx

    from scarlet_moon.backends.onnx_backend import OnnxDenoiser
    from scarlet_moon.errors import BadInput

    shutil.copy(exported.path, tmp_path / "m.onnx")
    proto = onnx.load(str(exported.step_path))
    for p in proto.metadata_props:
        if p.key == "scarlet_moon.source_fingerprint":
            p.value = "0" * 16
    onnx.save(proto, str(tmp_path / "m.step.onnx"))
    sess = OnnxDenoiser(tmp_path / "m.onnx", "cpu", loop="device")
    with pytest.raises(BadInput, match="another checkpoint"):
        sprites_of(sess, request((0,), seed=0, steps=2))


def test_nan_is_reported_with_its_step(exported):
    from scarlet_moon.backends.onnx_backend import OnnxDenoiser
    from scarlet_moon.errors import RunFailed

    dev = OnnxDenoiser(exported.path, "cpu", loop="device")
    req = request((0, 1), seed=0, steps=3, guidance=1e39)  # finite, but past float32: inf in the graph
    with pytest.raises(RunFailed, match=r"NaN/inf at step 1 "):
        sprites_of(dev, req)


def test_lazy_state_is_linear_only():
    from scarlet_moon.backends.onnx_device import Lazy

    a, b = Lazy({0: 1.0}), Lazy({1: 2.0})
    c = a * 3 + b * 0.5 - a
    assert c.terms == {0: 2.0, 1: 1.0}
    with pytest.raises(TypeError):
        a * b
    with pytest.raises(TypeError):
        a.clip(-1, 1)
