"""Panels scroll instead of growing the window past a small screen (1366x768, or 1920x1080 at 200 %)."""

from __future__ import annotations

from PySide6.QtWidgets import QAbstractScrollArea, QDockWidget, QFrame, QScrollArea, QWidget

MIN_HEIGHT = 40


def scrolling(content: QWidget, parent: QWidget | None = None) -> QScrollArea:
    """``content`` inside a frameless scroll area that resizes it (so it fills the panel when it fits)."""
    scroll = QScrollArea(parent)
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    scroll.setWidget(content)
    # Lower than the scroll bars' own minimum (~64 px): seven panels stacked on a 540 px high
    # screen (1080 at 200 %) still fit; a short panel scrolls.
    scroll.setMinimumHeight(MIN_HEIGHT)
    return scroll


def scroll_when_too_big(dock: QDockWidget) -> None:
    """Put a panel's content in a scroll area unless it scrolls by itself already (lists, tables)."""
    content = dock.widget()
    if content is None or isinstance(content, QAbstractScrollArea):
        return
    scroll = scrolling(content, dock)
    scroll.setObjectName(f"{dock.objectName()}Scroll")
    dock.setWidget(scroll)
