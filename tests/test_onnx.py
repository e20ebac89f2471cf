"""ONNX export (`sm export-onnx`), the onnxruntime backend, `--backend`, `sm doctor`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
pytest.importorskip("onnxscript")

from conftest import HANG, ROOT, request, sprites_of  # noqa: E402

from scarlet_moon.cli.main import sm  # noqa: E402
from scarlet_moon.errors import BadInput  # noqa: E402


@pytest.fixture(scope="module")
def exported(tiny_model: Path):
    """(result, path): the model exported beside its checkpoint (model.onnx)."""
    from scarlet_moon.onnx.export import export_onnx

    out = tiny_model.with_suffix(".onnx")
    return export_onnx(tiny_model, out), out


def invoke(*args: str):
    return CliRunner().invoke(sm, list(args))


def one_line_error(res) -> str:
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), res.output
    return lines[0]


def test_export_is_one_file_with_dynamic_batch_and_parity(exported):
    import onnx
    import onnxruntime as ort

    res, path = exported
    assert res.precision == "fp32" and res.bytes == path.stat().st_size
    assert set(res.max_abs_diff) == {2, 5}
    assert max(res.max_abs_diff.values()) <= 1e-4, res.max_abs_diff
    assert not list(path.parent.glob("*.onnx.data"))  # external_data=False: one file
    proto = onnx.load(str(path))
    assert [i.name for i in proto.graph.input] == ["x", "t", "y"]
    for vi in list(proto.graph.input) + list(proto.graph.output):
        assert vi.type.tensor_type.shape.dim[0].dim_param == "batch", vi.name
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for b in (1, 7):
        out = sess.run(
            None,
            {"x": np.zeros((b, 4, 8, 8), np.float32), "t": np.full(b, 3.5, np.float32), "y": np.full(b, 3, np.int64)},
        )[0]
        assert out.shape == (b, 4, 8, 8)


def test_metadata_round_trip(tiny_model: Path, exported):
    from scarlet_moon import __version__
    from scarlet_moon.backends import read_card
    from scarlet_moon.backends.onnx_backend import OnnxDenoiser
    from scarlet_moon.backends.onnx_meta import read_onnx_card
    from scarlet_moon.models.card import file_fingerprint

    _, path = exported
    src = read_card(tiny_model)
    card = read_onnx_card(path)
    assert card.path == path
    for key in (
        "label_names",
        "image_size",
        "channels",
        "schedule",
        "prediction",
        "palette",
        "config",
        "data_fingerprint",
        "step",
    ):
        assert card.meta[key] == src.meta[key], key
    assert card.defaults() == src.defaults() and card.schedule == src.schedule
    assert np.array_equal(card.palette, src.palette)
    onnx_meta = card.meta["onnx"]
    assert onnx_meta["source_fingerprint"] == file_fingerprint(tiny_model)
    assert onnx_meta["package_version"] == __version__ and onnx_meta["precision"] == "fp32"
    sess = OnnxDenoiser(path, "cpu")
    assert sess.device == "cpu" and sess.providers[0] == "CPUExecutionProvider"
    assert sess.card.meta == card.meta


def test_foreign_onnx_is_bad_input(tmp_path: Path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    foreign = tmp_path / "foreign.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(foreign))
    res = invoke("sample", "--model", str(foreign), "--out", str(tmp_path / "o"))
    assert res.exit_code == 2
    assert "not a Scarlet Moon ONNX model" in one_line_error(res)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a protobuf at all")
    res = invoke("sample", "--model", str(junk), "--out", str(tmp_path / "o"))
    assert res.exit_code == 2 and "not a loadable ONNX model" in one_line_error(res)


@pytest.mark.parametrize("sampler", ["ddim", "dpmpp-2m"])
def test_torch_and_onnx_sprites_agree(tiny_model: Path, exported, sampler: str):
    from scarlet_moon.backends import read_card

    _, path = exported
    tcard, ocard = read_card(tiny_model), read_card(path)
    req = request((0, 1, 2, 2, 0, 1), seed=7, sampler=sampler, steps=6, guidance=2.0)
    a = sprites_of(tcard, req, raw=False)
    b = sprites_of(ocard, req, raw=False)
    assert a.shape == b.shape == (6, 8, 8, 4)
    same = np.all(a == b, axis=-1).mean()
    assert same >= 0.99, same


def test_cli_backend_onnx_sibling_and_default(tiny_model: Path, exported, tmp_path: Path):
    _, path = exported
    res = invoke(
        "sample",
        "--model",
        str(tiny_model),
        "--backend",
        "onnx",
        "--count",
        "3",
        "--steps",
        "3",
        "--out",
        str(tmp_path / "a"),
    )
    assert res.exit_code == 0, res.output
    assert "backend: onnxruntime" in res.stderr and "CPUExecutionProvider" in res.stderr
    res2 = invoke("sample", "--model", str(path), "--count", "3", "--steps", "3", "--out", str(tmp_path / "b"))
    assert res2.exit_code == 0, res2.output
    for p in (tmp_path / "a").glob("*.png"):
        assert p.read_bytes() == (tmp_path / "b" / p.name).read_bytes()
    res3 = invoke("sample", "--model", str(path), "--backend", "torch", "--out", str(tmp_path / "c"))
    assert res3.exit_code == 2 and "--backend torch" in one_line_error(res3)


NO_TORCH = """
import json, sys
from scarlet_moon.cli.main import sm
try:
    sm.main(sys.argv[1:], prog_name="sm", standalone_mode=False)
