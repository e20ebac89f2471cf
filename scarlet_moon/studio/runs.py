"""Training runs for the Runs panel: the run folders of the runs folder (scarlet_moon.training.runs
layout), each with its loss curve from the MLflow store `sm train` writes beside them
(<runs>/mlflow.db, run name = folder name) and its latest sample grid.

The store is read with the stdlib's sqlite3, read-only (no mlflow import: it takes seconds), so a
run being trained shows its loss as the tracker flushes it (every few seconds).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

MAX_POINTS = 500  # loss points sent per run (evenly thinned)
STORE = "mlflow.db"


def run_dirs(runs_dir: Path) -> list[Path]:
    if not runs_dir.is_dir():
        return []
    return sorted(
        (
            d
            for d in runs_dir.iterdir()
            if d.is_dir()
            and not d.name.startswith(".")
            and ((d / "config.json").is_file() or (d / "model.safetensors").is_file())
        ),
        key=lambda d: d.name,
    )


def latest_grid(runs_dir: Path, name: str) -> Path | None:
    """The run's newest samples/step_*.png; `name` must be one of the runs found (never a path)."""
    runs = {d.name: d for d in run_dirs(runs_dir)}
    if name not in runs:
        return None
    grids = sorted((runs[name] / "samples").glob("step_*.png"))
    return grids[-1] if grids else None


def _loss_curves(runs_dir: Path) -> dict[str, dict[str, Any]]:
    """Run name -> {"status", "loss": [[step, value], ...]} from the MLflow sqlite store, if there is one."""
    db = runs_dir / STORE
    if not db.is_file():
        return {}
    out: dict[str, dict[str, Any]] = {}
    try:
        con = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=2)
        try:
            rows = con.execute("SELECT run_uuid, name, status, start_time FROM runs ORDER BY start_time").fetchall()
            for uuid, name, status, _ in rows:  # a resumed or re-made run name: the newest wins
                pts = con.execute(
                    "SELECT step, value FROM metrics WHERE run_uuid = ? AND key = 'loss' ORDER BY step", (uuid,)
                ).fetchall()
                stride = max(1, -(-len(pts) // MAX_POINTS))
                out[name] = {"status": status, "loss": [[int(s), float(v)] for s, v in pts[::stride]]}
        finally:
            con.close()
    except sqlite3.Error:  # not an MLflow store, or one being created: no curves this time
        return {}
    return out


def list_runs(runs_dir: Path) -> list[dict[str, Any]]:
    """Every run folder: name, whether it has a finished model, its latest grid's step, its loss curve."""
    curves = _loss_curves(runs_dir)
    out = []
    for d in run_dirs(runs_dir):
        grid = latest_grid(runs_dir, d.name)
        curve = curves.get(d.name, {})
        out.append(
            {
                "name": d.name,
                "model": (d / "model.safetensors").is_file(),
                "grid_step": int(grid.stem.split("_")[-1]) if grid else None,
                "status": curve.get("status"),
                "loss": curve.get("loss", []),
            }
        )
    return out
