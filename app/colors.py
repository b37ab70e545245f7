"""Stable instance colours: instance ``i`` always gets the same colour (golden-ratio hue steps).
A class the user gave a colour (``Category.colour``, '#rrggbb') draws all its instances in it."""

from __future__ import annotations

import colorsys

import numpy as np

_GOLDEN = 0.618033988749895
_HUE0 = 0.08  # start on a warm orange rather than pure red


def instance_rgb(index: int) -> tuple[int, int, int]:
    """A saturated colour for instance ``index``; neighbours in the sequence differ strongly in hue."""
    hue = (_HUE0 + index * _GOLDEN) % 1.0
    # Alternate value a little so hues that come back around stay distinguishable.
    sat = 0.75 if index % 2 == 0 else 0.6
    val = 0.98 if (index // 2) % 2 == 0 else 0.85
    r, g, b = colorsys.hsv_to_rgb(hue, sat, val)
    return round(r * 255), round(g * 255), round(b * 255)


_TABLE = np.array([instance_rgb(i) for i in range(512)], dtype=np.uint8)


def instance_colors(n: int) -> np.ndarray:
    """``(n, 3)`` uint8 RGB colours for instances ``0..n-1``."""
    if n <= len(_TABLE):
        return _TABLE[:n].copy()
    return np.array([instance_rgb(i) for i in range(n)], dtype=np.uint8)


def readable_text_rgb(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black or white, whichever reads better on ``rgb`` (relative luminance)."""
    r, g, b = rgb
    luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return (0, 0, 0) if luminance > 140 else (255, 255, 255)


def hex_rgb(colour: str) -> tuple[int, int, int] | None:
    """'#rrggbb' -> (r, g, b); None for '' or anything else (the class has no colour of its own)."""
    text = (colour or "").strip()
    if len(text) != 7 or text[0] != "#":
        return None
    try:
        value = int(text[1:], 16)
    except ValueError:
        return None
    return (value >> 16) & 0xFF, (value >> 8) & 0xFF, value & 0xFF


def class_colours(categories) -> dict[str, tuple[int, int, int]]:
    """Class name -> RGB for the classes (``engine.annotations.Category``) that have a colour."""
    out = {}
    for cat in categories:
        rgb = hex_rgb(cat.colour)
        if rgb is not None:
            out[cat.name] = rgb
    return out
