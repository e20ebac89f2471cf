"""`sm sheet` killed (SIGKILL) at random moments, or interrupted (SIGINT / Ctrl-C): the output is
absent or complete, and an interrupted run leaves no partial or temporary file."""

from __future__ import annotations

import json
import os
import random
import select
import signal
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from cli.main import sm
from conftest import ROOT, sm_cmd

COUNT = 5000
INTERRUPTED = "error: interrupted (Ctrl-C); files are written atomically, so none is half-written"


def sheet_cmd(model: Path, out: Path, steps: int) -> list[str]:
    return sm_cmd("sheet", "--model", str(model), "--count", str(COUNT), "--steps", str(steps), "--label", "red",
                  "--label", "blue", "--out", str(out), "--format", "json-hash")


def env_for(sm_env: dict[str, str]) -> dict[str, str]:
    return {**sm_env, "OMP_NUM_THREADS": "1"}


def check_absent_or_complete(folder: Path) -> str:
    """'absent' or 'complete'; fails on anything else (a sheet without atlas, a broken file...)."""
    visible = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
    if not visible:
        return "absent"
    assert visible == ["s.json", "s.png"], f"partial output: {visible}"
    doc = json.loads((folder / "s.json").read_text(encoding="utf-8"))
    with Image.open(folder / "s.png") as im:
        im.load()
        w, h = im.size
    assert doc["meta"]["size"] == {"w": w, "h": h} and doc["meta"]["image"] == "s.png"
    assert len(doc["frames"]) == COUNT
    for f in doc["frames"].values():
        r = f["frame"]
        assert 0 <= r["x"] and 0 <= r["y"] and r["x"] + r["w"] <= w and r["y"] + r["h"] <= h, r
    return "complete"


@pytest.mark.slow
def test_sigkill_sheet_output_absent_or_complete(tiny_model: Path, tmp_path: Path, sm_env):
    """One full run to time it, then 4 runs killed at seeded random moments (the last near the end,
    where the files are written); after each kill the output is absent or complete."""
    env = env_for(sm_env)
    full = tmp_path / "full"
    full.mkdir()
    t0 = time.monotonic()
    subprocess.run(sheet_cmd(tiny_model, full / "s.png", 2), cwd=ROOT, env=env, check=True, capture_output=True)
    took = time.monotonic() - t0
    assert check_absent_or_complete(full) == "complete"
    rng = random.Random(6)
    delays = [rng.uniform(0.1, 1.0) * took for _ in range(3)] + [rng.uniform(0.85, 1.0) * took]
    seen = []
    for i, delay in enumerate(delays):
        folder = tmp_path / f"kill{i}"
        folder.mkdir()
        proc = subprocess.Popen(sheet_cmd(tiny_model, folder / "s.png", 2), cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        seen.append(check_absent_or_complete(folder))
    assert "absent" in seen, f"no kill landed before the end (delays {delays}, full run {took:.1f}s)"


def _wait_for_line(proc: subprocess.Popen, needle: str, timeout: float) -> str:
    """stderr read until a line containing `needle` (the process keeps running)."""
    deadline, seen = time.monotonic() + timeout, ""
    while time.monotonic() < deadline and proc.poll() is None:
        ready, _, _ = select.select([proc.stderr], [], [], 0.1)
        if ready:
            line = proc.stderr.readline()
            seen += line
            if needle in line:
                return seen
    raise AssertionError(f"never printed {needle!r}; stderr so far: {seen!r}")


@pytest.mark.slow
def test_sigint_during_sheet_leaves_nothing(tiny_model: Path, tmp_path: Path, sm_env):
    """Ctrl-C while sampling: exit 130, one line on stderr, no sheet, atlas or temp file."""
    # SIG_DFL in the child: a shell that ran pytest in the background (`cmd &`) leaves SIGINT
    # ignored, and Python then installs no KeyboardInterrupt handler
    proc = subprocess.Popen(sheet_cmd(tiny_model, tmp_path / "s.png", 50), cwd=ROOT, env=env_for(sm_env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        _wait_for_line(proc, "backend:", 120)  # printed right before the model loads and sampling starts
        time.sleep(2.0)  # 50 steps of 5000 sprites take far longer: this lands inside sampling
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert out == "" and err.strip().splitlines() == [INTERRUPTED]
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_reliability_ctrl_c_while_writing_rolls_back(tmp_path: Path, monkeypatch):
    """KeyboardInterrupt between the renames of a sheet's files: nothing stays, not even a temp."""
    import exporters.atomic as atomic

    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        Image.new("RGBA", (8, 8), (40 * i, 0, 0, 255)).save(src / f"walk_{i:03d}.png")
    out = tmp_path / "out"
    out.mkdir()
    real, calls = os.replace, []

    def replace_then_interrupt(a, b):
        calls.append(b)
        if len(calls) == 2:  # the sheet is in place, the atlas not yet
            raise KeyboardInterrupt
        return real(a, b)

    monkeypatch.setattr(atomic.os, "replace", replace_then_interrupt)
    res = CliRunner().invoke(sm, ["sheet", "--from", str(src), "--out", str(out / "s.png"),
                                  "--format", "json-hash,libgdx"])
    assert res.exit_code == 130 and res.stdout == ""
    assert res.stderr.strip().splitlines() == [INTERRUPTED]
    assert sorted(p.name for p in out.iterdir()) == []
