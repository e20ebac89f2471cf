"""Training step time against torch's thread count, on a quiet machine and beside a busy core.

    python bench/threads.py [--steps 30]      # writes bench/results/threads.md

One process per measurement (torch keeps its thread pool for life): the default preset at its batch
of 64 on the bundled set, a few warm-up steps, then the mean of --steps steps. "busy" runs a pure
Python loop on one core alongside, as another job on a shared 2-core machine would.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHILD = """
import sys, time, torch
from scarlet_moon.data.sprites import load_sprites
from scarlet_moon.diffusion.scaling import to_model_range
from scarlet_moon.training.config import DEFAULT
from scarlet_moon.training.loop import train_step
from scarlet_moon.training.state import build_state, schedule_of
torch.set_num_threads(int(sys.argv[1]))
ds = load_sprites(None)
x, y = torch.from_numpy(to_model_range(ds.images)), torch.from_numpy(ds.labels)
abar = torch.from_numpy(schedule_of(DEFAULT).alphas_cumprod()).float()
state = build_state(DEFAULT, channels=4, size=16, num_classes=6, device="cpu")
for _ in range(3):
    train_step(state, DEFAULT, x, y, abar, 6)
t0, n = time.perf_counter(), int(sys.argv[2])
for _ in range(n):
    train_step(state, DEFAULT, x, y, abar, 6)
print((time.perf_counter() - t0) / n * 1000)
"""


def step_ms(threads: int, steps: int) -> float:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(threads), str(steps)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "threads.md"))
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    rows = []
    for load in ("quiet", "busy"):
        hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if load == "busy" else None
        try:
            time.sleep(1.0 if hog else 0.0)
            rows += [(load, t, step_ms(t, args.steps)) for t in sorted({1, cores})]
        finally:
            if hog:
                hog.kill()
    lines = [
        f"# Training step time against torch threads ({cores} cores)",
        "",
        f"`python bench/threads.py --steps {args.steps}`: default preset, batch 64, bundled set, CPU.",
        "",
        "| machine | threads | ms per step |",
        "| --- | ---: | ---: |",
    ]
    lines += [f"| {load} | {t} | {ms:.0f} |" for load, t, ms in rows]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
