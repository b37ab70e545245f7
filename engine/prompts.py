"""What both architectures share for prompts (a user's box or click): input checks, the per-image
feature cache and the de-duplication of point candidates.

Boxes are x1, y1, x2, y2 in original image pixels with pixel *edges* as coordinates (the box of
pixel column 0 alone is x1=0, x2=1), as everywhere in the engine. A box reaching past the image is
clipped to it; a box that is not finite, has no positive width or height, lies outside the image,
or is thinner than ``MIN_BOX_SIDE`` after clipping is a ``PromptError``.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from engine.errors import PromptError
from engine.masks import CroppedMask

# Thinner boxes pool nothing meaningful (a RoI under one pixel samples one feature cell).
MIN_BOX_SIDE = 1.0
# Point candidates whose masks overlap a better candidate's by at least this IoU are dropped.
DEDUP_IOU = 0.8
# At most this many candidates per click: the mask head runs once per candidate.
MAX_POINT_CANDIDATES = 8


def check_box(box: Any, image_size: tuple[int, int]) -> np.ndarray:
    """The box as float64 (4,), clipped to the image, or a ``PromptError`` saying what is wrong."""
    h, w = image_size
    try:
        b = np.asarray(box, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise PromptError(f"A box needs four numbers x1, y1, x2, y2, got {box!r}.") from exc
    if b.shape != (4,):
        raise PromptError(f"A box needs four numbers x1, y1, x2, y2, got {b.size}.")
    if not np.isfinite(b).all():
        raise PromptError(f"The box {b.tolist()} has a coordinate that is not a finite number.")
    x1, y1, x2, y2 = b
    if x2 <= x1 or y2 <= y1:
        raise PromptError(
            f"The box ({x1:g}, {y1:g}, {x2:g}, {y2:g}) has zero or negative width or height; give x1 < x2 and y1 < y2."
        )
    clipped = np.array([min(max(x1, 0.0), w), min(max(y1, 0.0), h), min(max(x2, 0.0), w), min(max(y2, 0.0), h)])
    cw, ch = clipped[2] - clipped[0], clipped[3] - clipped[1]
    if cw <= 0 or ch <= 0:
        raise PromptError(f"The box ({x1:g}, {y1:g}, {x2:g}, {y2:g}) lies outside the {w} x {h} image.")
    if cw < MIN_BOX_SIDE or ch < MIN_BOX_SIDE:
        raise PromptError(
            f"The box is {cw:g} x {ch:g} pixels inside the image; draw at least {MIN_BOX_SIDE:g} x {MIN_BOX_SIDE:g}."
        )
    return clipped


def check_point(x: Any, y: Any, image_size: tuple[int, int]) -> tuple[float, float]:
    """(x, y) as floats inside the image (0 <= x < width, 0 <= y < height), or a ``PromptError``."""
    h, w = image_size
    try:
        px, py = float(x), float(y)
    except (TypeError, ValueError) as exc:
        raise PromptError(f"A point needs two numbers x, y, got {x!r}, {y!r}.") from exc
    if not (np.isfinite(px) and np.isfinite(py)):
        raise PromptError(f"The point ({px}, {py}) is not finite.")
    if not (0 <= px < w and 0 <= py < h):
        raise PromptError(f"The point ({px:g}, {py:g}) lies outside the {w} x {h} image.")
    return px, py


def check_label(label: int | None, num_classes: int) -> int | None:
    if label is None:
        return None
    if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or not 0 <= int(label) < num_classes:
        raise PromptError(f"The label must be a class index 0..{num_classes - 1}, got {label!r}.")
    return int(label)


def image_key(image: np.ndarray) -> tuple:
    """Identity of an image's pixels: its shape and a 128-bit digest of its bytes (about 3 ms for 1333x800).

    Content, not ``id()``: a freed array's id can be reused by the next image, and a caller may
    edit an array in place.
    """
    data = np.ascontiguousarray(image)
    return (data.shape, str(data.dtype), hashlib.blake2b(data.data.cast("B"), digest_size=16).digest())


class PromptCache:
    """The features of one image, computed once and reused by every prompt on that image.

    Holds at most one image: asking for another image's entry frees the previous one first, so the
    memory is that of one image's features. Thread-safe: the lock is held while an entry is computed,
    so a GUI thread clearing the cache and a worker thread prompting cannot interleave.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._key: tuple | None = None
        self._entry: Any = None
        self.misses = 0  # number of entries computed (for tests and the benchmark)

    def get(self, key: tuple, compute: Callable[[], Any]) -> Any:
        with self._lock:
            if self._key != key:
                self._key, self._entry = None, None  # free the old features before computing new ones
                self._entry = compute()
                self._key = key
                self.misses += 1
            return self._entry

    def peek(self, key: tuple) -> Any:
        """The entry for ``key`` if it is the cached one, else None (computes nothing)."""
        with self._lock:
            return self._entry if self._key == key else None

    def put(self, key: tuple, entry: Any) -> None:
        with self._lock:
            self._key, self._entry = key, entry

    def clear(self) -> None:
        with self._lock:
            self._key, self._entry = None, None

    @property
    def lock(self) -> threading.RLock:
        return self._lock

    def __bool__(self) -> bool:
        return self._key is not None


def covers(mask: CroppedMask, x: float, y: float) -> bool:
    """Whether the pixel containing point (x, y) is set in ``mask``."""
    col, row = int(np.floor(x)) - mask.x0, int(np.floor(y)) - mask.y0
    h, w = mask.bits.shape
    return 0 <= row < h and 0 <= col < w and bool(mask.bits[row, col])


def mask_iou(a: CroppedMask, b: CroppedMask) -> float:
    """IoU of two compact masks, computed over the union of their patches only."""
    ah, aw = a.bits.shape
    bh, bw = b.bits.shape
    x0, y0 = min(a.x0, b.x0), min(a.y0, b.y0)
    x1, y1 = max(a.x0 + aw, b.x0 + bw), max(a.y0 + ah, b.y0 + bh)
    if x1 <= x0 or y1 <= y0:
        return 0.0
    pa = np.zeros((y1 - y0, x1 - x0), bool)
    pb = np.zeros_like(pa)
    pa[a.y0 - y0 : a.y0 - y0 + ah, a.x0 - x0 : a.x0 - x0 + aw] = a.bits
    pb[b.y0 - y0 : b.y0 - y0 + bh, b.x0 - x0 : b.x0 - x0 + bw] = b.bits
    union = int((pa | pb).sum())
    return float((pa & pb).sum()) / union if union else 0.0


def dedupe(masks: list[CroppedMask], iou_threshold: float = DEDUP_IOU) -> list[int]:
    """Indices of ``masks`` (given best first) that no earlier kept mask overlaps by >= ``iou_threshold``."""
    kept: list[int] = []
    for i, m in enumerate(masks):
        if m.area == 0:
            continue
        if all(mask_iou(m, masks[j]) < iou_threshold for j in kept):
            kept.append(i)
    return kept
