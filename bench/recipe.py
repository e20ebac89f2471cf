"""Quality per CPU-minute: the default preset against single changes, each trained for the same
wall-clock budget on one core of this machine, then scored with `sm eval`'s figures.

    .venv/bin/python bench/recipe.py --time 20m --jobs 2          # 9 configs: ~90 min + ~15 min of eval
    .venv/bin/python bench/recipe.py --configs default,zsnr --time 5m --work /tmp/recipe-smoke

Every config trains on the bundled set with `sm train --time T --threads 1` (tracking off), `--jobs`
of them side by side (one core each, so all see the same machine); a config is a TOML file of
overrides on the default preset. Each model then makes 600 sprites in the eval split's class mix
per eval seed (the card's sampler), post-processed as `sm sample` does; figures are the mean over
eval seeds: FD over the real held-out floor, conditional accuracy, isolated-pixel and speck rates
and saturation against the held-out split's, and the steps the budget reached. `default-seed1`
(another training seed) is the noise: a change smaller than the gap between the two defaults is
not a measured effect. Finished runs under --work are reused. Writes <out>.md and <out>.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CONFIGS: dict[str, tuple[dict, str]] = {
    "default": ({}, "the default preset as is"),
    "default-seed1": ({"seed": 1}, "noise: the default preset, training seed 1"),
    "zsnr": ({"schedule": "linear-zsnr"}, "zero-terminal-SNR linear schedule instead of cosine"),
    "no-hflip": ({"hflip": False}, "no horizontal flips"),
    "no-minsnr": ({"loss_weighting": "none"}, "plain MSE instead of min-SNR weighting"),
    "zsnr-no-hflip": ({"schedule": "linear-zsnr", "hflip": False}, "zero-terminal SNR and no flips"),
    "lr-5e-4": ({"lr": 5e-4}, "learning rate 5e-4 instead of 2e-4"),
    "narrow": ({"n_feat": 24}, "n_feat 24 instead of 32 (cheaper steps, more of them)"),
    "wide": ({"n_feat": 48}, "n_feat 48 instead of 32 (dearer steps, fewer of them)"),
}


def toml_of(overrides: dict) -> str:
    """A [train] table of flat settings (TrainConfig.flat_names)."""

    def val(v):
        return ("true" if v else "false") if isinstance(v, bool) else json.dumps(v)

    return "[train]\n" + "".join(f"{k} = {val(v)}\n" for k, v in overrides.items())


def train_all(names: list[str], budget: str, jobs: int, work: Path) -> None:
    runs, todo, running = (
        work / "runs",
        [n for n in names if not (work / "runs" / n / "model.safetensors").exists()],
        [],
    )
    (work / "configs").mkdir(parents=True, exist_ok=True)
    while todo or running:
        while todo and len(running) < jobs:
            name = todo.pop(0)
            cfg = work / "configs" / f"{name}.toml"
            cfg.write_text(toml_of(CONFIGS[name][0]))
            log = (work / f"{name}.log").open("w")
            cmd = [
                sys.executable,
                "-m",
                "scarlet_moon.cli.main",
                "train",
                "--config",
                str(cfg),
                "--time",
                budget,
                "--threads",
                "1",
                "--tracking",
                "none",
                "--runs-dir",
                str(runs),
                "--name",
                name,
                "--sample-every",
                "0",
                "--checkpoint-every",
                "0",
            ]
            running.append((name, subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT), log))
            print(f"{time.strftime('%H:%M:%S')} training {name}", flush=True)
        time.sleep(2)
        for item in [r for r in running if r[1].poll() is not None]:
            running.remove(item)
            item[2].close()
            if item[1].returncode != 0:
                raise SystemExit(f"{item[0]} failed ({item[1].returncode}); see {work / (item[0] + '.log')}")


def score(model: Path, seeds: int) -> dict:
    from scarlet_moon.eval.metrics import evaluate
    from scarlet_moon.models.card import read_meta

    evs = [evaluate(model, count=600, seed=s) for s in range(seeds)]
    px = [e["pixels"] for e in evs]
    held = px[0]["isolated_rate"]["held_out"], px[0]["speck_rate"]["held_out"], px[0]["saturation"]["held_out"]
    return {
        "fd": float(np.mean([e["frechet"]["distance"] for e in evs])),
        "fd_per_seed": [e["frechet"]["distance"] for e in evs],
        "acc": float(np.mean([e["conditional_accuracy"]["overall"] for e in evs])),
        "iso": float(np.mean([p["isolated_rate"]["candidates"] for p in px])) / held[0],
        "speck": float(np.mean([p["speck_rate"]["candidates"] for p in px])) / held[1],
        "sat": float(np.mean([p["saturation"]["candidates"] for p in px])) / held[2] - 1,
        "colours": float(np.mean([p["colours_per_sprite"]["candidates"] for p in px])),
        "steps": int(read_meta(model)["step"]),
        "params": read_meta(model).get("num_params"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--time", default="20m")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--eval-seeds", type=int, default=2)
    ap.add_argument("--work", default="/tmp/sm-recipe")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "recipe.md"))
    args = ap.parse_args()
    names, work = [c for c in args.configs.split(",") if c], Path(args.work)
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        raise SystemExit(f"unknown config(s) {unknown}; known: {', '.join(CONFIGS)}")
    train_all(names, args.time, args.jobs, work)
    import torch

    torch.set_num_threads(max(1, args.jobs))
    from scarlet_moon.eval.metrics import evaluate

    floor = evaluate(None, real=True)["frechet"]["distance"]
    rows = {}
    for n in names:
        rows[n] = score(work / "runs" / n / "model.safetensors", args.eval_seeds)
        print(n, json.dumps(rows[n]), flush=True)
    write(rows, floor, args, Path(args.out))


def write(rows: dict, floor: float, args: argparse.Namespace, out: Path) -> None:
    lines = [
        f"# Quality per CPU-minute: {args.time} of one core per config (bundled set)",
        "",
        f"`bench/recipe.py --time {args.time} --jobs {args.jobs}`: each config trained with `sm train --time "
        f"{args.time} --threads 1`, {args.jobs} side by side on this 2-core machine; scored on 600 sprites x "
        f"{args.eval_seeds} eval seeds (eval class mix, cleanup on). Real held-out floor FD {floor:.2f}; "
        "isolated, specks and saturation are against the held-out split's.",
        "",
        "| config | change | steps reached | FD / floor (per seed) | cond. accuracy | isolated vs real | "
        "specks vs real | saturation vs real | colours |",
        "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for n, r in rows.items():
        lines.append(
            f"| `{n}` | {CONFIGS[n][1]} | {r['steps']} | {r['fd'] / floor:.3f} "
            f"({', '.join(f'{v / floor:.2f}' for v in r['fd_per_seed'])}) | {r['acc']:.3f} | {r['iso']:.2f}x | "
            f"{r['speck']:.2f}x | {r['sat']:+.1%} | {r['colours']:.1f} |"
        )
    lines += [
        "",
        f"Machine: {platform.platform()}, {time.strftime('%Y-%m-%d')}. Command: "
        f"`.venv/bin/python bench/recipe.py {' '.join(sys.argv[1:])}`",
        "",
    ]
    out.with_suffix(".md").write_text("\n".join(lines))
    out.with_suffix(".json").write_text(
        json.dumps({"time": args.time, "jobs": args.jobs, "floor_fd": floor, "rows": rows}, indent=1)
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
