"""The window people see: themes with a readable hint, a shortcuts page built from the actions,
the About box, Open Recent only for what opened, and panels that never push the window off a
small screen."""

from __future__ import annotations

from PySide6.QtGui import QAction, QColor, QKeySequence
from PySide6.QtWidgets import QApplication

from app.image_loader import normalise_path
from app.theme import THEMES, apply_theme, contrast_ratio, readable_on


def test_readable_on_picks_black_or_white_when_the_preferred_colour_is_too_faint():
    grey = QColor(191, 191, 191)
    assert contrast_ratio(QColor(190, 190, 190), grey) < 1.1  # the 0.1 hint: invisible
    picked = readable_on(grey, QColor(190, 190, 190))
    assert contrast_ratio(picked, grey) >= 4.5
    assert readable_on(QColor(255, 255, 255), QColor(20, 20, 20)) == QColor(20, 20, 20)
    assert abs(contrast_ratio(QColor(0, 0, 0), QColor(255, 255, 255)) - 21.0) < 1e-6


def test_every_theme_keeps_the_empty_canvas_hint_readable(window, qtbot):
    try:
        for name in THEMES:
            assert apply_theme(name) == name
            qtbot.wait(10)
            canvas = window.canvas
            background = canvas.backgroundBrush().color()
            assert contrast_ratio(canvas.hint_colour(), background) >= 4.5, name
    finally:
        apply_theme("system")


def test_theme_menu_switches_and_remembers(window, settings):
    try:
        dark = next(a for a in window.actions_.theme_menu.actions() if a.data() == "dark")
        dark.trigger()
        assert settings.get_str("view/theme") == "dark"
        assert QApplication.instance().palette().window().color().lightness() < 100
    finally:
        apply_theme("system")


def test_shortcuts_page_lists_every_shortcut_of_the_window(window):
    from app.shortcuts_page import shortcut_rows, shortcuts_html

    rows = shortcut_rows(window)
    listed = {keys for _, _, keys in rows}
    for action in window.findChildren(QAction):
        keys = ", ".join(
            k.toString(QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts() if not k.isEmpty()
        )
        if keys and action.text():
            assert keys in listed, action.text()
    html = shortcuts_html(window)
    for must in ("Ctrl+R", "Ctrl+Z", "Ctrl+S", "Wheel"):
        assert must in html
    assert {section for section, _, _ in rows} >= {"File", "Edit", "View", "Model"}


def test_about_names_the_versions():
    from app.about import about_html, versions

    v = versions()
    assert set(v) >= {"MaskScope", "Python", "Qt", "torch", "torchvision", "Device"}
    assert all(v.values())
    assert "torchvision" in about_html()


def test_open_recent_lists_only_what_opened(window, image_folder, settings, qtbot):
    broken = normalise_path(image_folder / "broken.jpg")
    with qtbot.waitSignal(window.imageFailed, timeout=10000):
        window.open_image(broken)
    assert broken not in settings.recent()
    good = normalise_path(image_folder / "img_1.png")
    with qtbot.waitSignal(window.imageShown, timeout=10000):
        window.open_image(good)
    assert settings.recent()[0] == good
    empty = image_folder / "empty"
    empty.mkdir()
    window.open_folder(str(empty))
    assert normalise_path(empty) not in settings.recent()


def test_panels_never_push_the_window_past_a_small_screen(window):
    from PySide6.QtWidgets import QDockWidget

    for dock in window.findChildren(QDockWidget):
        dock.show()
    hint = window.minimumSizeHint()
    assert hint.width() <= 1366 and hint.height() <= 768 - 40, hint


def test_every_toolbar_action_is_also_in_a_menu(window):
    from PySide6.QtWidgets import QToolBar

    in_menus: set[int] = set()

    def walk(menu):
        for a in menu.actions():
            if a.menu() is not None:
                walk(a.menu())
            in_menus.add(id(a))

    for top in window.menuBar().actions():
        if top.menu() is not None:
            walk(top.menu())
    for bar in window.findChildren(QToolBar):
        for action in bar.actions():
            if action.isSeparator() or not action.text() or bar.widgetForAction(action) is None:
                continue
            if type(bar.widgetForAction(action)).__name__ != "QToolButton":
                continue  # an embedded widget (model chooser, size box): its menu twin is tested elsewhere
            assert id(action) in in_menus, f"{action.text()} is only on the {bar.windowTitle()}"
