"""The onnxruntime sampling backend: numpy + onnxruntime only (no torch, no onnx package).

    sess = OnnxDenoiserSession("model.onnx")            # provider: CUDA when it really loads, else CPU
    raw = generate_onnx(sess.card, request, session=sess)  # uint8 N x H x W x C, like sample_array

The .onnx file is the bare denoiser written by `sm export-onnx` (scarlet_moon.export.onnx_export):
inputs x float32 [batch,C,H,W], t float32 [batch], y int64 [batch] (num_classes = null label),
output float32 [batch,C,H,W]. Its metadata_props carry the model card, so a ModelCard is built
from the file alone (card.path = the .onnx file). Guidance, the eps/v split, x0 clipping and the
sampler arithmetic run here in numpy through scarlet_moon.diffusion.samplers, with the noise drawn from one
np.random.default_rng(seed) in the same order as scarlet_moon.backends.torch_backend.generate_torch, so both
backends give the same sprites for the same seed (up to float rounding).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from scarlet_moon.models.card import ModelCard, file_fingerprint as source_fingerprint
from scarlet_moon.models.card_check import check_card_meta
from scarlet_moon.errors import BadInput

log = logging.getLogger(__name__)

FORMAT = "scarlet-moon-onnx"
FORMAT_VERSION = 1
META_FORMAT = "scarlet_moon.format"
META_VERSION = "scarlet_moon.package_version"
META_CARD = "scarlet_moon.models.card"                  # JSON: the checkpoint's model card
META_SOURCE = "scarlet_moon.source_fingerprint"  # checkpoint.file_fingerprint: sha256 hex, first 16
META_SOURCE_NAME = "scarlet_moon.source_name"
META_PRECISION = "scarlet_moon.precision"        # fp32 | fp16 (inputs and outputs are fp32 in both)
META_IO = "scarlet_moon.io"                      # JSON: input docs, output name, null label
OUTPUT_NAME = "pred"
INPUT_DOCS = {
    "x": "float32 [batch, C, H, W]: noisy sprites in model range (x_T ~ N(0, 1))",
    "t": "float32 [batch]: timestep index 0..T-1 (fractional allowed)",
    "y": "int64 [batch]: label index; num_classes is the null label (classifier-free guidance)",
}
_INPUT_TYPES = {"x": "tensor(float)", "t": "tensor(float)", "y": "tensor(int64)"}
_CARD_REQUIRED = ("label_names", "image_size", "channels", "schedule", "prediction")
_DROP_FROM_CARD = ("optim_groups", "format")  # training-only / the checkpoint's own tag
CUDA, CPU = "CUDAExecutionProvider", "CPUExecutionProvider"
ORT_DEFAULT_SEVERITY = 2  # WARNING; restored after a silenced CUDA probe


def card_meta_for_export(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The checkpoint meta stored in the .onnx (training-only keys dropped)."""
    return {k: v for k, v in meta.items() if k not in _DROP_FROM_CARD}


def import_ort():
    try:
        import onnxruntime as ort
    except ImportError:
        raise BadInput("the onnx backend needs onnxruntime: pip install 'scarlet-moon[onnx]' "
                       "(or onnxruntime-gpu for CUDA)") from None
    return ort


def _session(ort, path: Path, providers: list[Any], *, threads: int | None = None, light: bool = False):
    so = ort.SessionOptions()
    so.log_severity_level = 3
    if threads:
        so.intra_op_num_threads = threads
    if light:  # metadata only: skip graph optimisation
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        so.intra_op_num_threads = 1
    try:
        return ort.InferenceSession(str(path), so, providers=providers)
    except Exception as exc:  # InvalidProtobuf, Fail, NoSuchFile...: all "not a usable .onnx"
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BadInput(f"{str(path)!r} is not a loadable ONNX model ({first[:200]})") from None


