"""The onnxruntime backend: an exported denoiser (.onnx) as a Denoiser; numpy + onnxruntime only.

Two loops run it. The host loop is the shared one (backends.base): the network on the session's
device, the sampler arithmetic in numpy, with the noise drawn exactly as the torch backend draws
it, so a seed gives the same sprites on both (up to float rounding). The device loop (backends.
onnx_device) keeps the sprites on the GPU from the first step to the last through the fused step
graph m.step.onnx; it runs on CUDA by default, or wherever SM_ONNX_LOOP=device asks for it. The
unrolled loop (backends.onnx_unrolled) runs a whole sampling in one run of m.unrolled.onnx; on CUDA
it comes first when that file is beside the model and holds the sampling asked for
(SM_ONNX_LOOP=unrolled asks for it anywhere, and says why when it cannot).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from scarlet_moon.backends.base import Denoiser, Parts, Progress
from scarlet_moon.backends.onnx_meta import card_from_session, step_meta, step_path, unrolled_meta, unrolled_path
from scarlet_moon.backends.onnx_session import open_session, open_step_session
from scarlet_moon.diffusion.editing import Edit
from scarlet_moon.diffusion.noise import NoiseStream
from scarlet_moon.diffusion.scaling import from_model_range
from scarlet_moon.errors import BadInput
from scarlet_moon.options import Sampling

log = logging.getLogger(__name__)
LOOPS = ("auto", "host", "device", "unrolled")


class OnnxDenoiser(Denoiser):
    """An exported denoiser, loaded: `.card` (from the file's metadata), `.device`, `.providers`."""

    backend = "onnx"

    def __init__(self, path: str | Path, device: str | None = None, loop: str | None = None):
        path = Path(path)
        # "auto": on CUDA the unrolled loop when m.unrolled.onnx holds the sampling, else the device
        # loop when m.step.onnx is beside the model, else the host loop; "host" | "device" | "unrolled"
        self.loop = (loop or os.environ.get("SM_ONNX_LOOP") or "auto").lower()
        if self.loop not in LOOPS:
            raise BadInput(f"onnx loop {self.loop!r} (SM_ONNX_LOOP): expected auto, host, device or unrolled")
        if not path.is_file():
            raise BadInput(f"model {str(path)!r} does not exist or is not a file")
        self.path = path
        self.sess, device = open_session(path, device)
        super().__init__(card_from_session(self.sess, path), device)
        self.cuda_graph = device == "cuda" and os.environ.get("SM_ONNX_CUDA_GRAPH", "1") != "0"
        self.providers = list(self.sess.get_providers())
        self.output = self.sess.get_outputs()[0].name
        self.calls = 0
        self._step: Any = None
        self._step_rows = 2
        self._loops: dict[int, Any] = {}  # batch -> DeviceLoop (buffers bound once, CUDA graphs)
        self._unrolled: Any = None  # (session, meta, cuda_graph) of m.unrolled.onnx, once opened
        self._unrolled_loops: dict[int, Any] = {}  # batch -> UnrolledLoop

    def describe(self) -> str:
        import onnxruntime as ort

        return f"onnxruntime {ort.__version__} on {self.providers[0]} ({self.card.meta['onnx']['precision']})"

    # ---------------------------------------------------------------- the host loop's arrays
    def asarray(self, a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(a, np.float32)

    def to_numpy(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, np.float32)

    def cat(self, parts: Sequence[np.ndarray], axis: int) -> np.ndarray:
        return np.concatenate(list(parts), axis=axis)

    def finite(self, x: np.ndarray) -> bool:
        return bool(np.isfinite(x).all())

    def __call__(self, x: np.ndarray, t: np.ndarray, y: np.ndarray) -> np.ndarray:
        """One network evaluation on host arrays (CPU provider, or CUDA without IO binding)."""
        self.calls += 1
        return self.sess.run(
            [self.output],
            {
                "x": np.ascontiguousarray(x, np.float32),
                "t": np.ascontiguousarray(t, np.float32),
                "y": np.ascontiguousarray(y, np.int64),
            },
        )[0]

    def runner(self, y: np.ndarray) -> Callable[[np.ndarray, int], np.ndarray]:
        """Plain run() on the CPU; on CUDA, inputs and output bound once per batch (_CudaBound)."""
        shape = (len(y), self.card.channels, *self.card.size)
        bound = _CudaBound(self, y, shape) if self.device == "cuda" else (lambda x, t: self(x, t, y))
        return lambda x, t: bound(x, np.full((len(x),), float(t), np.float32))

    # ---------------------------------------------------------------- the device loop
    def sample(
        self,
        labels: Sequence[int],
        parts: Parts,
        sampling: Sampling,
        edit: Edit = Edit(),
        progress: Progress | None = None,
    ) -> np.ndarray:
        unrolled = self._unrolled_session(edit, sampling)
        step = None if unrolled is not None else self._step_session(edit, sampling)
        if unrolled is None and step is None:
            return super().sample(labels, parts, sampling, edit, progress)
        noise = NoiseStream((len(labels), self.card.channels, *self.card.size), parts)
        x = noise()
        y = np.asarray(labels, np.int64)
        if unrolled is not None:
            out = self._run_unrolled(unrolled, y, x)
            if progress is not None:
                progress(sampling.steps, sampling.steps)
            return from_model_range(out)
        return from_model_range(self._run_device(step, y, x, noise, sampling, progress))

    def _unrolled_session(self, edit: Edit, sampling: Sampling) -> Any:
        """(session, meta, cuda_graph) of m.unrolled.onnx when the unrolled loop runs this request, else None."""
        wanted = self.loop == "unrolled" or (self.loop == "auto" and self.device == "cuda")
        if not wanted or edit.active:  # editing modes replace pixels between steps: host loop
            return None
        from scarlet_moon.backends.onnx_unrolled import mismatch

        path = unrolled_path(self.path)
        if self._unrolled is None:
            if not path.is_file():
                if self.loop == "unrolled":
                    raise BadInput(f"the unrolled loop needs {str(path)!r}: re-export the model to ONNX")
                return None
            self._unrolled = self._open_unrolled(path, self.cuda_graph)
        why = mismatch(self._unrolled[1], sampling, self.card.guidance_base)
        if why is not None and self.loop == "unrolled":
            raise BadInput(f"{str(path)!r}: {why}; export with that sampling, or use another loop (SM_ONNX_LOOP)")
        return None if why is not None else self._unrolled

    def _open_unrolled(self, path: Path, cuda_graph: bool) -> tuple[Any, dict[str, Any], bool]:
        sess = open_step_session(
            path,
            self.device,
            cuda_graph=cuda_graph,
            what="unrolled graph",
            threads=None if self.device == "cuda" else os.cpu_count(),
        )
        return sess, unrolled_meta(sess, self.card), cuda_graph

    def _run_unrolled(self, unrolled: Any, labels: np.ndarray, x: np.ndarray) -> np.ndarray:
        """UnrolledLoop.run on the cached loop for this batch size; if CUDA graph capture fails, the
        graph is reopened without it once."""
        from scarlet_moon.backends.onnx_unrolled import UnrolledLoop

        def run(sess: Any, meta: dict[str, Any], cuda_graph: bool) -> np.ndarray:
            loop = self._unrolled_loops.get(len(labels))
            if loop is None:
                loop = self._unrolled_loops[len(labels)] = UnrolledLoop(
                    sess,
                    self.device,
                    len(labels),
                    tuple(x.shape[1:]),
                    meta,
                    cuda_graph=cuda_graph,
                    graph_id=len(self._unrolled_loops) + 1,
                )
            return loop.run(x, labels)

        try:
            return run(*unrolled)
        except Exception as exc:  # noqa: BLE001
            if not unrolled[2] or "onnxruntime" not in type(exc).__module__:
                raise
            log.warning("CUDA graph capture failed (%s); running the unrolled graph without it", str(exc)[:200])
            self._unrolled_loops = {}
            self._unrolled = self._open_unrolled(unrolled_path(self.path), False)
            return run(*self._unrolled)

    def _step_session(self, edit: Edit, sampling: Sampling) -> Any:
        """The fused step-graph session for the device-resident loop, or None for the host loop."""
        wanted = self.loop == "device" or (self.loop == "auto" and self.device == "cuda")
        if not wanted or edit.active:  # editing modes replace pixels between steps: host loop
            return None
        path = step_path(self.path)
        if self._step is None:
            if not path.is_file():
                if self.loop == "device":
                    raise BadInput(f"the device loop needs {str(path)!r}: re-export the model to ONNX")
                log.info("no %s beside the model: host loop (sprites copied every step)", path.name)
                return None
            self._step = open_step_session(
                path, self.device, cuda_graph=self.cuda_graph, threads=None if self.device == "cuda" else os.cpu_count()
            )
            self._step_rows = int(step_meta(self._step, self.card).get("rows", 2))
        if self._step_rows == 1 and sampling.row_guidance != 1.0:
            return None  # a one-row (distilled) step graph has no null rows: other scales use the host loop
        return self._step

    def _run_device(
        self,
        step: Any,
        labels: np.ndarray,
        x: np.ndarray,
        noise: NoiseStream,
        sampling: Sampling,
        progress: Progress | None,
    ) -> np.ndarray:
        """generate_device on the cached DeviceLoop for this batch size; if CUDA graph capture
        fails, the step graph is reopened without it once."""
        from scarlet_moon.backends.onnx_device import DeviceLoop, generate_device

        loop = self._loops.get(len(labels))
        if loop is None:
            loop = self._loops[len(labels)] = DeviceLoop(
                step,
                self.device,
                len(labels),
                tuple(x.shape[1:]),
                cuda_graph=self.cuda_graph,
                graph_base=3 * len(self._loops),
            )
        args: dict[str, Any] = dict(
            sampler=sampling.sampler,
            steps=sampling.steps,
            guidance=sampling.row_guidance,
            eta=sampling.eta,
            progress=progress,
        )
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


class _CudaBound:
    """CUDA only, best effort (no GPU on the dev machine): y stays on the device for the whole run;
    x, t and the output are pre-allocated device OrtValues bound once, x and t are refreshed with
    update_inplace (host -> device) and the output copied back with .numpy() (.copy() makes the
    array own its memory regardless). The sampler arithmetic stays in numpy on the host; keeping x
    itself on the device between steps is the device loop's job."""

    def __init__(self, owner: OnnxDenoiser, y: np.ndarray, shape: tuple[int, ...]):
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
