"""Writing a large sheet in 1..N processes: wall time, CPU time and peak memory of write_atlases.

    .venv/bin/python bench/parallel_write.py --count 100000 --jobs 1 2
    .venv/bin/python bench/parallel_write.py --count 20000 --jobs 1 2 --formats json-hash

The sprites are random 16x16 RGBA (the worst case for PNG size), packed once with the default
options (4096 pages); then, per --jobs value, exporters.write_atlases into a fresh folder. Reported:
wall seconds, CPU seconds of this process and of its workers, peak memory of the whole process
tree (the sum of each process's PSS from /proc/PID/smaps_rollup, sampled every 20 ms: shared
copy-on-write pages of forked workers are counted once), and whether every file is byte for byte
the one of the first --jobs value. Linux only (/proc). Writes <out>.json and <out>.md.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def pss_mib(pid: int) -> float:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0.0
    return next(int(line.split()[1]) for line in text.splitlines() if line.startswith("Pss:")) / 1024


class PeakMemory:
    """Peak of the summed PSS of this process and its live multiprocessing children."""

    def __init__(self) -> None:
        self.peak, self._stop = 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            pids = [os.getpid(), *(p.pid for p in multiprocessing.active_children())]
            self.peak = max(self.peak, sum(pss_mib(p) for p in pids))
            time.sleep(0.02)

    def __enter__(self) -> "PeakMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def sheet(count: int):
    import numpy as np
    from PIL import Image

    from scarlet_moon.exporters import PackOptions, Sprite, pack

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (count, 16, 16, 4), dtype=np.uint8)
    images[..., 3] = 255
    meta = {"seed": 0, "sampler": "dpmpp-2m", "steps": 25, "guidance": 2.0, "model_fingerprint": "0123456789abcdef"}
    sprites = [
        Sprite(f"hero_{i:03d}", Image.fromarray(images[i], "RGBA"), label="hero", meta=dict(meta, batch_index=i))
        for i in range(count)
    ]
    return pack(sprites, PackOptions())


def run(result, jobs: int, formats: list[str], folder: Path) -> tuple[dict, dict[str, bytes]]:
    from scarlet_moon.exporters import write_atlases

    before, t0 = os.times(), time.perf_counter()
    with PeakMemory() as mem:
        write_atlases(result, folder / "s.png", formats, workers=jobs)
    wall, after = time.perf_counter() - t0, os.times()
    files = {p.name: p.read_bytes() for p in sorted(folder.iterdir())}
    row = {
        "jobs": jobs,
        "wall_s": round(wall, 2),
        "cpu_parent_s": round(after.user - before.user + after.system - before.system, 2),
        "cpu_workers_s": round(
            after.children_user - before.children_user + after.children_system - before.children_system, 2
        ),
        "peak_pss_mib": round(mem.peak, 1),
        "files": len(files),
        "bytes": sum(map(len, files.values())),
        "load_avg_before": os.getloadavg(),
    }
    return row, files


def markdown(doc: dict) -> str:
    rows = [
        "| jobs | wall (s) | CPU parent (s) | CPU workers (s) | peak PSS, all processes (MiB) | identical | "
        "load avg before |",
        "| ---: | ---: | ---: | ---: | ---: | :---: | ---: |",
    ]
    for r in doc["runs"]:
        rows.append(
            f"| {r['jobs']} | {r['wall_s']} | {r['cpu_parent_s']} | {r['cpu_workers_s']} | "
            f"{r['peak_pss_mib']} | {r['identical']} | {r['load_avg_before'][0]:.1f} |"
        )
    m = doc["machine"]
    return "\n".join(
        [
            f"# Writing a {doc['count']}-sprite sheet in 1..N processes",
            "",
            f"{doc['pages']} pages, formats {', '.join(doc['formats'])}; exporters.write_atlases after "
            "one pack of random 16x16 sprites (bench/parallel_write.py).",
            "",
            *rows,
            "",
            f"Machine: {m['platform']}, {m['cpus']} CPUs, Python {m['python']}; shared with other jobs "
            "(see the load average).",
            "",
        ]
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=100000)
    ap.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--formats", default="json-hash,godot3,libgdx")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "parallel_write"))
    args = ap.parse_args()
    formats = args.formats.split(",")
    result = sheet(args.count)
    doc = {
        "count": args.count,
        "pages": len(result.pages),
        "formats": formats,
        "runs": [],
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
    }
    first = None
    for jobs in args.jobs:
        with tempfile.TemporaryDirectory(prefix="sm-pw-") as tmp:
            row, files = run(result, jobs, formats, Path(tmp))
        first = first or files
        row["identical"] = files == first
        doc["runs"].append(row)
        print(json.dumps(row), flush=True)
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(doc, indent=1) + "\n")
    out.with_suffix(".md").write_text(markdown(doc))
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
