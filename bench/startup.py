"""Where `sm sample --label 5 --count 1` (issue 15's interactive latency) spends a fresh process's time.

    .venv/bin/python bench/startup.py [--repeats 9] [--baseline DIR] [--out bench/results/startup]

Rows, each a fresh process (the `sm` console script), wall time start to exit, run in interleaved rounds (one of each per round,
so the machine's load falls on all alike), median and quartiles:
- the interpreter alone (`python -c pass`), and the libraries the command cannot do without (numpy,
  onnxruntime, click; the PNG is written with zlib, scarlet_moon.data.png): the floor under any Python
  CLI doing this;
- `sm sample` with onnxruntime's graph cache off (SM_ORT_CACHE=0) and on (warm), then with the fast exit
  too (the default: the process ends once its files are written, scarlet_moon.cli.main.main; SM_FAST_EXIT=0 is without);
- with --baseline DIR (a checkout of an earlier commit, e.g. `git worktree add /tmp/base b9c039a`), the
  same command run from that tree's sources (PYTHONPATH=DIR), so a change is measured in one run.
stderr is piped, as a plugin or UI runs it. PYTHONDONTWRITEBYTECODE is dropped (an installed package
has its bytecode; a warm-up writes it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLOOR = "import numpy, onnxruntime, click"


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr[-1500:]}")
    return dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--baseline", default=None, help="A source tree of an earlier commit to compare with.")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "startup"))
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="sm-startup-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "WANDB_"))}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["SCARLET_MOON_CACHE"] = str(tmp / "cache")
    console_script = Path(sys.executable).with_name("sm")  # as a user or plugin runs it; the baseline tree's
    sm = (
        [str(console_script)] if console_script.is_file() else [sys.executable, "-m", "scarlet_moon.cli.main"]
    )  # via PYTHONPATH
    py, sample = sys.executable, [*sm, "sample", "--label", "5", "--count", "1"]
    rows: dict[str, tuple[list[str], dict[str, str], Path]] = {
        "python -c pass": ([py, "-c", "pass"], env, tmp),
        "python -c 'import numpy, onnxruntime, click'": ([py, "-c", FLOOR], env, tmp),
    }
    if a.baseline:
        base = Path(a.baseline).resolve()
        rev = subprocess.run(["git", "-C", str(base), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        rows[f"sm sample --count 1, baseline ({rev.stdout.strip() or base.name})"] = (
            [*sample, "--out", str(tmp / "b")],
            {**env, "PYTHONPATH": str(base), "SCARLET_MOON_CACHE": str(tmp / "bc")},
            base,
        )
    rows["sm sample --count 1, graph cache off, fast exit off"] = (
        [*sample, "--out", str(tmp / "n")],
        {**env, "SM_ORT_CACHE": "0", "SM_FAST_EXIT": "0"},
        ROOT,
    )
    rows["sm sample --count 1, graph cache on, fast exit off"] = (
        [*sample, "--out", str(tmp / "f")],
        {**env, "SM_FAST_EXIT": "0"},
        ROOT,
    )
    rows["sm sample --count 1 (default: graph cache on, fast exit)"] = ([*sample, "--out", str(tmp / "c")], env, ROOT)
    for argv, e, cwd in rows.values():  # warm-up: bytecode written, the cache filled, the disk cache warm
        timed(argv, e, cwd)
    load0 = os.getloadavg()
    times: dict[str, list[float]] = {k: [] for k in rows}
    for _ in range(a.repeats):
        for k, (argv, e, cwd) in rows.items():
            times[k].append(round(timed(argv, e, cwd), 3))
    result = {
        "machine": f"{os.cpu_count()} CPUs, {platform.platform()}",
        "python": sys.version.split()[0],
        "loadavg_before": load0,
        "loadavg_after": os.getloadavg(),
        "seconds": times,
        "median_s": {k: statistics.median(v) for k, v in times.items()},
    }
    Path(a.out + ".json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# Where `sm sample --label 5 --count 1` spends its time (bench/startup.py)",
        "",
        f"Machine: {result['machine']}; load average {load0[0]:.2f} before, {result['loadavg_after'][0]:.2f} "
        f"after. {a.repeats} interleaved rounds of fresh processes, stderr piped.",
        "",
        "| process | median s | quartiles s |",
        "| --- | ---: | --- |",
    ]
    for k, v in times.items():
        q = statistics.quantiles(v, n=4) if len(v) > 1 else [v[0], v[0], v[0]]
        lines.append(f"| {k} | {statistics.median(v):.3f} | {q[0]:.3f} - {q[2]:.3f} |")
    Path(a.out + ".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
