"""Scarlet Moon: small conditional diffusion models for pixel-art sprites.

Importing this package is cheap: torch is imported only by the modules that need it
(model, training, checkpoints, the torch sampling backend), never here.

    import scarlet_moon
    sprites = scarlet_moon.generate(label="hero", count=16, seed=0)   # list of PIL RGBA images
    scarlet_moon.sheet(label="hero", count=64, out="hero.png")        # hero.png + hero.json

The use cases (scarlet_moon.pipelines) and their typed options are here; scarlet_moon.api says more.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from scarlet_moon.errors import BadInput, RunFailed, ScarletError
from scarlet_moon.version import __version__

if TYPE_CHECKING:
    from scarlet_moon.api import generate, sheet
    from scarlet_moon.backends import BackendOptions
    from scarlet_moon.generation.spec import GenerationSpec
    from scarlet_moon.options import EditOptions, PostOptions, SamplingOptions

# public name -> the module that defines it, imported on first use (`sm --help` stays fast)
_LAZY = {
    "generate": "scarlet_moon.api",
    "sheet": "scarlet_moon.api",
    "BackendOptions": "scarlet_moon.backends",
    "GenerationSpec": "scarlet_moon.generation.spec",
    "EditOptions": "scarlet_moon.options",
    "PostOptions": "scarlet_moon.options",
    "SamplingOptions": "scarlet_moon.options",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'scarlet_moon' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


__all__ = [
    "__version__",
    "BackendOptions",
    "BadInput",
    "EditOptions",
    "GenerationSpec",
    "PostOptions",
    "RunFailed",
    "SamplingOptions",
    "ScarletError",
    "generate",
    "sheet",
]
