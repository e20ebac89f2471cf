"""CPU benchmark: torch vs onnxruntime for the sampling backend.

    .venv/bin/python bench/onnx_cpu.py [--repeats 20] [--out bench/results/onnx_cpu]

1. One denoiser call at batch 64 (per-sprite time), torch eager (inference_mode) vs an
   onnxruntime CPU session (ORT_ENABLE_ALL, intra_op_num_threads = cpu count), for the default
   preset architecture: the bundled model when scarlet_moon/bundled/model/model.safetensors
   exists, else an untrained default-preset model (same cost as a trained one).
2. End to end, process start to files written (subprocess wall time):
   `sm sheet --backend onnx --count 64` with the default preset's sampler settings, vs the seed
   preset's 500-step DDPM on torch (`sm sheet --backend torch --count 64`). The seed model is
   untrained: sampling cost does not depend on the weights.
Writes <out>.json and <out>.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scarlet_moon.backends import read_card  # noqa: E402
from scarlet_moon.models.card import BUNDLED_MODEL  # noqa: E402
from scarlet_moon.models.checkpoint import Checkpoint, save_checkpoint  # noqa: E402
from scarlet_moon.models.unet import count_params  # noqa: E402
from scarlet_moon.training.config import DEFAULT, SEED, TrainConfig  # noqa: E402

BATCH = 64


def untrained_checkpoint(cfg: TrainConfig, path: Path) -> Path:
    """A sampling checkpoint (kind=model) of `cfg` with fresh weights, 16x16 RGBA, bundled labels.

    Zero-initialised tensors get small random values so the output is not identically 0."""
    from scarlet_moon.data.sprites import load_sprites
    from scarlet_moon.training.state import build_network, schedule_of

    data = load_sprites(None)
    torch.manual_seed(0)
    model = build_network(cfg, channels=4, size=16, num_classes=len(data.label_names))
    with torch.no_grad():  # zero-initialised output convs would make the parity check trivially 0
        for p in model.parameters():
            if not p.any():
                p.normal_(0.0, 0.02)
    meta = {
        "config": cfg.to_dict(),
        "label_names": list(data.label_names),
        "schedule": schedule_of(cfg).to_dict(),
        "prediction": cfg.prediction,
        "image_size": [16, 16],
        "channels": 4,
        "data_fingerprint": data.fingerprint(),
        "data_source": data.source,
        "palette": data.palette().tolist(),
        "num_params": count_params(model),
        "step": 0,
        "tracking": {},
        "kind": "model",
    }
    save_checkpoint(path, Checkpoint(meta=meta, model=model.state_dict()))
    return path


def timed(fn, repeats: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def denoiser_call(ckpt: Path, onnx_path: Path, repeats: int) -> dict:
    from scarlet_moon.backends.onnx_backend import OnnxDenoiser
    from scarlet_moon.backends.torch_backend import load_torch_model

    card = read_card(ckpt)
    model = load_torch_model(card, "cpu")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, card.channels, *card.size), dtype=np.float32)
    t = np.full(BATCH, 500.0, np.float32)
    y = (np.arange(BATCH) % len(card.label_names)).astype(np.int64)
    xt, tt, yt = map(torch.from_numpy, (x, t, y))

    def run_torch():
        with torch.inference_mode():
            model(xt, tt, yt)

    from scarlet_moon.backends.onnx_session import CPU, import_ort, make_session

    sess = OnnxDenoiser(onnx_path, "cpu")  # intra_op_num_threads = cpu count
    sess1 = make_session(import_ort(), onnx_path, [CPU], threads=1)
    feed = {"x": x, "t": t, "y": y}
    threads = torch.get_num_threads()

    def torch_with(n):
        def run():
            torch.set_num_threads(n)
            try:
                run_torch()
            finally:
                torch.set_num_threads(threads)

        return run

    fns = {
        "torch": run_torch,
        "onnxruntime": lambda: sess(x, t, y),
        "torch_1thread": torch_with(1),
        "onnxruntime_1thread": lambda: sess1.run(None, feed),
    }
    samples: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):  # interleaved, so a busy neighbour slows both alike
        for name, fn in fns.items():
            samples[name] += timed(fn, 1, warmup=1)
    res = {}
    for name, times in samples.items():
        med = statistics.median(times)
        res[name] = {
            "median_ms_per_call": med * 1e3,
            "min_ms_per_call": min(times) * 1e3,
            "us_per_sprite": med / BATCH * 1e6,
        }
    res["speedup_onnx_vs_torch"] = res["torch"]["median_ms_per_call"] / res["onnxruntime"]["median_ms_per_call"]
    res["speedup_onnx_vs_torch_1thread"] = (
        res["torch_1thread"]["median_ms_per_call"] / res["onnxruntime_1thread"]["median_ms_per_call"]
    )
    res["torch_threads"] = threads
    res["ort_threads"] = os.cpu_count()
    return res


def sheet_wall(args: list[str], out_png: Path, repeats: int = 1) -> float:
    """Median wall time of `sm sheet ... --count 64` in a fresh process (start to files written)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "WANDB_"))}
    env["PYTHONPATH"] = str(ROOT)
    walls = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "scarlet_moon.cli.main",
                "-q",
                "sheet",
                *args,
                "--count",
                str(BATCH),
                "--out",
                str(out_png),
                "--force",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        walls.append(time.perf_counter() - t0)
        if proc.returncode != 0 or not out_png.is_file():
            raise SystemExit(f"sm sheet failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return statistics.median(walls)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "onnx_cpu"))
    ap.add_argument("--sheet-repeats", type=int, default=3, help="runs of each default-preset sheet (median)")
    ap.add_argument(
        "--undistilled",
        default=None,
        help="also time the onnx sheet of this model (the bundled model's undistilled teacher)",
    )
    a = ap.parse_args()
    from scarlet_moon.onnx.export import export_onnx

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if BUNDLED_MODEL.is_file():
            default_ckpt, which = tmp / "default.safetensors", "bundled model"
            default_ckpt.write_bytes(BUNDLED_MODEL.read_bytes())
        else:
            default_ckpt, which = (
                untrained_checkpoint(DEFAULT, tmp / "default.safetensors"),
                "untrained default-preset model (no bundled model in this tree)",
            )
        exp = export_onnx(default_ckpt, default_ckpt.with_suffix(".onnx"))
        card = read_card(default_ckpt)
        call = denoiser_call(default_ckpt, default_ckpt.with_suffix(".onnx"), a.repeats)
        seed_ckpt = untrained_checkpoint(SEED, tmp / "seed.safetensors")
        d, sd = card.defaults(), read_card(seed_ckpt).defaults()
        r = a.sheet_repeats
        e2e_onnx = sheet_wall(["--backend", "onnx", "--model", str(default_ckpt)], tmp / "onnx.png", r)
        e2e_seed = sheet_wall(["--backend", "torch", "--model", str(seed_ckpt)], tmp / "seed.png")
        e2e_torch = sheet_wall(["--backend", "torch", "--model", str(default_ckpt)], tmp / "torch.png", r)
        e2e_teacher = None
        if a.undistilled:
            teacher = tmp / "teacher.safetensors"
            teacher.write_bytes(Path(a.undistilled).read_bytes())
            export_onnx(teacher, teacher.with_suffix(".onnx"))
            e2e_teacher = sheet_wall(["--backend", "onnx", "--model", str(teacher)], tmp / "teacher.png", r)
    result = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "torch": torch.__version__,
            "onnxruntime": __import__("onnxruntime").__version__,
            "loadavg_end": os.getloadavg(),
            "note": "ratios within one run; absolute figures move with the machine's load",
        },
        "default_model": {
            "source": which,
            "arch": card.config.get("arch"),
            "params": card.meta.get("num_params"),
            "size": list(card.size),
            "onnx_bytes": exp.bytes,
            "parity_max_abs_diff": exp.max_abs_diff,
        },
        "denoiser_call_batch64": call,
        "sheet_64_end_to_end_s": {
            "onnx_default_preset": {
                "seconds": e2e_onnx,
                **d,
                "distilled_guidance": card.guidance_base,
                "calls_batch": 2 * BATCH if d["guidance"] != card.guidance_base else BATCH,
            },
            "onnx_undistilled_teacher": {"seconds": e2e_teacher, **d, "calls_batch": 2 * BATCH},
            "torch_default_preset": {"seconds": e2e_torch, **d},
            "torch_seed_preset_ddpm": {"seconds": e2e_seed, **sd, "note": "untrained seed model: same cost"},
        },
    }
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    c, e = call, result["sheet_64_end_to_end_s"]
    md = [
        "# ONNX vs torch on CPU (bench/onnx_cpu.py)",
        "",
        f"Machine: {os.cpu_count()} CPUs (load avg at end {os.getloadavg()[0]:.1f}); "
        f"torch {torch.__version__}, onnxruntime {result['machine']['onnxruntime']}.",
        f"Default-preset model: {which}, {card.meta.get('num_params')} params, 16x16 RGBA; "
        f"export parity max |diff| {max(exp.max_abs_diff.values()):.1e}.",
        "",
        "| denoiser call, batch 64 | median ms/call | us/sprite |",
        "|---|---|---|",
        f"| torch eager | {c['torch']['median_ms_per_call']:.1f} | {c['torch']['us_per_sprite']:.0f} |",
        f"| onnxruntime CPU | {c['onnxruntime']['median_ms_per_call']:.1f} | {c['onnxruntime']['us_per_sprite']:.0f} |",
        f"| torch eager, 1 thread | {c['torch_1thread']['median_ms_per_call']:.1f} | "
        f"{c['torch_1thread']['us_per_sprite']:.0f} |",
        f"| onnxruntime CPU, 1 thread | {c['onnxruntime_1thread']['median_ms_per_call']:.1f} | "
        f"{c['onnxruntime_1thread']['us_per_sprite']:.0f} |",
        "",
        f"onnxruntime speed-up: {c['speedup_onnx_vs_torch']:.2f}x at {c['torch_threads']} threads, "
        f"{c['speedup_onnx_vs_torch_1thread']:.2f}x at 1 thread (calls interleaved; medians).",
        "",
        "| `sm sheet --count 64`, process start to files written | settings | seconds |",
        "|---|---|---|",
        f"| onnx backend, bundled model | {d['sampler']} {d['steps']} steps, guidance {d['guidance']}"
        f"{' (distilled: one network row per sprite and step)' if card.guidance_base != 1 else ''} | "
        f"{e['onnx_default_preset']['seconds']:.2f} |",
        *(
            [f"| onnx backend, its undistilled teacher | same, two rows per sprite and step | {e2e_teacher:.2f} |"]
            if e2e_teacher
            else []
        ),
        f"| torch backend, bundled model | same | {e['torch_default_preset']['seconds']:.2f} |",
        f"| torch backend, seed preset (untrained; same cost) | {sd['sampler']} {sd['steps']} steps, guidance "
        f"{sd['guidance']} | {e['torch_seed_preset_ddpm']['seconds']:.1f} |",
        "",
        f"End to end, the onnx sheet is {e['torch_seed_preset_ddpm']['seconds'] / e['onnx_default_preset']['seconds']:.1f}x "
        "faster than the seed preset's DDPM-500 on torch (target: 20x). Default-preset sheets: median of "
        f"{r} runs each; the seed sheet: one run.",
        "",
        "GPU figures (NVIDIA H100): `onnx_gpu.md` and `onnx_gpu_variants.md`.",
        "",
    ]
    out.with_suffix(".md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
