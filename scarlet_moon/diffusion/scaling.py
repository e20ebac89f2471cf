"""Sprites <-> the model's range: uint8 N x H x W x C pixels and float32 N x C x H x W in [-1, 1]."""

from __future__ import annotations

import numpy as np


def to_model_range(images: np.ndarray) -> np.ndarray:
    """uint8 N x H x W x C -> float32 N x C x H x W in [-1, 1] (0 -> -1, 255 -> 1)."""
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2), dtype=np.float32) / np.float32(127.5) - np.float32(1.0)


def from_model_range(x: np.ndarray) -> np.ndarray:
    """float N x C x H x W in [-1, 1] -> uint8 N x H x W x C (clipped, rounded; NaN -> 0)."""
    v = np.nan_to_num(np.asarray(x, np.float32), nan=-1.0, posinf=1.0, neginf=-1.0)
    return np.clip(np.rint((v + 1.0) * 127.5), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1).copy()
