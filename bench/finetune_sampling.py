"""Does the sampler rescue a fine-tune? The models bench/finetune.py trained, sampled at several guidance
scales, step counts and samplers, scored like finetune.py (both judges, the held-out count per label).

    python bench/finetune_sampling.py --set minetest --work /tmp/ft     # after bench/finetune.py --work /tmp/ft

Writes bench/results/finetune-sampling-NAME.json and prints one line per (run, setting): FD over the
floor by sm eval's classifier and by the second judge, accuracy by each, isolated pixels over real.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

SETTINGS = [(1.0, 25, None), (1.5, 25, None), (2.0, 25, None), (3.0, 25, None), (2.0, 50, None), (1.5, 25, "ddpm")]


def main() -> None:
    import finetune as F

    from scarlet_moon.backends import BackendOptions, read_card
    from scarlet_moon.eval.metrics import generate_for_eval
    from scarlet_moon.options import SamplingOptions

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--set", required=True)
    ap.add_argument("--work", default="/tmp/sm-finetune")
    ap.add_argument("--times", default="10m,30m")
    ap.add_argument("--seeds", default="0,1")
    args = ap.parse_args()
    work = Path(args.work) / args.set
    ds, train, held, judge, feats, floor2 = F.judged_split(work)
    labels = np.sort(held.labels)
    out = {}
    for t in args.times.split(","):
        for arm in ("fine-tune", "scratch"):
            card = read_card(work / "runs" / f"{arm}-{t}" / "model.safetensors")
            for guidance, steps, sampler in SETTINGS:
                rows = []
                for seed in (int(s) for s in args.seeds.split(",")):
                    sampling = SamplingOptions(sampler=sampler, steps=steps, guidance=guidance)
                    cand = generate_for_eval(
                        card,
                        labels.tolist(),
                        seed=seed,
                        sampling=sampling,
                        raw=False,
                        backend=BackendOptions(backend="torch"),
                    )
                    row = F.judge_figures(ds, cand, labels, card, judge, feats, floor2)
                    rows.append([row[k] for k in F.SHORT])
                m = np.mean(rows, 0).tolist()
                key = f"{arm} {t} guidance {guidance:g} steps {steps} {sampler or card.defaults()['sampler']}"
                out[key] = dict(zip(("fd", "fd2", "accuracy", "accuracy2", "isolated_vs_real"), m))
                print(
                    f"{key:48s} FD {m[0]:.2f}x / {m[1]:.2f}x  acc {m[2]:.3f} / {m[3]:.3f}  isolated {m[4]:.2f}x",
                    flush=True,
                )
    (ROOT / "bench" / "results" / f"finetune-sampling-{args.set}.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
