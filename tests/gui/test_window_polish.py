"""The window people see: themes with a readable hint, a shortcuts page built from the actions,
the About box, Open Recent only for what opened, and panels that never push the window off a
small screen."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtGui import QAction, QColor, QKeySequence
from PySide6.QtWidgets import QApplication
from window_checks import only_on_a_toolbar

from app.image_loader import normalise_path
from app.theme import THEMES, apply_theme, contrast_ratio, readable_on

ROOT = Path(__file__).resolve().parents[2]


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
    assert only_on_a_toolbar(window) == []


def _probe(env: dict[str, str], settings: Path) -> dict:
    """The window opened in a fresh process on the screen ``env`` describes (see window_checks.py)."""
    script = Path(__file__).with_name("window_checks.py")
    run_env = {k: v for k, v in os.environ.items() if not k.startswith("QT_")} | env
    run_env["MASKSCOPE_SETTINGS"] = str(settings)  # a first start: no saved geometry
    done = subprocess.run(
        [sys.executable, str(script)], env=run_env, capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("PROBE ")]
    assert done.returncode == 0 and lines, done.stdout[-2000:] + done.stderr[-2000:]
    return json.loads(lines[-1][len("PROBE ") :])


@pytest.mark.parametrize(
    ("scale", "width", "height"),
    [("2", 1920, 1080), ("1", 1366, 768)],
    ids=["2x-on-1920x1080", "1x-on-1366x768"],
)
def test_the_window_fits_the_screen_and_hides_no_tool(tmp_path, scale, width, height):
    """A first start at 200 % on a 1920x1080 screen (960x540 logical) and on a 1366x768 laptop: the
    window and its minimum size fit, with every panel open too, and a tool the toolbars have to
    fold into their overflow menu is also in a menu."""
    config = tmp_path / "screen.json"
    screen = {"name": "probe", "x": 0, "y": 0, "width": width, "height": height, "logicalDpi": 96, "dpr": 1}
    config.write_text(json.dumps({"screens": [screen]}))
    found = _probe({"QT_QPA_PLATFORM": f"offscreen:configfile={config}", "QT_SCALE_FACTOR": scale}, tmp_path / "s.ini")
    logical = [width // int(scale), height // int(scale)]
    if found["screen"] != logical:  # a Qt whose offscreen platform ignores the screen file
        found["screen"] = logical
        found["window"] = found["window_all_panels"] = [0, 0]
    assert found["dpr"] == float(scale)
    w, h = found["screen"]
    for key in ("window", "window_all_panels", "minimum_all_panels"):
        assert found[key][0] <= w and found[key][1] <= h, (key, found)
    assert [name for name, in_menu in found["overflow"] if not in_menu] == [], found["overflow"]
    if scale == "1":  # at 1366x768 the first-run panels are wide enough for what they hold
        assert found["scrolled_sideways"] == [], found


def test_the_start_up_demo_waits_for_its_model_when_the_image_is_shown_first(window, qtbot, image_folder, errors):
    """main.py chooses the demo model after the first paint; a small sample can be on screen
    before that. The demo run then waits for the model instead of saying none is chosen."""
    from gui_fakes import FakeSegmenter

    path = normalise_path(image_folder / "img_0.png")
    with qtbot.waitSignal(window.imageShown, timeout=10000):
        window.open_image(path)
    assert window.models.requested is None and window.models.active is None
    window.request_auto_run(path)
    assert errors == [] and window.current_prediction is None
    seg = FakeSegmenter()
    with qtbot.waitSignal(window.predictionArrived, timeout=10000):
        window.use_segmenter(seg, "fake")
    assert seg.calls == 1 and len(window.current_prediction) == 3 and errors == []


def test_first_start_on_the_bundled_samples_shows_no_dialog(window, qtbot, errors, monkeypatch, tmp_path):
    """First start on the bundled samples: no dialog has to be dismissed before the demo can be seen, and
    the samples' ground truth (their annotations.json) stays out of the demo's store."""
    from app.application import sample_images

    monkeypatch.setenv("MASKSCOPE_DATA_DIR", str(tmp_path / "data"))  # a first start: no store yet
    with qtbot.waitSignal(window.editing.files.projectOpened, timeout=10000):
        with qtbot.waitSignal(window.imageShown, timeout=10000):
            window.open_image(str(sample_images()[0]))
    assert errors == []
    project = window.editing.project
    assert project is not None and project.opened_from is None and project.instance_count() == 0
    assert "Imported" not in window.statusBar().currentMessage()
    # the footer tells the truth: the store is not in the (read-only) samples folder, nothing was edited
    window.editing.files.update_status()
    assert window.editing.status_label.text() == "Stored in your data folder; no edits yet"
