"""Mask overlay maths in numpy/cv2 (no Qt): one composited layer, outlines, hit testing.

Everything works on each mask's own crop (``CroppedMask.bits`` at ``x0, y0``), so the cost grows
with the objects' area, never with image area times instance count. This module is safe to call
from worker threads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from engine.masks import CroppedMask


@dataclass
class FillLayer:
    """Composited mask colours covering only the union box of the drawn masks.

    ``argb`` is ``(h, w)`` uint32 0xAARRGGBB (QImage.Format_ARGB32_Premultiplied; alpha is 0 or 255)
    placed at column ``x0``, row ``y0`` of the image. ``argb`` is None when nothing is drawn.
    """

    argb: np.ndarray | None
    x0: int = 0
    y0: int = 0


def pack_argb(rgb: Sequence[int], alpha: int = 255) -> np.uint32:
    r, g, b = (int(v) for v in rgb)
    return np.uint32((alpha << 24) | (r << 16) | (g << 8) | b)


def _clipped(mask: CroppedMask, image_size: tuple[int, int]) -> tuple[int, int, np.ndarray]:
    """The part of ``mask`` inside the image: (x0, y0, bits)."""
    h_img, w_img = image_size
    bits = mask.bits
    x0, y0 = int(mask.x0), int(mask.y0)
    h, w = bits.shape[:2]
    cx0, cy0 = max(x0, 0), max(y0, 0)
    cx1, cy1 = min(x0 + w, w_img), min(y0 + h, h_img)
    if cx1 <= cx0 or cy1 <= cy0:
        return cx0, cy0, np.zeros((0, 0), bool)
    return cx0, cy0, bits[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]


def composite_fill(
    masks: Sequence[CroppedMask],
    colors: np.ndarray,
    draw_order: Sequence[int],
    image_size: tuple[int, int],
) -> FillLayer:
    """Paint ``masks[i]`` for ``i`` in ``draw_order`` (later ones on top) with ``colors[i]`` (RGB uint8).

    Only the union box of the drawn masks is allocated; each mask is copied over its own crop.
    """
    parts = []
    for i in draw_order:
        x0, y0, bits = _clipped(masks[i], image_size)
        if bits.size:
            parts.append((i, x0, y0, bits))
    if not parts:
        return FillLayer(None)
    ux0 = min(p[1] for p in parts)
    uy0 = min(p[2] for p in parts)
    ux1 = max(p[1] + p[3].shape[1] for p in parts)
    uy1 = max(p[2] + p[3].shape[0] for p in parts)
    out = np.zeros((uy1 - uy0, ux1 - ux0), np.uint32)
    for i, x0, y0, bits in parts:
        h, w = bits.shape
        region = out[y0 - uy0 : y0 - uy0 + h, x0 - ux0 : x0 - ux0 + w]
        np.copyto(region, pack_argb(colors[i]), where=bits)
    return FillLayer(out, ux0, uy0)


def mask_contours(mask: CroppedMask) -> list[np.ndarray]:
    """Outer and hole boundaries of ``mask`` as float32 ``(K, 2)`` x, y arrays in image coordinates.

    Points sit on pixel centres (pixel ``(r, c)`` covers ``[c, c+1] x [r, r+1]``, centre ``c+0.5``).
    """
    bits = mask.bits
    if bits.size == 0 or not bits.any():
        return []
    # One pixel of padding so shapes touching the crop edge still get closed contours.
    padded = np.zeros((bits.shape[0] + 2, bits.shape[1] + 2), np.uint8)
    padded[1:-1, 1:-1] = bits
    found, _ = cv2.findContours(padded, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    offset = np.array([mask.x0 - 1 + 0.5, mask.y0 - 1 + 0.5], np.float32)
    return [c.reshape(-1, 2).astype(np.float32) + offset for c in found if len(c) >= 1]


def prediction_contours(masks: Sequence[CroppedMask]) -> list[list[np.ndarray]]:
    return [mask_contours(m) for m in masks]


def instance_at(masks: Sequence[CroppedMask], candidates_top_first: Sequence[int], x: float, y: float) -> int:
    """Index of the first instance in ``candidates_top_first`` whose mask covers image point (x, y); -1 if none."""
    col, row = int(np.floor(x)), int(np.floor(y))
    for i in candidates_top_first:
        m = masks[i]
        h, w = m.bits.shape[:2]
        c, r = col - int(m.x0), row - int(m.y0)
        if 0 <= r < h and 0 <= c < w and m.bits[r, c]:
            return int(i)
    return -1
