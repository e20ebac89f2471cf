"""Limits of the packer, importable without Pillow (the CLI declares its options with them)."""

MAX_SHEET_SIDE = 16384  # the largest texture most GPUs load: a page is at most this many pixels a side
