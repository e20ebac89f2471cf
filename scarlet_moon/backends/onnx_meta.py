"""The .onnx contract, in one place: the metadata an exported model and its fused step graph carry,
and reading a ModelCard back from them (numpy + onnxruntime only; no torch, no onnx package).

The .onnx file is the bare denoiser written by scarlet_moon.onnx.export: inputs x float32
[batch,C,H,W], t float32 [batch], y int64 [batch] (num_classes = the null label), output float32
[batch,C,H,W]. Its metadata_props carry the model card, so a ModelCard is built from the file
alone (card.path = the .onnx file). The step graph beside it (m.step.onnx, scarlet_moon.onnx.
step_graph) carries the same source fingerprint plus its own META_STEP entry.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from scarlet_moon.backends.onnx_session import CPU, import_ort, make_session
from scarlet_moon.errors import BadInput
from scarlet_moon.models.card import ModelCard
from scarlet_moon.models.card_check import check_card_meta

FORMAT = "scarlet-moon-onnx"
FORMAT_VERSION = 1
META_FORMAT = "scarlet_moon.format"
META_VERSION = "scarlet_moon.package_version"
META_CARD = "scarlet_moon.card"  # JSON: the checkpoint's model card
META_SOURCE = "scarlet_moon.source_fingerprint"  # models.card.file_fingerprint: sha256 hex, first 16
META_SOURCE_NAME = "scarlet_moon.source_name"
META_PRECISION = "scarlet_moon.precision"  # fp32 | fp16 (inputs and outputs are fp32 in both)
META_IO = "scarlet_moon.io"  # JSON: input docs, output name, null label
OUTPUT_NAME = "pred"
INPUT_DOCS = {
    "x": "float32 [batch, C, H, W]: noisy sprites in model range (x_T ~ N(0, 1))",
    "t": "float32 [batch]: timestep index 0..T-1 (fractional allowed)",
    "y": "int64 [batch]: label index; num_classes is the null label (classifier-free guidance)",
}
_INPUT_TYPES = {"x": "tensor(float)", "t": "tensor(float)", "y": "tensor(int64)"}
_CARD_REQUIRED = ("label_names", "image_size", "channels", "schedule", "prediction")
_DROP_FROM_CARD = ("optim_groups", "format")  # training-only / the checkpoint's own tag

# the fused step graph (scarlet_moon.onnx.step_graph builds it, backends.onnx_device runs it)
STEP_FORMAT = "scarlet-moon-step"
META_STEP = "scarlet_moon.step_graph"
STEP_INPUTS = ("b0", "b1", "b2", "b3", "coef", "t", "y")
STEP_OUTPUTS = ("x", "x0", "bad")
# the unrolled graph: one deterministic sampling in one run (scarlet_moon.onnx.unrolled_graph builds
# it, backends.onnx_unrolled runs it); META_UNROLLED names the sampling it was built for
UNROLLED_FORMAT = "scarlet-moon-unrolled"
META_UNROLLED = "scarlet_moon.unrolled_graph"


def card_meta_for_export(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The checkpoint meta stored in the .onnx (training-only keys dropped)."""
    return {k: v for k, v in meta.items() if k not in _DROP_FROM_CARD}


