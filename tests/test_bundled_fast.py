"""The bundled model is a few-step student (issue 15): its card, its shipped ONNX export, the default
backend that runs it without torch, its 25-step teacher by name (`bundled-25`), and fine-tuning that
starts from the teacher."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import request, sprites_of

from scarlet_moon import generate
from scarlet_moon.backends import BackendOptions, default_backend, read_card
from scarlet_moon.data.images import read_image
from scarlet_moon.errors import BadInput
from scarlet_moon.models.card import BUNDLED_MODEL, BUNDLED_MODELS, BUNDLED_TEACHER, file_fingerprint

STUDENT_STEPS = 4


def test_the_default_model_is_a_few_step_student_of_bundled_25():
    card, teacher = read_card(None), read_card("bundled-25")
    assert card.path == BUNDLED_MODEL and BUNDLED_MODELS["bundled-16"] == BUNDLED_MODEL
    assert card.defaults() == {"sampler": "ddim", "steps": STUDENT_STEPS, "guidance": 2.0}
    info = card.meta["fewstep"]
    assert info["steps"] == STUDENT_STEPS and "Salimans" in info["method"]
    assert info["teacher"] == file_fingerprint(BUNDLED_TEACHER)  # the 25-step model shipped beside it
    assert teacher.defaults() == {"sampler": "dpmpp-2m", "steps": 25, "guidance": 2.0}
    assert card.guidance_base == teacher.guidance_base == 2.0  # both one row per step at guidance 2
    assert card.label_names == teacher.label_names and card.size == teacher.size
    assert "bundled-25" in (BUNDLED_MODEL.parent / "README.md").read_text()
    assert (BUNDLED_TEACHER.parent / "README.md").is_file()


def test_its_onnx_export_ships_beside_it_and_is_the_default_backend(monkeypatch):
    onnx_card = read_card(BUNDLED_MODEL.with_suffix(".onnx"))
    assert onnx_card.meta["onnx"]["source_fingerprint"] == file_fingerprint(BUNDLED_MODEL)
    assert onnx_card.defaults() == read_card(None).defaults()
    card = read_card(None)
    assert default_backend(card) == "onnx" and BackendOptions().for_model(card).backend == "onnx"
    assert BackendOptions(compile=True).for_model(card).backend == "torch"  # torch options: torch
    assert BackendOptions(device="cuda").for_model(card).backend == "torch"  # as before for CUDA
    assert BackendOptions(backend="torch").for_model(card).backend == "torch"
    assert default_backend(read_card("bundled-25")) == "torch"  # no export ships with the teacher
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)  # an install without onnxruntime
    assert default_backend(card) == "torch"


def test_the_default_sheet_runs_onnx_without_torch(tmp_path: Path, sm_env):
    """`sm sheet --label 5 --count 8`: the default model on the default backend, torch never imported,
    each frame made with the card's ddim 4 steps."""
    code = (
        "import json, sys\nfrom scarlet_moon.cli.main import sm\ntry:\n"
        "    sm.main(sys.argv[1:], prog_name='sm', standalone_mode=False)\nfinally:\n"
        "    print(json.dumps('torch' in sys.modules), file=sys.stderr)\n"
    )
    out = tmp_path / "hero.png"
    sm_env["SCARLET_MOON_CACHE"] = str(tmp_path / "cache")  # nothing exported: the shipped file serves
    proc = subprocess.run(
        [sys.executable, "-c", code, "-q", "sheet", "--label", "5", "--count", "8", "--out", str(out)],
        cwd=tmp_path,
        env=sm_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stderr.strip().splitlines()[-1]) is False
    frames = json.loads(out.with_suffix(".json").read_text())["frames"]
    data = [f["data"] for f in frames.values()]
    assert len(data) == 8 and {(d["meta"]["sampler"], d["meta"]["steps"]) for d in data} == {("ddim", STUDENT_STEPS)}
    assert not (tmp_path / "cache" / "onnx").exists()  # no export made: the shipped file served
    assert len(list((tmp_path / "cache" / "ort").glob("*.opt.onnx"))) == 1  # onnxruntime's graph, kept


MODULES = ("torch", "rich", "importlib.metadata", "concurrent.futures", "PIL", "scarlet_moon.exporters.packer")


@pytest.mark.parametrize("terminal", [False, True])
def test_interactive_sample_imports_only_what_it_uses(tmp_path: Path, sm_env, terminal: bool):
    """`sm sample --count 1` as a plugin or UI runs it (stderr piped) imports neither torch nor rich,
    Pillow nor the packer (interactive latency); with FORCE_TERMINAL, rich draws. The same lines
    either way, and the PNG is the sprite."""
    code = (
        "import json, sys\nfrom scarlet_moon.cli.main import sm\ntry:\n"
        "    sm.main(sys.argv[1:], prog_name='sm', standalone_mode=False)\nfinally:\n"
        f"    print(json.dumps({{m: m in sys.modules for m in {MODULES!r}}}), file=sys.stderr)\n"
    )
    sm_env["SCARLET_MOON_CACHE"] = str(tmp_path / "cache")
    sm_env.pop("FORCE_TERMINAL", None)
    if terminal:
        sm_env.update(FORCE_TERMINAL="1", COLUMNS="200")
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "sample",
            "--label",
            "5",
            "--count",
            "1",
            "--seed",
            "7",
            "--out",
            str(tmp_path / "d"),
        ],
        cwd=tmp_path,
        env=sm_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    *lines, mods = proc.stderr.strip().splitlines()
    assert json.loads(mods) == {
        "torch": False,
        "rich": terminal,
        "importlib.metadata": False,
        "concurrent.futures": False,
        "PIL": False,
        "scarlet_moon.exporters.packer": False,
    }
    assert any(line.startswith("backend: onnxruntime") for line in lines), lines
    assert proc.stdout.split() == [str(tmp_path / "d" / "hero_000.png")]
    assert np.array_equal(
        read_image(tmp_path / "d" / "hero_000.png"), np.asarray(generate(label=5, count=1, seed=7)[0])
    )


