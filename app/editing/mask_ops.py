"""Pixel edits on instance masks in numpy, touching only the region an edit covers (no Qt here).

Brush footprint (what "the pixels under the stroke" means): a stroke segment from ``p0`` to ``p1``
with radius ``r`` (image pixels, pixel-edge coordinates as the canvas reports them) covers pixel
(col c, row r) when the pixel's centre (c + 0.5, r + 0.5) lies within ``r`` of the segment. A
press without movement is a segment of length 0, i.e. a disc. Every function works on the
segment's bounding box only, so the cost grows with the brush size, never with the image size.

These are pure mask operations; they could move to ``engine`` unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from engine.masks import CroppedMask

Rect = tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive), image pixels


def rect_is_empty(r: Rect | None) -> bool:
    return r is None or r[2] <= r[0] or r[3] <= r[1]


def rect_union(a: Rect | None, b: Rect | None) -> Rect | None:
    if rect_is_empty(a):
        return None if rect_is_empty(b) else b
    if rect_is_empty(b):
        return a
    assert a is not None and b is not None  # neither is empty
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def rect_intersection(a: Rect | None, b: Rect | None) -> Rect | None:
    if rect_is_empty(a) or rect_is_empty(b):
        return None
    assert a is not None and b is not None  # neither is empty
    r = (max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3]))
    return None if rect_is_empty(r) else r


def mask_rect(mask: CroppedMask) -> Rect | None:
    """The patch's rectangle in image pixels (None for an empty patch)."""
    h, w = mask.bits.shape[:2]
    if h == 0 or w == 0:
        return None
    return (int(mask.x0), int(mask.y0), int(mask.x0) + w, int(mask.y0) + h)


def segment_bounds(
    p0: tuple[float, float], p1: tuple[float, float], radius: float, image_size: tuple[int, int]
) -> Rect | None:
    """The pixels whose centres can lie within ``radius`` of segment p0-p1, clipped to the image."""
    h, w = image_size
    x0 = math.floor(min(p0[0], p1[0]) - radius - 0.5)
    y0 = math.floor(min(p0[1], p1[1]) - radius - 0.5)
    x1 = math.ceil(max(p0[0], p1[0]) + radius + 0.5)
    y1 = math.ceil(max(p0[1], p1[1]) + radius + 0.5)
    r = (max(x0, 0), max(y0, 0), min(x1, w), min(y1, h))
    return None if rect_is_empty(r) else r


def segment_footprint(p0: tuple[float, float], p1: tuple[float, float], radius: float, rect: Rect) -> np.ndarray:
    """Bool (h, w) over ``rect``: pixels whose centre is within ``radius`` of the segment p0-p1."""
    x0, y0, x1, y1 = rect
    px = np.arange(x0, x1, dtype=np.float64)[None, :] + 0.5 - p0[0]
    py = np.arange(y0, y1, dtype=np.float64)[:, None] + 0.5 - p0[1]
    dx, dy = float(p1[0] - p0[0]), float(p1[1] - p0[1])
    length2 = dx * dx + dy * dy
    if length2 == 0.0:
        return px * px + py * py <= radius * radius
    t = np.clip((px * dx + py * dy) / length2, 0.0, 1.0)
    ex = px - t * dx
    ey = py - t * dy
    return ex * ex + ey * ey <= radius * radius


