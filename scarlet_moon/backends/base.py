"""The one interface every backend gives the sampling loop, and that loop, written once.

A `Denoiser` is a loaded network on one device (torch module, onnxruntime session): its model
card, how to move numpy arrays to and from its device, and one network evaluation. `bind(labels,
guidance)` turns it into the function the samplers take, k-diffusion style:

    denoise = den.bind(labels, guidance)       # denoise(x, t) -> (x0_hat, eps_hat)

`sample` is the whole reverse diffusion of one batch: seeded numpy noise (the same draws on
every backend), the sampler or the editing modes, and uint8 sprites back on the host.
"""

from __future__ import annotations

import abc
import contextlib
from typing import Any, Callable, ContextManager, Sequence

import numpy as np

from scarlet_moon.diffusion.editing import Edit, Ops, sample_edited
from scarlet_moon.diffusion.guidance import make_denoiser
from scarlet_moon.diffusion.noise import NoiseStream
from scarlet_moon.diffusion.samplers import run_sampler
from scarlet_moon.diffusion.scaling import from_model_range
from scarlet_moon.models.card import ModelCard
from scarlet_moon.options import Sampling

Array = Any  # the backend's array type (torch.Tensor, numpy.ndarray)
Progress = Callable[[int, int], None]  # (step done, steps in all)
Parts = Sequence[tuple[int, int]]  # (sprite count, noise seed) per chunk of a sampled batch


class Denoiser(abc.ABC):
    """A network ready to sample: `card`, `device`, `backend` ("torch" | "onnx")."""

    backend: str = ""

    def __init__(self, card: ModelCard, device: str):
        self.card, self.device = card, device

    # ---------------------------------------------------------------- what a backend provides
    @abc.abstractmethod
    def asarray(self, a: np.ndarray) -> Array:
        """A numpy array as the backend's array on its device."""

    @abc.abstractmethod
    def to_numpy(self, x: Array) -> np.ndarray:
        """The backend's array back on the host, float32."""

    @abc.abstractmethod
    def runner(self, y: np.ndarray) -> Callable[[Array, int], Array]:
        """run(x, t) -> prediction: the network with labels `y` (int64, one per row of x) bound."""

    @abc.abstractmethod
    def cat(self, parts: Sequence[Array], axis: int) -> Array:
        """The arrays joined along `axis`."""

    @abc.abstractmethod
    def finite(self, x: Array) -> bool:
        """Whether every value of x is finite."""

    def context(self) -> ContextManager[Any]:
        """What sampling runs under (torch: no_grad, eval mode, no TF32)."""
        return contextlib.nullcontext()

    def describe(self) -> str:
        return f"{self.backend} on {self.device}"

    @property
    def ops(self) -> Ops:
        return Ops(cat=self.cat, const=self.asarray)

    def concat(self, a: Array, b: Array) -> Array:
        return self.cat([a, b], 0)

    # ---------------------------------------------------------------- the sampling loop, once
    def bind(self, labels: np.ndarray, guidance: float) -> Callable[[Array, int], tuple[Array, Array]]:
        """denoise(x, t) -> (x0, eps) for sprites of `labels`; guidance != 1 adds the null-label rows."""
        labels = np.asarray(labels, np.int64)
        null = len(self.card.label_names)
        y = np.concatenate([labels, np.full_like(labels, null)]) if guidance != 1.0 else labels
        return make_denoiser(
            self.runner(y),
            len(labels),
            guidance,
            self.card.schedule.alphas_cumprod(),
            self.card.prediction,
            concat=self.concat,
            finite=self.finite,
        )

    def sample(
        self,
        labels: Sequence[int],
        parts: Parts,
        sampling: Sampling,
        edit: Edit = Edit(),
        progress: Progress | None = None,
    ) -> np.ndarray:
        """Raw sprites (uint8 N x H x W x C) for `labels`; each part of the batch draws its own noise."""
        noise = NoiseStream((len(labels), self.card.channels, *self.card.size), parts)
        z0 = noise()

        def draw(i: int) -> Array:
            return self.asarray(noise(i))

        with self.context():
            denoise = self.bind(np.asarray(labels, np.int64), sampling.row_guidance)
            if edit.active:  # an edited batch is one chunk: parts[0] is its seed
                out = sample_edited(
                    sampling.sampler,
                    denoise,
                    z0,
                    self.card.schedule,
                    sampling.steps,
                    edit,
                    parts[0][1],
                    self.ops,
                    eta=sampling.eta,
                    noise=draw,
                    callback=progress,
                    clip_x0=sampling.clip_x0,
                )
            else:
                out = run_sampler(
                    sampling.sampler,
                    denoise,
                    self.asarray(z0),
                    self.card.schedule,
                    sampling.steps,
                    eta=sampling.eta,
                    noise=draw,
                    callback=progress,
                    clip_x0=sampling.clip_x0,
                )
            return from_model_range(self.to_numpy(out))
