"""Everything a 100,000-sprite `sm sheet` does after sampling, stage by stage, on this machine's CPUs.

    .venv/bin/python bench/sheet_tail.py --out bench/results/sheet_tail

Issue 15 asks for `sm sheet --count 100000` in <= 10 s on one GPU. Sampling is the GPU's part; the
rest runs on the CPUs whatever the GPU: finishing (generation.finish, over FinishPool workers),
handing the sprites to the packer, packing, then encoding the pages and rendering the atlases
(json-hash, godot3, libgdx, and the Phaser multi-atlas that several pages add) and writing them as
one set. This times each stage with the workers given, on the bundled model's raw sprites: --sample
of them sampled once (onnx, 4 DDIM steps, labels cycling over all classes), repeated to --count with
one pixel of each copy changed after finishing so that the packer's dedupe keeps every frame, as
generated sprites would be. One run per worker count; the machine's speed and its load move it.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def stages(card: object, req: object, raw: np.ndarray, count: int, workers: int, folder: Path) -> dict[str, float]:
    from scarlet_moon.exporters import PackOptions, Sprite, pack, write_atlases
    from scarlet_moon.generation.finish import finish
    from scarlet_moon.generation.finish_pool import FinishPool

    t: dict[str, float] = {}
    t0 = time.perf_counter()
    chunks = [raw[i : i + 256] for i in range(0, len(raw), 256)]
    reps = -(-count // len(raw))
    if workers == 1:
        done = [finish(card, req.post, req.edit, c) for _ in range(reps) for c in chunks]
    else:
        with FinishPool(card, req.post, req.edit, workers) as pool:
            futures = [pool.submit(c) for _ in range(reps) for c in chunks]
            done = [pool.result(f) for f in futures]
    images = np.concatenate(done)[:count]
    t["finish"] = time.perf_counter() - t0
    rng = np.random.default_rng(0)  # one pixel per sprite, so every frame is distinct
    images[np.arange(count), rng.integers(0, 16, count), rng.integers(0, 16, count), 0] ^= np.uint8(1)
    t0 = time.perf_counter()
    sprites = [
        Sprite(name=f"s_{i:06d}", image=im, label="s", meta={"seed": 0, "batch_index": i})
        for i, im in enumerate(images)
    ]
    t["sprites"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = pack(sprites, PackOptions())
    t["pack"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    written = write_atlases(result, folder / "s.png", ["json-hash", "godot3", "libgdx"], workers=workers, force=True)
    t["write"] = time.perf_counter() - t0
    t["total"] = sum(t.values())
    t["pages"] = len(result.pages)
    t["bytes"] = sum(p.stat().st_size for p in written)
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=100_000)
    ap.add_argument("--sample", type=int, default=2048)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--out", default="bench/results/sheet_tail")
    args = ap.parse_args()
    from scarlet_moon.backends import open_denoiser, read_card
    from scarlet_moon.generation.chunks import generate_all
    from scarlet_moon.generation.request import Request

    load = os.getloadavg()
    card = read_card(None)
    req = Request(tuple(i % len(card.label_names) for i in range(args.sample)), seed=0)
    raw = generate_all(open_denoiser(card, backend="onnx", device="cpu"), req, raw=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for w in (int(v) for v in args.workers.split(",")):
            rows.append({"workers": w, **stages(card, req, raw, args.count, w, Path(tmp))})
            print(rows[-1], flush=True)
    env = {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_before": load,
        "load_after": os.getloadavg(),
        "count": args.count,
        "sampled": args.sample,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out + ".json").write_text(json.dumps({"env": env, "rows": rows}, indent=2) + "\n")
    cols = ("finish", "sprites", "pack", "write", "total")
    lines = [
        f"# After sampling: {args.count:,} sprites to a written sheet (`.venv/bin/python bench/sheet_tail.py`)",
        "",
        f"Machine: {env['cpus']} CPUs, {env['platform']}; load average {load[0]:.2f} before, "
        f"{env['load_after'][0]:.2f} after. Finishing as `sm sheet` does by default, json-hash + godot3 + libgdx "
        "(+ the Phaser multi-atlas), one run per row, seconds.",
        "",
        "| workers | " + " | ".join(cols) + " | pages | MB written |",
        "| ---: |" + " ---: |" * (len(cols) + 2),
    ]
    for r in rows:
        lines.append(
            f"| {r['workers']} | "
            + " | ".join(f"{r[c]:.2f}" for c in cols)
            + f" | {r['pages']} | {r['bytes'] / 1e6:.1f} |"
        )
    Path(args.out + ".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
