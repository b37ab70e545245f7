"""QGraphicsItems of the canvas: the photo (mip-mapped), the composited mask layer, outlines, boxes.

All items live in image coordinates (one scene unit = one image pixel). Lines use cosmetic pens and
labels are drawn in device space, so they stay crisp and readable at any zoom.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from collections.abc import Set as AbstractSet

import numpy as np
import shiboken6
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer
from PySide6.QtGui import (
    QColor,
    QFont,
    QImage,
    QPainter,
    QPainterPath,
    QPen,
    QPolygonF,
    QStaticText,
    QTransform,
)
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem

from app.colors import readable_text_rgb
from app.label_layout import LabelRequest, place_labels


def argb_qimage(argb: np.ndarray, fmt: QImage.Format) -> QImage:
    """Wrap a C-contiguous (H, W) uint32 array as a QImage without copying.

    The QImage does not own the memory: callers keep ``argb`` alive as long as the image.
    """
    h, w = argb.shape
    return QImage(argb.data, w, h, argb.strides[0], fmt)


PIXEL_ZOOM = 2.0  # from this zoom on, image pixels are drawn as sharp squares (nearest neighbour)


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
        # Cached in device pixels: overlay changes repaint from a blit, not a rescale of the photo.
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)

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
        # Filtered up to 2x (never more than 2x down per level); from 2x on, show crisp pixels.
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, lod < PIXEL_ZOOM)
        painter.drawImage(target, image, source)


class ArgbImageItem(QGraphicsItem):
    """A premultiplied ARGB buffer drawn at the item's origin, only its exposed part.

    Cached in device pixels: the item opacity applies when the cache is blitted (an opacity change
    costs one blit), and a partial ``update(rect)`` re-renders only ``rect`` into the cache.
    """

    smooth_below = PIXEL_ZOOM  # zoom under which pixels are filtered; from it on, sharp squares

    def __init__(self) -> None:
        super().__init__()
        self._argb: np.ndarray | None = None
        self._image: QImage | None = None
        self._rect = QRectF()
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption, True)
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)

    def _set_argb(self, argb: np.ndarray | None, width: int, height: int) -> None:
        self.prepareGeometryChange()
        self._argb = argb  # keeps the memory behind the QImage alive
        self._image = None if argb is None else argb_qimage(argb, QImage.Format.Format_ARGB32_Premultiplied)
        self._rect = QRectF(0, 0, width, height)

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
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, _level_of_detail(painter) < self.smooth_below)
        painter.drawImage(target, self._image, target)


class MaskLayerItem(ArgbImageItem):
    """One composited ARGB image holding every visible mask; placed at its union box.

    The fill opacity is the item's opacity, so changing it repaints without recompositing.
    """

    def set_layer(self, argb: np.ndarray | None, x0: int, y0: int) -> None:
        h, w = (0, 0) if argb is None else argb.shape
        self._set_argb(argb, w, h)
        self.setPos(x0, y0)
        self.update()


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
    """Instances' outlines in their colours as one-pixel cosmetic lines, cached in device pixels:
    the one outline item of the overlay, for predictions and annotations alike.

    One-pixel cosmetic lines take Qt's fast hairline rasteriser, while any wider pen goes through
    the general stroker (about 10x slower for 100 masks). The cache is redrawn only when the
    outlines, the shown set or the zoom change; hover and selection are ``HighlightItem``'s, so
    moving the mouse never redraws 100 outlines. Outlines are addressed by position; ``keys``
    (the overlay's item keys) name them for ``set_hidden``, ``set_selected`` and ``path_of``.
    """

    def __init__(self) -> None:
        super().__init__()
        self._paths: list[QPainterPath] = []
        self._colors: list[QColor] = []
        self._pens: list[QPen] = []
        self._ids: list[Hashable] = []
        self._visible: np.ndarray = np.zeros(0, bool)  # shown by the owner (threshold, review state)
        self._hidden: set[Hashable] = set()  # keys whose outline is stale (a brush stroke in progress)
        self.selected: Hashable = None  # key whose outline the highlight draws instead
        self._rect = QRectF()
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)

    def set_outlines(
        self,
        paths: list[QPainterPath],
        colors: list[QColor],
        image_rect: QRectF,
        ids: Sequence[Hashable] | None = None,
        visible: np.ndarray | None = None,
    ) -> None:
        self.prepareGeometryChange()
        self._paths = paths
        self._colors = colors
        self._pens = [cosmetic_pen(c, 1.0) for c in colors]
        self._ids = list(range(len(paths))) if ids is None else list(ids)
        self._visible = np.ones(len(paths), bool) if visible is None else np.asarray(visible, bool)
        self._rect = QRectF(image_rect)
        self.update()

    def set_visible_instances(self, visible: np.ndarray) -> None:
        self._visible = visible
        self.update()

    def set_hidden(self, ids: AbstractSet[Hashable]) -> None:
        if ids != self._hidden:
            self._hidden = set(ids)
            self.update()

    def set_selected(self, instance_id: Hashable) -> None:
        if instance_id != self.selected:
            self.selected = instance_id
            self.update()

    @property
    def hidden(self) -> set[Hashable]:
        return self._hidden

    @property
    def paths(self) -> list[QPainterPath]:
        return self._paths

    @property
    def colors(self) -> list[QColor]:
        return self._colors

    def path_of(self, instance_id: Hashable) -> QPainterPath | None:
        for i, path in zip(self._ids, self._paths, strict=True):
            if i == instance_id:
                return path
        return None

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt API
        return self._rect

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        pens, ids, skip = self._pens, self._ids, self._hidden
        for i in np.flatnonzero(self._visible):
            inst_id = ids[i]
            if inst_id == self.selected or (skip and inst_id in skip):
                continue
            painter.setPen(pens[i])
            painter.drawPath(self._paths[i])


HALO = QColor(0, 0, 0, 170)


class HighlightItem(QGraphicsItem):
    """The hovered and the selected instance's outlines, thick on a dark halo (white when
    selected): the one highlight item of the overlay, for predictions and annotations alike.

    ``tight``: its bounds are the outlines' own boxes (padded for the wide pen), so repaints
    elsewhere (brush segments on other instances) never stroke it; otherwise the image.
    """

    def __init__(self, tight: bool = False) -> None:
        super().__init__()
        self._tight = tight
        self._lines: list[tuple[QPainterPath, QColor, float]] = []
        self._image_rect = QRectF()
        self._rect = QRectF()
        self.pad = 8.0  # image pixels around the paths for the wide pen; set from the zoom
        if tight:
            self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)

    def set_lines(self, lines: list[tuple[QPainterPath, QColor, float]], image_rect: QRectF | None = None) -> None:
        """(path, colour, width) to draw, bottom first."""
        self.prepareGeometryChange()
        self._lines = lines
        if image_rect is not None:
            self._image_rect = QRectF(image_rect)
        self._update_rect()
        self.update()

    def set_view_scale(self, scale: float) -> None:
        self.pad = 4.0 / max(scale, 1e-6)
        self.prepareGeometryChange()
        self._update_rect()

    def _update_rect(self) -> None:
        if not self._tight:
            self._rect = self._image_rect
            return
        rect = QRectF()
        for path, _color, _width in self._lines:
            rect = rect.united(path.boundingRect())
        self._rect = rect.adjusted(-self.pad, -self.pad, self.pad, self.pad) if self._lines else QRectF()

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt API
        return self._rect

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        for path, color, width in self._lines:
            # A dark halo under the line keeps it visible on any background.
            painter.setPen(cosmetic_pen(HALO, width + 2.0, Qt.PenJoinStyle.MiterJoin))
            painter.drawPath(path)
            painter.setPen(cosmetic_pen(color, width, Qt.PenJoinStyle.MiterJoin))
            painter.drawPath(path)


def cosmetic_pen(
    color: QColor, width: float, join: Qt.PenJoinStyle = Qt.PenJoinStyle.RoundJoin, style=Qt.PenStyle.SolidLine
) -> QPen:
    """A pen of ``width`` screen pixels at any zoom."""
    pen = QPen(color, width, style)
    pen.setCosmetic(True)
    pen.setJoinStyle(join)
    return pen


MIN_LABELLED_BOX = 16.0  # device pixels: smaller boxes get no label (hovering shows it)


ANNOTATION_LABEL_PRIORITY = 1.5  # above any score: what the user made keeps its label first


class BoxLabelItem(QGraphicsItem):
    """Boxes and class/score label chips. Chips are drawn in device pixels (constant size at any zoom):
    a filled rectangle plus a QStaticText laid out once per prediction (laying out 100 texts on
    every repaint, or antialiased rounded chips, would cost tens of milliseconds).

    Entries are predictions (box, class and score) or, where ``predicted`` is False, annotations
    (class label only); all labels are placed together, so none covers another."""

    def __init__(self) -> None:
        super().__init__()
        self._boxes = np.zeros((0, 4), np.float32)
        self._class_names: list[str] = []
        self._scores = np.zeros(0, np.float32)
        self._colors: list[QColor] = []
        self._visible = np.zeros(0, bool)
        self._predicted = np.zeros(0, bool)
        self._rect = QRectF()
        self._texts: dict[str, QStaticText] = {}
        self._rects: list[QRectF] = []
        self._pens: list[QPen] = []
        self._text_colors: list[QColor] = []
        self._defer_once = False
        # Labels are placed in the painter's device space, which for a device cache is the cache
        # pixmap's: the same drawing code works cached, and a repaint is a blit.
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
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
        predicted: np.ndarray | None = None,
        visible: np.ndarray | None = None,
    ) -> None:
        """``predicted``: which entries are predictions (default all); ``visible``: shown ones (default all)."""
        self.prepareGeometryChange()
        self._boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        n = len(self._boxes)
        self._predicted = np.ones(n, bool) if predicted is None else np.asarray(predicted, bool)
        self._class_names = class_names
        self._scores = np.asarray(scores, np.float32)
        self._colors = colors
        # Built once per prediction: paint() runs on every zoom step.
        self._rects = [QRectF(float(x1), float(y1), float(x2 - x1), float(y2 - y1)) for x1, y1, x2, y2 in self._boxes]
        self._pens = [cosmetic_pen(c, 1.0) for c in colors]
        self._text_colors = [QColor(*readable_text_rgb((c.red(), c.green(), c.blue()))) for c in colors]
        # The frame that shows a new prediction already redraws masks and outlines; boxes and labels
        # follow one event-loop turn later, so no single frame blocks the GUI for all of it.
        self._defer_once = len(self._rects) > 0
        self._visible = np.ones(n, bool) if visible is None else np.asarray(visible, bool)
        self._rect = QRectF(image_rect)
        self._texts.clear()
        self.update()

    def set_visible_instances(self, visible: np.ndarray) -> None:
        self._visible = visible
        self.update()

    def set_flags(self, boxes: bool | None = None, labels: bool | None = None, scores: bool | None = None) -> None:
        if boxes is not None:
            self.show_boxes = boxes
        if labels is not None or scores is not None:
            self.show_labels = self.show_labels if labels is None else labels
            self.show_scores = self.show_scores if scores is None else scores
            self._texts.clear()  # the text changed
        self.update()

    def label_text(self, i: int) -> str:
        return self.label_texts(i)[0]

    def label_texts(self, i: int) -> list[str]:
        """The label's full text, then shorter forms for crowded places (class only, its initial)."""
        name = self._class_names[i]
        if not self._predicted[i]:
            return [name, name[:1]] if self.show_labels else [""]
        full = " ".join(([name] if self.show_labels else []) + ([f"{self._scores[i]:.2f}"] if self.show_scores else []))
        shorter = [name, name[:1]] if self.show_labels else []
        return [full] + [t for t in shorter if t != full]

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt API
        return self._rect

    def _text(self, text_value: str) -> QStaticText:
        text = self._texts.get(text_value)
        if text is None:
            text = self._texts[text_value] = QStaticText(text_value)
            text.setTextFormat(Qt.TextFormat.PlainText)
            text.prepare(QTransform(), self.font)
        return text

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        if not (self.show_boxes or self.show_labels or self.show_scores) or not len(self._boxes):
            return
        if self._defer_once:
            self._defer_once = False
            QTimer.singleShot(0, self.update)
            return
        order = np.flatnonzero(self._visible)[::-1].tolist()
        if self.show_boxes:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
            # Solid hairlines: dashed or wide cosmetic pens are slow to rasterise.
            for i in order:
                if not self._predicted[i]:
                    continue
                painter.setPen(self._pens[i] if i != self.selected else cosmetic_pen(self._colors[i], 2.0))
                painter.drawRect(self._rects[i])
        if not (self.show_labels or self.show_scores):
            return
        transform = painter.worldTransform()
        device_bounds = transform.mapRect(self._rect)
        painter.save()
        painter.resetTransform()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        painter.setFont(self.font)
        pad_x, pad_y = 3.0, 1.0

        def measure(value: str) -> tuple[float, float]:
            size = self._text(value).size()
            return size.width() + 2 * pad_x, size.height() + 2 * pad_y

        requests, indices = [], []
        for i in order:
            on_screen = transform.mapRect(self._rects[i])
            if i != self.selected and min(on_screen.width(), on_screen.height()) < MIN_LABELLED_BOX:
                continue
            texts = self.label_texts(i)
            if not texts[0]:
                continue
            box = (on_screen.left(), on_screen.top(), on_screen.width(), on_screen.height())
            priority = float(self._scores[i]) if self._predicted[i] else ANNOTATION_LABEL_PRIORITY
            if i == self.selected:
                priority = 2.0  # the selection always has one
            requests.append(LabelRequest(box, texts, priority))
            indices.append(i)
        view = (device_bounds.left(), device_bounds.top(), device_bounds.width(), device_bounds.height())
        for placed in place_labels(requests, view, measure):
            i = indices[placed.index]
            x, y, w, h = placed.rect
            painter.fillRect(QRectF(x, y, w, h), self._colors[i])
            painter.setPen(self._text_colors[i])
            painter.drawStaticText(QPointF(x + pad_x, y + pad_y), self._text(placed.text))
        painter.restore()
