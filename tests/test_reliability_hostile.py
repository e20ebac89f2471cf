"""Hostile input that used to cost memory, hang, or reach the terminal raw (docs/errors.md, "Limits"):
each class has a test here or a row in the table that test_reliability runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import HANG, ROOT, sm_cmd
from PIL import Image
from reliability_workspace import relabelled_model

from scarlet_moon.cli.main import sm

# VmHWM (the peak resident set of this process image): ru_maxrss would keep the forked pytest's peak
RSS = """
import sys
from scarlet_moon.cli.main import sm
try:
    sm.main(sys.argv[1:], prog_name="sm")
except SystemExit as exc:
    code = exc.code
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print("peak_kib", hwm.split()[1], file=sys.stderr)
sys.exit(code)
"""


def run_measured(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, str, float]:
    """(exit code, stderr without the measurement, peak resident memory in MiB) of `sm ARGS`."""
    proc = subprocess.run([sys.executable, "-c", RSS, *args], cwd=cwd, env=env, capture_output=True, text=True)
    lines = proc.stderr.strip().splitlines()
    peak = float(lines[-1].split()[1]) / 1024
    return proc.returncode, "\n".join(lines[:-1]), peak


@pytest.mark.reliability
@pytest.mark.parametrize("command", ["data", "sheet"])
def test_a_9000x9000_png_is_refused_from_its_header(tmp_path: Path, sm_env, command: str):
    """81 Mpx in a few KB: refused before a pixel is decoded (a decode alone would take 324 MB)."""
    big = tmp_path / "set" / "a" / "0.png"
    big.parent.mkdir(parents=True)
    Image.new("1", (9000, 9000)).save(big)
    assert big.stat().st_size < 100_000
    args = ["data", "inspect", "set"] if command == "data" else ["sheet", "--from", "set/a", "--out", "s.png"]
    code, err, peak_mib = run_measured(args, tmp_path, sm_env)
    assert code == 2 and err.startswith("error: ") and "9000x9000" in err and "\n" not in err
    assert peak_mib < 300, f"peak memory {peak_mib:.0f} MiB"  # about 45 MiB measured
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]


@pytest.mark.reliability
def test_labels_from_a_model_file_reach_the_terminal_escaped(tiny_model: Path, tmp_path: Path):
    """Clear-screen and OSC title sequences in label names are printed as visible escapes; rich markup
    in them stays text (no hidden hyperlink)."""
    evil = ["\x1b[2J\x1b]0;owned\x07", "[link=https://example.invalid]click[/link]", "blue"]
    model = tmp_path / "ansi.safetensors"
    relabelled_model(tiny_model, model, evil)
    res = CliRunner().invoke(sm, ["labels", "--model", str(model)])
    assert res.exit_code == 0 and "\x1b" not in res.stdout and "\x07" not in res.stdout
    assert res.stdout.splitlines()[0] == "0\t\\x1b[2J\\x1b]0;owned\\x07"
    assert json.loads(CliRunner().invoke(sm, ["labels", "--model", str(model), "--json"]).stdout)[0]["name"] == evil[0]
    info = CliRunner().invoke(sm, ["info", str(model)])
    assert (
        info.exit_code == 0
        and "\x1b" not in info.output
        and "[link=https://example.invalid]click[/link]" in info.output
    )
    bad = CliRunner().invoke(
        sm, ["sample", "--model", str(model), "--label", "\x1b[31mred", "--out", str(tmp_path / "o")]
    )
    assert bad.exit_code == 2 and "\x1b" not in bad.stderr and "\\x1b[31mred" in bad.stderr


@pytest.mark.reliability
def test_a_stray_world_size_is_one_line_not_a_30_minute_wait(tiny_model: Path, tmp_path: Path, sm_env):
    env = {
        **{k: v for k, v in sm_env.items() if k not in ("MASTER_ADDR", "TORCHELASTIC_RUN_ID")},
        "WORLD_SIZE": "2",
        "RANK": "0",
    }
    proc = subprocess.run(
        sm_cmd("sheet", "--model", str(tiny_model), "--count", "2", "--out", str(tmp_path / "s.png")),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "error: environment WORLD_SIZE=2 is set, but this process was not started by torchrun (none of "
        "MASTER_ADDR, TORCHELASTIC_RUN_ID is set); unset WORLD_SIZE, or start it with torchrun"
    ]
    assert list(tmp_path.iterdir()) == []


def test_sheet_from_16bit_and_float_images_scales_them(tmp_path: Path):
    """One reader for every command: a 16-bit grey PNG is scaled to 8 bits, not clipped to black and white."""
    (tmp_path / "in").mkdir()
    ramp = np.linspace(0, 65535, 64).astype(np.uint16).reshape(8, 8)
    Image.fromarray(ramp).save(tmp_path / "in" / "g_000.png")  # a 16-bit grey PNG (mode I;16)
    res = CliRunner().invoke(
        sm, ["sheet", "--from", str(tmp_path / "in"), "--out", str(tmp_path / "s.png"), "--padding", "0"]
    )
    assert res.exit_code == 0, res.output
    got = np.asarray(Image.open(tmp_path / "s.png").convert("RGBA"))[..., 0]
    assert np.array_equal(got, np.rint(ramp / 257.0).astype(np.uint8))
    assert len(np.unique(got)) > 32  # not two levels


def test_labels_that_sanitise_alike_never_share_a_frame_name(tiny_model: Path, tmp_path: Path):
    """`a b` and `a_b` (and `Hero`/`hero` on a case-insensitive disk) would both be `a_b_000`: each gets
    its label index, checked before sampling, and the sheet and sample files keep every sprite."""
    model = tmp_path / "alike.safetensors"
    relabelled_model(tiny_model, model, ["a b", "a_b", "blue"])
    args = ["--model", str(model), "--label", "0", "--label", "1", "--count", "4", "--steps", "1"]
    res = CliRunner().invoke(sm, ["sheet", *args, "--out", str(tmp_path / "s.png"), "--no-dedupe"])
    assert res.exit_code == 0, res.output
    assert sorted(json.loads((tmp_path / "s.json").read_text())["frames"]) == [
        "a_b-0_000",
        "a_b-0_001",
        "a_b-1_000",
        "a_b-1_001",
    ]
    res = CliRunner().invoke(sm, ["sample", *args, "--out", str(tmp_path / "o")])
    assert res.exit_code == 0 and len(list((tmp_path / "o").iterdir())) == 4
    assert os.path.exists(tmp_path / "o" / "a_b-1_001.png")
