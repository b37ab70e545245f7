"""Mask overlay: pixels really coloured, opacity/threshold/visibility, outlines, hover and selection sync."""

from __future__ import annotations

import numpy as np
import pytest
from gui_fakes import FakeSegmenter
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from app.colors import instance_rgb
from app.overlay import composite_fill, instance_at, mask_contours
from app.selection import prediction_key
from engine.masks import CroppedMask


@pytest.fixture
def shown(window, qtbot, image_folder):
    """The window showing img_0 (160x120) with the fake prediction (3 instances)."""
    with qtbot.waitSignal(window.imageShown, timeout=10000):
        window.open_image(str(image_folder / "img_0.png"))
    pred = FakeSegmenter().predict(window.current_image)
    window.set_prediction(window.current_image_path, pred)
    window.set_opacity(0.5)
    window.set_score_threshold(0.5)
    window.canvas.fit_to_window()
    return window, pred


P = prediction_key


def _pixel(window, x: int, y: int) -> np.ndarray:
    img = window.canvas.render_to_image()
    c = img.pixelColor(x, y)
    return np.array([c.red(), c.green(), c.blue()], float)


def _centre(pred, i: int) -> tuple[int, int]:
    x1, y1, x2, y2 = pred.instances[i].box
    return int((x1 + x2) / 2), int((y1 + y2) / 2)


def _expected(window, x, y, i, alpha) -> np.ndarray:
    base = window.current_image[y, x].astype(float)
    return (1 - alpha) * base + alpha * np.array(instance_rgb(i), float)


def test_mask_pixels_are_coloured(shown):
    window, pred = shown
    x, y = _centre(pred, 0)
    assert np.abs(_pixel(window, x, y) - _expected(window, x, y, 0, 0.5)).max() <= 3
    x, y = _centre(pred, 1)
    assert np.abs(_pixel(window, x, y) - _expected(window, x, y, 1, 0.5)).max() <= 3
    # Instance 2 scores 0.30, below the 0.5 threshold: its pixels keep the photo's colour.
    x, y = _centre(pred, 2)
    assert np.abs(_pixel(window, x, y) - window.current_image[y, x]).max() <= 1
    # Outside every mask: untouched.
    assert np.abs(_pixel(window, 2, 2) - window.current_image[2, 2]).max() <= 1


def test_opacity_changes_pixels_without_recompositing(shown):
    window, pred = shown
    overlay = window.canvas.overlay
    count = overlay.composite_count
    x, y = _centre(pred, 0)
    window.overlay_controls.opacity_slider.setValue(90)
    assert overlay.composite_count == count
    assert overlay.fill.opacity() == pytest.approx(0.9)
    assert np.abs(_pixel(window, x, y) - _expected(window, x, y, 0, 0.9)).max() <= 3


def test_threshold_slider_filters_live(shown):
    window, pred = shown
    overlay = window.canvas.overlay
    count = overlay.composite_count
    x1, y1 = _centre(pred, 1)
    x2, y2 = _centre(pred, 2)
    window.overlay_controls.threshold_slider.setValue(80)  # hides the 0.70 instance
    assert overlay.composite_count == count + 1
    assert np.abs(_pixel(window, x1, y1) - window.current_image[y1, x1]).max() <= 1
    assert not window.instance_list.is_listed(P(1)) and window.instance_list.is_listed(P(0))
    assert window.instance_list.windowTitle() == "Instances (1 of 3)"
    window.overlay_controls.threshold_slider.setValue(20)  # shows all three
    assert np.abs(_pixel(window, x2, y2) - _expected(window, x2, y2, 2, 0.5)).max() <= 3
    assert window.instance_list.visible_row_count() == 3


def test_instance_checkbox_hides_it(shown):
    window, pred = shown
    x, y = _centre(pred, 0)
    # What the view does to the row's check box when it is clicked.
    window.instance_list.item(P(0)).setCheckState(Qt.CheckState.Unchecked)
    assert not window.instance_list.is_checked(P(0))
    assert np.abs(_pixel(window, x, y) - window.current_image[y, x]).max() <= 1
    window.show_all_instances()
    assert window.instance_list.is_checked(P(0))
    assert np.abs(_pixel(window, x, y) - _expected(window, x, y, 0, 0.5)).max() <= 3


