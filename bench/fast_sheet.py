"""Issue 15's CPU figures in one run: the default sheet against the seed preset's, and interactive latency.

    .venv/bin/python bench/fast_sheet.py [--repeats 5] [--out bench/results/fast_sheet]

Every figure is a fresh process, wall time from start to exit (files checked), as a user types it:
- `sm sheet --label 5 --count 64 --out hero.png`: the default model (the bundled few-step student)
  and the default backend (onnx, its export ships beside it), median of --repeats;
- the same with `--model bundled-25 --backend onnx` (the 25-step teacher; exported to a temp cache);
- the seed preset's sheet: `sm sheet --model seed.safetensors --label 5 --count 64` (the ancestor's
  DDPM-500 on torch; an untrained network of that config costs the same), median of 2;
- `sm sample --label 5 --count 1 --out DIR` on the default model (onnx), median of --repeats
  (measured first, after one discarded run: the seed preset's 100 s of torch heats the machine).
The ratio seed / default is issue 15's ">= 100x". The load average before and after is recorded: the
machine is shared, so the ratio, measured in one run, is the figure; seconds move with the load.
PYTHONDONTWRITEBYTECODE is dropped for the runs (an installed package has its bytecode compiled;
this machine's environment sets it, which recompiles every module in every process: ~0.15 s) and
one discarded run writes the bytecode first.
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
sys.path.insert(0, str(ROOT / "bench"))
SM = (
    [str(Path(sys.executable).with_name("sm"))]
    if Path(sys.executable).with_name("sm").is_file()
    else [sys.executable, "-m", "scarlet_moon.cli.main"]
)


def wall(args: list[str], check: Path, env: dict[str, str], cwd: Path) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(SM + args, cwd=cwd, env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if proc.returncode != 0 or not check.exists():
        raise SystemExit(f"sm {' '.join(args)} failed ({proc.returncode}): {proc.stderr[-1500:]}")
    return dt


def runs(make_args, n: int, env: dict[str, str], cwd: Path) -> list[float]:
    """n fresh processes; make_args(i) -> (argv, file that must exist after)."""
    out = []
    for i in range(n):
        args, check = make_args(i)
        out.append(round(wall(args, check, env, cwd), 3))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "fast_sheet"))
    a = ap.parse_args()
    from onnx_cpu import untrained_checkpoint

    from scarlet_moon.backends import read_card
    from scarlet_moon.training.config import SEED

    tmp = Path(tempfile.mkdtemp(prefix="sm-fast-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "WANDB_"))}
    env["SCARLET_MOON_CACHE"] = str(tmp / "cache")  # nothing cached helps the default path
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as an installed package runs: bytecode cached (a warm-up writes it)
    seed = untrained_checkpoint(SEED, tmp / "seed.safetensors")
    load0 = os.getloadavg()
    wall(["-q", "export-onnx", "--model", "bundled-25"], tmp / "cache", env, tmp)
    sheet = ["-q", "sheet", "--label", "5", "--count", "64", "--out"]
    wall([*sheet, "warm.png"], tmp / "warm.json", env, tmp)  # writes the .pyc files, warms the disk cache
    wall(["-q", "sample", "--label", "5", "--count", "1", "--out", "warm1"], tmp / "warm1", env, tmp)
    one = runs(
        lambda i: (
            ["-q", "sample", "--label", "5", "--count", "1", "--out", f"one{i}"],
            tmp / f"one{i}" / "hero_000.png",
        ),
        a.repeats,
        env,
        tmp,
    )
    default = runs(lambda i: ([*sheet, f"d{i}.png"], tmp / f"d{i}.json"), a.repeats, env, tmp)
    teacher = runs(
        lambda i: (
            [
                "-q",
                "sheet",
                "--model",
                "bundled-25",
                "--backend",
                "onnx",
                "--label",
                "5",
                "--count",
                "64",
                "--out",
                f"t{i}.png",
            ],
            tmp / f"t{i}.json",
        ),
        a.repeats,
        env,
        tmp,
    )
    seeded = runs(
        lambda i: (
            ["-q", "sheet", "--model", str(seed), "--label", "5", "--count", "64", "--out", f"s{i}.png"],
            tmp / f"s{i}.json",
        ),
        2,
        env,
        tmp,
    )
    card, sd = read_card(None), read_card(seed).defaults()
    med = {
        k: statistics.median(v)
        for k, v in {"default": default, "teacher": teacher, "seed": seeded, "sample_one": one}.items()
    }
    result = {
        "machine": f"{os.cpu_count()} CPUs, {platform.platform()}",
        "loadavg_before": load0,
        "loadavg_after": os.getloadavg(),
        "python": sys.version.split()[0],
        "default_model": {"defaults": card.defaults(), "fewstep": card.meta.get("fewstep", {}).get("method")},
        "seed_defaults": sd,
        "seconds": {"default_sheet": default, "teacher_sheet": teacher, "seed_sheet": seeded, "sample_count_1": one},
        "median_s": med,
        "speedup_vs_seed": {
            "default_sheet": round(med["seed"] / med["default"], 1),
            "teacher_sheet": round(med["seed"] / med["teacher"], 1),
        },
    }
    Path(a.out + ".json").write_text(json.dumps(result, indent=2) + "\n")
    d = card.defaults()
    lines = [
        "# The default sheet against the seed preset's (bench/fast_sheet.py)",
        "",
        f"Machine: {result['machine']}; load average {load0[0]:.2f} before, {result['loadavg_after'][0]:.2f} after. "
        "Each figure: a fresh process, start to files written, median (runs in brackets).",
        "",
        "| command | model, sampling | median s | vs seed |",
        "| --- | --- | ---: | ---: |",
        f"| `sm sheet --label 5 --count 64 --out hero.png` | default: bundled few-step student, onnx, {d['sampler']} "
        f"{d['steps']} steps | {med['default']:.3f} ({', '.join(map(str, default))}) | "
        f"**{result['speedup_vs_seed']['default_sheet']}x** |",
        f"| same, `--model bundled-25 --backend onnx` | the 25-step teacher, dpmpp-2m 25 steps | {med['teacher']:.3f} "
        f"({', '.join(map(str, teacher))}) | {result['speedup_vs_seed']['teacher_sheet']}x |",
        f"| `sm sheet --model seed.safetensors --label 5 --count 64` | seed preset, torch, {sd['sampler']} "
        f"{sd['steps']} steps | {med['seed']:.2f} ({', '.join(map(str, seeded))}) | 1x |",
        f"| `sm sample --label 5 --count 1 --out DIR` | default, onnx | {med['sample_one']:.3f} "
        f"({', '.join(map(str, one))}) | |",
        "",
    ]
    Path(a.out + ".md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
