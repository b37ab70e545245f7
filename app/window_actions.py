"""Menus, toolbar and shortcuts of the main window (File, Edit, View, Model, Help)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QAction, QActionGroup, QGuiApplication, QKeySequence
from PySide6.QtWidgets import QMenu, QToolBar

from app.icons import icon

if TYPE_CHECKING:
    from app.main_window import MainWindow


@dataclass
class WindowActions:
    open_image: QAction
    open_folder: QAction
    recent_menu: QMenu
    quit: QAction
    next: QAction
    previous: QAction
    first: QAction
    last: QAction
    deselect: QAction
    hide_selected: QAction
    show_all: QAction
    copy_path: QAction
    zoom_in: QAction
    zoom_out: QAction
    fit: QAction
    actual: QAction
    hand: QAction
    show_outlines: QAction
    show_boxes: QAction
    show_labels: QAction
    show_scores: QAction
    run: QAction
    run_folder: QAction
    cancel: QAction
    file_menu: QMenu
    edit_menu: QMenu
    view_menu: QMenu
    panels_menu: QMenu
    model_menu: QMenu
    help_menu: QMenu
    theme_menu: QMenu
    toolbar: QToolBar


def _action(
    window: MainWindow,
    text: str,
    slot,
    shortcuts: tuple = (),
    icon_name: str | None = None,
    tip: str | None = None,
    checkable: bool = False,
) -> QAction:
    action = QAction(text, window)
    keys = [QKeySequence(s) for s in shortcuts]
    if keys:
        action.setShortcuts(keys)
    if icon_name:
        action.setIcon(icon(icon_name))
    action.setCheckable(checkable)
    shortcut_text = ", ".join(k.toString(QKeySequence.SequenceFormat.NativeText) for k in keys)
    tip_text = tip or text.replace("&", "").replace("\u2026", "")
    action.setToolTip(f"{tip_text} ({shortcut_text})" if shortcut_text else tip_text)
    action.setStatusTip(tip_text)
    if checkable:
        action.toggled.connect(slot)
    else:
        action.triggered.connect(lambda _checked=False: slot())
    window.addAction(action)  # shortcuts work even when the toolbar/menu is hidden
    return action


def build_actions(window: MainWindow) -> WindowActions:
    canvas = window.canvas
    overlay = canvas.overlay
    K = QKeySequence.StandardKey  # noqa: N806 - Qt naming

    open_image = _action(window, "&Open Image\u2026", window.ask_open_image, (K.Open,), "open-image")
    open_folder = _action(window, "Open &Folder\u2026", window.ask_open_folder, ("Ctrl+Shift+O",), "open-folder")
    quit_ = _action(window, "&Quit", window.close, (K.Quit, "Ctrl+Q"))
    quit_.setMenuRole(QAction.MenuRole.QuitRole)
    next_ = _action(window, "&Next Image", window.next_image, ("D", "PgDown"), "next")
    previous = _action(window, "&Previous Image", window.previous_image, ("A", "PgUp"), "prev")
    first = _action(window, "First Image", window.first_image, ("Home",))
    last = _action(window, "Last Image", window.last_image, ("End",))

    deselect = _action(window, "Select &None", lambda: window.select_key(None), ("Esc",))
    hide_selected = _action(window, "&Hide (Reject) Selected Prediction", window.hide_selected_instance, ("H",))
    show_all = _action(window, "Show &Rejected Predictions Again", window.show_all_instances, ("Shift+H",))
    copy_path = _action(window, "&Copy Image Path", lambda: _copy_path(window), ("Ctrl+Shift+C",))

    zoom_in = _action(window, "Zoom &In", canvas.zoom_in, (K.ZoomIn, "Ctrl+=", "+"), "zoom-in")
    zoom_out = _action(window, "Zoom &Out", canvas.zoom_out, (K.ZoomOut, "-"), "zoom-out")
    fit = _action(window, "&Fit to Window", canvas.fit_to_window, ("Ctrl+0", "F"), "zoom-fit")
    actual = _action(
        window,
        "&Actual Pixels (100 %)",
        canvas.zoom_actual,
        ("Ctrl+1",),
        "zoom-100",
        "One image pixel per screen pixel",
    )
    hand = _action(
        window,
        "&Pan Mode",
        canvas.set_hand_mode,
        (),
        "pan",
        "Left drag pans (hold Space or drag with the middle button any time)",
        checkable=True,
    )
    show_outlines = _action(window, "Show &Outlines", overlay.set_show_outlines, ("O",), "outlines", checkable=True)
    show_boxes = _action(window, "Show &Boxes", overlay.set_show_boxes, ("Shift+B",), "boxes", checkable=True)
    show_labels = _action(window, "Show &Labels", overlay.set_show_labels, ("L",), "labels", checkable=True)
    show_scores = _action(window, "Show &Scores", overlay.set_show_scores, ("S",), None, checkable=True)

    run = _action(window, "&Run on Image", window.run_current, ("Ctrl+R", "F5"), "run", "Segment the current image")
    run_folder = _action(
        window,
        "Run on &Folder",
        window.run_folder,
        ("Ctrl+Shift+R", "Shift+F5"),
        "run-folder",
        "Segment every image in the file list",
    )
    cancel = _action(window, "&Cancel Folder Run", window.cancel_folder_run, ("Ctrl+.",), "stop")
    cancel.setEnabled(False)

    # Overlay dock checkboxes mirror the View actions.
    controls = window.overlay_controls
    for action, box in (
        (show_outlines, controls.outlines_box),
        (show_boxes, controls.boxes_box),
        (show_labels, controls.labels_box),
        (show_scores, controls.scores_box),
    ):
        action.toggled.connect(box.setChecked)
        box.toggled.connect(action.setChecked)

    bar = window.menuBar()
    file_menu = bar.addMenu("&File")
    file_menu.addActions([open_image, open_folder])
    recent_menu = file_menu.addMenu("Open &Recent")
    recent_menu.aboutToShow.connect(lambda: _fill_recent(window, recent_menu))
    file_menu.addSeparator()
    file_menu.addActions([previous, next_, first, last])
    file_menu.addSeparator()
    file_menu.addAction(copy_path)
    file_menu.addSeparator()
    file_menu.addAction(quit_)

    edit_menu = bar.addMenu("&Edit")
    edit_menu.addActions([deselect, hide_selected, show_all])

    view_menu = bar.addMenu("&View")
    view_menu.addActions([zoom_in, zoom_out, fit, actual, hand])
    view_menu.addSeparator()
    view_menu.addActions([show_outlines, show_boxes, show_labels, show_scores])
    view_menu.addSeparator()
    panels_menu = view_menu.addMenu("&Panels")
    theme_menu = _theme_menu(window, view_menu)

    model_menu = bar.addMenu("&Model")
    window.models.fill_menu(model_menu)
    model_menu.addActions([run, run_folder, cancel])

    help_menu = bar.addMenu("&Help")
    help_menu.addAction("&Keyboard Shortcuts", lambda: _show_shortcuts(window))
    about = help_menu.addAction("&About MaskScope", lambda: _show_about(window))
    about.setMenuRole(QAction.MenuRole.AboutRole)

    toolbar = QToolBar("Main toolbar", window)
    toolbar.setObjectName("MainToolbar")
    toolbar.setIconSize(QSize(22, 22))
    toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
    toolbar.addActions([open_image, open_folder])
    toolbar.addSeparator()
    toolbar.addActions([previous, next_])
    toolbar.addSeparator()
    toolbar.addActions([zoom_in, zoom_out, fit, actual, hand])
    toolbar.addSeparator()
    toolbar.addActions([show_outlines, show_boxes, show_labels])
    toolbar.addSeparator()
    toolbar.addWidget(window.models.combo)
    toolbar.addActions([run, run_folder, cancel])
    window.addToolBar(Qt.ToolBarArea.TopToolBarArea, toolbar)
    panels_menu.addAction(toolbar.toggleViewAction())

    return WindowActions(
        open_image=open_image,
        open_folder=open_folder,
        recent_menu=recent_menu,
        quit=quit_,
        next=next_,
        previous=previous,
        first=first,
        last=last,
        deselect=deselect,
        hide_selected=hide_selected,
        show_all=show_all,
        copy_path=copy_path,
        zoom_in=zoom_in,
        zoom_out=zoom_out,
        fit=fit,
        actual=actual,
        hand=hand,
        show_outlines=show_outlines,
        show_boxes=show_boxes,
        show_labels=show_labels,
        show_scores=show_scores,
        run=run,
        run_folder=run_folder,
        cancel=cancel,
        file_menu=file_menu,
        edit_menu=edit_menu,
        view_menu=view_menu,
        panels_menu=panels_menu,
        model_menu=model_menu,
        help_menu=help_menu,
        theme_menu=theme_menu,
        toolbar=toolbar,
    )


def _fill_recent(window: MainWindow, menu: QMenu) -> None:
    menu.clear()
    paths = window.settings.recent()
    for path in paths:
        kind = "folder" if Path(path).is_dir() else "image"
        action = menu.addAction(f"{Path(path).name}  ({kind})")
        action.setToolTip(path)
        action.setStatusTip(path)
        action.triggered.connect(lambda _c=False, p=path: window.open_paths([p]))
    if not paths:
        menu.addAction("(none)").setEnabled(False)
    menu.addSeparator()
    clear = menu.addAction("Clear List")
    clear.setEnabled(bool(paths))
    clear.triggered.connect(window.settings.clear_recent)


def _copy_path(window: MainWindow) -> None:
    if window.current_image_path:
        QGuiApplication.clipboard().setText(window.current_image_path)


def _show_shortcuts(window: MainWindow) -> None:
    from app.shortcuts_page import show_shortcuts

    window._shortcuts_dialog = show_shortcuts(window)


def _show_about(window: MainWindow) -> None:
    from app.about import show_about

    show_about(window)


def _theme_menu(window: MainWindow, view_menu: QMenu) -> QMenu:
    """View > Theme: System / Light / Dark, remembered in the settings."""
    from app.theme import SETTINGS_KEY, THEMES, apply_theme

    menu = view_menu.addMenu("&Theme")
    group = QActionGroup(menu)
    current = window.settings.get_str(SETTINGS_KEY, "system")
    for name in THEMES:
        action = menu.addAction(name.capitalize())
        action.setCheckable(True)
        action.setChecked(name == current)
        action.setData(name)
        group.addAction(action)
        action.triggered.connect(lambda _c=False, n=name: window.settings.set(SETTINGS_KEY, apply_theme(n)))
    return menu
