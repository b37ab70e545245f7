"""Correcting masks with nothing ever lost: annotations and predictions in the project store,
editing tools, undo, the review workflow, save/import/export.

``install_editing(window)`` adds everything to a ``MainWindow`` (menus, toolbar, the class picker
and status line of the instance list; annotations are drawn by the canvas's one overlay stack and
listed in the window's one instance list) and returns the ``EditingController``; calling it again
returns the same controller.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.editing.controller import EditingController

if TYPE_CHECKING:
    from app.main_window import MainWindow

__all__ = ["EditingController", "install_editing"]


def install_editing(window: MainWindow) -> EditingController:
    existing = getattr(window, "editing", None)
    if isinstance(existing, EditingController):
        return existing
    controller = EditingController(window)
    window.editing = controller
    return controller
