"""Leave one class out: is a prior worth fine-tuning from, on a CPU, against training from scratch?

    python bench/loco.py --leave hero --prior-time 60m --times 10m,30m --work /tmp/loco

1. The bundled set without the left-out class trains a prior (`sm train --time PRIOR`).
2. The left-out class's train split (the eval classifier's split, seed 0) is "the user's own set".
   For each time T, two runs go side by side, one core each (`--threads 1`, so both see the same
   machine): `sm train --init-from PRIOR --time T` and `sm train --time T` from scratch.
3. Each model makes as many sprites as the class's held-out split holds (like for like), over
   several seeds; they are scored in the feature space of the eval classifier of the whole bundled
   set against the class's train split: FD (mean over seeds, and its ratio to the floor: the real
   held-out sprites scored the same way), the share the classifier puts in the class, the
   isolated-pixel and speck rates (as ratios to the held-out sprites'), and the steps reached.
Writes bench/results/loco.md and .json, and loco.png: held-out real sprites, then each model's, at 4x.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def sm(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "scarlet_moon.cli.main", "-q", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        out, err = p.communicate()
        if p.returncode != 0:
            raise SystemExit(f"sm failed ({p.returncode}): {err.strip()[-2000:]}")


def save_set(images: np.ndarray, labels: np.ndarray, names: list[str], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "sprites.npy", images)
    np.save(folder / "sprites_labels.npy", np.eye(len(names), dtype=np.float32)[labels])
    (folder / "labels.txt").write_text("\n".join(names) + "\n")
    return folder


def split_sets(leave: str, work: Path) -> tuple[Path, Path, int]:
    """(prior set, the left-out class's train split, its label index in the bundled set)."""
    from scarlet_moon.data.sprites import load_sprites, split_holdout

    ds = load_sprites(None)
    k = ds.label_names.index(leave)
    others = [n for n in ds.label_names if n != leave]
    keep = ds.labels != k
    remap = {old: new for new, old in enumerate(i for i in range(len(ds.label_names)) if i != k)}
    prior = save_set(ds.images[keep], np.array([remap[int(v)] for v in ds.labels[keep]]), others, work / "prior-set")
    train, _ = split_holdout(ds, 0.2, 0)
    own = train.images[train.labels == k]
    return prior, save_set(own, np.zeros(len(own), np.int64), [leave], work / "own-set"), k


def score(model: Path, k: int, seeds: int) -> dict[str, float]:
    """FD, class share and fidelity of `model`'s sprites, as many per seed as the held-out split holds."""
    from scarlet_moon.backends import open_denoiser
    from scarlet_moon.data.sprites import load_sprites
    from scarlet_moon.eval.classifier import get_classifier
    from scarlet_moon.eval.fidelity import fidelity
    from scarlet_moon.eval.metrics import COPY_THRESHOLD, frechet_distance, nearest_distances
    from scarlet_moon.generation.chunks import generate_all
    from scarlet_moon.generation.request import Request

    bundled = load_sprites(None)
    clf, train, held = get_classifier(bundled)
    own_train, real = train.images[train.labels == k], held.images[held.labels == k]
    ref = clf.features(own_train)
    den = open_denoiser(model, device="cpu")
    own = den.card.label_names.index(bundled.label_names[k])
    fds, shares, sprites = [], [], []
    for seed in range(seeds):
        im = generate_all(den, Request((own,) * len(real), seed=seed))
        fds.append(frechet_distance(clf.features(im), ref))
        shares.append(float((clf.predict(im) == k).mean()))
        sprites.append(im)
    floor, f_real, f_gen = frechet_distance(clf.features(real), ref), fidelity(real), fidelity(np.concatenate(sprites))
    near_gen, near_real = nearest_distances(np.concatenate(sprites), own_train), nearest_distances(real, own_train)
    return {
        "fd": float(np.mean(fds)),
        "fd_spread": float(np.std(fds)),
        "fd_floor": floor,
        "copies": float((near_gen <= COPY_THRESHOLD).mean()),
        "nearest": float(np.median(near_gen)),
        "nearest_real": float(np.median(near_real)),
        "fd_ratio": float(np.mean(fds)) / floor,
        "class_share": float(np.mean(shares)),
        "isolated_ratio": f_gen["isolated_rate"] / f_real["isolated_rate"],
        "speck_rate": f_gen["speck_rate"],
        "speck_rate_real": f_real["speck_rate"],
        "saturation_ratio": f_gen["saturation"] / f_real["saturation"],
        "n_real": len(real),
        "_sprites": sprites[0],
    }


def picture(rows: list[tuple[str, np.ndarray]], path: Path) -> None:
    from scarlet_moon.data.pixels import make_grid
    from scarlet_moon.data.png import save_png

    width = max(len(im) for _, im in rows)
    grid = np.zeros((len(rows) * width, *rows[0][1].shape[1:]), np.uint8)
    for r, (_, im) in enumerate(rows):
        grid[r * width : r * width + len(im)] = im
    save_png(make_grid(grid, width, scale=4), path)


def run(args: argparse.Namespace) -> dict:
    work = Path(args.work)
    prior_set, own_set, k = split_sets(args.leave, work)
    runs = work / "runs"
    common = ["--tracking", "none", "--runs-dir", str(runs), "--sample-every", "0", "--checkpoint-every", "0"]
    prior = runs / "prior" / "model.safetensors"
    if not prior.exists():
        wait(
            [
                sm(
                    "train",
                    "--data",
                    str(prior_set),
                    "--time",
                    args.prior_time,
                    "--threads",
                    str(args.prior_threads),
                    "--name",
                    "prior",
                    *common,
                )
            ]
        )
    results = {"leave": args.leave, "prior_time": args.prior_time, "prior_steps": _steps(prior), "rows": []}
    for t in args.times.split(","):
        names = {"fine-tune": f"ft-{t}", "scratch": f"scratch-{t}"}
        todo = [n for n in names.values() if not (runs / n / "model.safetensors").exists()]
        wait(
            [
                sm(
                    "train",
                    "--data",
                    str(own_set),
                    "--time",
                    t,
                    "--threads",
                    "1",
                    "--name",
                    n,
                    *common,
                    *(["--init-from", str(prior)] if n.startswith("ft-") else []),
                )
                for n in todo
            ]
        )
        for kind, n in names.items():
            s = score(runs / n / "model.safetensors", k, args.seeds)
            results["rows"].append(
                {
                    "time": t,
                    "start": kind,
                    "steps": _steps(runs / n / "model.safetensors"),
                    **{a: b for a, b in s.items() if not a.startswith("_")},
                }
            )
            results.setdefault("_pictures", []).append((f"{kind} {t}", s["_sprites"]))
    return results


def _steps(model: Path) -> int:
    from scarlet_moon.models.card import read_meta

    return int(read_meta(model)["step"])


def write(results: dict, out: Path) -> None:
    from scarlet_moon.data.sprites import load_sprites
    from scarlet_moon.eval.classifier import get_classifier

    pics = results.pop("_pictures")
    _, _, held = get_classifier(load_sprites(None))
    k = load_sprites(None).label_names.index(results["leave"])
    picture([("real held-out", held.images[held.labels == k]), *pics], out.with_suffix(".png"))
    out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        f"# Leave `{results['leave']}` out: fine-tune a prior or start from scratch (2-core CPU)",
        "",
        f"Prior: the other five classes, `sm train --time {results['prior_time']}` "
        f"({results['prior_steps']} steps). Each pair ran side by side, one thread each.",
        "",
        "| time | start | steps | FD (mean ± sd over seeds) | FD / floor | in the class | isolated / real | "
        "speck pixels (real) | saturation / real | copies | nearest train sprite (real) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results["rows"]:
        lines.append(
            f"| {r['time']} | {r['start']} | {r['steps']} | {r['fd']:.2f} ± {r['fd_spread']:.2f} | "
            f"{r['fd_ratio']:.2f}x | {r['class_share']:.2f} | {r['isolated_ratio']:.2f}x | "
            f"{r['speck_rate']:.2%} ({r['speck_rate_real']:.2%}) | {r['saturation_ratio']:.2f}x | "
            f"{r['copies']:.0%} | {r['nearest']:.1f} ({r['nearest_real']:.1f}) |"
        )
    n_real = len(results["rows"]) and results["rows"][0].get("n_real")
    lines += [
        "",
        f"Floor: the real held-out `{results['leave']}` sprites ({n_real}), scored like the models' "
        f"({n_real} per seed) against the class's train split: FD {results['rows'][0]['fd_floor']:.2f}. "
        "Copies: generated sprites within a mean |RGBA difference| of 2 (of 255) of a train sprite (the "
        "`sm eval` rule); nearest train sprite: the median of that distance, the real held-out sprites' in "
        "brackets. A model below the floor that also sits closer to the train sprites than new real ones "
        "do is reproducing its training set, not drawing new sprites.",
        f"Picture: `{out.with_suffix('.png').name}`, first row real held-out sprites, then one row per model "
        "in the table's order (seed 0), 4x.",
    ]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--leave", default="hero")
    ap.add_argument("--prior-time", default="60m")
    ap.add_argument("--prior-threads", type=int, default=0, help="0: the free cores")
    ap.add_argument("--times", default="10m,30m")
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--work", default="/tmp/sm-loco")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "loco.md"))
    args = ap.parse_args()
    os.environ.setdefault("PYTHONPATH", str(ROOT))
    write(run(args), Path(args.out))


if __name__ == "__main__":
    main()