def test_outlines_toggle(shown):
    window, pred = shown
    window.set_opacity(0.0)  # outlines only
    inst = pred.instances[1]  # a rectangle: its left edge column is an outline
    x0, y0 = inst.mask.x0, inst.mask.y0
    y = y0 + inst.mask.bits.shape[0] // 2
    window.canvas.overlay.labels.set_flags(labels=False, scores=False)
    on = _pixel(window, x0, y)
    window.actions_.show_outlines.setChecked(False)
    off = _pixel(window, x0, y)
    assert np.abs(off - window.current_image[y, x0]).max() <= 1
    assert np.abs(on - off).max() > 20
    assert not window.overlay_controls.outlines_box.isChecked()  # dock checkbox follows the action


def _move(
    window,
    x: float,
    y: float,
    kind=QEvent.Type.MouseMove,
    button=Qt.MouseButton.NoButton,
    buttons=Qt.MouseButton.NoButton,
) -> None:
    view = window.canvas
    pos = view.mapFromScene(QPointF(x, y))
    event = QMouseEvent(
        kind, QPointF(pos), view.viewport().mapToGlobal(QPointF(pos)), button, buttons, Qt.KeyboardModifier.NoModifier
    )
    QApplication.sendEvent(view.viewport(), event)


def _click(window, x: float, y: float) -> None:
    left = Qt.MouseButton.LeftButton
    _move(window, x, y, QEvent.Type.MouseButtonPress, left, left)
    _move(window, x, y, QEvent.Type.MouseButtonRelease, left, Qt.MouseButton.NoButton)


def test_hover_shows_class_and_score(shown):
    window, pred = shown
    _move(window, *_centre(pred, 1))
    assert window.hover_label.text() == "#2 block  0.70"
    assert "block" in window.canvas.viewport().toolTip()
    assert window.canvas.overlay.hovered == P(1)
    _move(window, 1, 1)
    assert window.hover_label.text() == ""


def test_click_selects_and_list_follows(shown, qtbot):
    window, pred = shown
    with qtbot.waitSignal(window.instanceSelected) as blocker:
        _click(window, *_centre(pred, 1))
    assert blocker.args == [1]
    assert window.selected_instance == 1
    assert window.instance_list.selected_key() == P(1) == window.selection.key
    assert window.canvas.overlay.selected == P(1)
    # Selecting in the list selects on the canvas.
    view = window.instance_list.view
    with qtbot.waitSignal(window.instanceSelected) as blocker:
        rect = window.instance_list.row_rect(P(0))
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert blocker.args == [0]
    assert window.canvas.overlay.selected == P(0)
    # A click on no instance clears the selection.
    with qtbot.waitSignal(window.instanceSelected) as blocker:
        _click(window, 1, 1)
    assert blocker.args == [-1]
    assert window.instance_list.selected_key() is None and window.selection.key is None


def test_hidden_instances_are_not_hit(shown):
    window, pred = shown
    x, y = _centre(pred, 2)  # score 0.30 < threshold
    _click(window, x, y)
    assert window.selected_instance == -1
    window.set_score_threshold(0.1)
    _click(window, x, y)
    assert window.selected_instance == 2
    window.set_score_threshold(0.5)  # the selection cannot stay on a hidden instance
    assert window.selected_instance == -1


def test_composite_only_touches_mask_crops():
    size = (50, 80)
    a = CroppedMask(10, 5, np.ones((4, 6), bool), size)
    b = CroppedMask(12, 6, np.ones((10, 3), bool), size)
    colors = np.array([[255, 0, 0], [0, 0, 255]], np.uint8)
    layer = composite_fill([a, b], colors, [1, 0], size)  # a drawn last: on top
    assert (layer.x0, layer.y0) == (10, 5) and layer.argb.shape == (11, 6)
    assert layer.argb[1, 2] == 0xFFFF0000  # overlap: a (red) wins
    assert layer.argb[8, 2] == 0xFF0000FF  # b only
    assert layer.argb[8, 0] == 0  # neither
    assert instance_at([a, b], [0, 1], 12.5, 6.5) == 0
    assert instance_at([a, b], [1, 0], 12.5, 6.5) == 1
    assert instance_at([a, b], [0, 1], 70, 40) == -1
    assert composite_fill([a], colors, [], size).argb is None


def test_contours_follow_mask_edges():
    bits = np.zeros((6, 8), bool)
    bits[1:5, 2:7] = True
    (contour,) = mask_contours(CroppedMask(100, 50, bits, (200, 200)))
    xs, ys = contour[:, 0], contour[:, 1]
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (102.5, 106.5, 51.5, 54.5)


def test_threshold_step_that_changes_nothing_does_not_recomposite(shown):
    window, _pred = shown
    overlay = window.canvas.overlay
    count = overlay.composite_count
    window.overlay_controls.threshold_slider.setValue(55)  # 0.95 and 0.70 stay above, 0.30 below
    assert overlay.composite_count == count