def card_from_session(sess: Any, path: Path) -> ModelCard:
    """Validate our metadata and the graph's inputs; the ModelCard of the .onnx file."""
    props = sess.get_modelmeta().custom_metadata_map
    not_ours = f"{str(path)!r} is not a Scarlet Moon ONNX model"
    if props.get(META_FORMAT) != FORMAT:
        raise BadInput(f"{not_ours} (no '{META_FORMAT}' metadata; export one with `sm export-onnx`)")
    try:
        meta = json.loads(props[META_CARD])
        io = json.loads(props.get(META_IO, "{}"))
    except (KeyError, json.JSONDecodeError, RecursionError):
        raise BadInput(f"{not_ours} (its model card metadata is missing or not JSON)") from None
    missing = [k for k in _CARD_REQUIRED if k not in meta] if isinstance(meta, dict) else list(_CARD_REQUIRED)
    if missing:
        raise BadInput(f"{not_ours} (its card lacks {', '.join(missing)})")
    check_card_meta(meta, repr(str(path)))
    version = io.get("format_version", 0) if isinstance(io, dict) else None
    if not isinstance(version, int) or isinstance(version, bool):
        raise BadInput(f"{not_ours} (its '{META_IO}' metadata has no integer format_version)")
    if version > FORMAT_VERSION:
        raise BadInput(
            f"{str(path)!r} uses ONNX format version {io.get('format_version')}; this "
            f"scarlet-moon reads up to {FORMAT_VERSION}: upgrade the package"
        )
    inputs = {i.name: i.type for i in sess.get_inputs()}
    outputs = [(o.type, len(o.shape)) for o in sess.get_outputs()]
    if inputs != _INPUT_TYPES or outputs != [("tensor(float)", 4)]:
        raise BadInput(
            f"{not_ours} (inputs {inputs}, outputs {outputs}; expected {_INPUT_TYPES} and one float output of rank 4)"
        )
    check_graph(sess, meta, path)
    meta["onnx"] = {
        "source_fingerprint": props.get(META_SOURCE),
        "source_name": props.get(META_SOURCE_NAME),
        "precision": props.get(META_PRECISION, "fp32"),
        "package_version": props.get(META_VERSION),
    }
    return ModelCard(path, meta)


def check_graph(sess: Any, meta: Mapping[str, Any], path: Path) -> None:
    """The graph agrees with its card: x and the output are [batch, channels, H, W] with the card's
    channels and size and a free batch axis; on the CPU, one-sprite probes show that the label
    embedding has exactly the card's rows (labels + null): the null label runs, one past it fails.
    BadInput naming the file and both figures otherwise (the card alone could be edited)."""
    h, w = meta["image_size"]
    want = [meta["channels"], h, w]
    x = next(i for i in sess.get_inputs() if i.name == "x")
    for what, node in (("input x", x), ("output", sess.get_outputs()[0])):
        shape = list(node.shape)
        if isinstance(shape[0], int):
            raise BadInput(
                f"{str(path)!r}: its graph's {what} has a fixed batch of {shape[0]}; export it again with "
                "`sm export-onnx` (a free batch axis)"
            )
        fixed = [(got, exp) for got, exp in zip(shape[1:], want) if isinstance(got, int) and got != exp]
        if len(shape) != 4 or fixed:
            raise BadInput(
                f"{str(path)!r}: its graph's {what} is {shape}, its card says "
                f"[batch, {', '.join(map(str, want))}]; the file was altered or mixed up"
            )
    if sess.get_providers()[0] == CPU:
        _probe_labels(sess, meta, want, path)


def _probe_labels(sess: Any, meta: Mapping[str, Any], chw: list[int], path: Path) -> None:
    import numpy as np

    ort = import_ort()
    quiet = ort.RunOptions()
    quiet.log_severity_level = 4  # the failing probe must not print onnxruntime's own error lines
    k = len(meta["label_names"])

    def runs(label: int) -> bool:
        feed = {"x": np.zeros((1, *chw), np.float32), "t": np.zeros(1, np.float32), "y": np.array([label], np.int64)}
        try:
            out = sess.run(None, feed, quiet)[0]
        except Exception:  # onnxruntime's own error types: an index past the embedding, a bad shape
            return False
        return out.shape == (1, *chw)

    if not runs(k) or runs(k + 1):
        raise BadInput(
            f"{str(path)!r}: its card names {k} labels, but its graph's label embedding does not have "
            f"{k} + 1 rows (labels and the null label); the file was altered or mixed up"
        )


def read_onnx_card(path: str | Path) -> ModelCard:
    """The card of an exported .onnx (metadata only, light CPU session)."""
    p = Path(path)
    if not p.is_file():
        raise BadInput(f"model {str(p)!r} does not exist or is not a file")
    ort = import_ort()
    return card_from_session(make_session(ort, p, [CPU], light=True), p)


def _varint(f: Any) -> int:
    """One protobuf varint from file f; ValueError at the end of the file or past 10 bytes."""
    out = 0
    for shift in range(0, 70, 7):
        b = f.read(1)
        if not b:
            raise ValueError("truncated")
        out |= (b[0] & 0x7F) << shift
        if b[0] < 0x80:
            return out
    raise ValueError("varint too long")


