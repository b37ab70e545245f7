"""Canvas items of the inspectors, in image coordinates (one scene unit = one original pixel).

Lines use cosmetic pens and points/labels are drawn in device pixels, so the RoIAlign grid stays
crisp and readable at any zoom. The geometry comes ready-made from engine.inspect.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QLineF, QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetricsF, QImage, QPainter, QPen, QPixmap, QPolygonF
from PySide6.QtWidgets import QGraphicsItem, QGraphicsPixmapItem, QStyleOptionGraphicsItem

PROPOSAL_COLOR = QColor(255, 170, 0)
REFINED_COLOR = QColor(60, 230, 90)
GRID_COLOR = QColor(0, 220, 255)
SAMPLE_COLOR = QColor(255, 60, 200)
INVALID_COLOR = QColor(150, 150, 150)
POOL_COLOR = QColor(255, 80, 60)
SELECT_COLOR = QColor(255, 255, 0)
NEIGHBOR_COLOR = QColor(255, 255, 255)
RECOMPOSED_COLOR = QColor(255, 0, 255, 140)  # a YOLACT mask recomputed with prototypes switched off


def cosmetic_pen(color: QColor, width: float = 1.0, style: Qt.PenStyle = Qt.PenStyle.SolidLine) -> QPen:
    pen = QPen(color, width, style)
    pen.setCosmetic(True)
    return pen


def _rect(box) -> QRectF:
    x1, y1, x2, y2 = (float(v) for v in box)
    return QRectF(QPointF(x1, y1), QPointF(x2, y2)).normalized()


class RoIOverlayItem(QGraphicsItem):
    """Proposal and refined boxes, RoIAlign bins and samples, RoIPool bins and the selection."""

    def __init__(self) -> None:
        super().__init__()
        self._boxes: list[tuple[QRectF, QColor, Qt.PenStyle, str]] = []
        self._grid: list[QLineF] = []
        self._samples = QPolygonF()
        self._invalid = QPolygonF()
        self._pool: list[QRectF] = []
        self._selected_bin: QRectF | None = None
        self._selected_sample: QPointF | None = None
        self._neighbors: list[QRectF] = []
        self._bounds = QRectF()
        self.show_grid = True
        self.show_samples = True
        self.show_pool = False
        self.show_boxes = True
        self._font = QFont()
        self._font.setPointSizeF(8.5)

    # --- content -------------------------------------------------------------------------------
    def set_geometry(
        self,
        boxes: list[tuple[np.ndarray, str, str]],
        grid_segments: np.ndarray,
        samples: np.ndarray,
        valid: np.ndarray,
        pool_rects: np.ndarray,
    ) -> None:
        """``boxes``: (xyxy, kind 'proposal'|'refined', label). Segments (L, 4), samples (N, 2),
        valid (N,), pool rects (M, 4): all in original image coordinates."""
        self.prepareGeometryChange()
        styles = {
            "proposal": (PROPOSAL_COLOR, Qt.PenStyle.DashLine),
            "refined": (REFINED_COLOR, Qt.PenStyle.SolidLine),
        }
        self._boxes = [(_rect(b), *styles[kind], label) for b, kind, label in boxes]
        self._grid = [QLineF(float(a), float(b), float(c), float(d)) for a, b, c, d in np.asarray(grid_segments)]
        pts = np.asarray(samples, dtype=np.float64).reshape(-1, 2)
        ok = np.asarray(valid, dtype=bool).reshape(-1)
        self._samples = QPolygonF([QPointF(x, y) for x, y in pts[ok]])
        self._invalid = QPolygonF([QPointF(x, y) for x, y in pts[~ok]])
        self._pool = [_rect(r) for r in np.asarray(pool_rects).reshape(-1, 4)]
        self._selected_bin = None
        self._selected_sample = None
        self._neighbors = []
        rect = QRectF()
        for r, *_ in self._boxes:
            rect = rect.united(r)
        for r in self._pool:
            rect = rect.united(r)
        for line in self._grid:
            rect = rect.united(QRectF(line.p1(), line.p2()).normalized())
        if len(pts):
            lo, hi = pts.min(axis=0), pts.max(axis=0)
            rect = rect.united(QRectF(QPointF(lo[0], lo[1]), QPointF(hi[0], hi[1])))
        # Points and labels are drawn in device pixels, outside the geometry: keep a generous margin.
        margin = 0.25 * max(rect.width(), rect.height()) + 40.0
        self._bounds = rect.adjusted(-margin, -margin, margin, margin)
        self.update()

    def set_selection(
        self,
        bin_rect: tuple[float, float, float, float] | None,
        sample: tuple[float, float] | None,
        neighbor_rects: list[tuple[float, float, float, float]],
    ) -> None:
        self._selected_bin = _rect(bin_rect) if bin_rect is not None else None
        self._selected_sample = QPointF(*sample) if sample is not None else None
        self._neighbors = [_rect(r) for r in neighbor_rects]
        self.update()

    def set_layers(self, grid: bool, samples: bool, pool: bool, boxes: bool = True) -> None:
        self.show_grid, self.show_samples, self.show_pool, self.show_boxes = grid, samples, pool, boxes
        self.update()

    @property
    def sample_count(self) -> int:
        return self._samples.size() + self._invalid.size()

    @property
    def segment_count(self) -> int:
        return len(self._grid)

    # --- painting --------------------------------------------------------------------------------
    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt API
        return self._bounds

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        if self.show_pool and self._pool:
            painter.setPen(cosmetic_pen(POOL_COLOR, 1.0, Qt.PenStyle.DashLine))
            for r in self._pool:
                painter.drawRect(r)
        if self.show_grid and self._grid:
            painter.setPen(cosmetic_pen(GRID_COLOR, 1.0))
            painter.drawLines(self._grid)
        if self._selected_bin is not None:
            fill = QColor(SELECT_COLOR)
            fill.setAlpha(70)
            painter.setBrush(QBrush(fill))
            painter.setPen(cosmetic_pen(SELECT_COLOR, 2.0))
            painter.drawRect(self._selected_bin)
            painter.setBrush(Qt.BrushStyle.NoBrush)
        if self._neighbors:
            painter.setPen(cosmetic_pen(NEIGHBOR_COLOR, 1.5, Qt.PenStyle.DotLine))
            for r in self._neighbors:
                painter.drawRect(r)
        if self.show_boxes:
            for r, color, style, _ in self._boxes:
                painter.setPen(cosmetic_pen(color, 2.0, style))
                painter.drawRect(r)
        self._paint_device_space(painter)

    def _paint_device_space(self, painter: QPainter) -> None:
        """Sample dots and box labels at a fixed size in screen pixels."""
        transform = painter.worldTransform()
        painter.save()
        painter.resetTransform()
        if self.show_samples:
            for poly, color, size in ((self._samples, SAMPLE_COLOR, 3.0), (self._invalid, INVALID_COLOR, 3.0)):
                if poly.isEmpty():
                    continue
                pen = QPen(color, size)
                pen.setCapStyle(Qt.PenCapStyle.RoundCap)
                painter.setPen(pen)
                painter.drawPoints(transform.map(poly))
        if self._selected_sample is not None:
            p = transform.map(self._selected_sample)
            painter.setPen(QPen(SELECT_COLOR, 2.0))
            painter.drawEllipse(p, 6.0, 6.0)
        if self.show_boxes:
            painter.setFont(self._font)
            metrics = QFontMetricsF(self._font)
            for r, color, style, label in self._boxes:
                if not label:
                    continue
                w, h = metrics.horizontalAdvance(label) + 6, metrics.height() + 2
                # Proposal labels go under the box, refined-box labels above: they never overlap.
                if style == Qt.PenStyle.DashLine:
                    corner = transform.map(r.bottomLeft())
                    back = QRectF(corner.x(), corner.y() + 1, w, h)
                else:  # top right: the instance overlay puts its own label at the top left
                    corner = transform.map(r.topRight())
                    back = QRectF(corner.x() - w, corner.y() - h - 1, w, h)
                painter.fillRect(back, QColor(0, 0, 0, 170))
                painter.setPen(color)
                painter.drawText(back, Qt.AlignmentFlag.AlignCenter, label)
        painter.restore()


class MaskPatchItem(QGraphicsPixmapItem):
    """A boolean mask patch shown as a translucent colour at its place in the image."""

    def __init__(self, color: QColor | None = None) -> None:
        super().__init__()
        self._color = color if color is not None else QColor(RECOMPOSED_COLOR)
        self._area = 0
        self.setTransformationMode(Qt.TransformationMode.FastTransformation)

    def set_mask(self, x0: int, y0: int, bits: np.ndarray) -> None:
        bits = np.asarray(bits, dtype=bool)
        self._area = int(bits.sum())
        h, w = bits.shape
        if h == 0 or w == 0:
            self.setPixmap(QPixmap())
            return
        argb = np.zeros((h, w), np.uint32)
        c = self._color
        # Premultiplied ARGB: colour channels scaled by alpha.
        a = c.alpha()
        value = (a << 24) | ((c.red() * a // 255) << 16) | ((c.green() * a // 255) << 8) | (c.blue() * a // 255)
        argb[bits] = value
        image = QImage(argb.data, w, h, argb.strides[0], QImage.Format.Format_ARGB32_Premultiplied).copy()
        self.setPixmap(QPixmap.fromImage(image))
        self.setOffset(float(x0), float(y0))

    @property
    def area(self) -> int:
        return self._area
