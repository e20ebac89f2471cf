"""Sampling settings of the bundled model, like for like with the held-out floor (193 sprites per
seed in its class mix, `sm eval`'s default), including settings `sm` has no flag for.

    .venv/bin/python bench/sampling_sweep.py '[{}, {"sampler": "ddim", "steps": 50, "eta": 1.0}]' --seeds 8
    .venv/bin/python bench/sampling_sweep.py '[{"interval": [0, 700], "g_in": 2, "g_out": 1}]' --seeds 8

A config holds SamplingOptions fields (sampler, steps, guidance, eta), or a guidance interval
(Kynkaanniemi et al. 2024): guidance g_in for timesteps in [lo, hi], g_out elsewhere, done by
replacing Denoiser.bind in this process only (both rows every step). One JSON line per config:
FD mean/sd over seeds, its ratio to the floor, accuracy, isolated-pixel ratio, saturation vs real.
The results of 2026-12-02 are in bench/results/sampling_sweep.jsonl.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def interval_bind(g_in: float, g_out: float, lo: int, hi: int):
    """A Denoiser.bind whose guidance (w, as `sm --guidance` takes it) depends on the timestep."""
    from scarlet_moon.diffusion.guidance import split_prediction
    from scarlet_moon.diffusion.samplers import guided

    def bind(self, labels, guidance):
        labels = np.asarray(labels, np.int64)
        n, base = len(labels), self.card.guidance_base
        run = self.runner(np.concatenate([labels, np.full_like(labels, len(self.card.label_names))]))
        abar, kind = self.card.schedule.alphas_cumprod(), self.card.prediction

        def denoise(x, t):
            a, s = float(np.sqrt(abar[t])), float(np.sqrt(1 - abar[t]))
            both = run(self.concat(x, x), t)
            w = (g_in if lo <= t <= hi else g_out) / base
            return split_prediction(guided(both[:n], both[n:], w), x, a, s, kind)

        return denoise

    return bind


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("configs", help="a JSON list of configs (see above)")
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--model", default=None)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    from scarlet_moon.backends.base import Denoiser
    from scarlet_moon.eval.metrics import evaluate
    from scarlet_moon.options import SamplingOptions

    plain_bind = Denoiser.bind
    for c in json.loads(args.configs):
        Denoiser.bind = interval_bind(c["g_in"], c["g_out"], *c["interval"]) if "interval" in c else plain_bind
        opts = SamplingOptions(c.get("sampler"), c.get("steps"), c.get("guidance"), c.get("eta", 0.0))
        rows = []
        for seed in range(args.seeds):
            f = evaluate(args.model, None, seed=seed, sampling=opts)
            px = f["pixels"]
            rows.append(
                (
                    f["frechet"]["distance"],
                    f["frechet"]["ratio_to_floor"],
                    f["conditional_accuracy"]["overall"],
                    px["isolated_rate"]["candidates"] / px["isolated_rate"]["held_out"],
                    px["saturation"]["candidates"] / px["saturation"]["held_out"] - 1,
                )
            )
        a = np.array(rows, dtype=float)
        print(
            json.dumps(
                {
                    "config": c,
                    "seeds": args.seeds,
                    "fd_mean": round(a[:, 0].mean(), 3),
                    "fd_sd": round(a[:, 0].std(ddof=1), 3),
                    "ratio_mean": round(a[:, 1].mean(), 3),
                    "acc": round(a[:, 2].mean(), 3),
                    "iso_ratio": round(a[:, 3].mean(), 3),
                    "sat_dev": round(a[:, 4].mean(), 4),
                    "fds": [round(x, 2) for x in a[:, 0]],
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
