"""The studio's Runs panel API: runs of the runs folder with their MLflow loss curve and latest grid, and a
fine-tuning run started from uploaded sprites (`sm train --init-from --time` as a child process)."""

from __future__ import annotations

import base64
import io
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("starlette")
pytest.importorskip("httpx")

from conftest import HANG, ROOT, make_sprites  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402
from test_studio import wait  # noqa: E402

from scarlet_moon.studio import StudioConfig, create_app  # noqa: E402

pytestmark = pytest.mark.slow


def sprite_files() -> list[dict]:
    imgs, onehot = make_sprites(n=12, size=8, classes=3, seed=4)
    out = []
    for i, (img, y) in enumerate(zip(imgs, onehot.argmax(1))):
        buf = io.BytesIO()
        Image.fromarray(img, "RGBA").save(buf, "PNG")
        out.append(
            {"path": f"{['red', 'green', 'blue'][y]}/s{i:02d}.png", "data": base64.b64encode(buf.getvalue()).decode()}
        )
    return out


def test_a_fine_tuning_run_started_from_the_studio_shows_its_loss_and_grid(
    tiny_model: Path, tmp_path: Path, monkeypatch
):
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    for k in [k for k in __import__("os").environ if k.startswith(("MLFLOW_", "WANDB_"))]:
        monkeypatch.delenv(k)
    from scarlet_moon.cli.studio_commands import sample_command, train_argv

    runs = tmp_path / "runs"
    app = create_app(
        StudioConfig(model=str(tiny_model), runs_dir=runs, token=None, command=sample_command, train_command=train_argv)
    )
    files = sprite_files()
    with TestClient(app, base_url="http://127.0.0.1:7860") as c:
        for body, words in [
            ({"name": "../x"}, "name"),
            ({"time": "soon"}, "time 'soon'"),
            ({"files": [{"path": "../../etc/x.png", "data": files[0]["data"]}]}, "label/name.png"),
            ({"files": [{"path": "red/a.png", "data": "bm90IGEgcG5n"}]}, "not a readable image"),
        ]:
            res = c.post("/api/train", json={"name": "ft", "model": "start", "time": "3s", "files": files, **body})
            assert res.status_code == 400 and words in res.json()["error"], res.text
        assert not runs.exists() or not any(runs.iterdir())  # nothing written by the refused requests
        res = c.post("/api/train", json={"name": "ft", "model": "start", "time": "3s", "files": files})
        assert res.status_code == 202, res.text
        again = c.post("/api/train", json={"name": "ft", "model": "start", "time": "3s", "files": files})
        assert again.status_code == 400 and "exists" in again.json()["error"]
        deadline = time.monotonic() + HANG  # a hang guard only
        while True:
            run = next(r for r in c.get("/api/runs").json()["runs"] if r["name"] == "ft")
            if not run["live"] or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert run["returncode"] == 0, "\n".join(run["log"])
        assert run["model"] and run["status"] == "FINISHED" and run["grid_step"] is not None
        steps = [s for s, _ in run["loss"]]
        assert steps and steps == sorted(steps) and all(np.isfinite(v) for _, v in run["loss"])
        grid = c.get("/api/runs/ft/grid.png")
        assert grid.status_code == 200 and grid.content[:8] == b"\x89PNG\r\n\x1a\n"
        assert c.get("/api/runs/..%2F..%2Fetc/grid.png").status_code == 404
        assert "run:ft" in [m["id"] for m in c.get("/api/models").json()["models"]]
        job = c.post("/api/generate", json={"model": "run:ft", "label": "red", "count": 2, "steps": 3}).json()
        view = wait(c, job["id"])
        assert view["state"] == "done" and view["model"] == "run:ft"
        assert f"--model {runs / 'ft' / 'model.safetensors'} " in view["sprites"][0]["command"]
    assert sorted(p.name for p in (runs / ".studio-data" / "ft").iterdir()) == ["blue", "green", "red"]
