"""QGraphicsItems of the canvas: the photo (mip-mapped), the composited mask layer, outlines, boxes.

All items live in image coordinates (one scene unit = one image pixel). Lines use cosmetic pens and
labels are drawn in device space, so they stay crisp and readable at any zoom.
"""

from __future__ import annotations

import math

import numpy as np
import shiboken6
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QImage, QPainter, QPainterPath, QPen, QPolygonF
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem

from app.colors import readable_text_rgb


def argb_qimage(argb: np.ndarray, fmt: QImage.Format) -> QImage:
    """Wrap a C-contiguous (H, W) uint32 array as a QImage without copying.

    The QImage does not own the memory: callers keep ``argb`` alive as long as the image.
    """
    h, w = argb.shape
    return QImage(argb.data, w, h, argb.strides[0], fmt)


def _level_of_detail(painter: QPainter) -> float:
    return QStyleOptionGraphicsItem.levelOfDetailFromTransform(painter.worldTransform())


class ImageItem(QGraphicsItem):
    """The photo: paints the pyramid level that matches the zoom, and only the exposed part."""

    def __init__(self) -> None:
        super().__init__()
        self._levels: list[np.ndarray] = []
        self._images: list[QImage] = []
        self._rect = QRectF()
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption, True)

    def set_levels(self, levels: list[np.ndarray]) -> None:
        self.prepareGeometryChange()
        self._levels = levels  # keeps the pixel memory alive for the QImages below
        self._images = [argb_qimage(level, QImage.Format.Format_RGB32) for level in levels]
        h, w = levels[0].shape if levels else (0, 0)
        self._rect = QRectF(0, 0, w, h)
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt API
        return self._rect

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        if not self._images:
            return
        lod = _level_of_detail(painter)
        # The smallest level that still has at least one source pixel per device pixel.
        k = 0 if lod >= 1 else min(int(math.floor(math.log2(1.0 / lod))), len(self._images) - 1)
        image = self._images[k]
        target = option.exposedRect.intersected(self._rect)
        if target.isEmpty():
            return
        sx = image.width() / self._rect.width()
        sy = image.height() / self._rect.height()
        source = QRectF(target.x() * sx, target.y() * sy, target.width() * sx, target.height() * sy)
        # Zoomed in, show crisp pixels; zoomed out, filter (never more than 2x per level).
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, lod < 1)
        painter.drawImage(target, image, source)


class MaskLayerItem(QGraphicsItem):
    """One composited ARGB image holding every visible mask; placed at its union box.

    The fill opacity is the item's opacity, so changing it repaints without recompositing.
    """

    def __init__(self) -> None:
        super().__init__()
        self._argb: np.ndarray | None = None
        self._image: QImage | None = None
        self._rect = QRectF()
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption, True)

    def set_layer(self, argb: np.ndarray | None, x0: int, y0: int) -> None:
        self.prepareGeometryChange()
        self._argb = argb
        if argb is None:
            self._image = None
            self._rect = QRectF()
        else:
            self._image = argb_qimage(argb, QImage.Format.Format_ARGB32_Premultiplied)
            self._rect = QRectF(0, 0, argb.shape[1], argb.shape[0])
        self.setPos(x0, y0)
        self.update()

    @property
    def qimage(self) -> QImage | None:
        return self._image

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt API
        return self._rect

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        if self._image is None:
            return
        target = option.exposedRect.intersected(self._rect)
        if target.isEmpty():
            return
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, _level_of_detail(painter) < 1)
        painter.drawImage(target, self._image, target)


def polygon_from_array(points: np.ndarray, close: bool = True) -> QPolygonF:
    """A QPolygonF filled straight from a (K, 2) array (no per-point Python objects)."""
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    if close and len(pts):
        pts = np.concatenate([pts, pts[:1]])
    poly = QPolygonF()
    poly.resize(len(pts))
    if len(pts):
        view = np.frombuffer(shiboken6.VoidPtr(poly.data(), len(pts) * 16, True), dtype=np.float64)
        view[:] = pts.ravel()
    return poly


def contours_path(contours: list[np.ndarray]) -> QPainterPath:
    path = QPainterPath()
    for contour in contours:
        if len(contour) >= 2:
            path.addPolygon(polygon_from_array(contour))
        elif len(contour) == 1:  # a one-pixel mask: a tiny square so it still shows
            x, y = float(contour[0][0]), float(contour[0][1])
            path.addRect(QRectF(x - 0.5, y - 0.5, 1, 1))
    return path


