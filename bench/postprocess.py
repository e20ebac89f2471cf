"""Post-processing speed: the batched scarlet_moon.data.pixels.postprocess vs the per-sprite reference.

    .venv/bin/python bench/postprocess.py                     # N = 256, 1,000, 2,000, 10,000: ~2 min
    .venv/bin/python bench/postprocess.py --counts 2000 --repeats 5

Settings are `sm sheet`'s defaults with the bundled model (generation.finish): crisp alpha at
128, colour cap at the training set's 90th percentile of colours per sprite (card meta
colors_per_sprite.p90), snap to the model's palette. Sprites are the bundled model's raw output
(before post-processing): 2,000 sampled once with the torch backend (all labels, seed 0, the
card's sampler; ~6 min on 2 cores) and cached in --raw; larger counts repeat them flipped and
rotated. The reference is the per-sprite algorithm as it was (tests/pixels_reference.py: a
Python loop per sprite and per cluster). One process, one thread of Python; the best of
--repeats runs is reported (the machine may be shared), outputs are checked byte for byte.
Writes <out>.json and <out>.md.

Device post-processing (scarlet_moon.data.pixels_torch, crisp alpha + palette snap, no colour cap):
each row also times numpy's postprocess(colors=None) against the torch version on torch's CPU
device (the GPU, its point, is not measured here), outputs checked byte for byte. --lab-check
prints the largest difference between the torch and numpy CIELAB values over all 2^24 colours
(the bound pixels_torch's exactness argument rests on).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import pixels_reference as reference  # noqa: E402

from scarlet_moon.backends import read_card  # noqa: E402
from scarlet_moon.data.colour import srgb_to_lab  # noqa: E402
from scarlet_moon.data.pixels import colors_per_sprite, crisp_alpha, postprocess  # noqa: E402

RAW = Path(tempfile.gettempdir()) / "sm_postprocess_raw_2000_seed0.npy"


def raw_sprites(path: Path, count: int = 2000) -> np.ndarray:
    """The bundled model's raw sprites (uint8 N x 16 x 16 x 4), sampled once and cached."""
    if path.is_file():
        return np.load(path)
    from scarlet_moon.backends import open_denoiser
    from scarlet_moon.generation.request import Request

    card = read_card(None)
    req = Request.plan(card, list(range(len(card.label_names))), count, seed=0)
    den = open_denoiser(card, backend="torch", device="cpu")
    # one sampled batch of all `count` sprites from the one seed (not the 256-sprite chunks of
    # generation.chunks), so the cached file holds the very sprites it always held
    raw = den.sample(
        list(req.labels), parts=[(len(req.labels), req.seed)], sampling=req.sampling.resolve(card), edit=req.edit
    )
    np.save(path, raw)
    return raw


