"""Fine-tune against scratch on a set the prior never saw, at the CPU minutes a user would give.

    python bench/finetune.py --set minetest --times 10m,30m --work /tmp/ft   # a set of bench/sets.py
    python bench/finetune.py --data DIR --name myset ...                       # any folder sm train reads
    python bench/finetune.py --set minetest --name X --work W --score-runs fine-tune-10m,ft-other-10m
                                         # score runs already in W/X/runs (arms trained by hand, any recipe)

1. The set is split like `sm eval` splits it (`split_holdout(0.2, seed 0)`, stratified); the train split
   is written as PNG folders and is all the runs see.
2. For each time T, two runs go side by side, one thread each (`--threads 1`, so both see the same busy
   machine): `sm train --data TRAIN --init-from bundled --time T` and `sm train --data TRAIN --time T`
   (scratch, the plain defaults). Everything else is `sm train`'s default.
3. Each model makes, per seed, as many sprites per label as the held-out split holds (like for like),
   with its card's sampling and sm's finishing. Scored against the train split by two judges: `sm eval`'s
   classifier (FD over its floor, conditional accuracy, isolated pixels over the held-out's rate,
   copies by its rule) and a second classifier of another architecture and seed (bench/judge.py: FD
   over its floor, accuracy). Means over the seeds.
Writes bench/results/finetune-NAME.md/.json and finetune-NAME-8x.png (held-out real sprites, then
each model's, the same labels in the same columns).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
RESULTS = ROOT / "bench" / "results"


def write_split(full: Path, work: Path) -> tuple[Any, Any, Any, Path]:
    """(the whole set, its train split, its held-out split, the train split as PNG folders)."""
    from PIL import Image

    from scarlet_moon.data.sprites import load_sprites, split_holdout

    ds = load_sprites(full)
    train, held = split_holdout(ds, 0.2, 0)
    out = work / "train"
    if not out.exists():
        tmp = work / "train.tmp"
        for k, name in enumerate(train.label_names):
            (tmp / name).mkdir(parents=True, exist_ok=True)
            for i, img in enumerate(train.images[train.labels == k]):
                Image.fromarray(img, "RGBA").save(tmp / name / f"{i:05d}.png")
        tmp.rename(out)
    return ds, train, held, out


def train_pair(
    train_dir: Path, work: Path, t: str, finetune_args: list[str] | None = None, seed: int = 0
) -> dict[str, Path]:
    """Fine-tune and scratch runs of time `t`, side by side; {arm: model file}. Runs already done are kept.
    `finetune_args`: more `sm train` options for the fine-tune arm (a recipe under test); `seed`: both
    arms' training seed (sm train --seed)."""
    arms = {"fine-tune": ["--init-from", "bundled", *(finetune_args or [])], "scratch": []}
    arms = {arm: [*extra, "--seed", str(seed)] for arm, extra in arms.items()}
    models = {arm: work / "runs" / f"{arm}-{t}" / "model.safetensors" for arm in arms}
    procs = []
    for arm, extra in arms.items():
        if models[arm].is_file():
            continue
        cmd = [
            sys.executable,
            "-m",
            "scarlet_moon.cli.main",
            "-q",
            "train",
            "--data",
            str(train_dir),
            *extra,
            "--time",
            t,
            "--threads",
            "1",
            "--tracking",
            "none",
            "--runs-dir",
            str(work / "runs"),
            "--name",
            f"{arm}-{t}",
        ]
        log = open(work / f"{arm}-{t}.log", "w")
        procs.append((arm, subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)))
    for arm, p in procs:
        if p.wait() != 0:
            raise SystemExit(f"{arm} {t} failed: see {work / f'{arm}-{t}.log'}")
    return models


SHORT = ("fd_ratio", "fd2_ratio", "accuracy", "accuracy2", "isolated_vs_real")  # the sweeps' five, in order


def judged_split(work: Path) -> tuple[Any, Any, Any, Any, np.ndarray, float]:
    """For a finished bench/finetune.py folder: (the set, its train split, its held-out split, the second
    judge trained on them, its features of the train split, its FD of the held-out split: the floor)."""
    from judge import train_judge

    from scarlet_moon.eval.metrics import frechet_distance

    ds, train, held, _ = write_split(work / "full", work)
    judge = train_judge(train.images, train.labels, len(ds.label_names), held.images, held.labels)
    feats = judge.features(train.images)
    return ds, train, held, judge, feats, frechet_distance(judge.features(held.images), feats)


def judge_figures(
    ds: Any, cand: np.ndarray, labels: np.ndarray, card: Any, judge: Any, train_feats: np.ndarray, floor2: float
) -> dict[str, float]:
    """Both judges' figures for sprites `cand` of `labels`: sm eval's FD over its floor, accuracy,
    isolated pixels over the held-out's rate and copies, and the second judge's FD over `floor2` and accuracy."""
    from scarlet_moon.eval.metrics import candidate_figures

    return figures_of(candidate_figures(ds, cand, labels, card), cand, labels, judge, train_feats, floor2)