class GrowableMask:
    """A mutable mask patch that grows (with a margin, so growth is rare) as a stroke leaves it.

    Starts as a copy of an instance's ``CroppedMask``; ``to_cropped()`` gives an immutable-ready
    mask cropped to its set pixels.
    """

    GROW_MARGIN = 64

    def __init__(self, mask: CroppedMask) -> None:
        self.image_size = (int(mask.image_size[0]), int(mask.image_size[1]))
        self.x0, self.y0 = int(mask.x0), int(mask.y0)
        self.bits = np.array(mask.bits, dtype=bool, copy=True)
        if self.bits.size == 0:
            self.bits = np.zeros((0, 0), bool)
        self.changed = False  # any pixel painted or erased since the copy

    @property
    def rect(self) -> Rect | None:
        h, w = self.bits.shape
        if h == 0 or w == 0:
            return None
        return (self.x0, self.y0, self.x0 + w, self.y0 + h)

    def ensure(self, rect: Rect) -> None:
        """Grow the patch so that it covers ``rect`` (which lies inside the image)."""
        cur = self.rect
        if cur is not None and rect_union(cur, rect) == cur:
            return
        h_img, w_img = self.image_size
        m = self.GROW_MARGIN  # a stroke moves on: room for its next segments avoids a copy per segment
        want = rect_union(cur, rect)
        assert want is not None  # rect is not empty
        nx0, ny0 = max(want[0] - m, 0), max(want[1] - m, 0)
        nx1, ny1 = min(want[2] + m, w_img), min(want[3] + m, h_img)
        grown = np.zeros((ny1 - ny0, nx1 - nx0), bool)
        if cur is not None:
            h, w = self.bits.shape
            grown[self.y0 - ny0 : self.y0 - ny0 + h, self.x0 - nx0 : self.x0 - nx0 + w] = self.bits
        self.bits, self.x0, self.y0 = grown, nx0, ny0

    def view(self, rect: Rect) -> np.ndarray:
        """The writable part of the patch over ``rect`` (which must lie inside the patch)."""
        return self.bits[rect[1] - self.y0 : rect[3] - self.y0, rect[0] - self.x0 : rect[2] - self.x0]

    def paint(self, rect: Rect, footprint: np.ndarray) -> bool:
        """Set ``footprint``; True when any pixel was not set before."""
        self.ensure(rect)
        region = self.view(rect)
        added = footprint & ~region
        if not added.any():
            return False
        region |= added
        self.changed = True
        return True

    def erase(self, rect: Rect, footprint: np.ndarray) -> bool:
        """Clear ``footprint`` where it overlaps the patch; True when any pixel changed."""
        inter = rect_intersection(self.rect, rect)
        if inter is None:
            return False
        sub = footprint[inter[1] - rect[1] : inter[3] - rect[1], inter[0] - rect[0] : inter[2] - rect[0]]
        region = self.view(inter)
        hit = region & sub
        if not hit.any():
            return False
        region[sub] = False
        self.changed = True
        return True

    def as_cropped(self) -> CroppedMask:
        """A CroppedMask sharing this patch's memory (for display while a stroke runs)."""
        return CroppedMask(self.x0, self.y0, self.bits, self.image_size)

    def to_cropped(self) -> CroppedMask:
        return tight_mask(self.x0, self.y0, self.bits, self.image_size)


def tight_mask(x0: int, y0: int, bits: np.ndarray, image_size: tuple[int, int]) -> CroppedMask:
    """A copy of ``bits`` cropped to its set pixels (row/column ``any`` is ~10x faster than nonzero)."""
    rows = np.flatnonzero(bits.any(axis=1)) if bits.size else np.zeros(0, np.intp)
    if rows.size == 0:
        return CroppedMask(x0, y0, np.zeros((0, 0), bool), image_size)
    cols = np.flatnonzero(bits[rows[0] : rows[-1] + 1].any(axis=0))
    r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    return CroppedMask(x0 + c0, y0 + r0, bits[r0:r1, c0:c1].copy(), image_size)


@dataclass
class Fill:
    """Result of ``fill_holes``: the new mask and how many pixels were added."""

    mask: CroppedMask
    added: int


def fill_holes(mask: CroppedMask) -> Fill:
    """Set every pixel enclosed by the mask (background not reachable from outside its box)."""
    bits = mask.bits
    if bits.size == 0:
        return Fill(mask, 0)
    h, w = bits.shape
    padded = np.zeros((h + 2, w + 2), np.uint8)
    padded[1:-1, 1:-1] = bits
    flood = padded.copy()
    ffmask = np.zeros((h + 4, w + 4), np.uint8)
    # 4-connected background reaching the border is outside; the rest of the background is a hole.
    cv2.floodFill(flood, ffmask, (0, 0), 2, flags=4)
    filled = flood[1:-1, 1:-1] != 2
    added = int(filled.sum() - bits.sum())
    return Fill(CroppedMask(int(mask.x0), int(mask.y0), filled, mask.image_size), added)