def card_from_session(sess, path: Path) -> ModelCard:
    """Validate our metadata and the graph's inputs; the ModelCard of the .onnx file."""
    props = sess.get_modelmeta().custom_metadata_map
    not_ours = f"{str(path)!r} is not a Scarlet Moon ONNX model"
    if props.get(META_FORMAT) != FORMAT:
        raise BadInput(f"{not_ours} (no '{META_FORMAT}' metadata; export one with `sm export-onnx`)")
    try:
        meta = json.loads(props[META_CARD])
        io = json.loads(props.get(META_IO, "{}"))
    except (KeyError, json.JSONDecodeError):
        raise BadInput(f"{not_ours} (its model card metadata is missing or not JSON)") from None
    missing = [k for k in _CARD_REQUIRED if k not in meta] if isinstance(meta, dict) else list(_CARD_REQUIRED)
    if missing:
        raise BadInput(f"{not_ours} (its card lacks {', '.join(missing)})")
    check_card_meta(meta, repr(str(path)))
    version = io.get("format_version", 0) if isinstance(io, dict) else None
    if not isinstance(version, int) or isinstance(version, bool):
        raise BadInput(f"{not_ours} (its '{META_IO}' metadata has no integer format_version)")
    if version > FORMAT_VERSION:
        raise BadInput(f"{str(path)!r} uses ONNX format version {io.get('format_version')}; this "
                       f"scarlet-moon reads up to {FORMAT_VERSION}: upgrade the package")
    inputs = {i.name: i.type for i in sess.get_inputs()}
    if inputs != _INPUT_TYPES or len(sess.get_outputs()) != 1:
        raise BadInput(f"{not_ours} (inputs {inputs}; expected {_INPUT_TYPES} and one output)")
    meta["onnx"] = {"source_fingerprint": props.get(META_SOURCE), "source_name": props.get(META_SOURCE_NAME),
                    "precision": props.get(META_PRECISION, "fp32"), "package_version": props.get(META_VERSION)}
    return ModelCard(path, meta)


def read_onnx_card(path: str | Path) -> ModelCard:
    """The card of an exported .onnx (metadata only, light CPU session)."""
    p = Path(path)
    if not p.is_file():
        raise BadInput(f"model {str(p)!r} does not exist or is not a file")
    ort = import_ort()
    return card_from_session(_session(ort, p, [CPU], light=True), p)


def _preload_cuda_libs(ort) -> None:
    """onnxruntime-gpu >= 1.21 can load CUDA/cuDNN from the nvidia-* pip wheels (the ones torch
    installs); without it, a process that has not imported torch finds no libcublasLt/libcudnn."""
    preload = getattr(ort, "preload_dlls", None)
    if preload is not None:
        try:
            preload()
        except Exception as exc:  # noqa: BLE001  missing wheels: the CUDA probe then fails cleanly
            log.debug("onnxruntime.preload_dlls: %s", exc)


def cuda_options(**base: str) -> dict[str, str]:
    """CUDA EP provider options: TF32 off (fp32 means fp32: with TF32 the CUDA sprites of torch and
    onnxruntime agreed on 94% of values, without it on 99.997%), `base`, then SM_ONNX_CUDA_OPTIONS
    ("key=value,key=value", e.g. "use_tf32=1,prefer_nhwc=1"), passed to onnxruntime as they are."""
    opts = {"use_tf32": "0", **base}
    raw = os.environ.get("SM_ONNX_CUDA_OPTIONS", "").strip()
    for part in filter(None, (p.strip() for p in raw.split(","))):
        key, eq, value = part.partition("=")
        if not eq or not key.strip() or not value.strip():
            raise BadInput(f"SM_ONNX_CUDA_OPTIONS entry {part!r}: expected key=value (e.g. use_tf32=0)")
        opts[key.strip()] = value.strip()
    return opts


def open_session(path: Path, device: str | None = None):
    """(session, device) with device 'cuda' only if the CUDA EP really loaded.

    device None/'auto': CUDA when it loads, else CPU; 'cpu' forces CPU; 'cuda' fails (BadInput)
    when the CUDA EP cannot load. onnxruntime-gpu lists CUDA even with no GPU and silently
    falls back to CPU, so the check is get_providers()[0], never get_available_providers().
    """
    ort = import_ort()
    device = (device or "auto").lower()
    if device not in ("auto", "cpu", "cuda"):
        raise BadInput(f"--device {device!r}: expected cpu or cuda")
    if device != "cpu" and CUDA in ort.get_available_providers():
        opts = cuda_options()  # a malformed SM_ONNX_CUDA_OPTIONS is bad input, not "no CUDA"
        ort.set_default_logger_severity(4)  # the failed probe logs E/W lines (libcublas...)
        try:
            _preload_cuda_libs(ort)
            sess = _session(ort, path, [(CUDA, opts), CPU])
        except BadInput:
            sess = None
        finally:
            ort.set_default_logger_severity(ORT_DEFAULT_SEVERITY)
        if sess is not None and sess.get_providers()[0] == CUDA:
            return sess, "cuda"
    if device == "cuda":
        raise BadInput(f"--device cuda: onnxruntime {ort.__version__} cannot load the CUDA provider here "
                       f"(providers built in: {', '.join(ort.get_available_providers())}); install "
                       "onnxruntime-gpu with a matching CUDA/cuDNN, or use --device cpu")
    return _session(ort, path, [CPU], threads=os.cpu_count() or 1), "cpu"


