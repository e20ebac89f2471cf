"""Sprite sets (loaders for the four input kinds), images, pixel post-processing, palettes, k-means. No torch."""
