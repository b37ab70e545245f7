"""The feature-map view of the RoI inspector: one FPN level around the RoI, in feature coordinates,
with cell boundaries, the RoIAlign bins and sample points, RoIPool's quantized bins and the
selection drawn over it. Cell (r, c) is the unit square centred on (x=c, y=r)."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QGraphicsRectItem, QWidget

from app.inspectors.canvas_overlays import (
    GRID_COLOR,
    INVALID_COLOR,
    NEIGHBOR_COLOR,
    POOL_COLOR,
    SAMPLE_COLOR,
    SELECT_COLOR,
    cosmetic_pen,
)
from app.inspectors.heatmap import SEQUENTIAL, HeatmapView

CELL_LINE = QColor(0, 0, 0, 90)


def _pairs(segments: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    seg = np.asarray(segments, dtype=np.float64).reshape(-1, 4)
    return seg[:, [0, 2]].reshape(-1), seg[:, [1, 3]].reshape(-1)


def rect_segments(rects: np.ndarray) -> np.ndarray:
    """(M, 4) x1, y1, x2, y2 rectangles -> (4M, 4) edge segments."""
    r = np.asarray(rects, dtype=np.float64).reshape(-1, 4)
    x1, y1, x2, y2 = r[:, 0], r[:, 1], r[:, 2], r[:, 3]
    edges = [(x1, y1, x2, y1), (x2, y1, x2, y2), (x2, y2, x1, y2), (x1, y2, x1, y1)]
    return np.stack([np.stack(e, axis=1) for e in edges], axis=1).reshape(-1, 4)


def _rect_item(color: QColor, width: float, style: Qt.PenStyle = Qt.PenStyle.SolidLine) -> QGraphicsRectItem:
    item = QGraphicsRectItem()
    item.setPen(cosmetic_pen(color, width, style))
    item.setVisible(False)
    return item


class FeatureMapView(HeatmapView):
    def __init__(self, title: str = "", parent: QWidget | None = None) -> None:
        super().__init__(title, SEQUENTIAL, colorbar=True, interactive=True, parent=parent)
        self.cells = pg.PlotCurveItem(connect="pairs", pen=pg.mkPen(CELL_LINE, width=1))
        self.grid = pg.PlotCurveItem(connect="pairs", pen=pg.mkPen(GRID_COLOR, width=1.5))
        self.pool = pg.PlotCurveItem(connect="pairs", pen=pg.mkPen(POOL_COLOR, width=1.5, style=Qt.PenStyle.DashLine))
        self.samples = pg.ScatterPlotItem(pxMode=True, size=6, pen=pg.mkPen(None), brush=pg.mkBrush(SAMPLE_COLOR))
        self.invalid = pg.ScatterPlotItem(pxMode=True, size=6, pen=pg.mkPen(None), brush=pg.mkBrush(INVALID_COLOR))
        self.selected_bin = _rect_item(SELECT_COLOR, 2.5)
        self.pool_bin = _rect_item(POOL_COLOR, 2.5)
        self.argmax_cell = _rect_item(POOL_COLOR, 2.0, Qt.PenStyle.DotLine)
        self.neighbors = [_rect_item(NEIGHBOR_COLOR, 1.5) for _ in range(4)]
        self.selected_sample = pg.ScatterPlotItem(
            pxMode=True, size=14, pen=pg.mkPen(SELECT_COLOR, width=2), brush=pg.mkBrush(None)
        )
        for item in (self.cells, self.pool, self.grid, self.samples, self.invalid, self.selected_bin, self.pool_bin):
            self.vb.addItem(item)
        for item in (*self.neighbors, self.argmax_cell, self.selected_sample):
            self.vb.addItem(item)
        self._n_samples = 0

    def set_window(
        self,
        values: np.ndarray,
        rect: tuple[float, float, float, float],
        levels: tuple[float, float] | None = None,
        fit: bool = True,
    ) -> None:
        """Show the feature window ``values`` covering ``rect`` = x1, y1, x2, y2 (feature coords)."""
        x1, y1, x2, y2 = rect
        self.set_image(values, levels, (x1, y1, x2 - x1, y2 - y1), fit=fit)
        # One line per cell boundary inside the window.
        xs = np.arange(x1, x2 + 0.25, 1.0)
        ys = np.arange(y1, y2 + 0.25, 1.0)
        segs = [(x, y1, x, y2) for x in xs] + [(x1, y, x2, y) for y in ys]
        self.cells.setData(*_pairs(np.array(segs)))

    def set_geometry(
        self, grid_segments: np.ndarray, samples: np.ndarray, valid: np.ndarray, pool_rects: np.ndarray
    ) -> None:
        self.grid.setData(*_pairs(grid_segments))
        pts = np.asarray(samples, dtype=np.float64).reshape(-1, 2)
        ok = np.asarray(valid, dtype=bool).reshape(-1)
        self.samples.setData(pos=pts[ok])
        self.invalid.setData(pos=pts[~ok])
        self._n_samples = len(pts)
        self.pool.setData(*_pairs(rect_segments(pool_rects)))

    def set_layers(self, grid: bool, samples: bool, pool: bool) -> None:
        self.grid.setVisible(grid)
        self.samples.setVisible(samples)
        self.invalid.setVisible(samples)
        self.pool.setVisible(pool)

    def set_selection(
        self,
        bin_rect: tuple[float, float, float, float] | None,
        sample: tuple[float, float] | None,
        neighbor_rects: list[tuple[float, float, float, float]],
        pool_rect: tuple[float, float, float, float] | None = None,
        argmax_rect: tuple[float, float, float, float] | None = None,
    ) -> None:
        for item, r in ((self.selected_bin, bin_rect), (self.pool_bin, pool_rect), (self.argmax_cell, argmax_rect)):
            item.setVisible(r is not None)
            if r is not None:
                item.setRect(QRectF(r[0], r[1], r[2] - r[0], r[3] - r[1]))
        for i, item in enumerate(self.neighbors):
            show = i < len(neighbor_rects)
            item.setVisible(show)
            if show:
                r = neighbor_rects[i]
                item.setRect(QRectF(r[0], r[1], r[2] - r[0], r[3] - r[1]))
        self.selected_sample.setData(
            pos=np.array([sample], dtype=np.float64) if sample is not None else np.zeros((0, 2))
        )

    @property
    def sample_count(self) -> int:
        return self._n_samples
