"""Pixel fidelity of the bundled model's sprites under post-processing variants, against the real
held-out split: what the `cleanup` step of `sm sample/sheet` (data.neighbours) was chosen from.

    .venv/bin/python bench/fidelity.py                 # 3 seeds x 193 sprites; ~1 min sampling once, then ~1 min
    .venv/bin/python bench/fidelity.py --seeds 0,1 --out /tmp/fid.md
    .venv/bin/python bench/fidelity.py --model bundled-32 --seeds 0,1,2,3 --out bench/results/fidelity32.md
    .venv/bin/python bench/fidelity.py --sampling 2:25,1.5:25,2:50,2:100:ddpm --seeds 0,1,2,3,4,5,6,7
                                       # guidance:steps[:sampler[:eta]], sm's post-processing: ~10 min

Sprites: the bundled model's raw output (before post-processing), by default as many per label as the
real held-out split has (193: FD is biased by set size, so only then is its ratio to the held-out
floor like for like; --count N spreads N over the labels instead, eval.metrics.spread_labels),
sampled through the one generation loop with the card's sampler for each seed, cached in the temp folder. Each variant post-processes the same raw
sprites; figures are the mean over seeds (per-seed FD in brackets):

    FD/floor     Frechet distance of classifier features to the train split, over the same distance
                 for the real held-out split (the floor): 1.00 is as close as real unseen sprites
    acc          held-out classifier accuracy on the sprites' labels
    iso, speck   isolated-pixel and speck rates (eval.fidelity) over the held-out split's
    sat          mean saturation against the held-out split's
    colours      distinct opaque colours per sprite (held-out split alongside)

With --sampling, the variants are sampling settings instead (guidance:steps, the card's sampler unless named),
each post-processed as `sm sample` does (cleanup on); written to <out>_sampling.md/.json.

Writes <out>.md and <out>.json. Ratios within one run; the classifier is trained on this machine.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scarlet_moon.backends import (
    BackendOptions,  # noqa: E402
    read_card,  # noqa: E402
)
from scarlet_moon.data.neighbours import clean_isolated, despeckle  # noqa: E402
from scarlet_moon.data.pixels import cap_colors, crisp_alpha, quantize_to_palette  # noqa: E402
from scarlet_moon.data.sprites import load_sprites  # noqa: E402
from scarlet_moon.eval.classifier import accuracy, get_classifier  # noqa: E402
from scarlet_moon.eval.fidelity import fidelity  # noqa: E402
from scarlet_moon.eval.metrics import data_of, frechet_distance, generate_for_eval, spread_labels  # noqa: E402
from scarlet_moon.models.card import file_fingerprint  # noqa: E402
from scarlet_moon.options import SamplingOptions  # noqa: E402


def raw_sprites(card, labels: list[int], seed: int, sampling: SamplingOptions = SamplingOptions()) -> np.ndarray:
    tag = (
        ""
        if sampling == SamplingOptions()
        else f"_g{sampling.guidance:g}_s{sampling.steps}_{sampling.sampler}_e{sampling.eta:g}"
    )
    path = (
        Path(tempfile.gettempdir()) / f"sm_fidelity_raw_{len(labels)}_{file_fingerprint(card.path)}_seed{seed}{tag}.npy"
    )
    if path.is_file():
        return np.load(path)
    raw = generate_for_eval(
        card, labels, seed=seed, sampling=sampling, raw=True, backend=BackendOptions(backend="torch", device="cpu")
    )
    np.save(path, raw)
    return raw


def sampling_specs(text: str, sampler: str) -> dict[str, SamplingOptions]:
    """ "guidance:steps[:sampler[:eta]],..." -> {row name: SamplingOptions}; `sampler` when none is named."""
    out = {}
    for spec in text.split(","):
        g, n, *rest = spec.split(":")
        opts = SamplingOptions(rest[0] if rest else sampler, int(n), float(g), float(rest[1]) if len(rest) > 1 else 0.0)
        out[f"{opts.sampler}, guidance {g}, {n} steps" + (f", eta {opts.eta:g}" if opts.eta else "")] = opts
    return out


def variants(card) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """name -> post-processing of raw RGBA uint8 sprites; `base` is sm's finish without cleanup."""
    p90 = int(card.meta["colors_per_sprite"]["p90"])

    def base(raw: np.ndarray, cap: int = p90) -> np.ndarray:
        return quantize_to_palette(cap_colors(crisp_alpha(raw), cap), card.palette)

    return {
        f"no cleanup (cap p90={p90}, snap): before": base,
        "cap 10": lambda r: base(r, 10),
        "cap 12": lambda r: base(r, 12),
        "despeckle": lambda r: despeckle(base(r)),
        "cap 10 + despeckle": lambda r: despeckle(base(r, 10)),
        "clean 12": lambda r: clean_isolated(base(r), 12.0),
        "clean 20": lambda r: clean_isolated(base(r), 20.0),
        "clean 12 + despeckle": lambda r: despeckle(clean_isolated(base(r), 12.0)),
        "clean 16 + despeckle": lambda r: despeckle(clean_isolated(base(r), 16.0)),
        "clean 20 + despeckle: sm's cleanup": lambda r: despeckle(clean_isolated(base(r), 20.0)),
        "clean 30 + despeckle": lambda r: despeckle(clean_isolated(base(r), 30.0)),
        "cap 12 + clean 12 + despeckle": lambda r: despeckle(clean_isolated(base(r, 12), 12.0)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "fidelity.md"))
    ap.add_argument("--sampling", default="", help="guidance:steps[:sampler[:eta]],... (see above)")
    ap.add_argument(
        "--count", type=int, default=None, help="sprites per seed [default: the held-out split's count per label]"
    )
    ap.add_argument(
        "--model",
        default=None,
        help="bundled-32 or a .safetensors [default: the bundled model]; the real sprites are the set its card names",
    )
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    card = read_card(args.model)
    ds = data_of(card) or load_sprites(None)
    clf, train, held = get_classifier(ds)
    per = (
        [int((held.labels == k).sum()) for k in range(len(ds.label_names))]
        if args.count is None
        else spread_labels([int((train.labels == k).sum()) for k in range(len(ds.label_names))], args.count)
    )
    labels = [k for k, n in enumerate(per) for _ in range(n)]
    ref = clf.features(train.images)
    floor = frechet_distance(clf.features(held.images), ref)
    real = fidelity(held.images)
    fns = variants(card)
    cleanup = fns["clean 20 + despeckle: sm's cleanup"]
    if args.sampling:
        todo = {
            name: (lambda s, o=opts: cleanup(raw_sprites(card, labels, s, o)))
            for name, opts in sampling_specs(args.sampling, card.defaults()["sampler"]).items()
        }
        out = Path(args.out)
        args.out = str(out.with_name(out.stem + "_sampling.md"))
    else:
        raws = {s: raw_sprites(card, labels, s) for s in seeds}
        todo = {name: (lambda s, fn=fn: fn(raws[s])) for name, fn in fns.items()}
    rows = []
    for name, make in todo.items():
        per_seed = []
        for s in seeds:
            im = make(s)
            f = fidelity(im)
            per_seed.append(
                {
                    "fd_over_floor": frechet_distance(clf.features(im), ref) / floor,
                    "acc": accuracy(clf.predict(im), np.array(labels), ds.label_names)["overall"],
                    "iso": f["isolated_rate"] / real["isolated_rate"],
                    "speck": f["speck_rate"] / real["speck_rate"] if real["speck_rate"] else float("nan"),
                    "speck_rate": f["speck_rate"],
                    "sat": f["saturation"] / real["saturation"] - 1,
                    "colours": f["colours"],
                }
            )
        mean = {k: float(np.mean([r[k] for r in per_seed])) for k in per_seed[0]}
        rows.append({"variant": name, "mean": mean, "fd_per_seed": [r["fd_over_floor"] for r in per_seed]})
        print(
            f"{name:40s} FD/floor {mean['fd_over_floor']:.3f} iso {mean['iso']:.2f}x speck {mean['speck']:.2f}x",
            flush=True,
        )
    if not args.sampling:
        picture(card, held, raws[seeds[0]], labels, Path(args.out).with_name(Path(args.out).stem + "_8x.png"))
    write(
        rows,
        {
            "model": args.model or "bundled",
            "floor_fd": floor,
            "held_count": len(held.labels),
            "held_out": real,
            "seeds": seeds,
            "count": len(labels),
            "per_label": per,
            "sampling": bool(args.sampling),
            "sampler": card.defaults()["sampler"],
        },
        Path(args.out),
    )


