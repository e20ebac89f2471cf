"""`sm sheet` killed (SIGKILL) while sampling or at each rename of its file set, or interrupted (SIGINT /
Ctrl-C): no half-written file, and the next run restores a whole set."""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import ROOT, sm_cmd
from PIL import Image

from scarlet_moon.cli.main import sm

COUNT = 5000
INTERRUPTED = "error: interrupted (Ctrl-C); files are written atomically, so none is half-written"


def sheet_cmd(model: Path, out: Path, steps: int) -> list[str]:
    return sm_cmd(
        "sheet",
        "--model",
        str(model),
        "--count",
        str(COUNT),
        "--steps",
        str(steps),
        "--label",
        "red",
        "--label",
        "blue",
        "--out",
        str(out),
        "--format",
        "json-hash",
    )


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


def test_sigkill_while_sampling_leaves_nothing(tiny_model: Path, tmp_path: Path, sm_env):
    """SIGKILL once sampling has started (the backend line is printed right before it): no file of the
    sheet is there, not even a temp. Kills during the write itself: the strace test below."""
    proc = subprocess.Popen(
        sheet_cmd(tiny_model, tmp_path / "s.png", 50),
        cwd=ROOT,
        env=env_for(sm_env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for_line(proc, "backend:", 120)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert check_absent_or_complete(tmp_path) == "absent" and list(tmp_path.iterdir()) == []


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


def _signal_while_sampling(sig: int, tiny_model: Path, tmp_path: Path, sm_env) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `sm sheet` sent `sig` while it samples."""
    # SIG_DFL in the child: a shell that ran pytest in the background (`cmd &`) leaves SIGINT
    # ignored, and Python then installs no KeyboardInterrupt handler
    proc = subprocess.Popen(
        sheet_cmd(tiny_model, tmp_path / "s.png", 50),
        cwd=ROOT,
        env=env_for(sm_env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        _wait_for_line(proc, "backend:", 120)  # printed right before the model loads and sampling starts
        time.sleep(2.0)  # 50 steps of 5000 sprites take far longer: this lands inside sampling
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, out, err


@pytest.mark.slow
def test_sigterm_during_sheet_leaves_nothing_and_says_so(tiny_model: Path, tmp_path: Path, sm_env):
    """SIGTERM (timeout, docker stop) while sampling: unwound like Ctrl-C, exit 143, one line, no file."""
    code, out, err = _signal_while_sampling(signal.SIGTERM, tiny_model, tmp_path, sm_env)
    assert code == 143, err
    assert out == "" and err.strip().splitlines() == [
        "error: interrupted by SIGTERM; files are written atomically, so none is half-written"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.slow
def test_sigint_during_sheet_leaves_nothing(tiny_model: Path, tmp_path: Path, sm_env):
    """Ctrl-C while sampling: exit 130, one line on stderr, no sheet, atlas or temp file."""
    code, out, err = _signal_while_sampling(signal.SIGINT, tiny_model, tmp_path, sm_env)
    assert code == 130, err
    assert out == "" and err.strip().splitlines() == [INTERRUPTED]
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_reliability_ctrl_c_while_writing_rolls_back(tmp_path: Path, monkeypatch):
    """KeyboardInterrupt between the renames of a sheet's files: nothing stays, not even a temp."""
    import scarlet_moon.exporters.atomic as atomic

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
    res = CliRunner().invoke(
        sm, ["sheet", "--from", str(src), "--out", str(out / "s.png"), "--format", "json-hash,libgdx"]
    )
    assert res.exit_code == 130 and res.stdout == ""
    assert res.stderr.strip().splitlines() == [INTERRUPTED]
    assert sorted(p.name for p in out.iterdir()) == []


def _png_folder(root: Path, n: int, shade: int) -> Path:
    root.mkdir()
    for i in range(n):
        Image.new("RGBA", (8, 8), (shade, 4 * i % 256, 0, 255)).save(root / f"walk_{i:03d}.png")
    return root


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


# The process SIGKILLs itself on entering its `when`-th os.replace (the rename(2) that call makes is
# never done): the same fault as strace's, for machines without strace.
KILL_HOOK = """
import os, runpy, signal, sys
when, calls, real = int(sys.argv.pop(1)), [0], os.replace
def replace(a, b):
    calls[0] += 1
    if calls[0] == when:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(a, b)
os.replace = replace
sys.argv[0] = "sm"
runpy.run_module("scarlet_moon.cli.main", run_name="__main__")
"""


def killed_at_rename(killer: str, when: int, cmd: list[str]) -> list[str]:
    """`cmd` (an sm_cmd) SIGKILLed at its `when`-th rename, by strace or by the in-process hook."""
    if killer == "strace":
        return [
            "strace",
            "-f",
            "-o",
            "/dev/null",
            "-e",
            "trace=rename",
            "-e",
            f"inject=rename:signal=KILL:when={when}",
            *cmd,
        ]
    return [sys.executable, "-c", KILL_HOOK, str(when), *cmd[3:]]


@pytest.mark.reliability
@pytest.mark.parametrize(
    "killer",
    [
        pytest.param(
            "strace",
            marks=pytest.mark.skipif(not shutil.which("strace"), reason="strace is installed by .ci/install-engines"),
        ),
        "hook",
    ],
)
def test_sigkill_at_every_rename_of_a_sheet_set_leaves_a_set_the_next_run_restores(killer: str, tmp_path: Path, sm_env):
    """`sm sheet --force` over an existing set, killed (SIGKILL: strace fault injection, or an in-process
    hook where strace is missing) at its 1st, 2nd, ... rename: each visible file is whole, and the next
    run rolls the set back to the old one with no temp, backup or journal left; the run that is not
    killed writes the new set, its old extra pages removed."""
    old_src, new_src = _png_folder(tmp_path / "old", 30, 10), _png_folder(tmp_path / "new", 5, 200)
    fmt = ["--format", "json-hash,godot3,libgdx", "--max-size", "32", "--no-dedupe"]  # 30 sprites: 4 pages
    sheet = lambda src, out: sm_cmd("sheet", "--from", str(src), "--out", str(out), "--force", *fmt)  # noqa: E731
    for name, src in (("want_old", old_src), ("want_new", new_src)):
        (tmp_path / name).mkdir()
        subprocess.run(sheet(src, tmp_path / name / "s.png"), cwd=ROOT, env=sm_env, check=True, capture_output=True)
    old, new = _files(tmp_path / "want_old"), _files(tmp_path / "want_new")
    assert sum(n.endswith(".png") for n in old) == 4 and sum(n.endswith(".png") for n in new) == 1
    for when in range(1, 20):
        work = tmp_path / f"k{when}"
        work.mkdir()
        subprocess.run(sheet(old_src, work / "s.png"), cwd=ROOT, env=sm_env, check=True, capture_output=True)
        proc = subprocess.run(
            killed_at_rename(killer, when, sheet(new_src, work / "s.png")),
            cwd=ROOT,
            env=sm_env,
            capture_output=True,
            text=True,
        )
        if proc.returncode == 0:  # fewer renames than `when`: the write completed
            assert _files(work) == new, when
            break
        for p in work.iterdir():  # whatever the kill left in view is whole
            if p.suffix == ".png" and not p.name.startswith("."):
                Image.open(p).load()
            elif p.name.endswith(".json") and not p.name.startswith("."):
                json.loads(p.read_text())
        restored = subprocess.run(
            sm_cmd("sheet", "--from", str(old_src), "--out", str(work / "s.png"), *fmt),
            cwd=ROOT,
            env=sm_env,
            capture_output=True,
            text=True,
        )
        assert restored.returncode == 2 and "already exists" in restored.stderr  # the next run, without --force
        assert _files(work) == old, when  # rolled back: the old set, no hidden leftover
    else:
        raise AssertionError("the write was never let through")
    assert when > 3  # it was killed at several points before it was let through
