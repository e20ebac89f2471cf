"""The bundled 32x32 model's sheets in real engines, on both backends:

    sm sheet --model bundled-32 --label hero --count 64 --out hero32.png [--backend onnx]

Phaser 3 (canvas and WebGL) and PixiJS 8 load hero32.png + hero32.json in headless Chromium; Godot 3
imports hero32.png and loads hero32.tres; each draws every 32x32 frame, and the pixels must equal the
sheet's own at the atlas rects (tests/test_engines.py's harness and rules: a missing engine skips
locally and fails under CI).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import sm_cmd
from PIL import Image
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
BACKENDS = ("torch", "onnx")


def frames_of(folder: Path) -> dict[str, np.ndarray]:
    """Frame name -> its pixels, cut from hero32.png at hero32.json's rects."""
    sheet = np.asarray(Image.open(folder / "hero32.png").convert("RGBA"))
    out = {}
    for name, f in json.loads((folder / "hero32.json").read_text())["frames"].items():
        r = f["frame"]
        out[name] = sheet[r["y"] : r["y"] + r["h"], r["x"] : r["x"] + r["w"]]
    return out


@pytest.fixture(scope="module")
def sheets(tmp_path_factory) -> dict[str, Path]:
    """backend -> a folder with hero32.png/.json/.tres written by the must-show command."""
    root = tmp_path_factory.mktemp("sheets32")
    env = {**os.environ, "SCARLET_MOON_CACHE": str(root / "cache"), "WANDB_MODE": "disabled"}
    exp = subprocess.run(
        sm_cmd("export-onnx", "--model", "bundled-32"), capture_output=True, text=True, env=env, timeout=900
    )
    assert exp.returncode == 0, exp.stderr[-3000:]
    out = {}
    for backend in BACKENDS:
        d = root / backend
        d.mkdir()
        args = [
            "sheet",
            "--model",
            "bundled-32",
            "--label",
            "hero",
            "--count",
            "64",
            "--out",
            str(d / "hero32.png"),
            "--format",
            "json-hash,godot3",
        ] + (["--backend", "onnx"] if backend == "onnx" else [])
        proc = subprocess.run(sm_cmd(*args), capture_output=True, text=True, env=env, timeout=900)
        assert proc.returncode == 0, proc.stderr[-3000:]
        out[backend] = d
    return out


def test_the_sheets_hold_64_distinct_32x32_heroes_on_both_backends(sheets):
    for backend, d in sheets.items():
        atlas = json.loads((d / "hero32.json").read_text())
        frames = frames_of(d)
        assert len(frames) >= 60, (backend, len(frames))  # dedupe may merge a rare identical pair
        assert {f.shape for f in frames.values()} == {(32, 32, 4)}
        assert all((f[..., 3] == 255).sum() >= 40 for f in frames.values()), backend  # no empty frames
        assert "Gervais" in atlas["meta"]["attribution"]
    a, b = (np.asarray(Image.open(sheets[k] / "hero32.png").convert("RGBA")) for k in BACKENDS)
    assert a.shape == b.shape and (a == b).all(-1).mean() > 0.98  # onnxruntime draws what torch draws


@pytest.mark.parametrize("backend", BACKENDS)
def test_phaser_and_pixi_draw_every_32x32_frame_exactly(sheets, backend, tmp_path):
    why = browser_missing()
    require(why is None, why or "")
    d, q = sheets[backend], {"png": "hero32.png", "json": "hero32.json", "cell": 40, "cols": 12}  # 64 frames of 32 px
    jobs = [
        {"id": f"{eng}-{r}", "page": f"{eng}_page.html", "assets": str(d), "query": {"renderer": r, **q}}
        for eng, r in (("phaser", "canvas"), ("phaser", "webgl"), ("pixi", "webgl"))
    ]
    spec = tmp_path / "jobs.json"
    spec.write_text(json.dumps({"chromium": chromium_path(), "jobs": jobs}))
    proc = subprocess.run(
        ["node", str(ENGINES / "run.mjs"), str(spec)], cwd=ENGINES, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])["results"]
    src = frames_of(d)
    for job in jobs:
        res = results[job["id"]]
        assert res.get("ok"), (job["id"], res.get("error"), res.get("logs", [])[-10:])
        assert res["renderer"] == job["query"]["renderer"]
        assert all(f["source"] == [32, 32] for f in res["frames"].values()), job["id"]
        assert_drawn_frames_match(res, src, f"{job['id']} ({backend})")


@pytest.mark.parametrize("backend", BACKENDS)
def test_godot3_loads_the_32x32_spriteframes(sheets, backend, tmp_path):
    require(godot_bin(), "godot3-server not found (apt-get install godot3-server)")
    proj = tmp_path / "proj"
    (proj / "atlas").mkdir(parents=True)
    for f in ("project.godot", "check_frames.gd"):
        shutil.copy(ENGINES / "godot3" / f, proj / f)
    for f in ("hero32.png", "hero32.tres", "hero32.png.import"):
        shutil.copy(sheets[backend] / f, proj / "atlas" / f)
    imp = run_godot(["--editor", "--quit"], proj)
    assert imp.returncode == 0, imp.stderr[-3000:]
    chk = run_godot(["-s", "res://check_frames.gd"], proj, SM_TRES="res://atlas/hero32.tres")
    lines = [ln for ln in chk.stdout.splitlines() if ln.startswith("SMRESULT ")]
    assert chk.returncode == 0 and lines, f"rc={chk.returncode}\n{chk.stdout[-2000:]}\n{chk.stderr[-3000:]}"
    assert not GODOT_BAD.findall(chk.stderr), chk.stderr[-3000:]
    res = json.loads(lines[-1][len("SMRESULT ") :])
    assert res["ok"], res
    src = frames_of(sheets[backend])
    rects = {
        (f["frame"]["x"], f["frame"]["y"]): n
        for n, f in json.loads((sheets[backend] / "hero32.json").read_text())["frames"].items()
    }
    drawn = [fr for a in res["animations"].values() for fr in a["frames"]]
    assert len(drawn) == 64, len(drawn)  # every generated hero, duplicates included, in the animation
    for fr in drawn:
        assert fr["size"] == [32, 32] and fr["atlas_class"] == "StreamTexture", fr
        x, y = (int(v) for v in fr["region"][:2])
        px = np.frombuffer(bytes.fromhex(fr["rgba_hex"]), np.uint8).reshape(32, 32, 4)
        diffs = pixel_diffs(px, src[rects[(x, y)]])
        assert not diffs, f"Godot ({backend}) frame at {(x, y)}: {len(diffs)} px differ, e.g. {diffs[:3]}"
