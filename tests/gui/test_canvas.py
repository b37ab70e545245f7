"""Canvas: fit, 100 %, wheel zoom at the cursor, panning, big images."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent, QWheelEvent
from PySide6.QtWidgets import QApplication

from app.canvas import ImageCanvas
from app.image_loader import MIN_LEVEL_SIDE, DisplayImage


@pytest.fixture
def canvas(qtbot):
    view = ImageCanvas()
    qtbot.addWidget(view)
    view.resize(400, 300)
    view.show()
    qtbot.waitExposed(view)
    rng = np.random.default_rng(0)
    view.set_image(DisplayImage.from_rgb("x.png", rng.integers(0, 255, (500, 800, 3), dtype=np.uint8)))
    return view


def _mouse(view, kind, pos: QPoint, button, buttons) -> None:
    event = QMouseEvent(
        kind, QPointF(pos), view.viewport().mapToGlobal(QPointF(pos)), button, buttons, Qt.KeyboardModifier.NoModifier
    )
    QApplication.sendEvent(view.viewport(), event)


def test_fit_shows_whole_image(canvas):
    canvas.fit_to_window()
    visible = canvas.mapToScene(canvas.viewport().rect()).boundingRect()
    assert visible.contains(canvas.scene().sceneRect())
    assert canvas.scale_factor == pytest.approx(min((400 - 8) / 800, (300 - 8) / 500), rel=0.02)
    canvas.resize(800, 600)  # stays fitted when the window grows
    QApplication.processEvents()
    assert canvas.scale_factor > 0.7


def test_actual_size_and_zoom_steps(canvas, qtbot):
    with qtbot.waitSignal(canvas.zoomChanged) as blocker:
        canvas.zoom_actual()
    assert blocker.args[0] == pytest.approx(100.0 * canvas.devicePixelRatioF() * canvas.scale_factor)
    assert canvas.zoom_percent == pytest.approx(100.0)
    canvas.zoom_in()
    assert canvas.zoom_percent == pytest.approx(144.0)
    canvas.zoom_out()
    canvas.zoom_out()
    assert canvas.zoom_percent == pytest.approx(100 / 1.44)


def test_wheel_zooms_at_cursor(canvas):
    canvas.zoom_actual()
    pos = QPointF(120, 90)
    before = canvas.mapToScene(pos.toPoint())
    event = QWheelEvent(
        pos,
        canvas.viewport().mapToGlobal(pos),
        QPoint(0, 0),
        QPoint(0, 240),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(canvas.viewport(), event)
    assert canvas.zoom_percent == pytest.approx(144.0)
    after = canvas.mapToScene(pos.toPoint())
    assert abs(after.x() - before.x()) <= 1.0 and abs(after.y() - before.y()) <= 1.0


@pytest.mark.parametrize("button", [Qt.MouseButton.MiddleButton, Qt.MouseButton.LeftButton])
def test_drag_pans(canvas, button):
    canvas.zoom_by(3.0)
    h0, v0 = canvas.horizontalScrollBar().value(), canvas.verticalScrollBar().value()
    _mouse(canvas, QEvent.Type.MouseButtonPress, QPoint(200, 150), button, button)
    for step in range(1, 6):
        _mouse(canvas, QEvent.Type.MouseMove, QPoint(200 - 10 * step, 150 - 6 * step), Qt.MouseButton.NoButton, button)
    _mouse(canvas, QEvent.Type.MouseButtonRelease, QPoint(150, 120), button, Qt.MouseButton.NoButton)
    assert canvas.horizontalScrollBar().value() - h0 == 50
    assert canvas.verticalScrollBar().value() - v0 == 30


def test_space_drag_pans_without_click(canvas, qtbot):
    canvas.zoom_by(3.0)
    canvas.setFocus()
    clicks = []
    canvas.instanceClicked.connect(clicks.append)
    qtbot.keyPress(canvas, Qt.Key.Key_Space)
    h0 = canvas.horizontalScrollBar().value()
    left = Qt.MouseButton.LeftButton
    _mouse(canvas, QEvent.Type.MouseButtonPress, QPoint(200, 150), left, left)
    _mouse(canvas, QEvent.Type.MouseMove, QPoint(199, 150), Qt.MouseButton.NoButton, left)  # below drag distance
    _mouse(canvas, QEvent.Type.MouseButtonRelease, QPoint(199, 150), left, Qt.MouseButton.NoButton)
    qtbot.keyRelease(canvas, Qt.Key.Key_Space)
    assert canvas.horizontalScrollBar().value() - h0 == 1  # space: pans at once, even a tiny move
    assert clicks == []


def test_big_photo_pyramid_and_paint(qtbot):
    rgb = np.zeros((4000, 6000, 3), np.uint8)
    rgb[:, :, 0] = 200
    image = DisplayImage.from_rgb("big.jpg", rgb)
    sides = [max(level.shape) for level in image.levels]
    assert sides[0] == 6000 and sides[-1] <= MIN_LEVEL_SIDE and len(sides) == 4
    view = ImageCanvas()
    qtbot.addWidget(view)
    view.resize(900, 600)
    view.show()
    qtbot.waitExposed(view)
    view.set_image(image)
    shot = view.viewport().grab().toImage()
    centre = shot.pixelColor(shot.width() // 2, shot.height() // 2)
    assert (centre.red(), centre.green(), centre.blue()) == (200, 0, 0)
