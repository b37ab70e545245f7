"""Panels scroll instead of growing the window past a small screen (1366x768, or 1920x1080 at 200 %)."""

from __future__ import annotations

from PySide6.QtWidgets import QAbstractScrollArea, QDockWidget, QFrame, QScrollArea, QWidget


def scrolling(content: QWidget, parent: QWidget | None = None) -> QScrollArea:
    """``content`` inside a frameless scroll area that resizes it (so it fills the panel when it fits)."""
    scroll = QScrollArea(parent)
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    scroll.setWidget(content)
    return scroll


def scroll_when_too_big(dock: QDockWidget) -> None:
    """Put a panel's content in a scroll area unless it scrolls by itself already (lists, tables)."""
    content = dock.widget()
    if content is None or isinstance(content, QAbstractScrollArea):
        return
    scroll = scrolling(content, dock)
    scroll.setObjectName(f"{dock.objectName()}Scroll")
    dock.setWidget(scroll)
