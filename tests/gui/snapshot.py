"""Pixel snapshots: render a widget with a fixed look and compare it with a reference PNG.

The look is pinned so that a snapshot depends on the code, not on the machine: the bundled DejaVu
fonts (tests/gui/fonts) at a fixed point size without hinting, the Fusion style with the light
palette, and rendering at device pixel ratio 1 into an image of the widget's logical size.
Small differences (antialiasing, a font rasteriser of another version) are tolerated: a pixel
counts as different only when a channel moves by more than ``PIXEL_TOLERANCE``, and a snapshot
fails only when more than ``MAX_DIFF_SHARE`` of its pixels differ.

Refresh the references after an intended change with ``python scripts/update_snapshots.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QFontDatabase, QImage
from PySide6.QtWidgets import QApplication, QWidget

SNAPSHOT_DIR = Path(__file__).resolve().parent / "snapshots"
FONT_DIR = Path(__file__).resolve().parent / "fonts"
FONT_FAMILY = "DejaVu Sans"
FONT_POINT_SIZE = 9
PIXEL_TOLERANCE = 40  # per channel, 0-255: antialiasing and rasteriser noise stay below this
MAX_DIFF_SHARE = 0.005  # share of pixels allowed to differ by more than PIXEL_TOLERANCE
UPDATE_HINT = "if the change is intended, refresh the references: python scripts/update_snapshots.py"


def load_fonts() -> str:
    """Register the bundled fonts once; returns the family to use."""
    for file in sorted(FONT_DIR.glob("*.ttf")):
        if QFontDatabase.addApplicationFont(str(file)) < 0:
            raise RuntimeError(f"Qt could not load the snapshot font {file}")
    return FONT_FAMILY


@contextmanager
def fixed_look() -> Iterator[None]:
    """The application's font, style and palette pinned for the snapshots; restored afterwards."""
    from app.theme import apply_theme

    app = QApplication.instance()
    assert isinstance(app, QApplication)
    if app.platformName() != "offscreen":  # a real display has its own DPI, fonts and style hints
        pytest.skip(f"pixel snapshots are compared on the offscreen platform, not {app.platformName()!r}")
    screen = app.primaryScreen()
    assert screen is not None and screen.devicePixelRatio() == 1.0, (
        "pixel snapshots are taken at device pixel ratio 1: unset QT_SCALE_FACTOR / QT_SCREEN_SCALE_FACTORS"
    )
    old_font = QFont(app.font())
    font = QFont(load_fonts())
    font.setPointSize(FONT_POINT_SIZE)
    font.setHintingPreference(QFont.HintingPreference.PreferNoHinting)
    font.setStyleStrategy(QFont.StyleStrategy.NoSubpixelAntialias)
    app.setFont(font)
    apply_theme("light")
    try:
        yield
    finally:
        apply_theme("system")
        app.setFont(old_font)


def render(widget: QWidget) -> QImage:
    """``widget`` as it is painted, at its logical size and device pixel ratio 1 (whatever the screen's)."""
    image = QImage(widget.size(), QImage.Format.Format_ARGB32)
    image.setDevicePixelRatio(1.0)
    image.fill(Qt.GlobalColor.white)
    QWidget.render(widget, image)  # the widget's own painting (QGraphicsView overloads render)
    return image


def to_array(image: QImage) -> np.ndarray:
    """(H, W, 4) uint8 BGRA copy of ``image``."""
    image = image.convertToFormat(QImage.Format.Format_ARGB32)
    h, w = image.height(), image.width()
    rows = np.frombuffer(image.constBits(), np.uint8, image.bytesPerLine() * h).reshape(h, image.bytesPerLine())
    return rows[:, : w * 4].reshape(h, w, 4).copy()


def difference(actual: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Boolean (H, W): pixels where some channel differs by more than ``PIXEL_TOLERANCE``."""
    delta = np.abs(actual.astype(np.int16) - reference.astype(np.int16)).max(axis=2)
    return delta > PIXEL_TOLERANCE


def diff_image(actual: np.ndarray, differing: np.ndarray) -> QImage:
    """The actual snapshot faded to grey with the differing pixels in red."""
    grey = actual[..., :3].mean(axis=2, keepdims=True).astype(np.uint8) // 2 + 127
    out = np.concatenate([np.repeat(grey, 3, axis=2), np.full(grey.shape, 255, np.uint8)], axis=2)
    out[differing] = (0, 0, 255, 255)  # BGRA
    h, w = differing.shape
    return QImage(out.tobytes(), w, h, w * 4, QImage.Format.Format_ARGB32).copy()


def check_snapshot(
    name: str, widget: QWidget, out_dir: Path, update: bool = False, reference_dir: Path = SNAPSHOT_DIR
) -> float:
    """Compare ``widget`` with ``<reference_dir>/<name>.png`` (or write it when ``update``); returns
    the share of differing pixels. On a mismatch the actual image and a diff go to ``out_dir``."""
    QApplication.processEvents()
    image = render(widget)
    reference_path = reference_dir / f"{name}.png"
    if update:
        reference_dir.mkdir(parents=True, exist_ok=True)
        assert image.save(str(reference_path)), f"could not write {reference_path}"
        return 0.0
    actual_path = out_dir / f"{name}.actual.png"
    if not reference_path.is_file():
        image.save(str(actual_path))
        raise AssertionError(f"no reference {reference_path} (actual: {actual_path}); {UPDATE_HINT}")
    reference = QImage(str(reference_path))
    actual = to_array(image)
    if (reference.width(), reference.height()) != (image.width(), image.height()):
        image.save(str(actual_path))
        raise AssertionError(
            f"{name}: size {image.width()}x{image.height()} differs from the reference "
            f"{reference.width()}x{reference.height()} (actual: {actual_path}); {UPDATE_HINT}"
        )
    differing = difference(actual, to_array(reference))
    share = float(differing.mean())
    if share > MAX_DIFF_SHARE:
        image.save(str(actual_path))
        diff_path = out_dir / f"{name}.diff.png"
        diff_image(actual, differing).save(str(diff_path))
        raise AssertionError(
            f"{name}: {100 * share:.2f} % of the pixels differ by more than {PIXEL_TOLERANCE} "
            f"(allowed {100 * MAX_DIFF_SHARE:.2f} %); actual: {actual_path}, diff: {diff_path}, "
            f"reference: {reference_path}; {UPDATE_HINT}"
        )
    return share
