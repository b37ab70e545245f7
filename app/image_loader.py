"""Image decoding off the GUI thread, with display-ready buffers (RGB32 pixels and a mip pyramid).

Big photos (6000x4000) take a few hundred ms to decode and convert; doing that here keeps browsing
smooth. The newest request runs first, so holding the next-image key never queues up stale work.
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PySide6.QtCore import QObject, Signal

from app.jobs import JobThread

# Pyramid levels stop once the longer side is below this: painting zoomed out never has to
# downsample by more than 2x, which is both fast and free of aliasing.
MIN_LEVEL_SIDE = 1024


def rgb_to_argb32(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W) uint32 0xFFRRGGBB (QImage.Format_RGB32 in native byte order)."""
    if sys.byteorder == "little":
        bgra = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGRA)
        return bgra.view(np.uint32).reshape(rgb.shape[:2])
    r, g, b = (rgb[..., i].astype(np.uint32) for i in range(3))
    return np.uint32(0xFF000000) | (r << 16) | (g << 8) | b


def build_pyramid(argb: np.ndarray) -> list[np.ndarray]:
    """Level 0 is ``argb``; each next level halves both sides (area averaging)."""
    levels = [argb]
    while max(levels[-1].shape) > MIN_LEVEL_SIDE:
        prev = levels[-1]
        h, w = prev.shape
        as_bytes = prev.view(np.uint8).reshape(h, w, 4)
        half = cv2.resize(as_bytes, (max(w // 2, 1), max(h // 2, 1)), interpolation=cv2.INTER_AREA)
        levels.append(np.ascontiguousarray(half).view(np.uint32).reshape(half.shape[:2]))
    return levels


@dataclass
class DisplayImage:
    """A decoded image: ``rgb`` for the models, ``levels`` (RGB32 mip pyramid) for the canvas."""

    path: str
    rgb: np.ndarray
    levels: list[np.ndarray] = field(repr=False)
    info: object = None  # the engine's LoadedImage (metadata such as EXIF orientation)

    @property
    def size(self) -> tuple[int, int]:
        """(height, width)."""
        return self.rgb.shape[0], self.rgb.shape[1]

    @property
    def nbytes(self) -> int:
        return self.rgb.nbytes + sum(level.nbytes for level in self.levels)

    @staticmethod
    def from_rgb(path: str, rgb: np.ndarray, info: object = None) -> DisplayImage:
        return DisplayImage(path, rgb, build_pyramid(rgb_to_argb32(rgb)), info)


def load_display_image(path: str) -> DisplayImage:
    """Decode ``path`` with the engine and prepare display buffers. Raises the engine's ImageLoadError."""
    from engine.imageio import load_image

    loaded = load_image(path)
    return DisplayImage.from_rgb(path, loaded.rgb, loaded)


class ImageLoader(QObject):
    """Loads images in a background thread; results come back as signals keyed by path."""

    loaded = Signal(str, object)  # path, DisplayImage
    failed = Signal(str, str)  # path, message for the user

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread = JobThread("maskscope-image-loader", newest_first=True)
        self._lock = threading.Lock()
        self._pending: set[str] = set()

    def request(self, path: str) -> None:
        """Load ``path`` unless it is already queued or loading."""
        with self._lock:
            if path in self._pending:
                return
            self._pending.add(path)
        self._thread.submit(lambda: self._load(path))

    def _load(self, path: str) -> None:
        from engine.errors import MaskScopeError

        try:
            image = load_display_image(path)
        except MaskScopeError as exc:
            self._finish(path)
            self._emit(self.failed, path, str(exc))
            return
        except MemoryError:
            self._finish(path)
            self._emit(self.failed, path, f"{path} is too large to open with the memory available.")
            return
        except Exception as exc:  # any decoder bug must still end as a message, not a dead thread
            self._finish(path)
            self._emit(self.failed, path, f"Could not read {path}: {exc}")
            return
        self._finish(path)
        self._emit(self.loaded, path, image)

    def _finish(self, path: str) -> None:
        with self._lock:
            self._pending.discard(path)

    @staticmethod
    def _emit(signal, *args) -> None:
        try:
            signal.emit(*args)
        except RuntimeError:  # the receiver was destroyed while we worked (app closing)
            pass

    def shutdown(self) -> None:
        self._thread.stop(timeout=1.0)


class ImageCache:
    """A small LRU of decoded images, bounded by count and bytes."""

    def __init__(self, max_items: int = 4, max_bytes: int = 800 * 2**20) -> None:
        self._items: OrderedDict[str, DisplayImage] = OrderedDict()
        self.max_items = max_items
        self.max_bytes = max_bytes

    def get(self, path: str) -> DisplayImage | None:
        image = self._items.get(path)
        if image is not None:
            self._items.move_to_end(path)
        return image

    def put(self, image: DisplayImage) -> None:
        self._items[image.path] = image
        self._items.move_to_end(image.path)
        while len(self._items) > 1 and (
            len(self._items) > self.max_items or sum(i.nbytes for i in self._items.values()) > self.max_bytes
        ):
            self._items.popitem(last=False)

    def __contains__(self, path: str) -> bool:
        return path in self._items

    def discard(self, path: str) -> None:
        self._items.pop(path, None)


def normalise_path(path: str | Path) -> str:
    """One spelling per file, so predictions and list entries keyed by path always match."""
    return str(Path(path).expanduser().resolve())