def figures_of(
    fig: dict[str, Any], cand: np.ndarray, labels: np.ndarray, judge: Any, train_feats: np.ndarray, floor2: float
) -> dict[str, float]:
    """judge_figures from sm eval's figures `fig` of the sprites `cand` (eval.metrics.candidate_figures)."""
    from scarlet_moon.eval.metrics import frechet_distance

    px = fig["pixels"]["isolated_rate"]
    return {
        "fd_ratio": fig["frechet"]["ratio_to_floor"],
        "accuracy": fig["conditional_accuracy"]["overall"],
        "isolated_vs_real": px["candidates"] / px["held_out"],
        "copies": fig["copies"]["share"],
        "fd2_ratio": frechet_distance(judge.features(cand), train_feats) / floor2,
        "accuracy2": float((judge.predict(cand) == labels).mean()),
    }


def score(
    model: Path, ds: Any, held: Any, judge: Any, train_feats: np.ndarray, floor2: float, seeds: list[int]
) -> dict[str, Any]:
    """Both judges' figures for `model`, mean over seeds, and the sprites of the first seed. `train_feats`,
    `floor2`: the second judge's features of the train split and its FD of the held-out split."""
    from scarlet_moon.backends import BackendOptions, read_card
    from scarlet_moon.eval.metrics import generate_for_eval
    from scarlet_moon.options import SamplingOptions

    card = read_card(model)
    labels = np.sort(held.labels)  # the held-out split's count per label
    rows, first = [], None
    for seed in seeds:
        cand = generate_for_eval(
            card,
            labels.tolist(),
            seed=seed,
            sampling=SamplingOptions(),
            raw=False,
            backend=BackendOptions(backend="torch"),
        )
        first = cand if first is None else first
        rows.append(judge_figures(ds, cand, labels, card, judge, train_feats, floor2))
    mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    meta = card.meta
    return {
        **mean,
        "per_seed": rows,
        "steps": meta.get("step"),
        "elapsed_s": meta.get("elapsed_s"),
        "sprites": first,
        "labels": labels,
    }


