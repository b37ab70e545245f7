"""Checks of the window's fit shared by the in-process tests and the scaled-screen subprocess.

Run as a script (``python tests/gui/window_checks.py``) it opens the main window on whatever screen
the Qt platform gives, shows every panel, and prints one JSON object: the screen, the window's
size and minimum size, and the toolbar tools that are hidden in an overflow menu.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from PySide6.QtWidgets import QMainWindow, QMenu, QToolBar, QToolButton


def menu_action_ids(window: QMainWindow) -> set[int]:
    """Every action reachable from the menu bar (submenus included)."""
    found: set[int] = set()

    def walk(menu: QMenu) -> None:
        for action in menu.actions():
            sub = action.menu()
            if isinstance(sub, QMenu):
                walk(sub)
            found.add(id(action))

    for top in window.menuBar().actions():
        sub = top.menu()
        if isinstance(sub, QMenu):
            walk(sub)
    return found


def toolbar_tools(window: QMainWindow) -> list[tuple[QToolBar, object, bool]]:
    """(toolbar, action, is a plain tool button) for every tool on the window's toolbars."""
    tools = []
    for bar in window.findChildren(QToolBar):
        for action in bar.actions():
            widget = bar.widgetForAction(action)
            if action.isSeparator() or widget is None:
                continue
            tools.append((bar, action, type(widget) is QToolButton))
    return tools


def only_on_a_toolbar(window: QMainWindow) -> list[str]:
    """Tool buttons whose action is in no menu. Embedded widgets (model chooser, brush size) are
    left out: their menu twins are separate actions, tested where they are built."""
    in_menus = menu_action_ids(window)
    return [
        f"{action.text()} ({bar.windowTitle()})"
        for bar, action, button in toolbar_tools(window)
        if button and action.text() and id(action) not in in_menus
    ]


def in_overflow(window: QMainWindow) -> list[tuple[str, bool]]:
    """(name, also in a menu) for every tool the toolbars had to hide in their overflow menu."""
    in_menus = menu_action_ids(window)
    hidden = []
    for bar, action, button in toolbar_tools(window):
        widget = bar.widgetForAction(action)
        if bar.isVisible() and not widget.isVisible():
            name = action.text() or widget.toolTip() or type(widget).__name__
            hidden.append((f"{name} ({bar.windowTitle()})", button and id(action) in in_menus))
    return hidden


def scrolled_sideways(window: QMainWindow) -> list[str]:
    """Visible panels whose content is wider than the panel (a horizontal scroll bar shows)."""
    from PySide6.QtWidgets import QDockWidget, QScrollArea

    found = []
    for dock in window.findChildren(QDockWidget):
        content = dock.widget()
        if dock.isVisible() and not dock.visibleRegion().isEmpty() and isinstance(content, QScrollArea):
            if content.horizontalScrollBar().isVisible():
                found.append(dock.objectName())
    return found


def _size(s) -> list[int]:
    return [s.width(), s.height()]


def probe() -> dict:
    """Open the window as a first start would (fresh settings), then show every panel."""
    if "MASKSCOPE_SETTINGS" not in os.environ:  # never the user's settings
        os.environ["MASKSCOPE_SETTINGS"] = str(Path(tempfile.mkdtemp(prefix="maskscope-fit-")) / "settings.ini")
    from PySide6.QtWidgets import QApplication, QDockWidget

    from app.application import create_application
    from app.main_window import MainWindow

    app = create_application()
    window = MainWindow(torch_threads=1)
    window.show()
    for _ in range(5):
        app.processEvents()
    screen = window.screen()
    result = {
        "screen": _size(screen.availableGeometry()),
        "dpr": screen.devicePixelRatio(),
        "window": _size(window.frameGeometry()),
        "overflow": in_overflow(window),
        "scrolled_sideways": scrolled_sideways(window),
    }
    for dock in window.findChildren(QDockWidget):
        dock.show()
    for _ in range(5):
        app.processEvents()
    result["window_all_panels"] = _size(window.frameGeometry())
    result["minimum_all_panels"] = _size(window.minimumSizeHint().expandedTo(window.minimumSize()))
    window.shutdown()
    QApplication.processEvents()
    return result


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    print("PROBE " + json.dumps(probe()))
