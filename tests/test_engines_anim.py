"""`sm anim`'s walk cycles in real engines (issue 32):

    sm anim --model models/crossfire-walk/model.safetensors --label player --count 6 --out walkers.png \
        --format json-hash,godot3

Phaser 3 in headless Chromium makes one animation per entry of the atlas's `animations`, plays each once and
must show every frame in the listed order, at the atlas rects, with the sheet's pixels; Godot 3 imports
walkers.png and loads walkers.tres with one SpriteFrames animation per character and direction, its frames
in order at the frame rate asked for (tests/test_engines.py's harness and rules: a missing engine skips
locally and fails under CI).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from test_cli_anim import DOCUMENTED, frames_of, invoke
from test_engines import (
    ENGINES,
    GODOT_BAD,
    assert_drawn_frames_match,
    browser_missing,
    chromium_path,
    godot_bin,
    pixel_diffs,
    require,
    run_godot,
)

pytestmark = pytest.mark.engines
DIRS = ("down", "left", "right", "up")
NAMES = [f"player_{k}" for k in range(6)]
FPS = 6
MS = round(1000 / FPS)  # each frame's duration in the atlas (ms)


@pytest.fixture(scope="module")
def walkers(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("walkers") / "walkers.png"
    res = invoke(
        "anim",
        "--model",
        DOCUMENTED,
        "--label",
        "player",
        "--count",
        len(NAMES),
        "--fps",
        FPS,
        "--out",
        out,
        "--format",
        "json-hash,godot3",
    )
    assert res.exit_code == 0, res.output
    return out


def expected(walkers: Path) -> dict[str, list[str]]:
    doc = json.loads(walkers.with_suffix(".json").read_text())
    want = {f"{c}_{d}": [f"{c}_{d}_{i}" for i in range(2)] for c in NAMES for d in DIRS}
    assert doc["animations"] == want
    return want


@pytest.mark.parametrize("renderer", ["canvas", "webgl"])
def test_phaser3_plays_every_walk_cycle_frame_by_frame(walkers, tmp_path, renderer):
    why = browser_missing()
    require(why is None, why or "")
    job = {"id": "play", "page": "phaser_play.html", "assets": str(walkers.parent), "query": {"renderer": renderer}}
    spec = tmp_path / "jobs.json"
    spec.write_text(json.dumps({"chromium": chromium_path(), "jobs": [job]}))
    proc = subprocess.run(
        ["node", str(ENGINES / "run.mjs"), str(spec)], cwd=ENGINES, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])["results"]["play"]
    assert res.get("ok"), f"{res.get('error')}\n" + "\n".join(res.get("logs", [])[-20:])
    assert res["renderer"] == renderer
    want = expected(walkers)
    rects = {
        n: tuple(f["frame"][k] for k in "xywh")
        for n, f in json.loads(walkers.with_suffix(".json").read_text())["frames"].items()
    }
    assert {k: v["frames"] for k, v in res["made"].items()} == want
    assert all(v["msPerFrame"] == pytest.approx(MS) for v in res["made"].values()), res["made"]
    assert sorted(res["played"]) == sorted(want)
    for key, seen in res["played"].items():
        assert [s["name"] for s in seen] == want[key], (key, seen)  # every frame, in order, once
        for s in seen:
            assert (s["x"], s["y"], s["w"], s["h"]) == rects[s["name"]], (key, s)
    assert_drawn_frames_match(res, frames_of(walkers), f"Phaser {res['version']} {renderer}")


def test_godot3_loads_walk_cycles_as_spriteframes_animations(walkers, tmp_path):
    require(godot_bin(), "godot3-server not found (apt-get install godot3-server)")
    proj = tmp_path / "proj"
    (proj / "atlas").mkdir(parents=True)
    for f in ("project.godot", "check_frames.gd"):
        shutil.copy(ENGINES / "godot3" / f, proj / f)
    for f in ("walkers.png", "walkers.tres", "walkers.png.import"):
        shutil.copy(walkers.parent / f, proj / "atlas" / f)
    imp = run_godot(["--editor", "--quit"], proj)
    assert imp.returncode == 0, imp.stderr[-3000:]
    chk = run_godot(["-s", "res://check_frames.gd"], proj, SM_TRES="res://atlas/walkers.tres")
    lines = [ln for ln in chk.stdout.splitlines() if ln.startswith("SMRESULT ")]
    assert chk.returncode == 0 and lines, f"rc={chk.returncode}\n{chk.stdout[-2000:]}\n{chk.stderr[-3000:]}"
    assert not GODOT_BAD.findall(chk.stderr), chk.stderr[-3000:]
    res = json.loads(lines[-1][len("SMRESULT ") :])
    assert res["ok"] and res["version"].startswith("3."), res
    want = expected(walkers)
    src = frames_of(walkers)
    rects = {
        n: tuple(f["frame"][k] for k in "xywh")
        for n, f in json.loads(walkers.with_suffix(".json").read_text())["frames"].items()
    }
    assert sorted(res["animations"]) == sorted(want)
    for key, names in want.items():
        a = res["animations"][key]
        assert a["speed"] == pytest.approx(1000 / MS, rel=1e-4) and a["loop"] is True, (key, a["speed"])
        assert len(a["frames"]) == len(names), key
        for name, fr in zip(names, a["frames"]):
            assert tuple(int(v) for v in fr["region"]) == rects[name], (key, name)
            px = np.frombuffer(bytes.fromhex(fr["rgba_hex"]), np.uint8).reshape(32, 32, 4)
            assert not pixel_diffs(px, src[name]), (key, name)