def test_torch_and_onnx_give_the_same_student_sprites():
    req = request((5, 5, 0, 3), seed=3)
    a = sprites_of(None, req, backend="torch")
    b = sprites_of(None, req)  # the default: onnx
    assert a.shape == b.shape == (4, 16, 16, 4)
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


def test_the_25_step_teacher_stays_reachable(tmp_path: Path):
    from click.testing import CliRunner

    from scarlet_moon.cli.main import sm

    res = CliRunner().invoke(
        sm,
        [
            "sample",
            "--model",
            "bundled-25",
            "--label",
            "hero",
            "--count",
            "2",
            "--steps",
            "25",
            "--out",
            str(tmp_path / "t"),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    meta = json.loads(res.stdout.strip().splitlines()[-1])["meta"]
    assert meta["sampler"] == "dpmpp-2m" and meta["steps"] == 25
    assert len(list((tmp_path / "t").glob("hero_*.png"))) == 2


def test_fine_tuning_from_bundled_starts_from_the_ordinary_prior(tmp_path: Path, tiny_model: Path):
    """--init-from bundled: the plain-loss denoiser bundled-prior, not the student nor the guidance-distilled
    teacher (which stays reachable by name)."""
    from scarlet_moon.models.card import BUNDLED_PRIOR, read_meta
    from scarlet_moon.models.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
    from scarlet_moon.training.finetune import parent_card

    assert parent_card("bundled").path == BUNDLED_PRIOR and parent_card(None).path == BUNDLED_PRIOR
    assert parent_card("bundled-prior").path == BUNDLED_PRIOR
    assert "distilled" not in read_meta(BUNDLED_PRIOR) and "fewstep" not in read_meta(BUNDLED_PRIOR)
    assert parent_card("bundled-25").path == BUNDLED_TEACHER
    ck = load_checkpoint(tiny_model, with_optim=False)
    student = tmp_path / "few.safetensors"
    save_checkpoint(student, Checkpoint(meta=dict(ck.meta, fewstep={"steps": 2}), model=ck.weights))
    with pytest.raises(BadInput, match="few-step student"):
        parent_card(student)


def test_the_metadata_scan_reads_what_onnxruntime_reads(tmp_path: Path):
    """backends.onnx_meta.metadata_props (the fingerprint check before a session opens) walks the
    protobuf by seeking; it must agree with onnxruntime and refuse what is not an ONNX model."""
    import onnxruntime as ort

    from scarlet_moon.backends.onnx_meta import metadata_props

    shipped = BUNDLED_MODEL.with_suffix(".onnx")
    sess = ort.InferenceSession(str(shipped), providers=["CPUExecutionProvider"])
    assert metadata_props(shipped) == dict(sess.get_modelmeta().custom_metadata_map)
    data = shipped.read_bytes()
    for name, blob in [("cut.onnx", data[: len(data) // 2]), ("junk.onnx", b"\xff" * 64), ("png.onnx", b"\x89PNG\r\n")]:
        (tmp_path / name).write_bytes(blob)
        with pytest.raises(BadInput, match="is not a loadable ONNX model"):
            metadata_props(tmp_path / name)


FAST_EXIT_PROBE = (
    "import atexit, sys\natexit.register(lambda: print('ATEXIT', file=sys.stderr))\n"
    "sys.argv = ['sm', *sys.argv[1:]]\nfrom scarlet_moon.cli.main import main\nmain()\n"
)


@pytest.mark.parametrize("fast", [True, False])
def test_a_successful_sample_ends_without_the_interpreters_teardown(tmp_path: Path, sm_env, fast: bool):
    """The `sm` console script ends `sm sample` with os._exit once its files are written and its output
    flushed (SM_FAST_EXIT=0: the normal exit, atexit handlers and all); a failure exits normally."""
    sm_env["SCARLET_MOON_CACHE"] = str(tmp_path / "cache")
    sm_env["SM_FAST_EXIT"] = "1" if fast else "0"
    out = tmp_path / "d"
    proc = subprocess.run(
        [sys.executable, "-c", FAST_EXIT_PROBE, "sample", "--label", "5", "--count", "2", "--out", str(out)],
        cwd=tmp_path,
        env=sm_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [str(out / "hero_000.png"), str(out / "hero_001.png")]  # flushed, in full
    assert sorted(p.name for p in out.iterdir()) == ["hero_000.png", "hero_001.png"]
    assert ("ATEXIT" in proc.stderr) is not fast
    bad = subprocess.run(
        [sys.executable, "-c", FAST_EXIT_PROBE, "sample", "--label", "dragon", "--out", str(tmp_path / "e")],
        cwd=tmp_path,
        env=sm_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 2 and "ATEXIT" in bad.stderr and "Traceback" not in bad.stderr
    assert "dragon" in bad.stderr.splitlines()[0]


def test_fast_exit_is_off_under_torchrun_and_when_asked(monkeypatch):
    from scarlet_moon.cli.main import fast_exit_allowed

    monkeypatch.delenv("SM_FAST_EXIT", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert fast_exit_allowed()
    for world in ("2", "x"):
        monkeypatch.setenv("WORLD_SIZE", world)
        assert not fast_exit_allowed()
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("SM_FAST_EXIT", "0")
    assert not fast_exit_allowed()
