"""The device-resident onnxruntime loop: the sprites stay on the GPU from the first step to the last.

The unchanged sampler functions (scarlet_moon.diffusion.samplers) drive it. They see `Lazy` arrays: a
linear combination of device buffers that each step's fused graph (scarlet_moon.onnx.step_graph)
materialises on the device, so the host only does float arithmetic on coefficients. Buffers are
pre-allocated OrtValues bound once per phase of a 3-phase rotation, so every run reuses the same
addresses; on CUDA each phase is captured as a CUDA graph (gpu_graph_id 1..3) when onnxruntime
allows it. Per step the host sends 32 bytes of coefficients and the timestep, receives the 4-byte
NaN flag, and sends noise only for samplers that add it (ddpm, ddim with eta > 0). The sprites
are copied to the host once, at the end.

Runs on the CPU provider too (CPU OrtValues), which is how the test suite checks it.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import numpy as np

from scarlet_moon.diffusion.guidance import nan_error
from scarlet_moon.diffusion.samplers import run_sampler
from scarlet_moon.diffusion.schedule import Schedule
from scarlet_moon.errors import BadInput, RunFailed

log = logging.getLogger(__name__)


class Lazy:
    """sum(coef * buffer): the sampler state, never materialised on the host until `resolve`."""

    __slots__ = ("terms",)

    def __init__(self, terms: dict[int, float]):
        self.terms = terms  # buffer slot id -> coefficient

    def _scaled(self, c: float) -> "Lazy":
        return Lazy({k: v * c for k, v in self.terms.items()})

    def __mul__(self, c: Any) -> "Lazy":
        if isinstance(c, Lazy):
            raise TypeError("the device loop supports only linear sampler steps (Lazy * Lazy)")
        return self._scaled(float(c))

    __rmul__ = __mul__

    def __truediv__(self, c: Any) -> "Lazy":
        return self._scaled(1.0 / float(c))

    def __neg__(self) -> "Lazy":
        return self._scaled(-1.0)

    def __add__(self, other: "Lazy") -> "Lazy":
        if not isinstance(other, Lazy):
            raise TypeError("the device loop cannot add a host value to a device state")
        out = dict(self.terms)
        for k, v in other.terms.items():
            out[k] = out.get(k, 0.0) + v
        return Lazy(out)

    def __sub__(self, other: "Lazy") -> "Lazy":
        return self + (-other)

    def clip(self, *_: Any) -> "Lazy":
        raise TypeError("x0 clipping happens inside the step graph; run the sampler with clip_x0=False")


# Buffer slots: the phase-p outputs are X(p), X0(p); Z is the noise buffer; phase -1's X holds x_T.
def X(p: int) -> int:
    return 2 * (p % 3)


def X0(p: int) -> int:
    return 2 * (p % 3) + 1


Z = 6


class DeviceLoop:
    """A step-graph session with its pre-allocated buffers, for one batch size."""

    def __init__(
        self,
        sess: Any,
        device: str,
        batch: int,
        chw: tuple[int, int, int],
        *,
        cuda_graph: bool = False,
        graph_base: int = 0,
    ):
        import onnxruntime as ort

        self.sess, self.device, self.batch, self.cuda_graph = sess, device, batch, cuda_graph
        # a captured CUDA graph replays fixed addresses and shapes: ids graph_base+1..+3 belong to
        # these buffers alone, so a loop is cached and reused per batch size (OnnxDenoiserSession)
        self.graph_base = graph_base
        dev = ("cuda", 0) if device == "cuda" else ("cpu", 0)
        shape = (batch, *chw)
        new = ort.OrtValue.ortvalue_from_shape_and_type
        self.buf = {k: new(shape, np.float32, *dev) for k in range(7)}
        self.coef = new((8,), np.float32, *dev)
        self.t = new((batch,), np.float32, *dev)
        self.y = new((batch,), np.int64, *dev)
        self.bad = new((), np.float32, *dev)
        self.bindings = [self._bind(p) for p in range(3)]
        self.run_options = [ort.RunOptions() for _ in range(3)]  # one per phase, made once
        for p, ro in enumerate(self.run_options):
            if cuda_graph:
                ro.add_run_config_entry("gpu_graph_id", str(graph_base + p + 1))
        self.runs = 0

    def _bind(self, p: int) -> Any:
        io = self.sess.io_binding()
        for name, slot in (("b0", X(p - 1)), ("b1", X0(p - 1)), ("b2", X0(p - 2)), ("b3", Z)):
            io.bind_ortvalue_input(name, self.buf[slot])
        for name, value in (("coef", self.coef), ("t", self.t), ("y", self.y)):
            io.bind_ortvalue_input(name, value)
        for name, value in (("x", self.buf[X(p)]), ("x0", self.buf[X0(p)]), ("bad", self.bad)):
            io.bind_ortvalue_output(name, value)
        return io

    def upload(self, slot: int, arr: np.ndarray) -> None:
        self.buf[slot].update_inplace(np.ascontiguousarray(arr, np.float32))

    def run(self, p: int, coef: np.ndarray, t: float) -> bool:
        """One fused step in phase p; True if the prediction was finite."""
        self.coef.update_inplace(np.ascontiguousarray(coef, np.float32))
        self.t.update_inplace(np.full((self.batch,), t, np.float32))
        self.sess.run_with_iobinding(self.bindings[p % 3], self.run_options[p % 3])
        self.runs += 1
        return float(self.bad.numpy()) == 0.0

    def resolve(self, state: Lazy) -> np.ndarray:
        """The final sprites on the host: the only device -> host copy of sprite data."""
        out = None
        for slot, c in state.terms.items():
            if c != 0.0:
                term = self.buf[slot].numpy().astype(np.float32, copy=True) * np.float32(c)
                out = term if out is None else out + term
        return out if out is not None else np.zeros(self.buf[0].shape(), np.float32)


def make_device_denoiser(loop: DeviceLoop, abar: np.ndarray, guidance: float) -> Callable[[Lazy, int], tuple]:
    """denoiser(x: Lazy, t) -> (x0, eps) as Lazy, running the fused graph in the next phase."""
    phase = [0]
    allowed = lambda p: {X(p - 1): 0, X0(p - 1): 1, X0(p - 2): 2, Z: 3}  # noqa: E731  slot -> input index

    def denoise(x: Lazy, t: int) -> tuple[Lazy, Lazy]:
        p = phase[0]
        coef = np.zeros(8, np.float64)
        slots = allowed(p)
        for slot, c in x.terms.items():
            if slot not in slots:
                raise RunFailed(f"device loop: step {p + 1} reads a buffer outside its phase (slot {slot})")
            coef[slots[slot]] += c
        a, s = float(np.sqrt(abar[t])), float(np.sqrt(1.0 - abar[t]))
        coef[4:7] = guidance, a, s
        if not loop.run(p, coef, float(t)):
            raise nan_error(p + 1, t, guidance)
        phase[0] += 1
        x.terms = {X(p): 1.0}  # rebase the sampler's own x on the materialised buffer (same values)
        x_now, x0 = Lazy({X(p): 1.0}), Lazy({X0(p): 1.0})
        return x0, (x_now - x0 * a) * (1.0 / s)

    return denoise


def generate_device(
    loop: DeviceLoop,
    schedule: Schedule,
    labels: np.ndarray,
    x: np.ndarray,
    noise: Callable[[int], np.ndarray],
    *,
    sampler: str,
    steps: int,
    guidance: float,
    eta: float = 0.0,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Model-range sprites (float32 N x C x H x W, on the host) from initial noise x, device-resident."""
    if x.shape[0] != loop.batch:
        raise ValueError(f"batch {x.shape[0]} != the loop's {loop.batch}")
    zeros = np.zeros(x.shape, np.float32)
    for slot in range(7):  # coefficient 0 times stale memory could be NaN
        loop.upload(slot, zeros)
    loop.upload(X(-1), x)
    loop.y.update_inplace(np.ascontiguousarray(labels, np.int64))

    def draw(i: int) -> Lazy:
        loop.upload(Z, noise(i))
        return Lazy({Z: 1.0})

    denoise = make_device_denoiser(loop, schedule.alphas_cumprod(), guidance)
    out = run_sampler(
        sampler, denoise, Lazy({X(-1): 1.0}), schedule, steps, eta=eta, noise=draw, callback=progress, clip_x0=False
    )  # clipping is inside the graph
    return loop.resolve(out)


