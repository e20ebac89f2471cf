"""Animation models against a held-out split of their animation set, like for like (issue 32).

    python bench/anim_bench.py --model M.safetensors --train DIR --held DIR --layout frames --name NAME [--seeds 8]

Per seed the model draws as many characters as the held-out split has, in its label mix (`sm anim`'s
path: generation.anim.draw_characters, DDIM 25 steps per pass, the model's guidance). Each set is scored
raw (alpha cut only) and with the palette lock `sm anim` applies by default.

- consistency (eval.anim_consistency): palette and silhouette overlap of neighbouring frames, palette
  overlap and size ratio of a character's directions; beside the same figures on the real held-out and
  train characters, and `between` characters (what unrelated frames score). "x real" = model / real
  held-out: within 1/1.5..1.5 is the issue's bar.
- frame FD: Frechet distance of single frames in the features of a classifier trained on the train
  split's frames (labels: direction; eval.classifier's recipe, as `sm eval`), generated frames against
  the held-out frames; floor: as many train characters in the same label mix against the same held-out
  frames (8 draws, mean). Reported as FD / floor. A second feature space: bench/judge.py's classifier
  (another architecture and seed, trained on the same frames and labels; its mirroring makes left and
  right one pose to it), the same FD / floor.
- copies: generated characters whose every frame together is within a mean |RGBA| difference of 2 of
  a training character (eval.metrics.COPY_THRESHOLD), and the mean nearest distance.

Writes bench/results/anim-NAME.md/.json, docs/anim/NAME-8x.png (real held-out characters, then seed 0's:
a row per direction, frames left to right) and docs/anim/NAME-<direction>.gif (seed 0's walk cycles).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"
DOCS = ROOT / "docs" / "anim"
KEYS = ("palette_frames", "silhouette_frames", "palette_directions", "size_directions")


def as_sprites(frames: np.ndarray, labels: np.ndarray, names: tuple[str, ...]):
    """Every frame of N x D x F x H x W x 4 as a SpriteSet labelled by its direction."""
    from scarlet_moon.data.sprites import SpriteSet

    n, d, f, h, w, _ = frames.shape
    dirs = np.broadcast_to(np.arange(d)[None, :, None], (n, d, f)).reshape(-1)
    return SpriteSet(frames.reshape(-1, h, w, 4), dirs.astype(np.int64), names, "anim-bench")


JUDGES = ("fd", "fd2")  # sm eval's classifier recipe, bench/judge.py's


def frame_fd(judge, frames: np.ndarray, held_feats: np.ndarray) -> float:
    from scarlet_moon.eval.metrics import frechet_distance

    return frechet_distance(judge.features(frames.reshape(-1, *frames.shape[3:])), held_feats)


def like_mix(train_labels: np.ndarray, held_labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices of train characters in the held-out split's label counts."""
    return np.concatenate(
        [
            rng.choice(np.flatnonzero(train_labels == k), int((held_labels == k).sum()), replace=False)
            for k in np.unique(held_labels)
        ]
    )


def copies(chars: np.ndarray, train: np.ndarray) -> dict:
    from scarlet_moon.eval.metrics import COPY_THRESHOLD, nearest_distances

    d = nearest_distances(chars.reshape(len(chars), -1), train.reshape(len(train), -1))
    return {"share": float((d <= COPY_THRESHOLD).mean()), "mean_nearest": float(d.mean())}


def score(chars: np.ndarray, judges: dict, held: dict, train: np.ndarray) -> dict:
    from scarlet_moon.eval.anim_consistency import consistency

    fds = {k: frame_fd(judges[k], chars, held[k]) for k in JUDGES}
    return {**consistency(chars), **fds, "copies": copies(chars, train)}


def mean_of(runs: list[dict]) -> dict:
    out = {k: float(np.mean([r[k] for r in runs])) for k in (*KEYS, *JUDGES)}
    for k in JUDGES:
        out[k + "_range"] = [float(min(r[k] for r in runs)), float(max(r[k] for r in runs))]
    out["copies"] = float(np.mean([r["copies"]["share"] for r in runs]))
    out["mean_nearest"] = float(np.mean([r["copies"]["mean_nearest"] for r in runs]))
    for k in KEYS:
        out[k + "_between"] = float(np.mean([r[k + "_between"] for r in runs]))
    return out


