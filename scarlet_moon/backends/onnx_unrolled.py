"""The unrolled onnxruntime loop: one run of m.unrolled.onnx (scarlet_moon.onnx.unrolled_graph) takes
x_T to the sprites, every step on the device, with no host round trip between steps.

Inputs and outputs are OrtValues bound once per batch size; on CUDA the run is captured as a CUDA
graph when onnxruntime allows it. The host sends x_T and the labels and receives the sprites and
one NaN flag per step. The graph holds one sampling (sampler, steps, guidance, eta), named in its
metadata: `mismatch` says why a request is not that sampling.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from scarlet_moon.diffusion.guidance import nan_error
from scarlet_moon.options import Sampling


def mismatch(meta: dict[str, Any], sampling: Sampling, guidance_base: float = 1.0) -> str | None:
    """Why `sampling` is not the sampling the unrolled graph was built for, or None when it is. The
    graph holds the guidance between its rows; the message gives the guidance a user asks for
    (times the card's guidance_base: a guidance-distilled model's own scale is folded in)."""
    want = {
        "sampler": sampling.sampler,
        "steps": sampling.steps,
        "guidance": sampling.row_guidance,
        "eta": sampling.eta,
    }
    have = {k: meta.get(k) for k in want}
    if have == want:
        return None
    shown = dict(have, guidance=float(have["guidance"] or 0) * guidance_base)  # a number: unrolled_meta checks it
    return (
        "the unrolled graph runs "
        + ", ".join(f"{k} {shown[k]:g}" if k == "guidance" else f"{k} {shown[k]}" for k in want)
        + "; asked: "
        + ", ".join(f"{k} {sampling.guidance:g}" if k == "guidance" else f"{k} {want[k]}" for k in want)
    )


class UnrolledLoop:
    """An unrolled-graph session with its inputs and outputs bound once, for one batch size."""

    def __init__(
        self,
        sess: Any,
        device: str,
        batch: int,
        chw: tuple[int, int, int],
        meta: dict[str, Any],
        *,
        cuda_graph: bool = False,
        graph_id: int = 0,
    ):
        import onnxruntime as ort

        self.sess, self.batch, self.meta = sess, batch, meta
        dev = ("cuda", 0) if device == "cuda" else ("cpu", 0)
        new = ort.OrtValue.ortvalue_from_shape_and_type
        self.x = new((batch, *chw), np.float32, *dev)
        self.y = new((batch,), np.int64, *dev)
        self.x0 = new((batch, *chw), np.float32, *dev)
        self.bad = new((int(meta["steps"]),), np.float32, *dev)
        self.io = sess.io_binding()
        self.io.bind_ortvalue_input("x", self.x)
        self.io.bind_ortvalue_input("y", self.y)
        self.io.bind_ortvalue_output("x0", self.x0)
        self.io.bind_ortvalue_output("bad", self.bad)
        self.run_options = ort.RunOptions()
        if cuda_graph:  # ids are per session: one per batch size (OnnxDenoiser keeps a loop per size)
            self.run_options.add_run_config_entry("gpu_graph_id", str(graph_id))
        self.runs = 0

    def run(self, x: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """The sprites (model range, float32 on the host) from x_T; RunFailed naming the first step
        whose prediction was not finite."""
        if x.shape[0] != self.batch:
            raise ValueError(f"batch {x.shape[0]} != the loop's {self.batch}")
        self.x.update_inplace(np.ascontiguousarray(x, np.float32))
        self.y.update_inplace(np.ascontiguousarray(labels, np.int64))
        self.sess.run_with_iobinding(self.io, self.run_options)
        self.runs += 1
        bad = self.bad.numpy()
        if bad.any():
            step = int(np.argmax(bad != 0))
            raise nan_error(step + 1, int(self.meta["timesteps"][step]), float(self.meta["guidance"]))
        return self.x0.numpy().copy()
