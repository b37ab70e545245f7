"""Help > Keyboard Shortcuts, built from the window's own actions so it can never miss one.

Every menu is walked (submenus included) and every action with a shortcut is listed under its
menu; actions that live outside the menus (canvas keys added with ``window.addAction``) follow
under "Other". Mouse gestures, which are no actions, come from ``GESTURES``.
"""

from __future__ import annotations

from html import escape

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QMainWindow, QMenu, QTextBrowser, QVBoxLayout, QWidget

GESTURES = (
    ("Wheel", "Zoom at the cursor"),
    ("Drag, middle drag, Space+drag", "Pan"),
    ("Click", "Select the instance under the cursor"),
    ("Box tool: drag, Shift+drag", "Ask the model for the object in the box; refine the shown one"),
    ("Point tool: click, Tab / Shift+Tab or wheel", "Ask for the objects under the click; cycle them"),
    ("Enter, Esc (a prompt is shown)", "Accept the prompt as an annotation; discard it"),
)


def _keys(action: QAction) -> str:
    return ", ".join(k.toString(QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts() if not k.isEmpty())


def _label(action: QAction) -> str:
    return action.text().replace("&&", "\x00").replace("&", "").replace("\x00", "&").rstrip("\u2026.").strip()


def shortcut_rows(window: QMainWindow) -> list[tuple[str, str, str]]:
    """(section, action, keys) for every action of ``window`` that has a shortcut."""
    rows: list[tuple[str, str, str]] = []
    seen: set[int] = set()

    def walk(menu: QMenu, section: str) -> None:
        for action in menu.actions():
            sub = action.menu()  # typed QObject (QAction lives in QtGui); a menu bar's submenus are QMenus
            if isinstance(sub, QMenu):
                walk(sub, f"{section} > {_label(action)}")
                continue
            keys = _keys(action)
            if keys and id(action) not in seen:
                seen.add(id(action))
                rows.append((section, _label(action), keys))

    for top in window.menuBar().actions():
        menu = top.menu()
        if isinstance(menu, QMenu):
            walk(menu, _label(top))
    for action in window.findChildren(QAction):
        keys = _keys(action)
        if keys and id(action) not in seen and action.text():
            seen.add(id(action))
            rows.append(("Other", _label(action), keys))
    return rows


def shortcuts_html(window: QMainWindow) -> str:
    parts, section = [], None
    for sec, text, keys in shortcut_rows(window):
        if sec != section:
            parts.append(f'<tr><td colspan=2><h3 style="margin-bottom:0">{escape(sec)}</h3></td></tr>')
            section = sec
        parts.append(f"<tr><td><b>{escape(keys)}</b></td><td>{escape(text)}</td></tr>")
    parts.append('<tr><td colspan=2><h3 style="margin-bottom:0">Mouse</h3></td></tr>')
    parts += [f"<tr><td><b>{escape(g)}</b></td><td>{escape(d)}</td></tr>" for g, d in GESTURES]
    return f"<table cellspacing=3>{''.join(parts)}</table>"


def show_shortcuts(window: QMainWindow, parent: QWidget | None = None) -> QDialog:
    dialog = QDialog(parent or window)
    dialog.setWindowTitle("Keyboard shortcuts")
    layout = QVBoxLayout(dialog)
    text = QTextBrowser(dialog)
    text.setHtml(shortcuts_html(window))
    layout.addWidget(text)
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, dialog)
    buttons.rejected.connect(dialog.reject)
    layout.addWidget(buttons)
    screen = (parent or window).screen().availableGeometry()
    dialog.resize(min(560, screen.width() - 40), min(640, screen.height() - 80))
    dialog.show()
    return dialog