def picture(card, held, raw: np.ndarray, labels: list[int], path: Path, per_label: int = 0, zoom: int = 8) -> None:
    """Rows at `zoom`x on a checkerboard: real held-out sprites, generated without cleanup, the same
    sprites with sm's cleanup; `per_label` of each label (the first of each in order)."""
    from PIL import Image, ImageDraw

    per_label = per_label or (2 if held.images.shape[1] <= 16 else 1)  # 0: 2 per label up to 16 px, else 1
    fns = variants(card)
    before, after = fns[next(k for k in fns if k.endswith("before"))], fns["clean 20 + despeckle: sm's cleanup"]
    gen = np.asarray(labels)
    pick_real = [i for k in range(len(card.label_names)) for i in np.nonzero(held.labels == k)[0][:per_label]]
    pick_gen = [i for k in range(len(card.label_names)) for i in np.nonzero(gen == k)[0][:per_label]]
    rows = [
        ("real held-out", held.images[pick_real]),
        ("generated, no cleanup", before(raw[pick_gen])),
        ("generated, cleanup (default)", after(raw[pick_gen])),
    ]
    h, w = held.images.shape[1:3]
    cell, label_h = (w * zoom + 8, h * zoom + 8), 18
    out = Image.new("RGB", (cell[0] * len(pick_gen) + 8, len(rows) * (cell[1] + label_h) + 8), (40, 40, 48))
    draw = ImageDraw.Draw(out)
    yy, xx = np.mgrid[0 : h * zoom, 0 : w * zoom]
    board = np.where(((yy // zoom) + (xx // zoom)) % 2 == 0, 200, 160).astype(np.uint8)[..., None].repeat(3, -1)
    for r, (name, sprites) in enumerate(rows):
        y = 8 + r * (cell[1] + label_h)
        draw.text((8, y), name, fill=(230, 230, 230))
        for c, sp in enumerate(sprites):
            big = np.asarray(Image.fromarray(sp, "RGBA").resize((w * zoom, h * zoom), Image.NEAREST)).astype(np.float64)
            a = big[..., 3:] / 255.0
            tile = (big[..., :3] * a + board * (1 - a)).round().astype(np.uint8)
            out.paste(Image.fromarray(tile, "RGB"), (8 + c * cell[0], y + label_h))
    out.save(path)


def speck(m: dict) -> str:
    """Speck rate against real; the rate itself when the real split has none (no ratio to give)."""
    return f"{m['speck']:.2f}x" if np.isfinite(m["speck"]) else f"{m['speck_rate']:.2%} (real 0)"


def write(rows: list[dict], meta: dict, out: Path) -> None:
    real = meta["held_out"]
    what = "sampling settings, sm's post-processing" if meta.get("sampling") else "post-processing variants"
    lines = [
        f"# Pixel fidelity of {what} (model {meta.get('model', 'bundled')})",
        "",
        f"`bench/fidelity.py`: {meta['count']} sprites per seed (class mix {meta['per_label']}; the held-out split "
        f"has {meta['held_count']}), seeds "
        f"{meta['seeds']}, "
        + (
            f"each sampler (the card's: {meta['sampler']}) at each guidance and step count, then "
            "sm's post-processing (cleanup on)"
            if meta.get("sampling")
            else "the same raw sprites for every variant"
        )
        + ". Real held-out split: FD floor "
        f"{meta['floor_fd']:.2f}, isolated rate {real['isolated_rate']:.4f}, speck rate {real['speck_rate']:.4f}, "
        f"saturation {real['saturation']:.3f}, {real['colours']:.1f} colours per sprite.",
        "",
        "| variant | FD / floor (per seed) | acc | isolated vs real | specks vs real | saturation vs real | colours |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        m = r["mean"]
        lines.append(
            f"| {r['variant']} | {m['fd_over_floor']:.3f} ({', '.join(f'{v:.2f}' for v in r['fd_per_seed'])}) "
            f"| {m['acc']:.3f} | {m['iso']:.2f}x | {speck(m)} | {m['sat']:+.1%} | {m['colours']:.1f} |"
        )
    lines += [
        "",
        f"Machine: {platform.platform()}, {platform.processor() or 'cpu'}, "
        f"{time.strftime('%Y-%m-%d')}. Command: `{' '.join(['.venv/bin/python', 'bench/fidelity.py', *sys.argv[1:]])}`",
        "",
    ]
    out.with_suffix(".md").write_text("\n".join(lines))
    out.with_suffix(".json").write_text(json.dumps({"rows": rows, **meta}, indent=1))


if __name__ == "__main__":
    main()
