"""Toolbar icons of the editing tools (SVG in the style of resources/icons, palette-coloured)."""

from __future__ import annotations

from functools import lru_cache

from PySide6.QtCore import QByteArray, QRectF, Qt
from PySide6.QtGui import QGuiApplication, QIcon, QPainter, QPalette, QPixmap
from PySide6.QtSvg import QSvgRenderer

_HEAD = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" fill="none" stroke="currentColor" '
    'stroke-width="1.8" stroke-linecap="round" stroke-linejoin="round">'
)
SVGS = {
    "select": '<path d="M5 3l13 8.5-6 1.2 3.6 6.8-2.6 1.3-3.6-6.8L5 18z"/>',
    "brush": '<circle cx="12" cy="12" r="7.5" fill="currentColor" fill-opacity="0.35"/><circle cx="12" cy="12" r="1"/>',
    "eraser": '<path d="M4 16l8.5-8.5a2 2 0 0 1 2.8 0l2.7 2.7a2 2 0 0 1 0 2.8L13 18H7z"/><path d="M9 11l5 5M13 18h7"/>',
    "polygon": (
        '<path d="M5 8l7-4.5 7.5 5-2.5 10H7z"/>'
        '<g fill="currentColor"><circle cx="5" cy="8" r="1.6"/><circle cx="12" cy="3.5" r="1.6"/>'
        '<circle cx="19.5" cy="8.5" r="1.6"/><circle cx="17" cy="18.5" r="1.6"/><circle cx="7" cy="18.5" r="1.6"/></g>'
    ),
    "undo": '<path d="M9 14L4 9l5-5"/><path d="M4 9h10.5a5.5 5.5 0 0 1 0 11H11"/>',
    "redo": '<path d="M15 14l5-5-5-5"/><path d="M20 9H9.5a5.5 5.5 0 0 0 0 11H13"/>',
    "accept": '<path d="M4 12.5l5 5L20 6.5"/>',
    "accept-all": '<path d="M2 12.5l5 5L18 6.5"/><path d="M12 17.5l10-11"/>',
    "reject": '<path d="M6 6l12 12M18 6L6 18"/>',
    "save": '<path d="M5 4h11l3 3v13H5z"/><path d="M8 4v5h7V4M8 20v-6h8v6"/>',
}


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


@lru_cache(maxsize=64)
def _icon(name: str, color: str, dpr: float) -> QIcon:
    body = SVGS.get(name)
    if body is None:
        return QIcon()
    svg = (_HEAD + body + "</svg>").replace("currentColor", color).encode("utf-8")
    icon = QIcon()
    for size in (16, 20, 24, 32, 48):
        icon.addPixmap(_render(svg, size, dpr))
    return icon


def edit_icon(name: str) -> QIcon:
    palette = QGuiApplication.palette()
    color = palette.color(QPalette.ColorRole.WindowText).name()
    screen = QGuiApplication.primaryScreen()
    dpr = float(screen.devicePixelRatio()) if screen is not None else 1.0
    return _icon(name, color, dpr)