class _Recorder:
    """A DeviceLoop stand-in for `unrolled_plan`: it keeps each step's coefficients and runs nothing."""

    def __init__(self) -> None:
        self.steps: list[dict[str, Any]] = []

    def run(self, p: int, coef: np.ndarray, t: float) -> bool:
        # float32 as DeviceLoop.run uploads them, so the unrolled graph multiplies by the same numbers
        self.steps.append({"coef": [float(c) for c in np.asarray(coef, np.float32)], "t": float(np.float32(t))})
        return True


def unrolled_plan(schedule: Schedule, *, sampler: str, steps: int, guidance: float, eta: float = 0.0) -> dict[str, Any]:
    """One deterministic sampling as data, for scarlet_moon.onnx.unrolled_graph to wire into one graph:

        {"steps": [{"coef": [8 floats], "t": timestep}, ...],   # step p: the step graph's coef and t
         "final": [[slot, c], ...]}                             # the sprites: sum of c * buffer slot

    Step p reads the buffers of its phase as the device loop binds them (b0 = X(p-1), b1 = X0(p-1),
    b2 = X0(p-2), b3 = Z); slot X(-1) holds x_T. A sampler that adds noise is BadInput."""

    def no_noise(_: int) -> Any:
        raise BadInput(
            f"sampler {sampler} with eta {eta:g} adds noise at its steps, so it cannot be unrolled "
            "into one graph (ddim with eta 0 and dpmpp-2m can)"
        )

    rec = _Recorder()
    denoise = make_device_denoiser(rec, schedule.alphas_cumprod(), guidance)  # type: ignore[arg-type]
    out = run_sampler(sampler, denoise, Lazy({X(-1): 1.0}), schedule, steps, eta=eta, noise=no_noise, clip_x0=False)
    return {"steps": rec.steps, "final": [[slot, float(c)] for slot, c in out.terms.items() if c != 0.0]}
