"""The image canvas: a QGraphicsView in image coordinates with zoom, pan and the instance overlay.

Zoom: wheel (at the cursor), fit, 100 % (one image pixel per screen pixel). Pan: middle button,
left drag (a left click without moving selects), space + drag, or the hand mode. Other tools can
add items in image coordinates (``add_item``) or take the mouse first (``set_tool``).
"""

from __future__ import annotations

from typing import Protocol

from PySide6.QtCore import QPoint, QPointF, QRect, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QKeyEvent, QMouseEvent, QPainter, QPalette, QPixmapCache, QWheelEvent
from PySide6.QtWidgets import QApplication, QFrame, QGraphicsItem, QGraphicsScene, QGraphicsView, QWidget

from app.canvas_items import ImageItem
from app.image_loader import DisplayImage
from app.instance_overlay import InstanceOverlay
from app.selection import ItemKey

MIN_SCALE = 1 / 64
MAX_SCALE = 64.0
WHEEL_STEP = 1.2  # zoom factor per wheel notch (120 eighths of a degree)
PIXMAP_CACHE_KB = 256 * 1024


class CanvasTool(Protocol):
    """A tool that sees mouse events first (editing tools). Return True to consume the event."""

    def mouse_press(self, event: QMouseEvent, image_pos: QPointF) -> bool: ...
    def mouse_move(self, event: QMouseEvent, image_pos: QPointF) -> bool: ...
    def mouse_release(self, event: QMouseEvent, image_pos: QPointF) -> bool: ...


