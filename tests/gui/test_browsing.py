"""Opening images and folders, stepping through them, unreadable files, drops, persisted settings."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QApplication

from app.image_loader import normalise_path


def test_open_image_lists_its_folder(window, qtbot, image_folder, settings):
    target = image_folder / "img_1.png"
    with qtbot.waitSignal(window.imageShown, timeout=10000) as blocker:
        window.open_image(str(target))
    assert blocker.args == [normalise_path(target)]
    assert window.current_image_path == normalise_path(target)
    assert window.current_image.shape == (120, 176, 3)
    assert [Path(p).name for p in window.file_list.paths] == ["broken.jpg", "img_0.png", "img_1.png", "img_2.png"]
    assert window.file_list.list.currentItem().text() == "img_1.png"
    assert "img_1.png" in window.windowTitle()
    assert window.size_label.text() == "176 \u00d7 120"
    assert settings.recent()[0] == normalise_path(target)


def test_next_previous_keys(window, qtbot, image_folder):
    with qtbot.waitSignal(window.imageFailed, timeout=10000):
        window.open_folder(str(image_folder))  # broken.jpg sorts first and cannot be shown
    window.activateWindow()
    window.canvas.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is window.canvas, timeout=3000)
    names = []
    for key in (Qt.Key.Key_D, Qt.Key.Key_PageDown, Qt.Key.Key_D, Qt.Key.Key_A, Qt.Key.Key_PageUp):
        with qtbot.waitSignal(window.imageShown, timeout=10000) as blocker:
            qtbot.keyClick(window.canvas, key)
        names.append(Path(blocker.args[0]).name)
    assert names == ["img_0.png", "img_1.png", "img_2.png", "img_1.png", "img_0.png"]
    assert window.actions_.next.isEnabled()  # img_0 is not the last image
    window.last_image()
    assert not window.actions_.next.isEnabled()
    with qtbot.waitSignal(window.imageFailed, timeout=10000):
        window.first_image()
    assert not window.actions_.previous.isEnabled()


def test_unreadable_file_is_marked_without_dialog_when_browsing(window, qtbot, image_folder, errors):
    broken = normalise_path(image_folder / "broken.jpg")
    with qtbot.waitSignal(window.imageFailed, timeout=10000) as blocker:
        window.open_folder(str(image_folder))  # broken.jpg is the first file
    assert blocker.args[0] == broken
    assert "broken.jpg" in blocker.args[1]
    state = window.file_list.state(broken)
    assert state.error
    item = window.file_list.list.item(0)
    assert "Cannot be opened" in item.toolTip()
    assert "broken.jpg" in window.statusBar().currentMessage()
    assert window.current_image is None
    assert errors == []  # browsing a folder: marks and a status message, no modal box
    with qtbot.waitSignal(window.imageShown, timeout=10000):
        window.next_image()  # the app keeps working
    assert window.current_image is not None


def test_unreadable_file_opened_by_name_gives_dialog(window, qtbot, image_folder, errors):
    with qtbot.waitSignal(window.imageFailed, timeout=10000):
        window.open_image(str(image_folder / "broken.jpg"))
    qtbot.waitUntil(lambda: len(errors) == 1, timeout=3000)
    title, message = errors[0]
    assert title == "Cannot open image"
    assert "broken.jpg" in message


def test_missing_file_gives_dialog(window, image_folder, errors):
    window.open_image(str(image_folder / "nope.png"))
    assert errors and "does not exist" in errors[0][1]


def test_drop_folder_opens_it(window, qtbot, image_folder):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(image_folder))])
    event = QDropEvent(
        QPointF(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    with qtbot.waitSignal(window.imageFailed, timeout=10000):  # broken.jpg comes first
        window.dropEvent(event)
    assert len(window.files) == 4


def test_drop_several_files(window, qtbot, image_folder):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(image_folder / n)) for n in ("img_2.png", "img_0.png")])
    event = QDropEvent(
        QPointF(5, 5), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    with qtbot.waitSignal(window.imageShown, timeout=10000) as blocker:
        window.dropEvent(event)
    assert Path(blocker.args[0]).name == "img_2.png"
    assert [Path(p).name for p in window.files] == ["img_2.png", "img_0.png"]


def test_settings_persist_between_runs(qtbot, settings, errors, image_folder, tmp_path):
    from app.main_window import MainWindow

    first = MainWindow(settings=settings, torch_threads=1)
    qtbot.addWidget(first)
    with qtbot.waitSignal(first.imageShown, timeout=10000):
        first.open_image(str(image_folder / "img_2.png"))
    first.open_folder(str(image_folder))
    first.set_opacity(0.3)
    first.set_score_threshold(0.65)
    first.actions_.show_boxes.setChecked(True)
    first.close()  # saves settings and stops the workers

    assert Path(settings.store.fileName()).parent == tmp_path  # never the user's settings
    second = MainWindow(settings=settings, torch_threads=1)
    qtbot.addWidget(second)
    try:
        assert second.overlay_controls.opacity == 0.3
        assert second.canvas.overlay.fill.opacity() == 0.3
        assert second.score_threshold == 0.65
        assert second.actions_.show_boxes.isChecked()
        assert second.canvas.overlay.labels.show_boxes
        assert settings.recent()[:2] == [normalise_path(image_folder), normalise_path(image_folder / "img_2.png")]
        second.actions_.recent_menu.aboutToShow.emit()
        texts = [a.text() for a in second.actions_.recent_menu.actions()]
        assert "images  (folder)" in texts and "img_2.png  (image)" in texts
    finally:
        second.shutdown()
