"""Export a checkpoint's denoiser to ONNX (torch side: imports torch, onnx, onnxscript).

The exported graph is the bare network, one call per evaluation:

    inputs   x  float32 [batch, C, H, W]  noisy sprites (model range, x_T ~ N(0, 1))
             t  float32 [batch]           timestep index 0..T-1 (fractional allowed)
             y  int64   [batch]           label index; `num_classes` is the null label
    output   pred float32 [batch, C, H, W] the network's prediction (eps or v: see the card)

Classifier-free guidance, the eps/v split, x0 clipping and the sampler arithmetic are NOT in
the graph: the sampling loop applies them (scarlet_moon.backends.base batches the conditional
and null-label rows into one call, exactly as the torch backend does). "batch" is a dynamic
axis on every input and output.

The file is self-contained (no external data) and carries in its metadata_props everything
a sampler needs (see META_*): the model card JSON of the source checkpoint (labels, sprite
size and channels, schedule, prediction, palette, config with sampler defaults and clip_x0),
the checkpoint's sha256 fingerprint, the package version and a format tag.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scarlet_moon.backends import is_onnx, read_card
from scarlet_moon.backends.onnx_meta import (
    FORMAT,
    FORMAT_VERSION,
    INPUT_DOCS,
    META_CARD,
    META_FORMAT,
    META_IO,
    META_PRECISION,
    META_SOURCE,
    META_SOURCE_NAME,
    META_VERSION,
    OUTPUT_NAME,
    card_meta_for_export,
    step_path,
    unrolled_path,
)
from scarlet_moon.backends.torch_backend import load_torch_model
from scarlet_moon.errors import BadInput, RunFailed, arg
from scarlet_moon.exporters.atomic import write_files
from scarlet_moon.models.card import ModelCard, bundled_onnx_path, file_fingerprint
from scarlet_moon.models.card import model_path as checkpoint_path
from scarlet_moon.options import Sampling, SamplingOptions
from scarlet_moon.version import __version__

log = logging.getLogger(__name__)

FP32_TOL = 1e-4  # parity of the fp32 graph against eval-mode torch
FP16_TOL = 5e-2  # fp16 weights/activations, time embedding kept in fp32
PARITY_BATCHES = (2, 5)  # the example batch used for export is 3: both are "other" sizes
MAX_BATCH = 4096


@dataclass
class ExportResult:
    path: Path
    bytes: int
    opset: int
    precision: str
    max_abs_diff: dict[int, float] = field(default_factory=dict)  # batch -> max |onnx - torch|
    tolerance: float = FP32_TOL
    seconds: float = 0.0
    step_path: Path | None = None  # the fused step graph beside it (m.step.onnx)
    step_diff: float | None = None  # its one-step max |x0 - torch x0|
    unrolled_path: Path | None = None  # the unrolled graph beside it (m.unrolled.onnx)
    unrolled_diff: float | None = None  # its max |sprites - the device loop's| (model range)
    unrolled_note: str = ""  # why there is none, when there is a step graph but no unrolled one


def _example(card: ModelCard, batch: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    n = len(card.label_names)
    h, w = card.size
    x = torch.randn(batch, card.channels, h, w, generator=g)
    t = torch.rand(batch, generator=g) * (card.schedule.num_steps - 1)
    y = torch.randint(0, n + 1, (batch,), generator=g)  # n = the null label, covered too
    y[-1] = n
    return x, t, y


def _quiet_exporter_logs() -> None:
    # "torchvision is not installed" and friends (notes/onnx-mlflow-wandb.md section 1)
    for name in ("torch.onnx", "torch.onnx._internal.exporter._registration", "onnxscript", "onnx_ir"):
        logging.getLogger(name).setLevel(logging.ERROR)


def export_proto(model: torch.nn.Module, card: ModelCard, opset: int | None = None) -> Any:
    """The eval-mode model as an onnx.ModelProto with a dynamic "batch" axis (asserted)."""
    _quiet_exporter_logs()
    model = model.eval()
    example = _example(card, 3, seed=0)  # batch >= 2, else the exporter may pin it (pitfall 1)
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    kwargs: dict[str, Any] = {}
    if opset is not None:
        kwargs["opset_version"] = int(opset)
    try:
        with warnings.catch_warnings():  # LeafSpec FutureWarning, "axis name: batch will not be used"
            warnings.simplefilter("ignore", FutureWarning)
            warnings.filterwarnings("ignore", message=".*axis name.*", category=UserWarning)
            program = torch.onnx.export(
                model,
                example,
                dynamo=True,
                verbose=False,
                external_data=False,
                input_names=["x", "t", "y"],
                output_names=[OUTPUT_NAME],
                dynamic_shapes={"x": {0: batch}, "t": {0: batch}, "y": {0: batch}},
                **kwargs,
            )
    except Exception as exc:  # the exporter raises a zoo of types
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RunFailed(f"torch.onnx.export failed: {first}") from exc
    if program is None:  # dynamo=True always returns one; the stubs allow None
        raise RunFailed("torch.onnx.export returned no program")
    proto = program.model_proto
    check_dynamic_batch(proto)
    return proto


def check_dynamic_batch(proto: Any) -> None:
    """Every graph input and output must have dim 0 == the symbolic "batch" (pitfall 1)."""
    for vi in list(proto.graph.input) + list(proto.graph.output):
        dims = vi.type.tensor_type.shape.dim
        if not dims or dims[0].dim_param != "batch":
            got = dims[0].dim_param or dims[0].dim_value if dims else "no shape"
            raise RunFailed(f"ONNX export lost the dynamic batch axis: {vi.name!r} dim 0 is {got!r}")


def _keep_time_embedding_fp32(proto: Any) -> list[str]:
    """Names of the nodes between input t and every Sin/Cos (the sinusoidal embedding).

    In fp16 t*freq (up to ~1000 rad) loses its fraction and sin/cos err by ~0.2 (notes, section 2).
    """
    producers = {o: n for n in proto.graph.node for o in n.output}
    keep, stack = set(), [n for n in proto.graph.node if n.op_type in ("Sin", "Cos")]
    while stack:
        node = stack.pop()
        if node.name in keep:
            continue
        keep.add(node.name)
        stack.extend(producers[i] for i in node.input if i in producers)
    return sorted(keep)


def to_fp16(proto: Any) -> Any:
    """fp16 weights and activations, fp32 inputs/outputs and time embedding.

    Uses onnxconverter_common when installed, else the copy shipped in onnxruntime.transformers.
    """
    try:
        from onnxconverter_common.float16 import convert_float_to_float16
    except ImportError:
        try:
            from onnxruntime.transformers.float16 import convert_float_to_float16
        except ImportError:
            raise BadInput(
                f"{arg('fp16')} needs onnxconverter-common (pip install onnxconverter-common) or "
                f"onnxruntime's transformers tools; export without {arg('fp16')}"
            ) from None
    block = _keep_time_embedding_fp32(proto)
    with warnings.catch_warnings():  # one "will be truncated to 1e-07" line per tiny weight
        warnings.filterwarnings("ignore", message=".*will be truncated.*", category=UserWarning)
        out = convert_float_to_float16(proto, keep_io_types=True, node_block_list=block)
    seen: set[str] = set()
    for i, node in enumerate(out.graph.node):  # onnxruntime's copy can name two Cast nodes alike
        if node.name in seen:
            node.name = f"{node.name}_{i}"
        seen.add(node.name)
    return out


def add_metadata(proto: Any, card: ModelCard, *, fingerprint: str, precision: str) -> None:
    import onnx

    props = {
        META_FORMAT: FORMAT,
        META_VERSION: __version__,
        META_CARD: json.dumps(card_meta_for_export(card.meta), sort_keys=True),
        META_SOURCE: fingerprint,
        META_SOURCE_NAME: card.path.name,
        META_PRECISION: precision,
        META_IO: json.dumps(
            {
                "inputs": INPUT_DOCS,
                "output": OUTPUT_NAME,
                "format_version": FORMAT_VERSION,
                "null_label": len(card.label_names),
                "guidance": "applied by the sampling loop",
            },
            sort_keys=True,
        ),
    }
    del proto.metadata_props[:]
    for k, v in props.items():
        proto.metadata_props.append(onnx.StringStringEntryProto(key=k, value=v))
    proto.doc_string = (__doc__ or "").strip()
    proto.producer_name, proto.producer_version = "scarlet-moon", __version__
    for vi in proto.graph.input:
        vi.doc_string = INPUT_DOCS.get(vi.name, "")
    for vi in proto.graph.output:
        vi.doc_string = "prediction (eps or v, see the card's 'prediction'), same shape as x"


@torch.no_grad()
def parity(
    model: torch.nn.Module, data: bytes, card: ModelCard, batches: tuple[int, ...] = PARITY_BATCHES
) -> dict[int, float]:
    """Max |onnx - torch| per batch size, on random inputs (null labels included); CPU session."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
    out = {}
    for i, b in enumerate(batches):
        x, t, y = _example(card, b, seed=100 + i)
        ref = model(x, t, y).float().numpy()
        got = sess.run(None, {"x": x.numpy(), "t": t.numpy(), "y": y.numpy()})[0]
        if got.shape != ref.shape:
            raise RunFailed(f"ONNX output shape {got.shape} != torch {ref.shape} at batch {b}")
        out[b] = float(np.max(np.abs(got.astype(np.float64) - ref)))
    return out


