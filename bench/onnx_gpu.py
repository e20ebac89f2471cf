"""GPU benchmark: sprites/s of the default sampler against batch size, torch vs onnxruntime.

    python bench/onnx_gpu.py --out bench/results/onnx_gpu.json

On the bundled model with its card's sampler (the few-step student: DDIM, 4 steps, guidance folded
in, so 1 network row per sprite and step; `--model bundled-25`: the teacher's DPM-Solver++(2M), 25
steps, 2 rows), seed 0, labels cycling over all classes. Variants:
  torch-eager     generate_torch on CUDA, fp32
  torch-autocast-fp16  the same under torch.autocast(float16)
  ort-host        onnxruntime CUDA EP, the host loop: sampler arithmetic in numpy, IO binding,
                  sprites copied host <-> device every step
  ort-device      the fused step graph (m.step.onnx), sprites on the device from first step to
                  last, buffers bound once, CUDA graphs; fp32
  ort-device-fp16 the same with the fp16 export
  ort-unrolled    the unrolled graph (m.unrolled.onnx): the card's whole sampling in one run, no
                  host round trip between steps, inputs/outputs bound once, CUDA graphs; fp32
  ort-unrolled-fp16 the same with the fp16 export
Throughput is raw sampling (initial noise on the host to model-range sprites on the host);
post-processing (crisp alpha, palette snap) is timed separately on the CPU. The kernel share
comes from torch.profiler (CUPTI sees every CUDA kernel of the process, onnxruntime's too):
sum of kernel time / wall time of one timed run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    fn()  # warm-up: cuDNN autotune, CUDA graph capture, allocator growth
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def one_batch(den: Any, req: Any) -> np.ndarray:
    """Raw sprites (uint8 N x H x W x C) of `req` sampled as ONE batch of N from req.seed, whatever N
    (not generation.chunks' 256-sprite chunks): the batch size is what this benchmark varies."""
    return den.sample(
        list(req.labels),
        parts=[(len(req.labels), req.seed)],
        sampling=req.sampling.resolve(den.card),
        edit=req.edit,
        progress=None,
    )


def variants(
    card: Any, fp32: Path, fp16: Path | None, device: str = "cuda", keep: set[str] | None = None
) -> dict[str, Callable[[Any], Any]]:
    import torch

    from scarlet_moon.backends.onnx_backend import OnnxDenoiser
    from scarlet_moon.backends.torch_backend import TorchDenoiser, load_torch_model
    from scarlet_moon.backends.torch_fast import accelerate

    eager = TorchDenoiser(card, load_torch_model(card, device), device)
    want = lambda name: keep is None or name in keep  # noqa: E731
    sessions = {
        name: OnnxDenoiser(path, device, loop=loop)
        for name, path, loop in (
            ("ort-host", fp32, "host"),
            ("ort-device", fp32, "device"),
            ("ort-device-fp16", fp16, "device"),
            ("ort-unrolled", fp32, "unrolled"),
            ("ort-unrolled-fp16", fp16, "unrolled"),
        )
        if path is not None and want(name)
    }
    compiled = (
        TorchDenoiser(
            card,
            accelerate(load_torch_model(card, device), device, fp16=True, compile=True),
            device,
            flags=("fp16", "compile"),
        )
        if want("torch-compile-fp16") and device == "cuda"
        else None
    )

    def torch_run(req: Any) -> Any:
        out = one_batch(eager, req)
        if device == "cuda":
            torch.cuda.synchronize()
        return out

    def torch_fp16(req: Any) -> Any:
        with torch.autocast("cuda", dtype=torch.float16, enabled=device == "cuda"):
            return torch_run(req)

    def torch_compiled(req: Any) -> Any:
        out = one_batch(compiled, req)
        torch.cuda.synchronize()
        return out

    runs: dict[str, Callable[[Any], Any]] = {
        k: f
        for k, f in (
            ("torch-eager", torch_run),
            ("torch-autocast-fp16", torch_fp16),
            ("torch-compile-fp16", torch_compiled),
        )
        if want(k) and (k != "torch-compile-fp16" or compiled is not None)
    }
    for name, sess in sessions.items():
        runs[name] = (lambda s: lambda req: one_batch(s, req))(sess)
    return runs


def profile_share(fn: Callable[[], Any]) -> dict[str, float]:
    """Kernel / memcpy time as fractions of wall time for one call (torch.profiler, CUPTI)."""
    from torch.profiler import ProfilerActivity, profile

    fn()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        t0 = time.perf_counter()
        fn()
        wall = time.perf_counter() - t0
    kernel = memcpy = 0.0
    for ev in prof.events():
        dt = getattr(ev, "device_time", None) or getattr(ev, "cuda_time", 0.0) or 0.0
        if getattr(ev, "device_type", None) is None or "CUDA" not in str(ev.device_type):
            continue
        if "memcpy" in ev.name.lower() or "memset" in ev.name.lower():
            memcpy += dt
        else:
            kernel += dt
    return {
        "wall_s": wall,
        "kernel_s": kernel / 1e6,
        "memcpy_s": memcpy / 1e6,
        "kernel_share": kernel / 1e6 / wall,
        "memcpy_share": memcpy / 1e6 / wall,
        "other_share": max(0.0, 1.0 - (kernel + memcpy) / 1e6 / wall),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", default="64,256,1024,4096,8192,16384")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--host-max", type=int, default=4096, help="largest batch for the (slow) host loop")
    ap.add_argument("--work", default="/tmp/sm-gpu-bench")
    ap.add_argument("--budget-s", type=float, default=360.0, help="stop adding batch sizes after this")
    ap.add_argument("--out", default="bench/results/onnx_gpu.json")
    ap.add_argument("--device", default="cuda", help="cpu: a dry run of this script without a GPU")
    ap.add_argument("--model", default=None, help="a .safetensors model [default: the bundled one]")
    ap.add_argument("--variants", default="", help="comma-separated subset of the variants ('' = all)")
    args = ap.parse_args()
    import onnxruntime as ort
    import torch

    from scarlet_moon.backends import read_card
    from scarlet_moon.generation.finish import finish
    from scarlet_moon.generation.request import Request
    from scarlet_moon.onnx.export import export_onnx

    t_start = time.perf_counter()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    card = read_card(args.model)
    keep = set(args.variants.split(",")) if args.variants else None
    exports, export_errors = {"fp32": export_onnx(args.model, work / "bundled-fp32.onnx")}, {}
    try:
        exports["fp16"] = export_onnx(args.model, work / "bundled-fp16.onnx", fp16=True)
    except Exception as exc:  # noqa: BLE001  the fp16 converter is an optional tool; report, go on
        export_errors["fp16"] = str(exc).splitlines()[0][:300]
        print("fp16 export failed:", export_errors["fp16"], flush=True)
    runs = variants(card, exports["fp32"].path, exports["fp16"].path if "fp16" in exports else None, args.device, keep)
    d = card.defaults()
    env = {
        "gpu": torch.cuda.get_device_name(0) if args.device == "cuda" else "none (dry run)",
        "torch": torch.__version__,
        "onnxruntime": ort.__version__,
        "python": platform.python_version(),
        "cpu_cores": os.cpu_count(),
        "sampler": d["sampler"],
        "steps": d["steps"],
        "guidance": d["guidance"],
        "distilled_guidance": card.guidance_base,
        "network_rows_per_sprite_step": 2 if d["guidance"] != card.guidance_base else 1,
        "export_errors": export_errors,
        "export_parity": {
            p: {
                "max_abs_diff": r.max_abs_diff,
                "step_diff": r.step_diff,
                "unrolled_diff": r.unrolled_diff,
                "unrolled_note": r.unrolled_note,
            }
            for p, r in exports.items()
        },
    }
    print(json.dumps(env), flush=True)
    n_classes = len(card.label_names)
    curve: list[dict[str, Any]] = []
    best: dict[str, Any] = {}
    for b in [int(v) for v in args.batches.split(",")]:
        if time.perf_counter() - t_start > args.budget_s:
            print(f"budget reached; skipping batch {b} and larger", flush=True)
            break
        req = Request(tuple(i % n_classes for i in range(b)), seed=0)
        row: dict[str, Any] = {"batch": b}
        for name, fn in runs.items():
            if name == "ort-host" and b > args.host_max:
                continue
            if name.startswith("ort") and torch.cuda.is_available():
                torch.cuda.empty_cache()  # hand torch's cached blocks back for onnxruntime's arena
            sec, out = timed(lambda fn=fn, req=req: fn(req), args.repeats)
            row[name] = {"seconds": sec, "sprites_per_s": b / sec}
            best[name] = max(best.get(name, (0, 0)), (b / sec, b))
            print(f"batch {b:6d} {name:16s} {sec * 1e3:9.1f} ms  {b / sec:10.0f} sprites/s", flush=True)
            if name == "ort-device":
                t0 = time.perf_counter()
                finish(card, req.post, req.edit, out)
                row["postprocess_s"] = time.perf_counter() - t0
        curve.append(row)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)  # partial results survive a time-out
        Path(args.out).with_suffix(".partial.json").write_text(json.dumps({"env": env, "curve": curve}, indent=2))
    if not curve:
        raise SystemExit(f"no batch size ran within --budget-s {args.budget_s:g} (the exports took that long)")
    # agreement after quantisation, torch vs onnx device loop (fp32), same seed
    req = Request(tuple(i % n_classes for i in range(min(256, curve[-1]["batch"]))), seed=1)
    a, b = runs["torch-eager"](req), runs["ort-device"](req)
    fa, fb = finish(card, req.post, req.edit, a), finish(card, req.post, req.edit, b)
    agree = {
        "batch": len(req.labels),
        "raw_equal": float((a == b).mean()),
        "finished_equal": float((fa == fb).mean()),
        "raw_max_abs": int(np.abs(a.astype(int) - b.astype(int)).max()),
    }
    if "ort-unrolled" in runs:  # the same float ops as the device loop: equal bytes expected
        agree["unrolled_equals_device"] = bool(np.array_equal(runs["ort-unrolled"](req), b))
    print("torch vs ort-device:", agree, flush=True)
    shares = {}
    for name in runs:
        bb = best[name][1]
        req = Request(tuple(i % n_classes for i in range(bb)), seed=0)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        try:
            shares[name] = {"batch": bb, **profile_share(lambda name=name, req=req: runs[name](req))}
        except Exception as exc:  # noqa: BLE001  the profiler is best effort
            shares[name] = {"batch": bb, "error": str(exc)[:200]}
        print(name, shares[name], flush=True)
    result = {
        "env": env,
        "curve": curve,
        "best": {k: {"sprites_per_s": v[0], "batch": v[1]} for k, v in best.items()},
        "agreement": agree,
        "profile": shares,
        "seconds": time.perf_counter() - t_start,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}", flush=True)


if __name__ == "__main__":
    main()
