"""Box and Point canvas tools: ask the model for the object in a dragged box or under a click.

The tools only turn mouse gestures into requests; ``PromptController`` (app.editing.prompting)
sends them to the model worker, holds the answer and accepts or discards it. ``PromptItem`` draws
the rubber band while dragging and the pending candidate: a hatched fill, a dashed outline, the
prompt box and a "prompt" label, so it never looks like an annotation or a model prediction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPainterPath
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem

from app.canvas_items import contours_path, cosmetic_pen
from app.editing.brush_tool import pan_requested

if TYPE_CHECKING:
    from app.editing.prompting import PromptController

PROMPT_RGB = (0, 220, 255)  # cyan: no class colour of the overlay palette is this saturated
PROMPT_COLOR = QColor(*PROMPT_RGB)
BAND_COLOR = QColor(255, 230, 0)
MIN_DRAG_PX = 4.0  # screen pixels: a shorter drag with the box tool is a click, not a box
Z_PROMPT = 58.0  # above annotations and predictions, below the brush cursor


class PromptItem(QGraphicsItem):
    """The rubber band being dragged and the candidate the model answered (image coordinates)."""

    def __init__(self) -> None:
        super().__init__()
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.band: QRectF | None = None  # the box being dragged
        self.box: QRectF | None = None  # the box (or point) the candidate answers
        self.point: QPointF | None = None
        self.outline = QPainterPath()
        self.fill: QImage | None = None
        self.fill_pos = QPointF()
        self.label = ""
        self._rect = QRectF()

    def set_band(self, band: QRectF | None) -> None:
        self.prepareGeometryChange()
        self.band = band.normalized() if band is not None else None
        self._update_rect()

    def set_candidate(
        self,
        argb: np.ndarray | None,
        x0: int,
        y0: int,
        contours: list[np.ndarray],
        label: str,
        box: QRectF | None,
        point: QPointF | None,
    ) -> None:
        """Show a candidate: ``argb`` (``hatched_argb`` of its mask) at column ``x0``, row ``y0``; None clears it."""
        self.prepareGeometryChange()
        self.fill = _qimage(argb) if argb is not None and argb.size else None
        self.fill_pos = QPointF(x0, y0)
        self.outline = contours_path(contours) if argb is not None else QPainterPath()
        self.label = label if argb is not None else ""
        self.box = box
        self.point = point
        self._update_rect()

    def clear(self) -> None:
        self.set_band(None)
        self.set_candidate(None, 0, 0, [], "", None, None)

    @property
    def has_candidate(self) -> bool:
        return self.fill is not None

    def _update_rect(self) -> None:
        rect = QRectF()
        if self.fill is not None:
            rect = rect.united(
                QRectF(
                    self.fill_pos,
                    QPointF(self.fill_pos.x() + self.fill.width(), self.fill_pos.y() + self.fill.height()),
                )
            )
        for r in (self.band, self.box):
            if r is not None:
                rect = rect.united(r)
        if self.point is not None:
            rect = rect.united(QRectF(self.point.x() - 1, self.point.y() - 1, 2, 2))
        # Room for the label and the cosmetic pens, whatever the zoom (labels are drawn in screen pixels).
        self._rect = rect.adjusted(-40, -40, 200, 40) if not rect.isNull() else QRectF()
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt API
        return self._rect

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        if self.fill is not None:
            painter.drawImage(self.fill_pos, self.fill)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        if not self.outline.isEmpty():
            painter.setPen(cosmetic_pen(QColor(0, 0, 0, 200), 3.5))
            painter.drawPath(self.outline)
            painter.setPen(cosmetic_pen(PROMPT_COLOR, 2.0, style=Qt.PenStyle.DashLine))
            painter.drawPath(self.outline)
        if self.box is not None:
            painter.setPen(cosmetic_pen(PROMPT_COLOR, 1.2, style=Qt.PenStyle.DotLine))
            painter.drawRect(self.box)
        if self.band is not None:
            painter.setPen(cosmetic_pen(QColor(0, 0, 0, 180), 3.0))
            painter.drawRect(self.band)
            painter.setPen(cosmetic_pen(BAND_COLOR, 1.5, style=Qt.PenStyle.DashLine))
            painter.drawRect(self.band)
        transform = painter.worldTransform()
        painter.save()
        painter.resetTransform()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        if self.point is not None:
            p = transform.map(self.point)
            painter.setPen(cosmetic_pen(QColor(0, 0, 0), 1.5))
            painter.setBrush(PROMPT_COLOR)
            painter.drawEllipse(p, 5.0, 5.0)
        if self.label:
            anchor = self.box.topLeft() if self.box is not None else self.outline.boundingRect().topLeft()
            if self.box is None and self.point is not None and self.outline.isEmpty():
                anchor = self.point
            self._draw_label(painter, transform.map(anchor))
        painter.restore()

    def _draw_label(self, painter: QPainter, at: QPointF) -> None:
        metrics = painter.fontMetrics()
        w, h = metrics.horizontalAdvance(self.label) + 8, metrics.height() + 2
        rect = QRectF(at.x(), at.y() - h, w, h)
        if rect.top() < 0:
            rect.moveTop(at.y())
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(0, 0, 0, 200))
        painter.drawRect(rect)
        painter.setPen(PROMPT_COLOR)
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, self.label)


def hatched_argb(bits: np.ndarray) -> np.ndarray:
    """The mask as a translucent cyan fill with diagonal stripes (distinct from the flat class fills):
    (h, w) uint32 premultiplied ARGB. Plain numpy, so the worker thread computes it."""
    h, w = bits.shape
    stripe = ((np.arange(w)[None, :] + np.arange(h)[:, None]) // 3) % 3 == 0
    r, g, b = PROMPT_RGB
    colours = [
        np.uint32((a << 24) | ((r * a // 255) << 16) | ((g * a // 255) << 8) | (b * a // 255)) for a in (70, 150)
    ]  # premultiplied: colour channels scaled by alpha
    out = np.zeros((h, w), np.uint32)
    out[bits & ~stripe] = colours[0]
    out[bits & stripe] = colours[1]
    return out


def _qimage(argb: np.ndarray) -> QImage:
    argb = np.ascontiguousarray(argb, np.uint32)
    h, w = argb.shape
    return QImage(argb.data, w, h, 4 * w, QImage.Format.Format_ARGB32_Premultiplied).copy()  # owns its pixels


class PromptTool:
    """A canvas tool for the Box (``mode='box'``) or Point (``mode='point'``) prompt.

    Box: drag a box; Shift+drag refines the shown candidate (the new box replaces its box, its class
    stays). Point: click an object. Space/middle drag still pans; the wheel zooms unless point
    candidates are shown (then it cycles them: ``PromptController.wheel``).
    """

    def __init__(self, prompts: PromptController, mode: str) -> None:
        if mode not in ("box", "point"):
            raise ValueError(f"mode must be 'box' or 'point', got {mode!r}")
        self.prompts = prompts
        self.mode = mode
        self._start: QPointF | None = None
        self._press_screen: QPointF | None = None
        self._refine = False

    @property
    def canvas(self):
        return self.prompts.canvas

    def activate(self) -> None:
        self.prompts.tool_activated(self.mode)

    def deactivate(self) -> None:
        self._start = None
        self.prompts.tool_deactivated(self.mode)

    @property
    def dragging(self) -> bool:
        return self._start is not None

    # --- CanvasTool -------------------------------------------------------------------------------
    def mouse_press(self, event: QMouseEvent, image_pos: QPointF) -> bool:
        if event.button() != Qt.MouseButton.LeftButton or pan_requested(self.canvas):
            return False
        if not self.prompts.has_image:
            return False
        self._start = self._clamp(image_pos)
        self._press_screen = event.position()
        self._refine = bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        return True

    def mouse_move(self, event: QMouseEvent, image_pos: QPointF) -> bool:
        if self._start is None:
            return False
        if self.mode == "box":
            self.prompts.item.set_band(QRectF(self._start, self._clamp(image_pos)))
        return True

    def mouse_release(self, event: QMouseEvent, image_pos: QPointF) -> bool:
        if self._start is None or event.button() != Qt.MouseButton.LeftButton:
            return self._start is not None
        start, self._start = self._start, None
        self.prompts.item.set_band(None)
        moved = self._press_screen is not None and _distance(event.position(), self._press_screen) >= MIN_DRAG_PX
        if self.mode == "point":
            if not moved:
                self.prompts.request_point(start.x(), start.y())
            return True
        if not moved:
            self.prompts.status("Box tool: drag a box around an object (Shift+drag refines the shown one).")
            return True
        end = self._clamp(image_pos)
        box = (min(start.x(), end.x()), min(start.y(), end.y()), max(start.x(), end.x()), max(start.y(), end.y()))
        self.prompts.request_box(box, refine=self._refine)
        return True

    def _clamp(self, pos: QPointF) -> QPointF:
        h, w = self.prompts.image_size or (0, 0)
        return QPointF(min(max(pos.x(), 0.0), float(w)), min(max(pos.y(), 0.0), float(h)))


def _distance(a: QPointF, b: QPointF) -> float:
    return float(np.hypot(a.x() - b.x(), a.y() - b.y()))