class OnnxDenoiserSession:
    """An exported denoiser, loaded: `.card` (a ModelCard), `.device`, `.providers`, `__call__`."""

    def __init__(self, path: str | Path, device: str | None = None, loop: str | None = None):
        self.path = Path(path)
        # "auto": the device-resident loop on CUDA when m.step.onnx is beside the model; "host" | "device"
        self.loop = (loop or os.environ.get("SM_ONNX_LOOP") or "auto").lower()
        if self.loop not in ("auto", "host", "device"):
            raise BadInput(f"onnx loop {self.loop!r} (SM_ONNX_LOOP): expected auto, host or device")
        self._step: Any = None
        self._step_rows = 2
        self._loops: dict[int, Any] = {}  # batch -> DeviceLoop (buffers bound once, CUDA graphs)
        if not self.path.is_file():
            raise BadInput(f"model {str(self.path)!r} does not exist or is not a file")
        self.sess, self.device = open_session(self.path, device)
        self.cuda_graph = self.device == "cuda" and os.environ.get("SM_ONNX_CUDA_GRAPH", "1") != "0"
        self.card = card_from_session(self.sess, self.path)
        self.providers = list(self.sess.get_providers())
        self.output = self.sess.get_outputs()[0].name
        self.calls = 0

    def describe(self) -> str:
        import onnxruntime as ort

        return f"onnxruntime {ort.__version__} on {self.providers[0]} ({self.card.meta['onnx']['precision']})"

    def __call__(self, x: np.ndarray, t: np.ndarray, y: np.ndarray) -> np.ndarray:
        """One network evaluation on host arrays (CPU provider, or CUDA without IO binding)."""
        self.calls += 1
        return self.sess.run([self.output], {"x": np.ascontiguousarray(x, np.float32),
                                             "t": np.ascontiguousarray(t, np.float32),
                                             "y": np.ascontiguousarray(y, np.int64)})[0]

    def step_session(self, req: Any) -> Any:
        """The fused step-graph session for the device-resident loop, or None for the host loop."""
        from scarlet_moon.backends.onnx_device import open_step_session, step_card_check, step_path

        from scarlet_moon.diffusion.editing import has_edits

        plain = not has_edits(req)  # editing modes replace pixels between steps: host loop
        wanted = self.loop == "device" or (self.loop == "auto" and self.device == "cuda")
        if not (wanted and plain):
            return None
        path = step_path(self.path)
        if self._step is None:
            if not path.is_file():
                if self.loop == "device":
                    raise BadInput(f"the device loop needs {str(path)!r}: re-export with `sm export-onnx`")
                log.info("no %s beside the model: host loop (sprites copied every step)", path.name)
                return None
            self._step = open_step_session(path, self.device, cuda_graph=self.cuda_graph,
                                           threads=None if self.device == "cuda" else os.cpu_count())
            self._step_rows = int(step_card_check(self._step, self.card).get("rows", 2))
        if self._step_rows == 1 and self.effective_guidance(req) != 1.0:
            return None  # a one-row (distilled) step graph has no null rows: other scales use the host loop
        return self._step

    def effective_guidance(self, req: Any) -> float:
        """The scale applied between rows (ModelCard.guidance_between_rows)."""
        return self.card.guidance_between_rows(req.guidance)

    def run_device(self, step: Any, req: Any, labels: np.ndarray, x: np.ndarray, noise: Any, *, sampler: str,
                   steps: int, guidance: float, progress: Any = None) -> np.ndarray:
        """generate_device on the cached DeviceLoop for this batch size; if CUDA graph capture
        fails, the step graph is reopened without it once."""
        from scarlet_moon.backends.onnx_device import DeviceLoop, generate_device, open_step_session, step_path

        loop = self._loops.get(len(labels))
        if loop is None:
            loop = self._loops[len(labels)] = DeviceLoop(step, self.device, len(labels), tuple(x.shape[1:]),
                                                         cuda_graph=self.cuda_graph, graph_base=3 * len(self._loops))
        args = dict(sampler=sampler, steps=steps, guidance=guidance, eta=req.eta, progress=progress)
        try:
            return generate_device(loop, self.card.schedule, labels, x, noise, **args)
        except Exception as exc:  # noqa: BLE001
            if not self.cuda_graph or "onnxruntime" not in type(exc).__module__:
                raise
            log.warning("CUDA graph capture failed (%s); running the step graph without it", str(exc)[:200])
            self.cuda_graph, self._loops = False, {}
            self._step = open_step_session(step_path(self.path), self.device, cuda_graph=False)
            loop = self._loops[len(labels)] = DeviceLoop(self._step, self.device, len(labels), tuple(x.shape[1:]))
            return generate_device(loop, self.card.schedule, labels, x, noise, **args)

    def bound_runner(self, y: np.ndarray, shape: tuple[int, ...]) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        """A runner for a fixed batch: plain run() on CPU, IO binding on CUDA (see _CudaBound)."""
        if self.device == "cuda":
            return _CudaBound(self, y, shape)
        return lambda x, t: self(x, t, y)


