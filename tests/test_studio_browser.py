"""`sm studio` in a real browser: headless Debian chromium driven by playwright-core (tests/engines/studio.mjs)
against `sm studio --no-browser` started as a subprocess on a free port.

The page generates 16 hero sprites, keeps 4, makes variations of one, paints a mask and inpaints (the
pixels outside the mask must not change), shows the one-line message of four bad requests (and the next
request still works), exports a zip and takes a screenshot (the README's docs/studio.png only with
SM_UPDATE_SCREENSHOT=1, as `make screenshot` runs it: a test run leaves the checkout as it was). The
zip's json-hash atlas then goes through the existing Phaser check of tests/test_engines.py.
Skipped without chromium/node locally; under CI a missing engine fails (test_engines.require).
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from conftest import HANG, ROOT
from PIL import Image
from test_engines import ENGINES, assert_drawn_frames_match, browser_missing, chromium_path, page_result, require

pytestmark = [pytest.mark.engines, pytest.mark.slow]
SCREENSHOT = ROOT / "docs" / "studio.png"
STEPS = 8  # sampler steps: enough for recognisable sprites, fast on a busy CPU


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def decode(sprite: dict) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(sprite["png"].split(",", 1)[1]))).convert("RGBA"))


@pytest.fixture(scope="module")
def studio_url(tmp_path_factory, sm_env_module):
    """`sm studio` on a free port; its printed URL."""
    work = tmp_path_factory.mktemp("studio")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "scarlet_moon.cli.main",
            "studio",
            "--no-browser",
            "--port",
            str(free_port()),
            "--runs-dir",
            str(work / "runs"),
        ],
        cwd=work,
        env=sm_env_module,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()  # "sm studio: http://127.0.0.1:PORT/  (Ctrl-C to stop)"
        assert line.startswith("sm studio: http://"), f"no URL printed: {line!r}\n{proc.stderr.read()[-3000:]}"
        yield line.split()[2]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def sm_env_module():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "WANDB_"))}
    env["PYTHONPATH"] = str(ROOT)
    return env


@pytest.fixture(scope="module")
def session(studio_url, tmp_path_factory):
    why = browser_missing()
    require(why is None, why or "")
    d = tmp_path_factory.mktemp("studio-browser")
    huge = d / "huge.png"
    Image.new("1", (10_000, 10_000)).save(huge)  # small on disk, 100 Mpx in its header
    spec = d / "spec.json"
    shot = d / "studio.png"
    spec.write_text(
        json.dumps(
            {
                "chromium": chromium_path(),
                "url": studio_url,
                "steps": STEPS,
                "out": str(d),
                "screenshot": str(shot),
                "huge_png": str(huge),
            }
        )
    )
    proc = subprocess.run(
        ["node", str(ENGINES / "studio.mjs"), str(spec)], cwd=ENGINES, capture_output=True, text=True, timeout=HANG
    )
    assert proc.returncode == 0, f"studio.mjs rc={proc.returncode}\n{proc.stderr[-4000:]}"
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["ok"], f"{out.get('error')}\nconsole:\n" + "\n".join(out["logs"][-20:])
    if os.environ.get("SM_UPDATE_SCREENSHOT") == "1":  # `make screenshot`: a test run leaves the tree clean
        shutil.copy(shot, SCREENSHOT)
    return {**out, "screenshot_path": shot}


def test_generates_16_hero_sprites_and_keeps_4(session):
    assert len(session["batch"]) == 16
    assert {s["label"] for s in session["batch"]} == {"hero"}
    assert [s["index"] for s in session["batch"]] == list(range(16))
    assert [s["id"] for s in session["kept"]] == [session["batch"][i]["id"] for i in (0, 3, 6, 9)]
    for s in session["batch"]:
        assert decode(s).shape == (16, 16, 4) and decode(s)[..., 3].any()
        assert s["settings"]["steps"] == STEPS and s["settings"]["seed"] == 7
        assert s["command"].startswith("sm sample --label hero --count 16 --seed 7")


def test_variations_and_inpainting_of_a_kept_sprite(session):
    base = session["kept"][0]
    assert len(session["variations"]) == 4
    for v in session["variations"]:
        assert v["settings"]["init"] == base["id"] and v["settings"]["strength"] == 0.5
    assert not all(np.array_equal(decode(v), decode(base)) for v in session["variations"])
    mask = np.array(session["mask"], bool).reshape(16, 16)
    assert 5 < mask.sum() < 200, mask.sum()  # the painted stroke
    for s in session["inpainted"]:
        assert s["settings"]["inpaint"] and "--mask inputs/" in s["command"]
        assert np.array_equal(decode(s)[~mask], decode(base)[~mask]), "inpainting changed pixels outside the mask"
    assert any(not np.array_equal(decode(s)[mask], decode(base)[mask]) for s in session["inpainted"])
    assert session["screenshot_path"].stat().st_size > 10_000


def test_bad_requests_show_their_message_and_the_next_works(session):
    e = session["errors"]
    assert "count 0" in e["count"] and "at least 1" in e["count"]
    assert "count is empty" in e["empty_count"] and "None" not in e["empty_count"]
    assert "purple" in e["label"]
    assert "notes.png" in e["not_image"] and "not a readable image" in e["not_image"]
    assert "10000x10000" in e["huge"]
    assert session["after_errors"] == {"state": "done", "count": 2, "error_hidden": True}
    assert not [line for line in session["logs"] if line.startswith("[pageerror]")], session["logs"]


def test_runs_tab_lists_the_runs_folder(session):
    assert "No runs yet" in session["runs_text"] and "sm train --runs-dir" in session["runs_text"]


def test_clicking_runs_hides_the_sprite_panels_and_sprites_brings_them_back(session):
    assert session["tabs"] == {"runs": {"make": False, "runs": True}, "make": {"make": True, "runs": False}}


def test_at_800_px_the_zoom_control_stays_inside_the_batch_panel(session):
    assert session["narrow"]["zoom_right"] <= session["narrow"]["panel_right"], session["narrow"]


def test_palette_swatches_follow_the_select(session):
    assert session["swatches"] == {"uploaded": 3, "training": 0, "again": 3}


def test_no_missing_resource_on_load_not_even_a_favicon(session):
    """The bad requests above log their 400s; nothing the page asks for is missing (404)."""
    assert not [line for line in session["logs"] if line.startswith("[error]") and "404" in line], session["logs"]


def test_exported_zip_loads_in_phaser(session, tmp_path):
    d = tmp_path / "zip"
    with zipfile.ZipFile(session["zip"]) as z:
        z.extractall(d)
    kept = session["exported"]
    assert len(kept) == 5  # 4 kept from the batch, 1 inpainted
    frames = json.loads((d / "sprites.json").read_text())["frames"]
    assert sorted(frames) == [f"hero_{i:03d}" for i in range(5)]
    src = {f"hero_{i:03d}": decode(s) for i, s in enumerate(kept)}
    for name, px in src.items():
        assert np.array_equal(np.asarray(Image.open(d / "sprites" / f"{name}.png").convert("RGBA")), px)
    assert "sm sample --label hero" in (d / "commands.txt").read_text()
    assert session["kept_after_unkeep"] == [4, None, 4]
    spec = tmp_path / "jobs.json"
    spec.write_text(
        json.dumps(
            {
                "chromium": chromium_path(),
                "jobs": [
                    {
                        "id": "studio-zip",
                        "page": "phaser_page.html",
                        "assets": str(d),
                        "query": {"renderer": "canvas", "png": "sprites.png", "json": "sprites.json"},
                    }
                ],
            }
        )
    )
    proc = subprocess.run(
        ["node", str(ENGINES / "run.mjs"), str(spec)], cwd=ENGINES, capture_output=True, text=True, timeout=HANG
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    res = page_result(json.loads(proc.stdout.strip().splitlines()[-1]), "studio-zip")
    assert sorted(res["names"]) == sorted(src)
    assert_drawn_frames_match(res, src, "Phaser, the studio's zip")