def picture(
    real: np.ndarray,
    real_labels: np.ndarray,
    rows: dict[str, tuple[np.ndarray, np.ndarray]],
    path: Path,
    per_row: int = 12,
    zoom: int = 8,
) -> None:
    """One row per source at `zoom`x: the same label sequence in each row (labels taken in turn)."""
    from PIL import Image

    def pick(images: np.ndarray, labels: np.ndarray) -> list[np.ndarray]:
        ks = np.unique(real_labels)
        seq = [ks[i % len(ks)] for i in range(per_row)]
        seen: dict[int, int] = {}
        out = []
        for k in seq:
            idx = np.flatnonzero(labels == k)
            out.append(images[idx[seen.get(k, 0) % len(idx)]])
            seen[k] = seen.get(k, 0) + 1
        return out

    from PIL import ImageDraw

    h, w = real.shape[1:3]
    sources = [("real held-out", real, real_labels), *((n, im, lb) for n, (im, lb) in rows.items())]
    margin = 120  # each row's name
    sheet = Image.new("RGBA", (margin + per_row * (w + 2) * zoom, len(sources) * (h + 2) * zoom), (96, 96, 96, 255))
    draw = ImageDraw.Draw(sheet)
    for r, (name, images, labels) in enumerate(sources):
        draw.text((6, r * (h + 2) * zoom + (h + 2) * zoom // 2 - 6), name, fill=(255, 255, 255, 255))
        for c, sprite in enumerate(pick(images, labels)):
            tile = Image.fromarray(sprite, "RGBA").resize((w * zoom, h * zoom), Image.NEAREST)
            sheet.alpha_composite(tile, (margin + c * (w + 2) * zoom + zoom, r * (h + 2) * zoom + zoom))
    sheet.save(path)


def redraw(name: str, work: Path, held: Any, times: list[str]) -> None:
    """The 8x picture from trained models: their first seed's sprites, as `score` made them."""
    from scarlet_moon.backends import BackendOptions, read_card
    from scarlet_moon.eval.metrics import generate_for_eval
    from scarlet_moon.options import SamplingOptions

    labels, rows = np.sort(held.labels), {}
    for t in times:
        for arm in ("fine-tune", "scratch"):
            card = read_card(work / "runs" / f"{arm}-{t}" / "model.safetensors")
            rows[f"{arm} {t}"] = (
                generate_for_eval(
                    card,
                    labels.tolist(),
                    seed=0,
                    sampling=SamplingOptions(),
                    raw=False,
                    backend=BackendOptions(backend="torch"),
                ),
                labels,
            )
    picture(held.images, held.labels, rows, RESULTS / f"finetune-{name}-8x.png")


def table(name: str, scores: dict[str, dict[str, Any]], real_acc: tuple[float, float], source: str) -> str:
    lines = [
        f"# Fine-tune vs scratch: {name}",
        "",
        f"Set: {source}. Both judges against the set's own train split, "
        "like for like with its held-out split (bench/finetune.py). Ratios are to the real held-out split "
        "(its FD: the floor; its isolated-pixel rate).",
        "",
        "| run | steps | FD / floor (sm eval) | FD / floor (judge 2) | accuracy (sm eval) | accuracy (judge 2) "
        "| isolated px vs real | copies |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run, s in scores.items():
        lines.append(
            f"| {run} | {s['steps']} | {s['fd_ratio']:.2f}x | {s['fd2_ratio']:.2f}x | {s['accuracy']:.3f} | "
            f"{s['accuracy2']:.3f} | {s['isolated_vs_real']:.2f}x | {100 * s['copies']:.1f}% |"
        )
    lines.append(f"| real held-out | - | 1x | 1x | {real_acc[0]:.3f} | {real_acc[1]:.3f} | 1x | - |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--set", help="a set of bench/sets.py")
    ap.add_argument("--data", help="or any set folder sm train reads")
    ap.add_argument("--name", help="the results' name [default: the set's]")
    ap.add_argument("--times", default="10m,30m")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--work", default="/tmp/sm-finetune")
    ap.add_argument("--finetune-args", default="", help="more sm train options for the fine-tune arm, e.g. '--lr 1e-3'")
    ap.add_argument("--train-seed", type=int, default=0, help="both arms' sm train --seed")
    ap.add_argument(
        "--score-runs",
        default="",
        help="score these runs of WORK/NAME/runs (folder names, comma-separated; any recipe trained "
        "beside the pair, e.g. fine-tune-10m,scratch-10m,ft-lossnone-10m) instead of training a pair",
    )
    ap.add_argument(
        "--picture-only",
        action="store_true",
        help="the models are trained: draw the 8x picture again from their first seed's sprites",
    )
    args = ap.parse_args()
    name = args.name or args.set or Path(args.data).name
    work = Path(args.work) / name
    work.mkdir(parents=True, exist_ok=True)
    if args.set:
        import sets

        full = sets.build(args.set, work / "full")
        source = (Path(full) / "README.md").read_text().splitlines()[0].lstrip("# ")
    else:
        full, source = Path(args.data), args.data
    ds, train, held, train_dir = write_split(Path(full), work)
    from judge import train_judge

    from scarlet_moon.eval.classifier import get_classifier

    if args.picture_only:
        redraw(name, work, held, args.times.split(","))
        return
    judge = train_judge(train.images, train.labels, len(ds.label_names), held.images, held.labels)
    from scarlet_moon.eval.metrics import frechet_distance

    clf = get_classifier(ds)[0]
    train_feats = judge.features(train.images)
    floor2 = frechet_distance(judge.features(held.images), train_feats)
    scores: dict[str, dict[str, Any]] = {}
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.score_runs:
        runs = {run: work / "runs" / run / "model.safetensors" for run in args.score_runs.split(",")}
    else:
        runs = {}
        for t in args.times.split(","):
            t0 = time.time()
            models = train_pair(train_dir, work, t, args.finetune_args.split(), args.train_seed)
            print(f"{name} {t}: trained in {time.time() - t0:.0f} s", flush=True)
            runs.update({f"{arm} {t}": model for arm, model in models.items()})
    for run, model in runs.items():
        scores[run] = score(model, ds, held, judge, train_feats, floor2, seeds)
        print(
            f"  {run}: " + ", ".join(f"{k} {v:.3f}" for k, v in scores[run].items() if isinstance(v, float)), flush=True
        )
    real_acc = (float(clf.info.get("held_out_accuracy") or 0), judge.held_out_accuracy)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"finetune-{name}.md").write_text(table(name, scores, real_acc, source))
    (RESULTS / f"finetune-{name}.json").write_text(
        json.dumps(
            {
                "set": name,
                "source": source,
                "sizes": {"train": int(len(train.labels)), "held_out": int(len(held.labels))},
                "labels": list(ds.label_names),
                "seeds": seeds,
                "real_accuracy": real_acc,
                "cpu_count": os.cpu_count(),
                "runs": {
                    k: {kk: vv for kk, vv in v.items() if kk not in ("sprites", "labels")} for k, v in scores.items()
                },
            },
            indent=2,
        )
        + "\n"
    )
    picture(
        held.images,
        held.labels,
        {k: (v["sprites"], v["labels"]) for k, v in scores.items()},
        RESULTS / f"finetune-{name}-8x.png",
    )
    print(table(name, scores, real_acc, source))


if __name__ == "__main__":
    main()