class _CudaBound:
    """CUDA only, best effort, untested here (no GPU on the dev machine).

    y stays on the device for the whole run; x, t and the output are pre-allocated device
    OrtValues bound once, x and t are refreshed with update_inplace (host -> device) and the
    output copied back with .numpy() (a device->host copy; .copy() makes the array own its
    memory regardless, see notes PITFALL 3). The sampler arithmetic stays in numpy on the host:
    keeping x itself on the device between steps would need the fused step graph of the notes
    (section 2). Same addresses every call, so enable_cuda_graph could be added later.
    """

    def __init__(self, owner: OnnxDenoiserSession, y: np.ndarray, shape: tuple[int, ...]):
        import onnxruntime as ort

        self.owner = owner
        self.io = owner.sess.io_binding()
        dev = ("cuda", 0)
        self.x = ort.OrtValue.ortvalue_from_shape_and_type(shape, np.float32, *dev)
        self.t = ort.OrtValue.ortvalue_from_shape_and_type((shape[0],), np.float32, *dev)
        self.y = ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(y, np.int64), *dev)
        self.out = ort.OrtValue.ortvalue_from_shape_and_type(shape, np.float32, *dev)
        self.io.bind_ortvalue_input("x", self.x)
        self.io.bind_ortvalue_input("t", self.t)
        self.io.bind_ortvalue_input("y", self.y)
        self.io.bind_ortvalue_output(owner.output, self.out)

    def __call__(self, x: np.ndarray, t: np.ndarray) -> np.ndarray:
        self.owner.calls += 1
        self.x.update_inplace(np.ascontiguousarray(x, np.float32))
        self.t.update_inplace(np.ascontiguousarray(t, np.float32))
        self.owner.sess.run_with_iobinding(self.io)
        return self.out.numpy().copy()


def generate_onnx(card: ModelCard, req: Any, *, session: OnnxDenoiserSession | None = None,
                  device: str | None = None, progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Raw sprites (uint8 N x H x W x C) for a generate.Request: the twin of generate_torch."""
    from scarlet_moon.data.sprites import from_model_range
    from scarlet_moon.diffusion.guidance import NoiseStream, make_denoiser
    from scarlet_moon.diffusion.editing import NUMPY_OPS, has_edits, sample_edited
    from scarlet_moon.diffusion.samplers import run_sampler

    sess = session if session is not None else OnnxDenoiserSession(card.path, device)
    d = card.defaults()
    guidance = sess.effective_guidance(req)
    n_classes = len(card.label_names)
    labels = np.asarray(list(req.labels), np.int64)
    if labels.size == 0 or labels.min() < 0 or labels.max() >= n_classes:
        raise BadInput(f"labels must be in 0..{n_classes - 1}")
    noise = NoiseStream(req.seed, (len(labels), card.channels, *card.size), req.parts)  # same draws as torch
    x = noise()
    step = sess.step_session(req)
    if step is not None:  # the sprites stay on the device from the first step to the last
        return from_model_range(sess.run_device(step, req, labels, x, noise, sampler=req.sampler or d["sampler"],
                                                steps=req.steps or d["steps"], guidance=guidance, progress=progress))
    y = np.concatenate([labels, np.full_like(labels, n_classes)]) if guidance != 1.0 else labels
    bound = sess.bound_runner(y, (len(y), *x.shape[1:]))

    def run(xx: np.ndarray, t: int) -> np.ndarray:
        return bound(xx, np.full((len(xx),), float(t), np.float32))

    denoise = make_denoiser(run, len(labels), guidance, card.schedule.alphas_cumprod(), card.prediction,
                            concat=lambda a, b: np.concatenate([a, b]), finite=lambda p: bool(np.isfinite(p).all()))

    sampler, steps = req.sampler or d["sampler"], req.steps or d["steps"]
    clip_x0 = bool(card.config.get("clip_x0", True))
    if has_edits(req):  # --init/--strength/--mask/--tileable (scarlet_moon.diffusion.editing)
        out = sample_edited(sampler, denoise, x, card.schedule, steps, req, NUMPY_OPS, eta=req.eta, noise=noise,
                            callback=progress, clip_x0=clip_x0)
    else:
        out = run_sampler(sampler, denoise, x, card.schedule, steps, eta=req.eta, noise=noise, callback=progress,
                          clip_x0=clip_x0)
    return from_model_range(out)
