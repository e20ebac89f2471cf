"""Quality benchmark: default preset vs the seed preset (the ancestor) at equal training steps,
and the default sampler at few steps vs DDPM over all timesteps, measured with `sm eval`'s figures.

    python bench/quality.py --steps 3000 --count 300 --out bench/results/quality.json

Trains both presets on the bundled set (tracking off), then evaluates:
  - seed preset, its own sampler (ancestral DDPM, 500 steps)
  - default preset, default sampler (DPM-Solver++ 2M, 20 steps, guidance 2)
  - the bundled model (default preset, 10k steps): its default sampler vs ancestral DDPM with
    500 steps (strided over its 1000 timesteps), the reference for the few-step sampler
  - the real held-out split (the floor each figure can reach)
Figures are ratios within one run on one machine; the machine is named in the output.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from scarlet_moon.data.sprites import load_sprites
from scarlet_moon.eval.metrics import evaluate
from scarlet_moon.exporters.atomic import write_file
from scarlet_moon.options import SamplingOptions
from scarlet_moon.training.config import preset
from scarlet_moon.training.runs import train_run


def train(name: str, steps: int, runs: Path) -> tuple[Path, float]:
    model = runs / name / "model.safetensors"
    if model.exists():  # reuse a finished run of the same length
        return model, float("nan")
    cfg = preset(name).replace({"steps": steps, "sample_every": 0, "checkpoint_every": 500})
    res = train_run(cfg, load_sprites(None), runs_root=runs, trackers={}, name=name)
    return res.model, res.seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--count", type=int, default=300, help="generated sprites per evaluation")
    ap.add_argument("--runs", type=Path, default=Path("sm-runs/bench"))
    ap.add_argument("--out", type=Path, default=Path("bench/results/quality.json"))
    ap.add_argument(
        "--ddpm-reference", action="store_true", help="also compare the bundled model's default sampler with DDPM-500"
    )
    args = ap.parse_args()
    data = load_sprites(None)
    results: dict = {
        "machine": f"{platform.machine()} {platform.processor() or ''} CPU".strip(),
        "steps": args.steps,
        "count": args.count,
        "runs": {},
    }
    for name in ("seed", "default"):
        model, seconds = train(name, args.steps, args.runs)
        results["runs"][name] = {
            "model": str(model),
            "train_seconds": seconds,
            "seconds_per_step": seconds / args.steps,
        }
    results["real_floor"] = evaluate(None, data, count=args.count, seed=0, real=True)
    evals = {
        "seed/ddpm-500": (results["runs"]["seed"]["model"], SamplingOptions()),
        "default/dpmpp-2m-20": (results["runs"]["default"]["model"], SamplingOptions()),
    }
    if args.ddpm_reference:
        evals["bundled/dpmpp-2m-20"] = (None, SamplingOptions())
        evals["bundled/ddpm-500"] = (None, SamplingOptions(sampler="ddpm", steps=500))
    for key, (model, sampling) in evals.items():
        t = time.time()
        results[key] = evaluate(model, data, count=args.count, seed=0, sampling=sampling)
        results[key]["eval_seconds"] = time.time() - t
        print(key, json.dumps({k: v for k, v in results[key].items() if not isinstance(v, dict)}), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_file(args.out, json.dumps(results, indent=2, default=float).encode())
    print(args.out)


if __name__ == "__main__":
    main()