finally:
    print(json.dumps({m: m in sys.modules for m in ("torch", "onnx", "onnxruntime")}), file=sys.stderr)
"""


def _run_no_torch(args: list[str], sm_env: dict[str, str]) -> dict[str, bool]:
    proc = subprocess.run(
        [sys.executable, "-c", NO_TORCH, *args], cwd=ROOT, env=sm_env, capture_output=True, text=True, timeout=HANG
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stderr.strip().splitlines()[-1])


def test_onnx_backend_imports_neither_torch_nor_onnx(tiny_model: Path, exported, tmp_path: Path, sm_env):
    _, path = exported
    common = ["--label", "red", "--label", "blue", "--count", "4", "--steps", "3"]
    mods = _run_no_torch(
        ["sheet", "--backend", "onnx", "--model", str(tiny_model), *common, "--out", str(tmp_path / "s.png")], sm_env
    )
    assert mods == {"torch": False, "onnx": False, "onnxruntime": True}
    assert (tmp_path / "s.png").is_file() and (tmp_path / "s.json").is_file()
    mods = _run_no_torch(["sample", "--model", str(path), *common, "--out", str(tmp_path / "o")], sm_env)
    assert mods == {"torch": False, "onnx": False, "onnxruntime": True}
    assert len(list((tmp_path / "o").glob("*.png"))) == 4


def _card_reads_onnx(path: Path) -> bool:
    from scarlet_moon.backends import read_card
    from scarlet_moon.errors import BadInput

    try:
        return read_card(path).path == path
    except BadInput:
        return False


def test_sheet_with_onnx_model(exported, tmp_path: Path, sm_env):
    _, path = exported
    if not _card_reads_onnx(path):
        pytest.skip("needs scarlet_moon.backends.read_card to dispatch .onnx to onnx_meta.read_onnx_card")
    mods = _run_no_torch(
        ["sheet", "--model", str(path), "--count", "4", "--steps", "3", "--out", str(tmp_path / "s.png")], sm_env
    )
    assert mods == {"torch": False, "onnx": False, "onnxruntime": True}


def test_device_cuda_without_cuda_is_one_line_bad_input(exported, tmp_path: Path):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        from scarlet_moon.backends.onnx_backend import OnnxDenoiser

        if OnnxDenoiser(exported[1], "auto").device == "cuda":
            pytest.skip("a working CUDA provider is present")
    res = invoke(
        "sample", "--model", str(exported[1]), "--device", "cuda", "--count", "2", "--out", str(tmp_path / "o")
    )
    assert res.exit_code == 2
    assert "--device cuda" in one_line_error(res)


def test_export_cli_writes_and_reports(tiny_model: Path, tmp_path: Path):
    out = tmp_path / "m.onnx"
    res = invoke("export-onnx", "--model", str(tiny_model), "--out", str(out), "--opset", "18")
    assert res.exit_code == 0, res.output
    side = [str(tmp_path / "m.step.onnx"), str(tmp_path / "m.unrolled.onnx")]
    assert res.stdout.split() == [str(out), *side] and "max |diff|" in res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "m.onnx",
        "m.step.onnx",
        "m.unrolled.onnx",
    ]  # no temp file left
    solo = tmp_path / "solo"
    solo.mkdir()
    res = invoke("export-onnx", "--model", str(tiny_model), "--out", str(solo / "s.onnx"), "--no-step-graph")
    assert res.exit_code == 0 and [p.name for p in solo.iterdir()] == ["s.onnx"], res.output
    bad = invoke("export-onnx", "--model", str(tiny_model), "--out", str(tmp_path / "m.bin"))
    assert bad.exit_code == 2 and "must end with .onnx" in one_line_error(bad)


def test_fp16_export_keeps_time_embedding_fp32(tiny_model: Path, tmp_path: Path):
    from scarlet_moon.backends.onnx_meta import read_onnx_card
    from scarlet_moon.onnx.export import FP16_TOL, export_onnx

    res = export_onnx(tiny_model, tmp_path / "h.onnx", fp16=True)
    assert res.precision == "fp16" and max(res.max_abs_diff.values()) <= FP16_TOL
    assert read_onnx_card(tmp_path / "h.onnx").meta["onnx"]["precision"] == "fp16"


def test_doctor_never_fails_and_probes_providers():
    from scarlet_moon.cli.cmd_doctor import tiny_onnx_bytes

    res = invoke("doctor")
    assert res.exit_code == 0, res.output
    out = res.stdout
    assert "python:" in out and "scarlet-moon:" in out and "torch:" in out
    assert "onnxruntime: " in out and "from onnxruntime" in out
    assert "providers that load: CPUExecutionProvider" in out
    assert "  TensorRT: not in this onnxruntime build" in out  # the CPU onnxruntime lists no TensorRT EP
    from scarlet_moon.cli.cmd_doctor import tensorrt_line

    assert tensorrt_line({"TensorrtExecutionProvider": True}).startswith("its execution provider loads")
    assert "does not load" in tensorrt_line({"TensorrtExecutionProvider": False, "CUDAExecutionProvider": True})
    import onnxruntime as ort

    sess = ort.InferenceSession(tiny_onnx_bytes(), providers=["CPUExecutionProvider"])
    assert sess.run(None, {"x": np.array([2.5], np.float32)})[0].tolist() == [2.5]


def test_fp32_means_fp32_on_cuda_both_backends(monkeypatch):
    """TF32 off by default (torch and onnxruntime CUDA sprites agreed on 94% of values with it,
    99.997% without; bench/results/onnx_gpu_variants.md); SM_ONNX_CUDA_OPTIONS passes options on."""
    import torch

    from scarlet_moon.backends.onnx_session import cuda_options
    from scarlet_moon.backends.torch_backend import no_tf32

    monkeypatch.delenv("SM_ONNX_CUDA_OPTIONS", raising=False)
    assert cuda_options() == {"use_tf32": "0"}
    monkeypatch.setenv("SM_ONNX_CUDA_OPTIONS", "use_tf32=1, prefer_nhwc=1")
    assert cuda_options(enable_cuda_graph="1") == {"use_tf32": "1", "enable_cuda_graph": "1", "prefer_nhwc": "1"}
    monkeypatch.setenv("SM_ONNX_CUDA_OPTIONS", "oops")
    with pytest.raises(BadInput, match="SM_ONNX_CUDA_OPTIONS entry 'oops': expected key=value"):
        cuda_options()
    before = torch.backends.cudnn.allow_tf32
    with no_tf32():
        assert torch.backends.cudnn.allow_tf32 is False
    assert torch.backends.cudnn.allow_tf32 == before


def test_sprite_meta_names_the_model_the_same_on_both_backends(tiny_model: Path, exported, tmp_path: Path):
    """`model_fingerprint` in `sm sample --json` and in sheet frames is the checkpoint's file fingerprint
    (it held the training data's, which names no model); an .onnx export names the checkpoint it came from."""
    import hashlib

    from scarlet_moon.models.card import read_checkpoint_card

    want = hashlib.sha256(tiny_model.read_bytes()).hexdigest()[:16]
    data = read_checkpoint_card(tiny_model).meta["data_fingerprint"]
    assert data and data != want
    for model in (tiny_model, exported[1]):
        res = invoke(
            "sample",
            "--model",
            str(model),
            "--label",
            "red",
            "--count",
            "1",
            "--json",
            "--out",
            str(tmp_path / model.suffix[1:]),
        )
        assert res.exit_code == 0, res.output
        meta = json.loads(res.stdout)["meta"]
        assert (meta["model_fingerprint"], meta["data_fingerprint"]) == (want, data)
    res = invoke(
        "sheet",
        "--model",
        str(exported[1]),
        "--label",
        "red",
        "--count",
        "2",
        "--out",
        str(tmp_path / "s.png"),
        "--format",
        "json-hash",
    )
    assert res.exit_code == 0, res.output
    frames = json.loads((tmp_path / "s.json").read_text())["frames"].values()
    assert {f["data"]["meta"]["model_fingerprint"] for f in frames} == {want}