class OutlineItem(QGraphicsItem):
    """Mask outlines with cosmetic pens; the hovered and selected instances are emphasised."""

    def __init__(self) -> None:
        super().__init__()
        self._paths: list[QPainterPath] = []
        self._colors: list[QColor] = []
        self._visible: np.ndarray = np.zeros(0, bool)
        self._rect = QRectF()
        self.show_all = True
        self.selected = -1
        self.hovered = -1

    def set_outlines(self, paths: list[QPainterPath], colors: list[QColor], image_rect: QRectF) -> None:
        self.prepareGeometryChange()
        self._paths = paths
        self._colors = colors
        self._visible = np.ones(len(paths), bool)
        self._rect = QRectF(image_rect)
        self.update()

    def set_visible_instances(self, visible: np.ndarray) -> None:
        self._visible = visible
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt API
        return self._rect

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        if self.show_all:
            for i, path in enumerate(self._paths):
                if self._visible[i] and i not in (self.selected, self.hovered):
                    painter.setPen(_cosmetic(self._colors[i], 1.5))
                    painter.drawPath(path)
        for i, width in ((self.hovered, 2.5), (self.selected, 3.0)):
            if 0 <= i < len(self._paths) and self._visible[i]:
                # A dark halo under the colour keeps the emphasised outline visible on any background.
                painter.setPen(_cosmetic(QColor(0, 0, 0, 170), width + 2.5))
                painter.drawPath(self._paths[i])
                pen_color = QColor(255, 255, 255) if i == self.selected else self._colors[i]
                painter.setPen(_cosmetic(pen_color, width))
                painter.drawPath(self._paths[i])


def _cosmetic(color: QColor, width: float, style: Qt.PenStyle = Qt.PenStyle.SolidLine) -> QPen:
    pen = QPen(color, width, style)
    pen.setCosmetic(True)
    pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
    return pen


class BoxLabelItem(QGraphicsItem):
    """Boxes with class/score labels; labels are painted in device pixels so their size never changes."""

    def __init__(self) -> None:
        super().__init__()
        self._boxes = np.zeros((0, 4), np.float32)
        self._texts_class: list[str] = []
        self._scores = np.zeros(0, np.float32)
        self._colors: list[QColor] = []
        self._visible = np.zeros(0, bool)
        self._rect = QRectF()
        self.show_boxes = True
        self.show_labels = True
        self.show_scores = True
        self.selected = -1
        self.font = QFont()

    def set_boxes(
        self,
        boxes: np.ndarray,
        class_names: list[str],
        scores: np.ndarray,
        colors: list[QColor],
        image_rect: QRectF,
    ) -> None:
        self.prepareGeometryChange()
        self._boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        self._texts_class = class_names
        self._scores = np.asarray(scores, np.float32)
        self._colors = colors
        self._visible = np.ones(len(self._boxes), bool)
        self._rect = QRectF(image_rect)
        self.update()

    def set_visible_instances(self, visible: np.ndarray) -> None:
        self._visible = visible
        self.update()

    def label_text(self, i: int) -> str:
        parts = []
        if self.show_labels:
            parts.append(self._texts_class[i])
        if self.show_scores:
            parts.append(f"{self._scores[i]:.2f}")
        return " ".join(parts)

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt API
        return self._rect

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        if not (self.show_boxes or self.show_labels or self.show_scores) or not len(self._boxes):
            return
        order = [i for i in range(len(self._boxes) - 1, -1, -1) if self._visible[i]]
        if self.show_boxes:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
            for i in order:
                x1, y1, x2, y2 = (float(v) for v in self._boxes[i])
                width = 2.0 if i == self.selected else 1.0
                style = Qt.PenStyle.SolidLine if i == self.selected else Qt.PenStyle.DashLine
                painter.setPen(_cosmetic(self._colors[i], width, style))
                painter.drawRect(QRectF(x1, y1, x2 - x1, y2 - y1))
        if not (self.show_labels or self.show_scores):
            return
        transform = painter.worldTransform()
        device_bounds = transform.mapRect(self._rect)
        painter.save()
        painter.resetTransform()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setFont(self.font)
        metrics = QFontMetricsF(self.font)
        pad = 3.0
        for i in order:
            text = self.label_text(i)
            top_left = transform.map(QPointF(float(self._boxes[i][0]), float(self._boxes[i][1])))
            w = metrics.horizontalAdvance(text) + 2 * pad
            h = metrics.height() + pad
            x = top_left.x()
            y = top_left.y() - h  # above the box, or inside it at the image's top edge
            if y < device_bounds.top():
                y = top_left.y()
            x = min(max(x, device_bounds.left()), device_bounds.right() - w)
            chip = QRectF(x, y, w, h)
            color = self._colors[i]
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(color)
            painter.drawRoundedRect(chip, 2.0, 2.0)
            painter.setPen(QColor(*readable_text_rgb((color.red(), color.green(), color.blue()))))
            painter.drawText(chip, Qt.AlignmentFlag.AlignCenter, text)
        painter.restore()
