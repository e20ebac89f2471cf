"""Interactive latency: `sm sample --count 1` on the onnx backend, process start to file written.

    .venv/bin/python bench/latency.py [--repeats 5] [--out bench/results/latency]

The bundled model is exported once (`sm export-onnx`) beside a copy of it in a temp folder, so
`sm sample --model <copy>.safetensors --backend onnx` finds its sibling .onnx as a user's would.
Each run is a fresh process (subprocess wall time from start to exit, the PNG checked); the
median of --repeats runs is the figure (issue 15 asks < 0.5 s). Also timed: the same with
`--model <copy>.onnx`, and `sm --help` (the import floor). Writes <out>.json and <out>.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SM = [sys.executable, "-m", "scarlet_moon.cli.main"]


def timed(args: list[str], check_file: Path | None = None) -> float:
    t0 = time.perf_counter()
    res = subprocess.run(SM + args, cwd=ROOT, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if res.returncode != 0 or (check_file is not None and not check_file.is_file()):
        raise SystemExit(f"{' '.join(args)} failed ({res.returncode}): {res.stderr.strip()[-500:]}")
    return dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "latency"))
    args = ap.parse_args()
    from scarlet_moon.models.card import BUNDLED_MODEL

    tmp = Path(tempfile.mkdtemp(prefix="sm-latency-"))
    model = tmp / "model.safetensors"
    shutil.copy(BUNDLED_MODEL, model)
    timed(["-q", "export-onnx", "--model", str(model), "--out", str(tmp / "model.onnx")], tmp / "model.onnx")
    cases = {
        "sm sample --count 1 --backend onnx (sibling .onnx)": ["--model", str(model), "--backend", "onnx"],
        "sm sample --count 1 --model model.onnx": ["--model", str(tmp / "model.onnx")],
    }
    rows = {}
    for name, extra in cases.items():
        runs = []
        for i in range(args.repeats):
            out = tmp / f"o{len(rows)}_{i}"
            runs.append(
                timed(
                    ["-q", "sample", *extra, "--label", "hero", "--count", "1", "--out", str(out)], out / "hero_000.png"
                )
            )
        rows[name] = {"median_s": statistics.median(runs), "runs_s": runs}
    rows["sm --help"] = {
        "median_s": statistics.median(h := [timed(["--help"]) for _ in range(args.repeats)]),
        "runs_s": h,
    }
    shutil.rmtree(tmp, ignore_errors=True)
    meta = {
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "load_1m": os.getloadavg()[0],
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "repeats": args.repeats,
    }
    Path(args.out).with_suffix(".json").write_text(json.dumps({"rows": rows, **meta}, indent=1))
    lines = [
        "# Interactive latency (process start to file written)",
        "",
        f"`bench/latency.py --repeats {args.repeats}`; {meta['machine']}, {meta['cpus']} CPUs, load average "
        f"{meta['load_1m']:.2f} at the end, {meta['date']}.",
        "",
        "| command | median | runs |",
        "| --- | ---: | --- |",
    ]
    lines += [
        f"| {k} | {v['median_s']:.3f} s | {', '.join(f'{x:.3f}' for x in v['runs_s'])} |" for k, v in rows.items()
    ]
    Path(args.out).with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
