"""Scarlet Moon: small conditional diffusion models for pixel-art sprites.

Importing this package is cheap: torch is imported only by the modules that need it
(model, training, checkpoints), never here.
"""

from __future__ import annotations

__version__ = "0.1.0"

from scarlet_moon.errors import BadInput, RunFailed, ScarletError

__all__ = ["__version__", "BadInput", "RunFailed", "ScarletError"]