def batch(raw: np.ndarray, n: int) -> np.ndarray:
    """n sprites: evenly spaced ones of raw (all labels), or raw then raw flipped / rotated (same
    colours, other layouts) as often as needed."""
    if n <= len(raw):
        return np.ascontiguousarray(raw[np.linspace(0, len(raw) - 1, n).astype(int)])
    variants = [raw, raw[:, :, ::-1], raw[:, ::-1], np.rot90(raw, 1, (1, 2))]
    reps = -(-n // len(raw))
    return np.ascontiguousarray(np.concatenate([variants[i % 4] for i in range(reps)])[:n])


def best_of(fn, repeats: int) -> tuple[float, np.ndarray]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def machine() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    names = (
        [ln.split(":", 1)[1].strip() for ln in cpuinfo.read_text().splitlines() if ln.startswith("model name")]
        if cpuinfo.exists()
        else []
    )
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    return (
        f"{platform.platform()}, {names[0] if names else platform.processor()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, numpy {np.__version__}, load average at start {load}"
    )


def run(counts: list[int], repeats: int, raw_path: Path) -> dict:
    card = read_card(None)
    palette, k = card.palette, int(card.meta["colors_per_sprite"]["p90"])
    raw = raw_sprites(raw_path)
    rows = []
    for n in counts:
        x = batch(raw, n)
        t_new, new = best_of(lambda x=x: postprocess(x, palette=palette, colors=k), repeats)
        t_old, old = best_of(lambda x=x: reference.postprocess(x, palette=palette, colors=k), repeats)
        rows.append(
            {
                "sprites": n,
                "reference_s": round(t_old, 4),
                "batched_s": round(t_new, 4),
                "reference_sprites_per_s": round(n / t_old, 1),
                "batched_sprites_per_s": round(n / t_new, 1),
                "speedup": round(t_old / t_new, 2),
                "byte_identical": bool(np.array_equal(old, new)),
                **device_row(x, palette, repeats),
            }
        )
        print(rows[-1], flush=True)
    cps = colors_per_sprite(crisp_alpha(raw))
    return {
        "settings": {
            "alpha_threshold": 128,
            "colors": k,
            "palette_colors": len(palette),
            "space": "lab",
            "repeats": repeats,
            "timing": f"one process, best of {repeats} runs",
        },
        "sprites": {
            "source": "bundled model raw output, torch, all labels, seed 0",
            "count": len(raw),
            "colours_per_sprite_median": float(np.median(cps)),
            "share_over_cap": round(float((cps > k).mean()), 4),
        },
        "machine": machine(),
        "rows": rows,
    }


def device_row(x: np.ndarray, palette: np.ndarray, repeats: int) -> dict:
    """Crisp alpha + palette snap: numpy vs torch (CPU device), best of `repeats`, bytes compared."""
    import torch

    from scarlet_moon.data import pixels_torch

    t_np, want = best_of(lambda: postprocess(x, palette=palette, colors=None, cleanup=False), repeats)
    t_t, got = best_of(lambda: pixels_torch.postprocess(torch.from_numpy(x), palette=palette).numpy(), repeats)
    return {
        "snap_numpy_s": round(t_np, 4),
        "snap_torch_cpu_s": round(t_t, 4),
        "snap_byte_identical": bool(np.array_equal(want, got)),
    }


def lab_check() -> float:
    """max |torch Lab - numpy Lab| over every sRGB colour (2^24, in blocks of 2^20)."""
    import torch

    from scarlet_moon.data import pixels_torch

    worst = 0.0
    for start in range(0, 1 << 24, 1 << 20):
        k = np.arange(start, start + (1 << 20), dtype=np.int64)
        rgb = np.stack([k >> 16, (k >> 8) & 255, k & 255], -1).astype(np.uint8)
        d = np.abs(pixels_torch.srgb_to_lab(torch.from_numpy(rgb)).numpy() - srgb_to_lab(rgb)).max()
        worst = max(worst, float(d))
    return worst


def write_md(res: dict, path: Path) -> None:
    s, sp = res["settings"], res["sprites"]
    lines = [
        "# Post-processing speed: batched vs per-sprite",
        "",
        f"`postprocess` with `sm sheet`'s defaults for the bundled model: crisp alpha {s['alpha_threshold']}, "
        f"colour cap {s['colors']} (training set p90), snap to the model's {s['palette_colors']}-colour "
        f"palette (CIELAB). Sprites: {sp['source']} ({sp['count']}, median "
        f"{sp['colours_per_sprite_median']:.0f} colours, {100 * sp['share_over_cap']:.0f}% over the cap); "
        f"larger counts repeat them flipped/rotated. Timing: {s['timing']}.",
        "",
        "| sprites | reference (s) | batched (s) | reference sprites/s | batched sprites/s | speed-up "
        "| byte-identical |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | :---: |",
    ]
    for r in res["rows"]:
        lines.append(
            f"| {r['sprites']} | {r['reference_s']} | {r['batched_s']} "
            f"| {r['reference_sprites_per_s']:,.0f} | {r['batched_sprites_per_s']:,.0f} "
            f"| {r['speedup']}x | {'yes' if r['byte_identical'] else 'NO'} |"
        )
    lines += [
        "",
        "Crisp alpha + palette snap only (no colour cap, no clean-up): numpy vs "
        "scarlet_moon.data.pixels_torch on torch's CPU device (one process, best of the repeats):",
        "",
        "| sprites | numpy (s) | torch CPU (s) | byte-identical |",
        "| ---: | ---: | ---: | :---: |",
    ]
    for r in res["rows"]:
        lines.append(
            f"| {r['sprites']} | {r['snap_numpy_s']} | {r['snap_torch_cpu_s']} "
            f"| {'yes' if r['snap_byte_identical'] else 'NO'} |"
        )
    lines += [
        "",
        f"Machine: {res['machine']}.",
        "",
        "Command: `" + " ".join([".venv/bin/python bench/postprocess.py", *sys.argv[1:]]) + "`",
        "",
    ]
    path.write_text("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--counts", type=int, nargs="+", default=[256, 1000, 2000, 10000])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--raw", type=Path, default=RAW, help="cache of the raw sprites (.npy)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "postprocess")
    ap.add_argument("--lab-check", action="store_true", help="only the torch vs numpy Lab bound, printed")
    args = ap.parse_args()
    if args.lab_check:
        print(f"max |torch Lab - numpy Lab| over all 2^24 colours: {lab_check():.3e}")
        return
    res = run(args.counts, args.repeats, args.raw)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(res, indent=2) + "\n")
    write_md(res, args.out.with_suffix(".md"))
    print(f"wrote {args.out.with_suffix('.json')} and .md")


if __name__ == "__main__":
    main()
