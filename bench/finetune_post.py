"""Does the finishing decide the isolated-pixel verdict? The models bench/finetune.py trained, their raw
sprites finished with the clean-up on (every card's default until 2026-12-05) and off, scored like finetune.py.

    python bench/finetune_post.py --set minetest --work /tmp/ft --name minetest-post   # after finetune.py

The clean-up (data.neighbours: isolated near-duplicate shades merged, detached specks removed) was chosen
on the bundled Angband set, where it lowers FD. The same raw sprites are finished both ways (a paired
comparison). Also reports what `sm train` now chooses for each run (eval.post_choice.texture_post on its
last sample grid: 8 raw sprites per label at the run's seed), and what the clean-up does to the real
held-out sprites: the share of their opaque pixels it changes, their isolated-pixel rate after over before.
Writes bench/results/finetune-post-NAME.json and prints one line per (run, clean-up).
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


def real_cleanup_effect(images: np.ndarray) -> dict[str, float]:
    """What the clean-up does to real sprites: changed opaque pixels, isolated rate after / before."""
    from scarlet_moon.data.pixels import postprocess
    from scarlet_moon.eval.fidelity import fidelity

    after = postprocess(images, alpha_threshold=128, palette=None, colors=None, cleanup=True)
    plain = postprocess(images, alpha_threshold=128, palette=None, colors=None, cleanup=False)
    opaque = plain[..., 3] >= 128
    changed = (np.abs(after.astype(int) - plain.astype(int)).sum(-1) > 0) & opaque
    before_rate = fidelity(plain)["isolated_rate"]
    return {
        "changed_share": float(changed.sum() / max(opaque.sum(), 1)),
        "isolated_after_over_before": float(fidelity(after)["isolated_rate"] / before_rate) if before_rate else 1.0,
    }


def main() -> None:
    import finetune as F

    from scarlet_moon.backends import BackendOptions, read_card
    from scarlet_moon.diffusion.editing import Edit
    from scarlet_moon.eval.metrics import generate_for_eval
    from scarlet_moon.eval.post_choice import texture_post
    from scarlet_moon.generation.finish import finish
    from scarlet_moon.options import PostOptions, SamplingOptions

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--set", required=True, help="the bench/finetune.py run's folder under --work")
    ap.add_argument("--work", default="/tmp/sm-finetune")
    ap.add_argument("--name", help="the results' name [default: --set]")
    ap.add_argument("--times", default="10m,30m")
    ap.add_argument("--seeds", default="0,1,2")
    args = ap.parse_args()
    work = Path(args.work) / args.set
    ds, train, held, judge, feats, floor2 = F.judged_split(work)
    labels = np.sort(held.labels)
    out: dict[str, object] = {"real_held_out": real_cleanup_effect(held.images)}
    print(f"real held-out under the clean-up: {out['real_held_out']}", flush=True)
    for t in args.times.split(","):
        for arm in ("fine-tune", "scratch"):
            path = work / "runs" / f"{arm}-{t}" / "model.safetensors"
            if not path.is_file():
                continue
            card = read_card(path)
            grid_labels = [k for k in range(len(card.label_names)) for _ in range(8)]  # sm train's last grid
            grid = generate_for_eval(
                card, grid_labels, seed=int(card.config.get("seed", 0)), sampling=SamplingOptions(), raw=True,
                backend=BackendOptions(backend="torch"),
            )  # fmt: skip
            chosen = texture_post(card, grid, train.images)
            out[f"{arm} {t} chosen"] = chosen
            print(f"{arm} {t}: sm train would choose {chosen}", flush=True)
            rows: dict[bool, list[list[float]]] = {True: [], False: []}
            for seed in (int(s) for s in args.seeds.split(",")):
                raw = generate_for_eval(
                    card, labels.tolist(), seed=seed, sampling=SamplingOptions(), raw=True,
                    backend=BackendOptions(backend="torch"),
                )  # fmt: skip
                for cleanup in (True, False):
                    cand = finish(card, PostOptions(cleanup=cleanup), Edit(), raw)
                    row = F.judge_figures(ds, cand, labels, card, judge, feats, floor2)
                    rows[cleanup].append([row[k] for k in F.SHORT])
            for cleanup, r in rows.items():
                m = np.mean(r, 0).tolist()
                key = f"{arm} {t} cleanup {'on' if cleanup else 'off'}"
                out[key] = dict(zip(("fd", "fd2", "accuracy", "accuracy2", "isolated_vs_real"), m))
                print(
                    f"{key:28s} FD {m[0]:.2f}x / {m[1]:.2f}x  acc {m[2]:.3f} / {m[3]:.3f}  isolated {m[4]:.2f}x",
                    flush=True,
                )
    name = args.name or args.set
    (ROOT / "bench" / "results" / f"finetune-post-{name}.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