def pictures(held: np.ndarray, gen: np.ndarray, name: str, directions: tuple[str, ...], fps: int = 4) -> list[Path]:
    from PIL import Image

    from scarlet_moon.generation.anim_preview import character_sheet_image, preview_gif

    DOCS.mkdir(parents=True, exist_ok=True)
    real, made = character_sheet_image(held, zoom=8), character_sheet_image(gen, zoom=8)
    both = Image.new("RGBA", (max(real.width, made.width), real.height + made.height + 16), (255, 255, 255, 255))
    both.alpha_composite(real, (0, 0))
    both.alpha_composite(made, (0, real.height + 16))
    out = [DOCS / f"{name}-8x.png"]
    both.save(out[0])
    for d, direction in enumerate(directions):
        path = DOCS / f"{name}-{direction}.gif"
        path.write_bytes(preview_gif(gen[:, [d]], 1000 // fps, zoom=8, per_row=len(gen)))
        out.append(path)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--train", required=True)
    ap.add_argument("--held", required=True)
    ap.add_argument("--layout", default="frames")
    ap.add_argument("--name", required=True)
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    import torch

    from scarlet_moon.backends import read_card
    from scarlet_moon.data.anim import load_anim
    from scarlet_moon.eval.anim_consistency import consistency
    from scarlet_moon.eval.classifier import train_classifier
    from scarlet_moon.generation.anim import AnimOptions, draw_characters, load_anim_net, lock_palettes

    torch.set_num_threads(args.threads)
    t0 = time.time()
    tr, he = load_anim(args.train, args.layout), load_anim(args.held, args.layout)
    card = read_card(args.model)
    assert tuple(card.label_names) == tr.label_names == he.label_names, (card.label_names, tr.label_names)
    from judge import train_judge

    trs, hes = as_sprites(tr.frames, tr.labels, tr.directions), as_sprites(he.frames, he.labels, tr.directions)
    judges = {
        "fd": train_classifier(trs, hes),
        "fd2": train_judge(trs.images, trs.labels, len(tr.directions), hes.images, hes.labels),
    }
    held = {k: j.features(hes.images) for k, j in judges.items()}
    rng = np.random.default_rng(0)
    mixes = [like_mix(tr.labels, he.labels, rng) for _ in range(8)]
    floors = {k: [frame_fd(judges[k], tr.frames[m], held[k]) for m in mixes] for k in JUDGES}
    floor = {k: float(np.mean(v)) for k, v in floors.items()}
    net = load_anim_net(card)
    labels = np.sort(he.labels)
    raw, locked = [], []
    first = None
    for seed in range(args.seeds):
        chars = draw_characters(card, labels.tolist(), AnimOptions(seed=seed, lock_palette=False), net=net)
        raw.append(score(chars, judges, held, tr.frames))
        lk = lock_palettes(chars)
        locked.append(score(lk, judges, held, tr.frames))
        first = lk if first is None else first
        print(
            f"seed {seed}: raw fd {raw[-1]['fd']:.1f}/{raw[-1]['fd2']:.1f}, locked {locked[-1]['fd']:.1f}/"
            f"{locked[-1]['fd2']:.1f} (floors {floor['fd']:.1f}/{floor['fd2']:.1f})",
            flush=True,
        )
    real_held, real_train = consistency(he.frames), consistency(tr.frames)
    rows = {
        "real train": {**real_train, "fd": None},
        "real held-out": {**real_held, "fd": None},
        "model, raw": mean_of(raw),
        "model, palette locked (sm anim's default)": mean_of(locked),
    }
    n, d, f, h, w = he.shape
    lines = [
        f"# Animation model on {args.name}: held-out characters, like for like",
        "",
        f"Model `{Path(args.model).name}` ({card.meta.get('step')} steps"
        + (f", from {card.meta['parent']['name']}" if card.meta.get("parent") else ", from scratch")
        + f"); set `{tr.source}`: {len(tr.labels)} train characters, {n} held out ({d} directions x {f} frames of "
        f"{w}x{h}). Per seed {n} characters in the held-out label mix, {args.seeds} seeds, DDIM 25 steps a pass. "
        f"Frame FD in two feature spaces, classifiers trained on the train frames with direction labels (sm eval's "
        f"recipe; bench/judge.py's, held-out accuracy {judges['fd2'].held_out_accuracy:.2f}); floor = "
        f"{len(he.labels)} train characters in the same mix against the held-out frames: "
        + "; ".join(f"{k} {floor[k]:.2f} (8 draws, {min(floors[k]):.2f}-{max(floors[k]):.2f})" for k in JUDGES)
        + f". Written by `bench/anim_bench.py` in {time.time() - t0:.0f} s.",
        "",
        "| characters | "
        + " | ".join(f"{k} (x real)" for k in KEYS)
        + " | frame FD / floor (seeds' range) | frame FD / floor, judge 2 | copies |",
        "|---|" + "---:|" * (len(KEYS) + 3),
    ]
    for name, fig in rows.items():
        cells = [
            f"{fig[k]:.3f}" + ("" if name.startswith("real") else f" ({fig[k] / real_held[k]:.2f}x)") for k in KEYS
        ]
        fds = [
            "-"
            if fig["fd"] is None
            else f"{fig[k] / floor[k]:.2f}x ({fig[k + '_range'][0] / floor[k]:.2f}-{fig[k + '_range'][1] / floor[k]:.2f})"
            for k in JUDGES
        ]
        cp = "-" if name.startswith("real") else f"{100 * fig['copies']:.1f}% (nearest {fig['mean_nearest']:.1f})"
        lines.append(f"| {name} | " + " | ".join(cells + fds) + f" | {cp} |")
    between = " / ".join(f"{real_held[k + '_between']:.3f}" for k in KEYS)
    lines += ["", f"Real held-out frames of *different* characters score {between} on the four figures (`_between`)."]
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"anim-{args.name}"
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    payload = {"rows": rows, "floor": floor, "floors": floors, "raw": raw, "locked": locked, "args": vars(args)}
    out.with_suffix(".json").write_text(json.dumps(payload, indent=1) + "\n")
    assert first is not None
    for p in pictures(he.frames[np.argsort(he.labels, kind="stable")], first, args.name, tr.directions):
        print(p)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
