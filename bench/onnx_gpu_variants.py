"""GPU: which onnxruntime settings make the device-resident loop fastest, and torch/ORT parity.

    python bench/onnx_gpu_variants.py --out bench/results/onnx_gpu_variants.json

The bundled model, its card's sampler and guidance, `--steps` sampler steps. Variants of the
device loop (m.step.onnx, buffers bound once, CUDA graphs):
  plain-fp32 / plain-fp16       the `sm export-onnx` graphs as they are
  ...+nhwc                      CUDA EP option prefer_nhwc=1 (NHWC convolutions, transposes between)
  fused-fp32 / fused-fp16       onnxruntime.transformers' "unet" fusions first: GroupNorm(+SiLU) as one
                                NHWC kernel, NhwcConv (fuse_for_cuda below; CUDA-only ops, so never
                                part of `sm export-onnx`)
Every variant is checked against plain-fp32 on the same seed (finished sprites, fraction equal).
Parity: torch CUDA fp32 vs plain-fp32, with TF32 on (both runtimes' default) and off.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    fn()  # warm-up: cuDNN autotune, CUDA graph capture
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


MS_DOMAIN = "com.microsoft"


def fuse_for_cuda(proto: Any, *, fp16: bool) -> Any:
    """Plain fp32 denoiser proto -> fused proto (fp16 weights and activations when asked)."""
    import onnx
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    from scarlet_moon.onnx.export import _keep_time_embedding_fp32

    src = onnx.ModelProto()
    src.CopyFrom(proto)  # the optimizer edits its input in place
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore")
        opt = optimize_model(
            src, model_type="unet", opt_level=0, optimization_options=FusionOptions("unet"), use_gpu=True
        )
        if fp16:  # after fusing: GroupNorm's gamma/beta must stay fp32, which this converter knows
            opt.convert_float_to_float16(keep_io_types=True, node_block_list=_keep_time_embedding_fp32(opt.model))
    out = opt.model
    if not any(o.domain == MS_DOMAIN for o in out.opset_import):
        out.opset_import.append(onnx.helper.make_opsetid(MS_DOMAIN, 1))
    seen: set[str] = set()
    for i, node in enumerate(out.graph.node):  # the converters can name two nodes alike
        if not node.name or node.name in seen:
            node.name = f"{node.op_type}_{i}_u"
        seen.add(node.name)
    del out.metadata_props[:]
    for p in proto.metadata_props:
        value = p.value
        if p.key == "scarlet_moon.precision":
            value = "fp16" if fp16 else "fp32"
        out.metadata_props.append(onnx.StringStringEntryProto(key=p.key, value=value))
    out.producer_name, out.producer_version = proto.producer_name, proto.producer_version
    return out


def write_fused(net: Any, out: Path, card: Any) -> Path:
    """`net` at `out` and its step graph beside it (scarlet_moon.onnx.step_graph)."""
    from scarlet_moon.backends.onnx_meta import step_path
    from scarlet_moon.exporters.atomic import write_file
    from scarlet_moon.onnx.step_graph import build_step_proto

    clip = bool(card.config.get("clip_x0", True))
    step = build_step_proto(
        net,
        null_label=len(card.label_names),
        prediction=card.prediction,
        clip=clip,
        step_meta={"clip_x0": clip, "prediction": card.prediction},
    )
    write_file(step_path(out), step.SerializeToString())
    write_file(out, net.SerializeToString())
    return out


def build_fused(work: Path, base: Path, fp16: bool, card: Any) -> Path:
    """fused-{fp32,fp16}.onnx and its .step.onnx, from the plain fp32 export `base`."""
    import onnx

    name = "fused-fp16" if fp16 else "fused-fp32"
    net = fuse_for_cuda(onnx.load(str(base)), fp16=fp16)
    return write_fused(net, work / f"{name}.onnx", card)


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


def agreement(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    return {"equal": float((a == b).mean()), "max_abs": int(np.abs(a.astype(int) - b.astype(int)).max())}


def run_variants(
    card: Any,
    models: dict[str, tuple[Path, str]],
    batches: list[int],
    steps: int,
    repeats: int,
    budget_end: float,
    device: str = "cuda",
) -> tuple[dict, dict]:
    from scarlet_moon.backends.onnx_backend import OnnxDenoiser
    from scarlet_moon.generation.finish import finish
    from scarlet_moon.generation.request import Request
    from scarlet_moon.options import SamplingOptions

    n = len(card.label_names)
    check = Request(
        tuple(i % n for i in range(256 if device == "cuda" else 16)), seed=1, sampling=SamplingOptions(steps=steps)
    )
    results, ref = {}, None
    for name, (path, opts) in models.items():
        if time.perf_counter() > budget_end:
            results[name] = {"skipped": "time budget"}
            continue
        os.environ["SM_ONNX_CUDA_OPTIONS"] = opts
        row: dict[str, Any] = {"model": path.name, "cuda_options": opts}
        try:
            sess = OnnxDenoiser(path, device, loop="device")
            fin = finish(card, check.post, check.edit, one_batch(sess, check))
            ref = fin if ref is None else ref
            row["vs_plain_fp32"] = agreement(fin, ref)
            for b in batches:
                req = Request(tuple(i % n for i in range(b)), seed=0, sampling=SamplingOptions(steps=steps))
                sec, _ = timed(lambda s=sess, r=req: one_batch(s, r), repeats)
                row[str(b)] = b / sec
                print(f"{name:22s} batch {b:6d} {b / sec:9.0f} sprites/s", flush=True)
            del sess
        except Exception as exc:  # noqa: BLE001  a variant that does not run is a result too
            row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}" if str(exc) else type(exc).__name__
            print(name, row["error"], flush=True)
        results[name] = row
        print(name, json.dumps(row), flush=True)
    os.environ.pop("SM_ONNX_CUDA_OPTIONS", None)
    return results, {"ref": ref, "check": check}


def parity(card: Any, plain32: Path, check: Any, device: str = "cuda") -> dict[str, Any]:
    """torch CUDA fp32 vs onnxruntime plain-fp32 device loop, TF32 on and off in both."""
    import torch

    from scarlet_moon.backends.onnx_backend import OnnxDenoiser
    from scarlet_moon.backends.torch_backend import TorchDenoiser, load_torch_model
    from scarlet_moon.generation.finish import finish

    model = TorchDenoiser(card, load_torch_model(card, device), device)
    out = {}
    for tf32 in (True, False):
        torch.backends.cudnn.allow_tf32 = tf32
        torch.backends.cuda.matmul.allow_tf32 = tf32
        os.environ["SM_ONNX_CUDA_OPTIONS"] = "use_tf32=1" if tf32 else "use_tf32=0"
        a = one_batch(model, check)
        sess = OnnxDenoiser(plain32, device, loop="device")
        b = one_batch(sess, check)
        out["tf32_on" if tf32 else "tf32_off"] = {
            "raw": agreement(a, b),
            "finished": agreement(finish(card, check.post, check.edit, a), finish(card, check.post, check.edit, b)),
        }
        print("parity", tf32, out, flush=True)
        del sess
    os.environ.pop("SM_ONNX_CUDA_OPTIONS", None)
    torch.backends.cudnn.allow_tf32 = True
    return out


def torch_compiled(card: Any, batches: list[int], steps: int, repeats: int) -> dict[str, Any]:
    """The torch backend as `sm sheet --fp16 --compile` runs it (scarlet_moon.backends.torch_fast)."""
    import torch

    from scarlet_moon.backends.torch_backend import TorchDenoiser, load_torch_model
    from scarlet_moon.backends.torch_fast import accelerate
    from scarlet_moon.generation.request import Request
    from scarlet_moon.options import SamplingOptions

    model = TorchDenoiser(
        card,
        accelerate(load_torch_model(card, "cuda"), "cuda", fp16=True, compile=True),
        "cuda",
        flags=("fp16", "compile"),
    )
    n, out = len(card.label_names), {}
    for b in batches:
        req = Request(tuple(i % n for i in range(b)), seed=0, sampling=SamplingOptions(steps=steps))

        def run(req: Any = req) -> Any:
            r = one_batch(model, req)
            torch.cuda.synchronize()
            return r

        t0 = time.perf_counter()
        run()
        out[f"first_call_s_{b}"] = time.perf_counter() - t0
        sec, _ = timed(run, repeats)
        out[str(b)] = b / sec
        print(f"torch-compile-fp16 batch {b:6d} {b / sec:9.0f} sprites/s", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", default="4096,8192")
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--work", default="/tmp/sm-gpu-variants")
    ap.add_argument("--budget-s", type=float, default=420.0)
    ap.add_argument(
        "--only", default="plain-fp32,plain-fp32-notf32,plain-fp16", help="comma-separated variant names ('' = all)"
    )
    ap.add_argument("--model", default=None, help="a .safetensors model [default: the bundled one]")
    ap.add_argument("--out", default="bench/results/onnx_gpu_variants.json")
    ap.add_argument("--device", default="cuda", help="cpu: a dry run without a GPU")
    ap.add_argument("--torch-compile", action="store_true", help="also time torch.compile fp16 (slow to compile)")
    args = ap.parse_args()
    import onnxruntime as ort
    import torch

    from scarlet_moon.backends import read_card
    from scarlet_moon.onnx.export import export_onnx

    t0 = time.perf_counter()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    card = read_card(args.model)
    plain32 = export_onnx(args.model, work / "plain-fp32.onnx").path
    plain16 = export_onnx(args.model, work / "plain-fp16.onnx", fp16=True).path
    models: dict[str, tuple[Path, str]] = {
        "plain-fp32": (plain32, ""),
        "plain-fp32-notf32": (plain32, "use_tf32=0"),
        "plain-fp16": (plain16, ""),
        "plain-fp16+nhwc": (plain16, "prefer_nhwc=1"),
    }
    build_errors = {}
    for fp16 in (False, True) if not args.only or "fused" in args.only else ():
        key = "fused-fp16" if fp16 else "fused-fp32"
        try:
            path = build_fused(work, plain32, fp16, card)
            models[key] = (path, "")
            models[key + "+nhwc"] = (path, "prefer_nhwc=1")
        except Exception as exc:  # noqa: BLE001
            build_errors[key] = f"{type(exc).__name__}: {str(exc)[:300]}"
            print("build", key, build_errors[key], flush=True)
    if args.only:
        keep = set(args.only.split(","))
        models = {k: v for k, v in models.items() if k in keep or k == "plain-fp32"}
    batches = [int(b) for b in args.batches.split(",")]
    results, chk = run_variants(card, models, batches, args.steps, args.repeats, t0 + args.budget_s, args.device)
    par = parity(card, plain32, chk["check"], args.device)
    tc = {}
    if args.torch_compile and time.perf_counter() < t0 + args.budget_s:
        try:
            tc = torch_compiled(card, batches, args.steps, args.repeats)
        except Exception as exc:  # noqa: BLE001
            tc = {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
    env = {
        "gpu": torch.cuda.get_device_name(0) if args.device == "cuda" else "none (dry run)",
        "torch": torch.__version__,
        "onnxruntime": ort.__version__,
        "python": platform.python_version(),
        "steps": args.steps,
        "guidance": card.defaults()["guidance"],
        "sampler": card.defaults()["sampler"],
        "build_errors": build_errors,
    }
    out = {"env": env, "variants": results, "parity": par, "torch_compile": tc, "seconds": time.perf_counter() - t0}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=1), flush=True)


if __name__ == "__main__":
    main()