class ImageCanvas(QGraphicsView):
    instanceHovered = Signal(object)  # item key (app.selection), None when the cursor leaves all items
    instanceClicked = Signal(object)  # item key, None for a click on no item
    zoomChanged = Signal(float)  # percent: 100 = one image pixel per device pixel
    pixelHovered = Signal(int, int)  # image column, row; (-1, -1) outside the image

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # Item caches (photo, mask layer, outlines) live in QPixmapCache; its 10 MB default would
        # not hold even one full-screen layer, so the caches would be thrown away on every paint.
        QPixmapCache.setCacheLimit(max(QPixmapCache.cacheLimit(), PIXMAP_CACHE_KB))
        self.setScene(QGraphicsScene(self))
        self.image_item = ImageItem()
        self.scene().addItem(self.image_item)
        self.overlay = InstanceOverlay(self.scene())  # predictions and annotations: the one overlay stack
        self.zoomChanged.connect(lambda _pct: self.overlay.set_view_scale(self.scale_factor))
        self._image: DisplayImage | None = None
        self._fit_mode = True
        self._hovered: ItemKey | None = None
        self._pan_start: QPoint | None = None
        self._press_pos: QPoint | None = None
        self._panning = False
        self._space_held = False
        self._hand_mode = False
        self._tool: CanvasTool | None = None
        self._message = ""
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.setOptimizationFlag(QGraphicsView.OptimizationFlag.DontAdjustForAntialiasing, True)
        self.setMouseTracking(True)
        self.setAcceptDrops(False)  # the main window handles drops
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._apply_palette()
        self.setCursor(Qt.CursorShape.CrossCursor)

    # --- content -----------------------------------------------------------------------------
    def set_image(self, image: DisplayImage | None, keep_view: bool = False) -> None:
        """Show ``image`` (or nothing); fits it to the window unless ``keep_view``."""
        self._image = image
        self.image_item.set_levels(image.levels if image is not None else [])
        h, w = image.size if image is not None else (0, 0)
        self.scene().setSceneRect(QRectF(0, 0, w, h))
        self.overlay.clear()
        self._set_hovered(None)
        if not keep_view or image is None:
            self.fit_to_window()
        self.viewport().update()

    def set_message(self, text: str) -> None:
        """A line shown in the middle of the canvas while no image is displayed (e.g. why it failed)."""
        self._message = text
        self.viewport().update()

    @property
    def image(self) -> DisplayImage | None:
        return self._image

    def add_item(self, item: QGraphicsItem, z: float = 15.0) -> QGraphicsItem:
        """Add an item in image coordinates (cosmetic pens keep its lines crisp at any zoom)."""
        item.setZValue(z)
        self.scene().addItem(item)
        return item

    def remove_item(self, item: QGraphicsItem) -> None:
        if item.scene() is self.scene():
            self.scene().removeItem(item)

    def set_tool(self, tool: CanvasTool | None) -> None:
        self._tool = tool

    def set_hand_mode(self, on: bool) -> None:
        self._hand_mode = on
        self._update_cursor()

    # --- zoom ----------------------------------------------------------------------------------
    @property
    def scale_factor(self) -> float:
        """View pixels per image pixel."""
        return self.transform().m11()

    @property
    def zoom_percent(self) -> float:
        return self.scale_factor * self.devicePixelRatioF() * 100.0

    def _set_scale(self, scale: float, anchor: QPointF | None = None) -> None:
        """Set the scale, keeping the image point under viewport position ``anchor`` fixed."""
        scale = min(max(scale, MIN_SCALE), MAX_SCALE)
        if anchor is None:
            anchor = QPointF(self.viewport().rect().center())
        scene_pt = self.mapToScene(anchor.toPoint())
        self.setTransform(self.transform().fromScale(scale, scale))
        moved = self.mapFromScene(scene_pt) - anchor.toPoint()
        self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() + moved.x())
        self.verticalScrollBar().setValue(self.verticalScrollBar().value() + moved.y())
        self.zoomChanged.emit(self.zoom_percent)

    def zoom_by(self, factor: float, anchor: QPointF | None = None) -> None:
        self._fit_mode = False
        self._set_scale(self.scale_factor * factor, anchor)

    def zoom_in(self) -> None:
        self.zoom_by(WHEEL_STEP * WHEEL_STEP)

    def zoom_out(self) -> None:
        self.zoom_by(1 / (WHEEL_STEP * WHEEL_STEP))

    def zoom_actual(self) -> None:
        """100 %: one image pixel per physical screen pixel."""
        self._fit_mode = False
        self._set_scale(1.0 / self.devicePixelRatioF())

    def fit_to_window(self) -> None:
        self._fit_mode = True
        rect = self.scene().sceneRect()
        if rect.isEmpty():
            self.resetTransform()
            self.zoomChanged.emit(self.zoom_percent)
            return
        view = self.viewport().rect().adjusted(4, 4, -4, -4)
        scale = min(view.width() / rect.width(), view.height() / rect.height())
        self.setTransform(self.transform().fromScale(scale, scale))
        self.centerOn(rect.center())
        self.zoomChanged.emit(self.zoom_percent)

    def center_on_rect(self, rect: QRectF) -> None:
        self.centerOn(rect.center())

    # --- events --------------------------------------------------------------------------------------
    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().resizeEvent(event)
        if self._fit_mode:
            self.fit_to_window()

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 - Qt API
        delta = event.angleDelta().y() or event.angleDelta().x()
        if delta == 0:
            event.ignore()
            return
        self.zoom_by(WHEEL_STEP ** (delta / 120.0), event.position())
        event.accept()

    def image_pos(self, view_pos: QPointF | QPoint) -> QPointF:
        point = view_pos.toPoint() if isinstance(view_pos, QPointF) else view_pos
        return self.mapToScene(point)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        pos = self.image_pos(event.position())
        if self._tool is not None and self._tool.mouse_press(event, pos):
            return
        button = event.button()
        if button in (Qt.MouseButton.LeftButton, Qt.MouseButton.MiddleButton):
            self._pan_start = event.position().toPoint()
            self._press_pos = self._pan_start
            # Middle button, space or hand mode pan at once; a plain left press waits for movement.
            self._panning = button == Qt.MouseButton.MiddleButton or self._space_held or self._hand_mode
            self._update_cursor()
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        pos = self.image_pos(event.position())
        if self._tool is not None and self._tool.mouse_move(event, pos):
            return
        if self._pan_start is not None and self._press_pos is not None:  # set and cleared together
            now = event.position().toPoint()
            if not self._panning and (now - self._press_pos).manhattanLength() >= QApplication.startDragDistance():
                self._panning = True
                self._update_cursor()
            if self._panning:
                delta = now - self._pan_start
                self._pan_start = now
                self._fit_mode = False
                self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - delta.x())
                self.verticalScrollBar().setValue(self.verticalScrollBar().value() - delta.y())
            event.accept()
            return
        self._report_hover(pos)
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt API
        pos = self.image_pos(event.position())
        if self._tool is not None and self._tool.mouse_release(event, pos):
            return
        if self._pan_start is not None:
            was_click = not self._panning and event.button() == Qt.MouseButton.LeftButton
            self._pan_start = self._press_pos = None
            self._panning = False
            self._update_cursor()
            if was_click:
                self.instanceClicked.emit(self.overlay.key_at(pos.x(), pos.y()))
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def leaveEvent(self, event) -> None:  # noqa: N802 - Qt API
        self._set_hovered(None)
        self.pixelHovered.emit(-1, -1)
        super().leaveEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt API
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_held = True
            self._update_cursor()
            event.accept()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt API
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_held = False
            self._update_cursor()
            event.accept()
            return
        super().keyReleaseEvent(event)

    def focusOutEvent(self, event) -> None:  # noqa: N802 - Qt API
        self._space_held = False  # the key release may go elsewhere
        self._update_cursor()
        super().focusOutEvent(event)

    def changeEvent(self, event) -> None:  # noqa: N802 - Qt API
        if event.type() in (event.Type.PaletteChange, event.Type.StyleChange):
            self._apply_palette()
        super().changeEvent(event)

    def drawForeground(self, painter: QPainter, rect: QRectF | QRect) -> None:  # noqa: N802 - Qt API
        if self._image is not None:
            return
        painter.save()
        painter.resetTransform()
        painter.setPen(self.hint_colour())
        hint = "Open an image (Ctrl+O) or a folder (Ctrl+Shift+O),\nor drop files here."
        painter.drawText(
            self.viewport().rect(),
            Qt.AlignmentFlag.AlignCenter,
            f"{self._message}\n\n{hint}" if self._message else hint,
        )
        painter.restore()

    # --- helpers ------------------------------------------------------------------------------------
    def _report_hover(self, pos: QPointF) -> None:
        if self._image is None:
            return
        h, w = self._image.size
        col, row = int(pos.x() // 1), int(pos.y() // 1)
        inside = 0 <= col < w and 0 <= row < h
        self.pixelHovered.emit(col if inside else -1, row if inside else -1)
        self._set_hovered(self.overlay.key_at(pos.x(), pos.y()) if inside else None)

    def _set_hovered(self, key: ItemKey | None) -> None:
        if key != self._hovered:
            self._hovered = key
            self.overlay.set_hovered(key)
            self.instanceHovered.emit(key)

    def _update_cursor(self) -> None:
        if self._panning:
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
        elif self._space_held or self._hand_mode:
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
        else:
            self.viewport().setCursor(Qt.CursorShape.CrossCursor)

    def hint_colour(self) -> QColor:
        """The empty-canvas hint's colour: the palette's text, readable (>= 4.5:1) on the background."""
        from app.theme import readable_on

        return readable_on(self.backgroundBrush().color(), self.palette().color(QPalette.ColorRole.WindowText))

    def _apply_palette(self) -> None:
        # Follow the system light/dark palette: a slightly darker shade of the window colour.
        base = self.palette().color(QPalette.ColorRole.Window)
        bg = base.darker(125) if base.lightness() > 128 else base.darker(140)
        self.setBackgroundBrush(bg)

    def render_to_image(self, size: tuple[int, int] | None = None) -> QImage:
        """The scene (image + overlays) rendered at image resolution or ``size`` (w, h): for tests/export."""
        rect = self.scene().sceneRect()
        w, h = size if size is not None else (int(rect.width()), int(rect.height()))
        out = QImage(max(w, 1), max(h, 1), QImage.Format.Format_ARGB32_Premultiplied)
        out.fill(QColor(0, 0, 0, 0))
        painter = QPainter(out)
        self.scene().render(painter, QRectF(0, 0, w, h), rect)
        painter.end()
        return out
