"""The studio plays an animation model's characters (scarlet_moon.studio.anim, POST /api/anim)."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("starlette")
pytest.importorskip("httpx")

from starlette.testclient import TestClient  # noqa: E402
from test_cli_anim import DOCUMENTED  # noqa: E402

from scarlet_moon.studio import StudioConfig, create_app  # noqa: E402

BASE = "http://127.0.0.1:7860"


@pytest.fixture
def client(tmp_path: Path):
    app = create_app(StudioConfig(model=str(DOCUMENTED), runs_dir=tmp_path / "runs", token=None))
    with TestClient(app, base_url=BASE) as c:
        yield c


def gif_frames(url: str) -> list[np.ndarray]:
    assert url.startswith("data:image/gif;base64,")
    img = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    out = []
    for i in range(img.n_frames):
        img.seek(i)
        out.append(np.asarray(img.convert("RGB")))
    return out


def test_models_say_which_one_animates(client):
    start = client.get("/api/models").json()["models"][0]
    assert start["id"] == "start" and start["anim"] == {"directions": ["down", "left", "right", "up"], "frames": 2}
    assert all(m["anim"] is None for m in client.get("/api/models").json()["models"][1:])


def test_anim_returns_a_playing_gif_per_character(client):
    res = client.post("/api/anim", json={"model": "start", "label": "player", "count": 2, "seed": 3, "fps": 5})
    assert res.status_code == 200, res.text
    view = res.json()
    assert [c["name"] for c in view["characters"]] == ["player_0", "player_1"]
    assert view["directions"] == ["down", "left", "right", "up"] and view["frames"] == 2
    for c in view["characters"]:
        frames = gif_frames(c["gif"])
        assert len(frames) == 2 and not np.array_equal(frames[0], frames[1])  # it moves
        assert frames[0].shape[0] > frames[0].shape[1] * 3  # four directions stacked, one character wide


@pytest.mark.parametrize(
    "body, words",
    [
        ({"model": "start", "label": "wizard"}, "unknown label 'wizard'"),
        ({"model": "start", "count": 17}, "count 17: expected a whole number 1..16"),
        ({"model": "bundled-32"}, "draws single sprites, not animations"),
    ],
)
def test_bad_anim_requests_are_a_one_line_400(client, body, words):
    res = client.post("/api/anim", json=body)
    assert res.status_code == 400 and words in res.json()["error"], res.text


def test_generate_refuses_an_animation_model(client):
    res = client.post("/api/generate", json={"model": "start", "count": 1})
    assert res.status_code == 400 and "is an animation model" in res.json()["error"], res.text


@pytest.mark.engines
def test_the_page_plays_the_characters_of_an_animation_model(tmp_path):
    """`sm studio --model models/crossfire-walk/...` in headless chromium: Generate shows a playing GIF each."""
    import json
    import subprocess
    import sys

    from conftest import HANG, ROOT
    from test_engines import ENGINES, browser_missing, chromium_path, require
    from test_studio_browser import free_port

    why = browser_missing()
    require(why is None, why or "")
    env = {"PYTHONPATH": str(ROOT), "PATH": __import__("os").environ["PATH"], "HOME": str(tmp_path)}
    args = ["studio", "--no-browser", "--port", str(free_port()), "--runs-dir", str(tmp_path / "runs")]
    proc = subprocess.Popen(
        [sys.executable, "-m", "scarlet_moon.cli.main", *args, "--model", str(DOCUMENTED)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("sm studio: http://"), f"{line!r}\n{proc.stderr.read()[-3000:]}"
        spec = tmp_path / "spec.json"
        spec.write_text(json.dumps({"chromium": chromium_path(), "url": line.split()[2]}))
        run = subprocess.run(
            ["node", str(ENGINES / "studio_anim.mjs"), str(spec)],
            cwd=ENGINES,
            capture_output=True,
            text=True,
            timeout=HANG,
        )
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["ok"] and not out["error_shown"], f"{out.get('error')}\n" + "\n".join(out["logs"][-20:])
    assert [i["alt"] for i in out["images"]] == ["player_0", "player_1"]
    for img in out["images"]:
        assert len(gif_frames(img["src"])) == 2 and img["h"] > 3 * img["w"]
    assert out["status"].startswith("2 characters")