def _fields(data: bytes) -> dict[int, bytes]:
    """Length-delimited fields of a small message (a metadata entry: 1 key, 2 value)."""
    import io

    f, out, end = io.BytesIO(data), {}, len(data)
    while f.tell() < end:
        key = _varint(f)
        if key & 7 != 2:
            raise ValueError("unexpected wire type in a metadata entry")
        n = _varint(f)
        out[key >> 3] = f.read(n)
    return out


def metadata_props(path: str | Path) -> dict[str, str]:
    """ModelProto.metadata_props (field 14) of an .onnx file, read by seeking past the graph: the
    fingerprint check before a session opens, without parsing the 12 MB of weights twice.
    BadInput when the file is not a protobuf this scan can walk (onnxruntime would refuse it too)."""
    p = Path(path)
    size, props = p.stat().st_size, {}
    try:
        with p.open("rb") as f:
            while f.tell() < size:
                key = _varint(f)
                wire = key & 7
                if wire == 0:
                    _varint(f)
                elif wire in (1, 5):
                    f.seek(8 if wire == 1 else 4, 1)
                elif wire == 2:
                    n = _varint(f)
                    if f.tell() + n > size:
                        raise ValueError("field runs past the end")
                    if key >> 3 == 14 and n <= 1 << 24:
                        entry = _fields(f.read(n))
                        props[entry.get(1, b"").decode()] = entry.get(2, b"").decode()
                    else:
                        f.seek(n, 1)
                else:
                    raise ValueError(f"wire type {wire}")
            if f.tell() != size:
                raise ValueError("truncated")
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadInput(f"{str(p)!r} is not a loadable ONNX model ({exc})") from None
    return props


def step_path(model: str | Path) -> Path:
    """The fused step graph written beside an exported model: m.onnx -> m.step.onnx."""
    p = Path(model)
    return p.with_name(p.stem + ".step.onnx")


def unrolled_path(model: str | Path) -> Path:
    """The unrolled graph written beside an exported model: m.onnx -> m.unrolled.onnx."""
    p = Path(model)
    return p.with_name(p.stem + ".unrolled.onnx")


def _side_meta(sess: Any, card: ModelCard, key: str, missing: str, suffix: str) -> Any:
    """A side graph's own JSON metadata (`key`); the graph must name the model card's source checkpoint."""
    props = sess.get_modelmeta().custom_metadata_map
    try:
        meta = json.loads(props[key])
    except (KeyError, json.JSONDecodeError, RecursionError):
        raise BadInput(missing) from None
    if props.get(META_SOURCE) != card.meta.get("onnx", {}).get("source_fingerprint"):
        raise BadInput(f"the {suffix} beside the model was exported from another checkpoint; re-export")
    return meta


def unrolled_meta(sess: Any, card: ModelCard) -> dict[str, Any]:
    """The unrolled graph's metadata (the sampling it runs); it must come from the model's checkpoint."""
    meta = _side_meta(
        sess, card, META_UNROLLED, "not a Scarlet Moon unrolled graph (no unrolled-graph metadata)", ".unrolled.onnx"
    )
    if not isinstance(meta, dict) or meta.get("format") != UNROLLED_FORMAT:
        raise BadInput("not a Scarlet Moon unrolled graph (unknown format)")
    steps, ts = meta.get("steps"), meta.get("timesteps")
    io = ([i.name for i in sess.get_inputs()], [o.name for o in sess.get_outputs()])
    if not (
        type(steps) is int
        and steps >= 1
        and isinstance(ts, list)
        and len(ts) == steps
        and all(type(t) is int for t in ts)
        and isinstance(meta.get("sampler"), str)
        and all(type(meta.get(k)) in (int, float) for k in ("guidance", "eta"))
    ):
        raise BadInput("the .unrolled.onnx beside the model has malformed metadata; re-export")
    if io != (["x", "y"], ["x0", "bad"]):
        raise BadInput(
            f"the .unrolled.onnx beside the model has inputs {io[0]} and outputs {io[1]}; "
            "expected ['x', 'y'] and ['x0', 'bad']; re-export"
        )
    return meta


def step_meta(sess: Any, card: ModelCard) -> dict[str, Any]:
    """The step graph's own metadata; it must name the same source checkpoint as the model's card."""
    meta = _side_meta(sess, card, META_STEP, "not a Scarlet Moon step graph (no step metadata)", ".step.onnx")
    return meta if isinstance(meta, dict) else {}
