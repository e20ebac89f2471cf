"""Finishing chunks over worker processes (scarlet_moon.generation.finish_pool) against one process.

    .venv/bin/python bench/finish_workers.py --out bench/results/finish_workers

On a GPU the sampling of a 100,000-sprite sheet is a few seconds and finishing (crisp alpha, colour
cap, palette snap, clean-up: generation.finish, numpy on one core) was most of the rest. This
measures finishing alone, on the bundled model's raw sprites (4 DDIM steps, the onnx host loop,
labels cycling over all classes, seed 0; sampled once), chunk by chunk as the generation loop
hands them over: in this process (workers 1), then through FinishPool with 1..N workers, the pool's
start included. Outputs are checked byte for byte against workers 1. Wall-clock medians of
--repeats; the machine's core count bounds what this can show (the GPU machine has 16).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def raw_sprites(count: int) -> tuple[object, object, np.ndarray]:
    from scarlet_moon.backends import open_denoiser, read_card
    from scarlet_moon.generation.chunks import generate_all
    from scarlet_moon.generation.request import Request

    card = read_card(None)
    req = Request(tuple(i % len(card.label_names) for i in range(count)), seed=0)
    den = open_denoiser(card, backend="onnx", device="cpu")
    return card, req, generate_all(den, req, raw=True)


def finish_all(card: object, req: object, raw: np.ndarray, workers: int, size: int = 256) -> tuple[float, np.ndarray]:
    from scarlet_moon.generation.finish import finish
    from scarlet_moon.generation.finish_pool import FinishPool

    t0 = time.perf_counter()
    chunks = [raw[i : i + size] for i in range(0, len(raw), size)]
    if workers == 1:
        out = [finish(card, req.post, req.edit, c) for c in chunks]
    else:
        with FinishPool(card, req.post, req.edit, workers) as pool:
            futures = [pool.submit(c) for c in chunks]
            out = [pool.result(f) for f in futures]
    return time.perf_counter() - t0, np.concatenate(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=4096)
    ap.add_argument("--workers", default="1,2,3")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default="bench/results/finish_workers")
    args = ap.parse_args()
    load = os.getloadavg()
    card, req, raw = raw_sprites(args.count)
    counts = [int(w) for w in args.workers.split(",")]
    ref = finish_all(card, req, raw, 1)[1]
    rows = []
    for w in counts:
        times = []
        for _ in range(args.repeats):
            sec, out = finish_all(card, req, raw, w)
            if not np.array_equal(out, ref):
                raise SystemExit(f"workers {w}: the finished sprites differ from one process's")
            times.append(sec)
        rows.append({"workers": w, "median_s": statistics.median(times), "runs_s": [round(t, 3) for t in times]})
        print(rows[-1], flush=True)
    base = rows[0]["median_s"]
    env = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "load_before": load,
        "load_after": os.getloadavg(),
        "count": args.count,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out + ".json").write_text(json.dumps({"env": env, "rows": rows}, indent=2) + "\n")
    lines = [
        f"# Finishing {args.count} sprites over worker processes (`.venv/bin/python bench/finish_workers.py`)",
        "",
        f"Machine: {env['cpus']} CPUs, {env['platform']}; load average {load[0]:.2f} before, "
        f"{env['load_after'][0]:.2f} after. Bundled model's raw sprites, `sm sheet`'s default finishing "
        "(crisp alpha, colour cap, palette snap, clean-up), chunks of 256; the pool's start included; "
        "every run byte-identical to one process.",
        "",
        "| workers | median s | ms per sprite | vs one process | runs s |",
        "| ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r['workers']} | {r['median_s']:.3f} | {r['median_s'] / args.count * 1e3:.3f} "
            f"| {base / r['median_s']:.2f}x | {', '.join(map(str, r['runs_s']))} |"
        )
    Path(args.out + ".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
