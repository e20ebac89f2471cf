"""A default model against its teacher, like for like on the bundled held-out split, by two judges.

    python bench/teachers.py                                   # bundled, bundled-25, bundled-prior; seeds 0-7
    python bench/teachers.py --models bundled-prior,/tmp/run/model.safetensors --name cont --seeds 0,1,2,3

Each model makes, per seed, the held-out split's count per label (193 sprites in its class mix) with its
card's sampling and finishing (what `sm sample` gives), through the torch backend on the CPU. Scored
against the train split (`split_holdout(0.2, seed 0)`) by `sm eval`'s classifier (FD over its floor,
conditional accuracy, isolated pixels and saturation over the held-out split's, copies of any of the 963
sprites by its rule: the bundled models saw them all) and by a second classifier of another architecture
and seed (bench/judge.py: FD over its floor, accuracy). Means over seeds, with the seeds' range of FD.

Writes bench/results/teachers-NAME.md/.json and teachers-NAME-8x.png (real held-out sprites, then each
model's first seed, the same labels in the same columns). Sprites are cached per model file and seed in
the temp folder, so adding a model to a table re-samples only that one.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
RESULTS = ROOT / "bench" / "results"


def sprites(card: Any, labels: np.ndarray, seed: int, guidance: float | None = None) -> np.ndarray:
    """The card's default sampling (at `guidance` if given) and finishing for `labels`, cached by model
    fingerprint, guidance and seed."""
    from scarlet_moon.backends import BackendOptions
    from scarlet_moon.eval.metrics import generate_for_eval
    from scarlet_moon.models.card import file_fingerprint
    from scarlet_moon.options import SamplingOptions

    g = "" if guidance is None else f"_g{guidance:g}"
    tag = f"sm_teachers_{file_fingerprint(card.path)}_{len(labels)}{g}_seed{seed}.npy"
    path = Path(tempfile.gettempdir()) / tag
    if path.is_file():
        return np.load(path)
    out = generate_for_eval(
        card,
        labels.tolist(),
        seed=seed,
        sampling=SamplingOptions() if guidance is None else SamplingOptions(guidance=guidance),
        raw=False,
        backend=BackendOptions(backend="torch", device="cpu"),
    )
    np.save(path, out)
    return out


def figures(ds: Any, cand: np.ndarray, labels: np.ndarray, card: Any, judge: Any, feats2: np.ndarray, floor2: float):
    """Both judges' figures for one seed's sprites (finetune.figures_of), with saturation over the
    held-out split's and copies of any of the set's sprites (the bundled models saw them all)."""
    from finetune import figures_of

    from scarlet_moon.eval.metrics import candidate_figures

    fig = candidate_figures(ds, cand, labels, card)
    sat = fig["pixels"]["saturation"]
    return {
        **figures_of(fig, cand, labels, judge, feats2, floor2),
        "saturation_vs_real": sat["candidates"] / sat["held_out"],
        "copies": fig["copies"]["share_vs_all_real"],
    }


def table(name: str, scores: dict[str, dict[str, Any]], seeds: list[int], real_acc: tuple[float, float]) -> str:
    lines = [
        f"# Default model and teachers: {name}",
        "",
        f"Bundled angband16 held-out split, like for like (193 sprites per seed in its class mix), seeds "
        f"{','.join(map(str, seeds))}, each model's card sampling and finishing; `bench/teachers.py`. FD ratios "
        "are to the real held-out split's FD (the floor), mean over seeds with the seeds' range; copies are of "
        "any of the 963 sprites (the models saw them all).",
        "",
        "| model | steps x rows | FD / floor (sm eval) | FD / floor (judge 2) | accuracy (sm eval / judge 2) "
        "| isolated px vs real | saturation vs real | copies |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for model, s in scores.items():
        lo, hi = min(s["fd_per_seed"]), max(s["fd_per_seed"])
        lo2, hi2 = min(s["fd2_per_seed"]), max(s["fd2_per_seed"])
        lines.append(
            f"| {model} | {s['sampling']} | {s['fd_ratio']:.2f}x ({lo:.2f}-{hi:.2f}) | "
            f"{s['fd2_ratio']:.2f}x ({lo2:.2f}-{hi2:.2f}) | {s['accuracy']:.3f} / {s['accuracy2']:.3f} | "
            f"{s['isolated_vs_real']:.2f}x | {s['saturation_vs_real']:.3f}x | {100 * s['copies']:.1f}% |"
        )
    lines.append(f"| real held-out | - | 1x | 1x | {real_acc[0]:.3f} / {real_acc[1]:.3f} | 1x | 1x | - |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--models",
        default="bundled,bundled-25,bundled-prior",
        help="comma-separated names or files; MODEL@G samples at guidance G instead of the card's; "
        "LABEL=MODEL names the table's row",
    )
    ap.add_argument("--seeds", default="0,1,2,3,4,5,6,7")
    ap.add_argument("--name", default="bundled")
    args = ap.parse_args()
    import torch
    from finetune import picture
    from judge import train_judge

    from scarlet_moon.backends import read_card
    from scarlet_moon.data.sprites import load_sprites, split_holdout
    from scarlet_moon.eval.classifier import get_classifier
    from scarlet_moon.eval.metrics import frechet_distance

    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    ds = load_sprites(None)
    train, held = split_holdout(ds, 0.2, 0)
    judge = train_judge(train.images, train.labels, len(ds.label_names), held.images, held.labels)
    feats2 = judge.features(train.images)
    floor2 = frechet_distance(judge.features(held.images), feats2)
    labels = np.sort(held.labels)
    scores: dict[str, dict[str, Any]] = {}
    rows: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    real_acc = (float(get_classifier(ds)[0].info.get("held_out_accuracy") or 0.0), judge.held_out_accuracy)
    for model in args.models.split(","):
        t0 = time.perf_counter()
        label, _, spec = model.rpartition("=")
        path, _, g = spec.partition("@")
        guidance = float(g) if g else None
        card = read_card(path)
        d = {**card.defaults(), **({"guidance": guidance} if g else {})}
        per_seed = []
        for seed in seeds:
            cand = sprites(card, labels, seed, guidance)
            if seed == seeds[0]:
                rows[label or model] = (cand, labels)
            per_seed.append(figures(ds, cand, labels, card, judge, feats2, floor2))
        mean = {k: float(np.mean([r[k] for r in per_seed])) for k in per_seed[0]}
        scores[label or model] = {
            **mean,
            "fd_per_seed": [r["fd_ratio"] for r in per_seed],
            "fd2_per_seed": [r["fd2_ratio"] for r in per_seed],
            "per_seed": per_seed,
            "sampling": f"{d['sampler']} {d['steps']} x {1 if card.meta.get('distilled') and not g else 2}, "
            f"guidance {d['guidance']:g}",
            "fingerprint": card.fingerprint(),
            "steps_trained": card.meta.get("step"),
            "seconds": round(time.perf_counter() - t0, 1),
        }
        print(
            label or model, {k: round(v, 3) for k, v in mean.items()}, f"{time.perf_counter() - t0:.0f} s", flush=True
        )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"teachers-{args.name}"
    (out.with_suffix(".md")).write_text(table(args.name, scores, seeds, real_acc))
    meta = {"seeds": seeds, "floor2": floor2, "held_count": len(held.labels), "machine": platform.platform()}
    (out.with_suffix(".json")).write_text(
        json.dumps({"meta": meta, "scores": {m: {k: v for k, v in s.items()} for m, s in scores.items()}}, indent=1)
    )
    picture(held.images, held.labels, rows, RESULTS / f"teachers-{args.name}-8x.png", per_row=18)
    print(out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
