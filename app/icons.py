"""Toolbar icons drawn as SVG in resources/icons; ``currentColor`` follows the palette's text colour
so the same icons read well in light and dark themes. Also the colour chips of the instance lists."""

from __future__ import annotations

from functools import lru_cache

from PySide6.QtCore import QByteArray, QRectF, Qt
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QPainter, QPalette, QPixmap
from PySide6.QtSvg import QSvgRenderer

from resources import ICONS, resource_path

ICON_DIR = resource_path(ICONS)
_SIZES = (16, 20, 24, 32, 48, 64)


def _render(svg: bytes, size: int, dpr: float) -> QPixmap:
    renderer = QSvgRenderer(QByteArray(svg))
    pm = QPixmap(int(size * dpr), int(size * dpr))
    pm.setDevicePixelRatio(dpr)
    pm.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pm)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter, QRectF(0, 0, size, size))
    painter.end()
    return pm


@lru_cache(maxsize=128)
def _icon(name: str, color: str, dpr: float) -> QIcon:
    path = ICON_DIR / f"{name}.svg"
    if not path.is_file():
        return QIcon()
    svg = path.read_text(encoding="utf-8").replace("currentColor", color).encode("utf-8")
    icon = QIcon()
    for size in _SIZES:
        icon.addPixmap(_render(svg, size, dpr))
    return icon


def icon(name: str) -> QIcon:
    """The icon ``resources/icons/NAME.svg`` in the current palette's text colour."""
    app = QGuiApplication.instance()
    palette = QGuiApplication.palette() if app is not None else QPalette()
    color = palette.color(QPalette.ColorRole.WindowText)
    screen = QGuiApplication.primaryScreen() if app is not None else None
    dpr = screen.devicePixelRatio() if screen is not None else 1.0
    return _icon(name, color.name(), float(dpr))


def app_icon() -> QIcon:
    return _icon("maskscope", "#000000", 1.0)


@lru_cache(maxsize=1024)
def swatch(rgb: tuple[int, int, int], dpr: float, radius: float = 3.0) -> QIcon:
    """A 14 px colour chip (corner ``radius``; 0 for a square); cached, since instance colours
    repeat from one prediction or edit to the next."""
    pm = QPixmap(int(14 * dpr), int(14 * dpr))
    pm.setDevicePixelRatio(dpr)
    pm.fill(Qt.GlobalColor.transparent)
    p = QPainter(pm)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setPen(QColor(0, 0, 0, 120))
    p.setBrush(QColor(*rgb))
    p.drawRoundedRect(1, 1, 12, 12, radius, radius)  # Qt draws a plain rect for radius 0
    p.end()
    return QIcon(pm)
