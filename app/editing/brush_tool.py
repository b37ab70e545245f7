"""Brush and eraser canvas tool: a circle cursor of the brush size, strokes with the left button.

The tool only turns mouse events into stroke points; ``EditingController`` owns the stroke
(``begin_stroke`` / ``extend_stroke`` / ``end_stroke``). Other buttons, Space+drag and the pan
mode fall through to the canvas, so panning and zooming keep working while painting.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPen
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem

if TYPE_CHECKING:
    from app.editing.controller import EditingController

MIN_SIZE, MAX_SIZE = 1.0, 1000.0
SIZE_STEP = 1.25  # [ and ] change the size by this factor


class BrushCursorItem(QGraphicsItem):
    """The brush outline at the cursor: drawn in device pixels (crisp at any zoom), sized in image pixels."""

    def __init__(self) -> None:
        super().__init__()
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations, True)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self._radius_px = 5.0  # on screen
        self.eraser = False

    def set_screen_radius(self, radius: float) -> None:
        radius = max(float(radius), 1.5)
        if abs(radius - self._radius_px) > 1e-6:
            self.prepareGeometryChange()
            self._radius_px = radius

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt API
        r = self._radius_px + 3
        return QRectF(-r, -r, 2 * r, 2 * r)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        r = self._radius_px
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.setPen(QPen(QColor(0, 0, 0, 180), 3.0))
        painter.drawEllipse(QPointF(0, 0), r, r)
        pen = QPen(QColor(255, 120, 120) if self.eraser else QColor(255, 255, 255), 1.2)
        if self.eraser:
            pen.setStyle(Qt.PenStyle.DashLine)
        painter.setPen(pen)
        painter.drawEllipse(QPointF(0, 0), r, r)


def pan_requested(canvas) -> bool:
    """True while the canvas would pan with the left button (Space held or pan mode)."""
    return bool(getattr(canvas, "_space_held", False) or getattr(canvas, "_hand_mode", False))


class BrushTool:
    """``CanvasTool`` for the brush (``eraser=False``) and the eraser."""

    def __init__(self, controller: EditingController, eraser: bool) -> None:
        self.controller = controller
        self.eraser = eraser
        self.cursor = BrushCursorItem()
        self.cursor.eraser = eraser
        self.cursor.setZValue(60)
        self.cursor.hide()
        self._stroking = False

    @property
    def mode(self) -> str:
        return "eraser" if self.eraser else "brush"

    # --- lifecycle -------------------------------------------------------------------------------
    def activate(self) -> None:
        canvas = self.controller.canvas
        if self.cursor.scene() is None:
            canvas.add_item(self.cursor, 60)
        self.update_cursor_size()

    def deactivate(self) -> None:
        if self._stroking:
            self.controller.end_stroke()
            self._stroking = False
        self.cursor.hide()
        self.controller.canvas.remove_item(self.cursor)

    def update_cursor_size(self) -> None:
        scale = self.controller.canvas.scale_factor
        self.cursor.set_screen_radius(self.controller.brush_size / 2 * scale)

    # --- CanvasTool --------------------------------------------------------------------------------
    def mouse_press(self, event: QMouseEvent, image_pos: QPointF) -> bool:
        self._move_cursor(image_pos)
        if event.button() != Qt.MouseButton.LeftButton or pan_requested(self.controller.canvas):
            return False
        if not self.controller.begin_stroke(self.mode, (image_pos.x(), image_pos.y())):
            return False
        self._stroking = True
        event.accept()
        return True

    def mouse_move(self, event: QMouseEvent, image_pos: QPointF) -> bool:
        self._move_cursor(image_pos)
        if not self._stroking:
            return False  # hovering: the canvas still reports the pixel under the cursor
        self.controller.extend_stroke((image_pos.x(), image_pos.y()))
        event.accept()
        return True

    def mouse_release(self, event: QMouseEvent, image_pos: QPointF) -> bool:
        if not self._stroking or event.button() != Qt.MouseButton.LeftButton:
            return False
        self._stroking = False
        self.controller.end_stroke()
        event.accept()
        return True

    def reset(self) -> None:
        """Forget a stroke the controller ended on its own (image switch, close, undo)."""
        self._stroking = False

    @property
    def stroking(self) -> bool:
        return self._stroking

    def _move_cursor(self, image_pos: QPointF) -> None:
        self.cursor.setPos(image_pos)
        if not self.cursor.isVisible():
            self.update_cursor_size()
            self.cursor.show()
