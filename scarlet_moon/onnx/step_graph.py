"""The fused step graph for the device-resident onnxruntime loop (export side: needs `onnx`).

Wraps the exported denoiser graph so that one `run` does all a sampler step needs on the GPU,
and the sprites never leave the device between steps (scarlet_moon.backends.onnx_device):

    inputs   b0..b3 float32 [batch, C, H, W]  device buffers; x = sum_k coef[k] * b_k
             coef   float32 [8]               c0..c3, w (guidance), a = sqrt(abar_t),
                                              s = sqrt(1 - abar_t), unused
             t      float32 [batch]           timestep index
             y      int64   [batch]           labels (the null rows are added inside; none in the
                                              one-row graph of a guidance-distilled model, whose
                                              labelled rows are already guided: w is unused)
    outputs  x      float32 [batch, C, H, W]  the materialised input state
             x0     float32 [batch, C, H, W]  guided x0_hat (clipped to [-1, 1] if the card says so)
             bad    float32 []                1.0 if the prediction holds NaN/inf

Every sampler step in scarlet_moon.diffusion.samplers is linear in (x, x0_hat, eps_hat, z) with
eps_hat = (x - a x0_hat) / s, so the state after a step is a linear combination of at most
four device buffers, which the next run materialises (coef[0:4]). The wrapper arithmetic stays
fp32 even when the network inside is fp16.
"""

from __future__ import annotations

import json
from typing import Any

from scarlet_moon.backends.onnx_meta import META_STEP, STEP_FORMAT, STEP_INPUTS, STEP_OUTPUTS

PREFIX = "net/"


def _nodes(h: Any, null_label: int, prediction: str, clip: bool, rows: int = 2) -> list[Any]:
    """The wrapper nodes around the prefixed network (net/x, net/t, net/y -> net/pred); rows=1
    (a guidance-distilled network, scarlet_moon.training.distill) runs the labelled rows alone."""
    n = []

    def op(kind: str, ins: list[str], out: str, **attrs: Any) -> str:
        n.append(h.make_node(kind, ins, [out], name=f"step/{out}", **attrs))
        return out

    for k, name in enumerate(["c0", "c1", "c2", "c3", "w", "a", "s"]):
        op("Gather", ["coef", f"idx{k}"], name, axis=0)
    terms = [op("Mul", [f"b{k}", f"c{k}"], f"m{k}") for k in range(4)]
    op("Add", [op("Add", terms[:2], "sum01"), op("Add", terms[2:], "sum23")], "x")
    if rows == 1:
        for name in ("x", "t", "y"):
            op("Identity", [name], PREFIX + name)
        pred = PREFIX + "pred"
    else:
        op("Concat", ["x", "x"], PREFIX + "x", axis=0)
        op("Concat", ["t", "t"], PREFIX + "t", axis=0)
        op("Add", [op("Mul", ["y", "zero_i64"], "y0"), "null_i64"], "ynull")
        op("Concat", ["y", "ynull"], PREFIX + "y", axis=0)
        op("Slice", [op("Shape", ["x"], "xshape"), "zero_1", "one_1"], "batch")
        op("Slice", [PREFIX + "pred", "zero_1", "batch", "zero_1"], "cond")
        op("Slice", [PREFIX + "pred", "batch", "big_1", "zero_1"], "uncond")
        pred = op("Add", ["uncond", op("Mul", [op("Sub", ["cond", "uncond"], "diff"), "w"], "wdiff")], "pred")
    if prediction == "v":  # x0 = a x - s v
        x0 = op("Sub", [op("Mul", ["x", "a"], "ax"), op("Mul", [pred, "s"], "sv")], "x0_raw")
    else:  # x0 = (x - s eps) / a
        x0 = op("Div", [op("Sub", ["x", op("Mul", [pred, "s"], "se")], "x_se"), "a"], "x0_raw")
    if clip:
        x0 = op("Clip", [x0, "minus_one", "plus_one"], "x0_clip")
    op("Identity", [x0], "x0")
    bad = op("Or", [op("IsNaN", [pred], "isnan"), op("IsInf", [pred], "isinf")], "notfinite")
    op("ReduceMax", [op("Cast", [bad], "bad_f", to=1)], "bad", keepdims=0)
    return n


def _constants(h: Any, np: Any, null_label: int) -> list[Any]:
    c = [h.make_tensor(f"idx{k}", 7, [], [k]) for k in range(7)]
    return c + [
        h.make_tensor("zero_i64", 7, [], [0]),
        h.make_tensor("null_i64", 7, [], [int(null_label)]),
        h.make_tensor("zero_1", 7, [1], [0]),
        h.make_tensor("one_1", 7, [1], [1]),
        h.make_tensor("big_1", 7, [1], [int(np.iinfo(np.int64).max)]),
        h.make_tensor("minus_one", 1, [], [-1.0]),
        h.make_tensor("plus_one", 1, [], [1.0]),
    ]


def build_step_proto(
    net: Any, *, null_label: int, prediction: str, clip: bool, step_meta: dict[str, Any], rows: int = 2
) -> Any:
    """The step graph around `net` (an onnx.ModelProto of the denoiser: inputs x, t, y; output pred)."""
    import numpy as np
    import onnx
    from onnx import helper as h

    if prediction not in ("v", "eps"):
        raise ValueError(f"prediction {prediction!r}: expected v or eps")
    inner = onnx.compose.add_prefix(net, PREFIX)
    g = inner.graph
    ref = next(i for i in g.input if i.name == PREFIX + "x").type.tensor_type.shape.dim
    chw = [d.dim_value for d in ref[1:]]
    buf = ["batch", *chw]
    inputs = [h.make_tensor_value_info(f"b{k}", 1, buf) for k in range(4)]
    inputs += [
        h.make_tensor_value_info("coef", 1, [8]),
        h.make_tensor_value_info("t", 1, ["batch"]),
        h.make_tensor_value_info("y", 7, ["batch"]),
    ]
    outputs = [
        h.make_tensor_value_info("x", 1, buf),
        h.make_tensor_value_info("x0", 1, buf),
        h.make_tensor_value_info("bad", 1, []),
    ]
    if rows not in (1, 2):
        raise ValueError(f"rows {rows!r}: expected 1 (distilled guidance) or 2 (guided in the graph)")
    graph = h.make_graph(
        list(g.node) + _nodes(h, null_label, prediction, clip, rows),
        "scarlet_moon_step",
        inputs,
        outputs,
        initializer=list(g.initializer) + _constants(h, np, null_label),
    )
    model = h.make_model(
        graph,
        opset_imports=list(inner.opset_import),
        producer_name=net.producer_name,
        producer_version=net.producer_version,
    )
    model.ir_version = net.ir_version
    model.functions.extend(inner.functions)
    for p in net.metadata_props:
        model.metadata_props.append(onnx.StringStringEntryProto(key=p.key, value=p.value))
    meta = {"format": STEP_FORMAT, "inputs": STEP_INPUTS, "outputs": STEP_OUTPUTS, "rows": rows, **step_meta}
    model.metadata_props.append(onnx.StringStringEntryProto(key=META_STEP, value=json.dumps(meta, sort_keys=True)))
    model.doc_string = (__doc__ or "").strip()
    return model
