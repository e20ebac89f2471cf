"""Scarlet Moon: small conditional diffusion models for pixel-art sprites.

Importing this package is cheap: torch is imported only by the modules that need it
(model, training, checkpoints, the torch sampling backend), never here.

    import scarlet_moon
    sprites = scarlet_moon.generate(label="hero", count=16, seed=0)   # list of PIL RGBA images
"""

from __future__ import annotations

from typing import Any

from scarlet_moon.version import __version__

from scarlet_moon.errors import BadInput, RunFailed, ScarletError


def generate(*args: Any, **kwargs: Any) -> list:
    """Generate sprites as PIL images; see scarlet_moon.api.generate for every option."""
    from scarlet_moon.api import generate as _generate

    return _generate(*args, **kwargs)


__all__ = ["__version__", "BadInput", "RunFailed", "ScarletError", "generate"]