@torch.no_grad()
def step_parity(
    model: torch.nn.Module, data: bytes, card: ModelCard, *, clip: bool, batch: int = 3, rows: int = 2
) -> float:
    """Max |x0| difference of one fused step (guidance 2.5, or none with rows=1; x = 0.5 b0 + 0.5 b3)
    against torch."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
    x, t, y = _example(card, batch, seed=7)
    y = y.clamp(max=len(card.label_names) - 1)
    b0, b3 = x * 2.0, torch.zeros_like(x)
    t_int = int(card.schedule.num_steps // 2)
    abar = float(card.schedule.alphas_cumprod()[t_int])
    a, s, w = abar**0.5, (1.0 - abar) ** 0.5, 2.5
    tt = torch.full((batch,), float(t_int))
    if rows == 1:
        pred = model(x, tt, y)
    else:
        pred = model(torch.cat([x, x]), torch.cat([tt, tt]), torch.cat([y, torch.full_like(y, len(card.label_names))]))
        pred = pred[batch:] + (pred[:batch] - pred[batch:]) * w
    x0 = x * a - pred * s if card.prediction == "v" else (x - pred * s) / a
    x0 = x0.clamp(-1, 1) if clip else x0
    coef = np.array([0.5, 0, 0, 0.5, w, a, s, 0], np.float32)
    got = sess.run(
        ["x0"],
        {
            "b0": b0.numpy(),
            "b1": b3.numpy(),
            "b2": b3.numpy(),
            "b3": b3.numpy(),
            "coef": coef,
            "t": tt.numpy(),
            "y": y.numpy(),
        },
    )[0]
    return float(np.max(np.abs(got.astype(np.float64) - x0.numpy())))


def make_step_graph(proto: Any, model: torch.nn.Module, card: ModelCard, tol: float) -> tuple[bytes, float, Any]:
    """The fused step graph (scarlet_moon.onnx.step_graph), parity-checked: (bytes, max |diff|, proto)."""
    from scarlet_moon.onnx.step_graph import build_step_proto

    clip = bool(card.config.get("clip_x0", True))
    rows = 1 if card.guidance_base != 1.0 else 2  # a distilled model guides in its labelled rows
    step = build_step_proto(
        proto,
        null_label=len(card.label_names),
        prediction=card.prediction,
        clip=clip,
        step_meta={"clip_x0": clip, "prediction": card.prediction},
        rows=rows,
    )
    data = step.SerializeToString()
    diff = step_parity(model, data, card, clip=clip, rows=rows)
    if not diff <= tol:
        raise RunFailed(f"the fused step graph disagrees with torch: max |diff| {diff:.3g} > {tol:g}; nothing written")
    return data, diff, step


def unrolled_parity(
    step_data: bytes, data: bytes, card: ModelCard, sampling: Sampling, plan: dict[str, Any], batch: int = 3
) -> float:
    """Max |sprites| difference (model range) of the unrolled graph against the device loop running the
    step graph step by step on the CPU (the loop the step graph's own parity check stands behind)."""
    import onnxruntime as ort

    from scarlet_moon.backends.onnx_device import DeviceLoop, generate_device

    so = ort.SessionOptions()
    so.log_severity_level = 3
    step = ort.InferenceSession(step_data, so, providers=["CPUExecutionProvider"])
    unrolled = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(11)
    x = rng.standard_normal((batch, card.channels, *card.size)).astype(np.float32)
    y = np.arange(batch, dtype=np.int64) % len(card.label_names)
    loop = DeviceLoop(step, "cpu", batch, tuple(x.shape[1:]))
    ref = generate_device(
        loop,
        card.schedule,
        y,
        x,
        lambda i: np.zeros_like(x),
        sampler=sampling.sampler,
        steps=sampling.steps,
        guidance=sampling.row_guidance,
        eta=sampling.eta,
    )
    got, bad = unrolled.run(["x0", "bad"], {"x": x, "y": y})
    if bad.shape != (len(plan["steps"]),) or bad.any():
        return float("inf")
    return float(np.max(np.abs(got.astype(np.float64) - ref)))


def make_unrolled_graph(
    step: Any, step_data: bytes, card: ModelCard, tol: float, sampling: Sampling
) -> tuple[bytes, float]:
    """The unrolled graph of `sampling` (scarlet_moon.onnx.unrolled_graph), parity-checked: (bytes,
    max |diff|); BadInput when the sampler adds noise."""
    from scarlet_moon.backends.onnx_device import unrolled_plan
    from scarlet_moon.onnx.unrolled_graph import build_unrolled_proto

    plan = unrolled_plan(
        card.schedule, sampler=sampling.sampler, steps=sampling.steps, guidance=sampling.row_guidance, eta=sampling.eta
    )
    meta = {
        "sampler": sampling.sampler,
        "guidance": sampling.row_guidance,
        "eta": sampling.eta,
        "timesteps": [int(s["t"]) for s in plan["steps"]],
    }
    data = build_unrolled_proto(step, plan, meta).SerializeToString()
    diff = unrolled_parity(step_data, data, card, sampling, plan)
    if not diff <= tol:
        raise RunFailed(
            f"the unrolled graph disagrees with the step-by-step loop: max |diff| {diff:.3g} > {tol:g}; nothing written"
        )
    return data, diff


def _side_graphs(
    proto: Any, model: torch.nn.Module, card: ModelCard, tol: float, step_graph: bool, unroll: SamplingOptions | None
) -> tuple[bytes | None, float | None, bytes | None, float | None, str]:
    """(step bytes, diff, unrolled bytes, diff, why no unrolled graph): built and checked, not written."""
    if not step_graph:
        return None, None, None, None, ""
    step_data, step_diff, step = make_step_graph(proto, model, card, tol)
    if unroll is None:
        return step_data, step_diff, None, None, ""
    try:
        return (step_data, step_diff, *make_unrolled_graph(step, step_data, card, tol, unroll.resolve(card)), "")
    except BadInput as exc:  # a sampler that adds noise: the export stands without it
        return step_data, step_diff, None, None, f"no unrolled graph: {exc}"


def export_onnx(
    model_path: str | Path | None,
    out: str | Path | None = None,
    *,
    fp16: bool = False,
    opset: int | None = None,
    step_graph: bool = True,
    unroll: SamplingOptions | None = SamplingOptions(),
) -> ExportResult:
    """Checkpoint (None = bundled) -> one self-contained .onnx at `out`, parity-checked vs torch.

    out None: a bundled model goes to the cache, where `backend="onnx"` finds it (models.card)."""
    t0 = time.perf_counter()
    if out is None:
        out = bundled_onnx_path(checkpoint_path(model_path))
        if out is None:
            raise BadInput(
                f"{arg('out')} is required for {str(model_path)!r}; only a bundled model "
                "(bundled, bundled-32) has a default, the cache"
            )
        out.parent.mkdir(parents=True, exist_ok=True)
    out = Path(out)
    if out.name.lower().endswith((".step.onnx", ".unrolled.onnx")):
        raise BadInput(
            f"{arg('out')} {str(out)!r}: .step.onnx and .unrolled.onnx are the names of the graphs "
            "written beside the model; name the model otherwise"
        )
    if out.suffix.lower() != ".onnx":
        raise BadInput(f"{arg('out')} {str(out)!r} must end with .onnx")
    if not out.parent.is_dir():
        raise BadInput(f"{arg('out')} {str(out)!r}: its folder {str(out.parent)!r} does not exist")
    for side in (out, step_path(out), unrolled_path(out)):  # before minutes of export and checks
        if side.exists() and not side.is_file():
            raise BadInput(
                f"{arg('out')} {str(out)!r}: {str(side)!r} is in the way (not a file); move it or choose another name"
            )
    if is_onnx(model_path):
        raise BadInput(f"{arg('model')} {str(model_path)!r} is already ONNX; export needs a .safetensors checkpoint")
    card = read_card(model_path)
    model = load_torch_model(card, "cpu")
    proto = export_proto(model, card, opset)
    precision, tol = "fp32", FP32_TOL
    if fp16:
        proto, precision, tol = to_fp16(proto), "fp16", FP16_TOL
    add_metadata(proto, card, fingerprint=file_fingerprint(card.path), precision=precision)
    data = proto.SerializeToString()
    diffs = parity(model, data, card)
    worst = max(diffs.values())
    if not worst <= tol:  # NaN fails too
        raise RunFailed(
            f"ONNX ({precision}) disagrees with torch: max |diff| {worst:.3g} > {tol:g} "
            f"(batches {', '.join(map(str, diffs))}); nothing written"
        )
    step_data, step_diff, unrolled_data, unrolled_diff, note = _side_graphs(proto, model, card, tol, step_graph, unroll)
    # the model and its side graphs as one set, all or none; a side graph left from an earlier
    # export would name another checkpoint (or sampling), so one not written now is removed
    files = [
        (p, blob)
        for p, blob in ((out, data), (step_path(out), step_data), (unrolled_path(out), unrolled_data))
        if blob is not None
    ]
    stale = [
        p
        for p, blob in ((step_path(out), step_data), (unrolled_path(out), unrolled_data))
        if blob is None and (p.is_file() or p.is_symlink())
    ]
    write_files(files, stale)
    opset_used = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), -1)
    return ExportResult(
        out,
        len(data),
        int(opset_used),
        precision,
        diffs,
        tol,
        time.perf_counter() - t0,
        step_path(out) if step_data else None,
        step_diff,
        unrolled_path(out) if unrolled_data else None,
        unrolled_diff,
        note,
    )
