"""The unrolled N-step graph: a whole deterministic sampling in one onnxruntime run (export side: needs `onnx`).

The fused step graph (scarlet_moon.onnx.step_graph) is copied once per step of a plan
(scarlet_moon.backends.onnx_device.unrolled_plan): each copy's coefficients and timestep become
constants, its buffer inputs are wired to the outputs of the steps before it, exactly as the device
loop binds them, and the weights are shared (one set of initializers, so the file is the size of the
step graph). No per-step host round trip is left: one run from x_T to the sprites.

    inputs   x    float32 [batch, C, H, W]  x_T, model range (the same noise the other loops draw)
             y    int64   [batch]           labels
    outputs  x0   float32 [batch, C, H, W]  the sampler's output (model range)
             bad  float32 [steps]           1.0 where step i's prediction held NaN/inf
"""

from __future__ import annotations

import json
from typing import Any

from scarlet_moon.backends.onnx_device import X0, X, Z
from scarlet_moon.backends.onnx_meta import META_STEP, META_UNROLLED, UNROLLED_FORMAT


def _has_subgraph(node: Any) -> bool:
    from onnx import AttributeProto

    return any(a.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS) for a in node.attribute)


def _step_nodes(h: Any, step: Any, p: int, feeds: dict[str, str], shared: set[str]) -> list[Any]:
    """The step graph's nodes for step p: step inputs renamed per `feeds`, weights shared, the rest
    prefixed u{p}/ (outputs x, x0, bad become u{p}/x, u{p}/x0, u{p}/bad)."""

    def name(v: str) -> str:
        return v if not v or v in shared else feeds.get(v, f"u{p}/{v}")

    out = []
    for n in step.graph.node:
        if _has_subgraph(n):
            raise ValueError(f"node {n.name!r} ({n.op_type}) holds a subgraph: not supported by the unroller")
        m = h.make_node(
            n.op_type, [name(i) for i in n.input], [name(o) for o in n.output], name=f"u{p}/{n.name}", domain=n.domain
        )
        m.attribute.extend(n.attribute)
        out.append(m)
    return out


def _wiring(h: Any, plan: dict[str, Any]) -> tuple[list[Any], list[tuple[Any, dict[str, str]]], list[Any], list[Any]]:
    """(head nodes, per step (its timestep node, the tensor feeding each step-graph input), tail
    nodes: the result and the NaN flags, constants)."""
    head = [
        h.make_node("Shape", ["y"], ["batch_1d"], name="unrolled/batch"),
        h.make_node("Shape", ["x"], ["x_shape"], name="unrolled/x_shape"),
        h.make_node("ConstantOfShape", ["x_shape"], ["zeros"], name="unrolled/zeros"),
    ]
    inits, steps, nodes = [], [], []
    slots = {X(-1): "x"}  # buffer slot -> the tensor holding it now; a slot never written is zeros
    for p, st in enumerate(plan["steps"]):
        inits.append(h.make_tensor(f"u{p}/coef_c", 1, [8], st["coef"]))
        inits.append(h.make_tensor(f"u{p}/t_c", 1, [], [st["t"]]))
        expand = h.make_node("Expand", [f"u{p}/t_c", "batch_1d"], [f"u{p}/t_in"], name=f"u{p}/t_expand")
        feeds = {"coef": f"u{p}/coef_c", "t": f"u{p}/t_in", "y": "y"}
        for arg, slot in (("b0", X(p - 1)), ("b1", X0(p - 1)), ("b2", X0(p - 2)), ("b3", Z)):
            feeds[arg] = slots.get(slot, "zeros")
        steps.append((expand, feeds))
        slots[X(p)], slots[X0(p)] = f"u{p}/x", f"u{p}/x0"
    out = None
    for k, (slot, c) in enumerate(plan["final"]):  # the device loop's resolve: sum of c * slot, in order
        if slot not in slots:
            raise ValueError(f"the plan's result reads buffer slot {slot}, which no step wrote")
        inits.append(h.make_tensor(f"final/c{k}", 1, [], [c]))
        nodes.append(h.make_node("Mul", [slots[slot], f"final/c{k}"], [f"final/term{k}"], name=f"final/mul{k}"))
        if out is not None:
            nodes.append(h.make_node("Add", [out, f"final/term{k}"], [f"final/sum{k}"], name=f"final/add{k}"))
        out = f"final/term{k}" if out is None else f"final/sum{k}"
    nodes.append(h.make_node("Identity", [out or "zeros"], ["x0"], name="final/x0"))
    bads = [f"u{p}/bad" for p in range(len(plan["steps"]))]
    for b in bads:
        nodes.append(h.make_node("Unsqueeze", [b, "axis0"], [b + "_1d"], name=b + "_unsqueeze"))
    nodes.append(h.make_node("Concat", [b + "_1d" for b in bads], ["bad"], name="final/bad", axis=0))
    inits.append(h.make_tensor("axis0", 7, [1], [0]))
    return head, steps, nodes, inits


def build_unrolled_proto(step: Any, plan: dict[str, Any], meta: dict[str, Any]) -> Any:
    """The unrolled graph of `plan` around `step` (an onnx.ModelProto from build_step_proto)."""
    import onnx
    from onnx import helper as h

    if not plan.get("steps"):
        raise ValueError("an unrolled graph needs at least one step")
    g = step.graph
    shared = {i.name for i in g.initializer}
    head, wiring, tail, inits = _wiring(h, plan)
    nodes = list(head)
    for p, (expand, feeds) in enumerate(wiring):
        nodes += [expand, *_step_nodes(h, step, p, feeds, shared)]
    nodes += tail
    buf = [d.dim_param or d.dim_value for d in next(i for i in g.input if i.name == "b0").type.tensor_type.shape.dim]
    inputs = [h.make_tensor_value_info("x", 1, buf), h.make_tensor_value_info("y", 7, [buf[0]])]
    outputs = [h.make_tensor_value_info("x0", 1, buf), h.make_tensor_value_info("bad", 1, [len(wiring)])]
    graph = h.make_graph(nodes, "scarlet_moon_unrolled", inputs, outputs, initializer=list(g.initializer) + inits)
    model = h.make_model(
        graph,
        opset_imports=list(step.opset_import),
        producer_name=step.producer_name,
        producer_version=step.producer_version,
    )
    model.ir_version = step.ir_version
    model.functions.extend(step.functions)
    for p in step.metadata_props:
        if p.key != META_STEP:
            model.metadata_props.append(onnx.StringStringEntryProto(key=p.key, value=p.value))
    full = {"format": UNROLLED_FORMAT, "steps": len(wiring), **meta}
    model.metadata_props.append(onnx.StringStringEntryProto(key=META_UNROLLED, value=json.dumps(full, sort_keys=True)))
    model.doc_string = (__doc__ or "").strip()
    return model
