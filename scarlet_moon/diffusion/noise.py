"""Seeded noise, the same draws for every backend (numpy Generators, float32)."""

from __future__ import annotations

from typing import Sequence

import numpy as np


class NoiseStream:
    """The initial noise and every later draw of one sampled batch.

    `parts` ((count, seed), ...): each part of the batch draws from its own seed exactly what it
    would draw alone, so grouping chunks (scarlet_moon.generation.chunks) into one GPU batch
    changes no draw. Draw 0 is the starting noise; draw i > 0 the noise a sampler adds at step i.
    """

    def __init__(self, shape: Sequence[int], parts: Sequence[tuple[int, int]]):
        self.shape = tuple(shape)
        parts = tuple(parts)
        if sum(n for n, _ in parts) != self.shape[0]:
            raise ValueError(f"noise parts {parts} do not add up to the batch {self.shape[0]}")
        self.parts = [(int(n), np.random.default_rng(s)) for n, s in parts]

    def __call__(self, i: int = 0) -> np.ndarray:
        if len(self.parts) == 1:
            return self.parts[0][1].standard_normal(self.shape, dtype=np.float32)
        return np.concatenate([rng.standard_normal((n, *self.shape[1:]), dtype=np.float32) for n, rng in self.parts])
