"""Where Scarlet Moon keeps files it can make again: eval classifiers, ONNX exports of the bundled models.

Torch-free (the onnx backend looks here for a bundled model's export).
"""

from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir() -> Path:
    """$SCARLET_MOON_CACHE, else $XDG_CACHE_HOME/scarlet-moon, else ~/.cache/scarlet-moon."""
    if os.environ.get("SCARLET_MOON_CACHE"):
        return Path(os.environ["SCARLET_MOON_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "scarlet-moon"
