"""The prototype viewer's tabs. Each draws what ``engine.inspect.prototype_inspection`` computed:

- ``PrototypeGridPanel``: the k prototypes on one colour scale; click one to enlarge it, double-click
  (or the checkbox) to switch it off for the selected detection's mask;
- ``CoefficientPanel``: the detection's coefficients as signed bars (optionally by magnitude, optionally
  beside another detection's), and the prototypes weighted by them;
- ``StagesPanel``: linear combination, sigmoid, crop, threshold, and the final mask.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGraphicsRectItem,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.inspectors.heatmap import BACKGROUND, DIVERGING, PROBABILITY, SEQUENTIAL, HeatmapView, symmetric_levels
from app.inspectors.widgets import monospace_text

if TYPE_CHECKING:
    from engine.inspect.prototype_inspection import Mosaic

GRID_COLUMNS = 8
POSITIVE = QColor(70, 140, 255)
NEGATIVE = QColor(240, 80, 70)
OTHER = QColor(255, 170, 40)
DISABLED = QColor(120, 120, 120)


def _rect_item(pen: QColor, brush: QColor | None = None, width: float = 2.0) -> QGraphicsRectItem:
    item = QGraphicsRectItem()
    item.setPen(pg.mkPen(pen, width=width))
    item.setBrush(pg.mkBrush(brush) if brush is not None else pg.mkBrush(None))
    item.setVisible(False)
    return item


class PrototypeGridPanel(QWidget):
    prototypePicked = Signal(int)
    prototypeToggled = Signal(int)
    allOnRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.mosaic: Mosaic | None = None  # set by show_grid
        self.current = 0  # the prototype shown large
        self.mosaic_view = HeatmapView("prototypes", SEQUENTIAL, colorbar=True)
        self.mosaic_view.clicked.connect(self._clicked)
        self.mosaic_view.doubleClicked.connect(self._double_clicked)
        self.large = HeatmapView("prototype", SEQUENTIAL, colorbar=True)
        self.use = QCheckBox("use in the selected detection's mask")
        self.use.setToolTip("Switch this prototype off to see the mask without it (double-click a tile does the same)")
        self.use.clicked.connect(lambda: self.prototypeToggled.emit(self.current))
        self.all_on = QPushButton("All prototypes on")
        self.all_on.clicked.connect(self.allOnRequested.emit)
        self.info = QLabel()
        self.info.setWordWrap(True)
        self._labels: list[pg.TextItem] = []
        self._shades: list[QGraphicsRectItem] = []
        self._selected = _rect_item(QColor(255, 255, 0), width=3)
        self._selected.setZValue(10)  # above the shading of switched-off tiles
        self.mosaic_view.vb.addItem(self._selected)
        side = QVBoxLayout()
        side.addWidget(self.large, 1)
        side.addWidget(self.info)
        side.addWidget(self.use)
        side.addWidget(self.all_on)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.mosaic_view, 3)
        layout.addLayout(side, 1)

    def show_grid(self, grid, mosaic) -> None:
        """``grid``: PrototypeGrid; ``mosaic``: its tiled maps (engine.inspect.tile_maps)."""
        self.grid, self.mosaic = grid, mosaic
        hp, wp = grid.size
        self.mosaic_view.set_title(
            f"{grid.count} prototypes, {hp}x{wp}, one colour scale [{grid.vmin:.3g}, {grid.vmax:.3g}]"
        )
        self.mosaic_view.set_image(mosaic.image, (grid.vmin, grid.vmax))
        vb = self.mosaic_view.vb
        for item in self._labels + self._shades:
            vb.removeItem(item)
        self._labels, self._shades = [], []
        for i in range(grid.count):
            x, y, w, h = mosaic.tile_rect(i)
            text = pg.TextItem(str(i), color=(255, 255, 255), fill=pg.mkBrush(0, 0, 0, 140), anchor=(0, 0))
            text.setPos(x, y)
            vb.addItem(text)
            shade = _rect_item(QColor(255, 60, 60), QColor(0, 0, 0, 170), width=2)
            shade.setRect(QRectF(x, y, w, h))
            vb.addItem(shade)
            self._labels.append(text)
            self._shades.append(shade)
        self.current = min(self.current, grid.count - 1)

    def show_enabled(self, enabled: np.ndarray | None) -> None:
        for i, shade in enumerate(self._shades):
            shade.setVisible(enabled is not None and not bool(enabled[i]))
        self.use.setEnabled(enabled is not None)
        self.use.setChecked(enabled is None or bool(enabled[self.current]))

    def show_prototype(self, index: int, coefficient: float | None, det_label: str) -> None:
        assert self.mosaic is not None, "show_grid comes first"
        self.current = index
        g = self.grid
        self.large.set_title(f"prototype {index}")
        self.large.set_image(g.maps[index], (g.vmin, g.vmax))
        coef = f"; coefficient {coefficient:+.4f} in {det_label}" if coefficient is not None else ""
        self.info.setText(
            f"prototype {index}: min {g.minima[index]:.4g}, max {g.maxima[index]:.4g}, mean {g.means[index]:.4g}{coef}"
        )
        x, y, w, h = self.mosaic.tile_rect(index)
        self._selected.setRect(QRectF(x, y, w, h))
        self._selected.setVisible(True)

    def _clicked(self, x: float, y: float, _pixel: float) -> None:
        if self.mosaic is not None:
            tile = self.mosaic.tile_at(x, y)
            if tile is not None:
                self.prototypePicked.emit(tile)

    def _double_clicked(self, x: float, y: float) -> None:
        if self.mosaic is not None:
            tile = self.mosaic.tile_at(x, y)
            if tile is not None:
                self.prototypePicked.emit(tile)
                self.prototypeToggled.emit(tile)


class CoefficientPanel(QWidget):
    orderChanged = Signal()
    compareChanged = Signal()
    prototypePicked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot = pg.PlotWidget()
        self.plot.setBackground(BACKGROUND)
        self.plot.showGrid(y=True, alpha=0.3)
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(False, False)
        self.plot.getAxis("left").setLabel("coefficient")
        self.plot.getAxis("bottom").setLabel("prototype")
        self.plot.addLine(y=0, pen=pg.mkPen((200, 200, 200), width=1))
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.8)
        self.other_bars = pg.BarGraphItem(x=[], height=[], width=0.4)
        self.plot.addItem(self.bars)
        self.plot.addItem(self.other_bars)
        self.plot.scene().sigMouseClicked.connect(self._clicked)
        self.sort = QCheckBox("sort by |coefficient|")
        self.sort.toggled.connect(lambda _on: self.orderChanged.emit())
        self.compare = QComboBox()
        self.compare.setToolTip("Show another detection's coefficients beside these (orange)")
        self.compare.currentIndexChanged.connect(lambda _i: self.compareChanged.emit())
        self.text = monospace_text(70)
        self.weighted = HeatmapView("prototypes x coefficients", DIVERGING, colorbar=True)
        controls = QHBoxLayout()
        controls.addWidget(self.sort)
        controls.addWidget(QLabel("compare with"))
        controls.addWidget(self.compare, 1)
        left = QVBoxLayout()
        left.addLayout(controls)
        left.addWidget(self.plot, 3)
        left.addWidget(self.text, 1)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(left, 3)
        layout.addWidget(self.weighted, 2)
        self.order = np.zeros(0, np.int64)
        self.heights = np.zeros(0)

    @property
    def by_magnitude(self) -> bool:
        return self.sort.isChecked()

    def set_choices(self, labels: list[str], selected: int) -> None:
        """Detections to compare with (index -1 = none)."""
        self.compare.blockSignals(True)
        current = self.compare.currentData()
        self.compare.clear()
        self.compare.addItem("(none)", -1)
        for i, label in enumerate(labels):
            if i != selected:
                self.compare.addItem(label, i)
        pos = self.compare.findData(current) if current is not None else 0
        self.compare.setCurrentIndex(max(pos, 0))
        self.compare.blockSignals(False)

    @property
    def compare_with(self) -> int:
        data = self.compare.currentData()
        return -1 if data is None else int(data)

    def show_coefficients(self, composition, order: np.ndarray, comparison=None) -> None:
        c = composition
        self.order = np.asarray(order)
        heights = c.coefficients[self.order].astype(np.float64)
        self.heights = heights
        enabled = c.enabled[self.order]
        brushes = [
            pg.mkBrush(DISABLED if not on else (POSITIVE if h >= 0 else NEGATIVE))
            for h, on in zip(heights, enabled, strict=True)
        ]
        x = np.arange(len(heights), dtype=np.float64)
        width = 0.4 if comparison is not None else 0.8
        shift = -0.2 if comparison is not None else 0.0
        self.bars.setOpts(x=x + shift, height=heights, width=width, brushes=brushes, pens=[pg.mkPen(None)] * len(x))
        if comparison is not None:
            other = comparison.b[self.order]
            self.other_bars.setOpts(x=x + 0.2, height=other, width=0.4, brush=pg.mkBrush(OTHER), pen=pg.mkPen(None))
            self.other_bars.setVisible(True)
            self.text.setPlainText("\n".join(comparison.lines()))
        else:
            self.other_bars.setVisible(False)
            self.text.setPlainText(
                f"#{c.det_index + 1} {c.class_name}: blue > 0, red < 0, grey = switched off; "
                f"largest |coefficient|: prototype {int(c.order('magnitude')[0])}"
            )
        step = max(1, len(x) // 16)
        ticks = [(float(i), str(int(p))) for i, p in enumerate(self.order) if i % step == 0]
        self.plot.getAxis("bottom").setTicks([ticks])
        self.plot.setXRange(-0.8, len(x) - 0.2, padding=0)
        hi = max(float(np.abs(heights).max()) if len(heights) else 1.0, 1e-6)
        if comparison is not None:
            hi = max(hi, float(np.abs(comparison.b).max()))
        self.plot.setYRange(-hi * 1.05, hi * 1.05, padding=0)

    def show_weighted(self, mosaic, limit: float, title: str) -> None:
        self.weighted.set_title(title)
        self.weighted.set_image(mosaic.image, symmetric_levels(limit))

    def _clicked(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton or len(self.order) == 0:
            return
        vb = self.plot.getPlotItem().vb
        if not vb.sceneBoundingRect().contains(event.scenePos()):
            return
        i = int(round(vb.mapSceneToView(event.scenePos()).x()))
        if 0 <= i < len(self.order):
            self.prototypePicked.emit(int(self.order[i]))


class StagesPanel(QWidget):
    """The mask of the selected detection, stage by stage, as a strip of panels."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.assembled = HeatmapView("linear combination P @ c", DIVERGING, colorbar=True)
        self.sigmoid = HeatmapView("sigmoid", PROBABILITY)
        self.cropped = HeatmapView("crop to box (+1 px)", PROBABILITY)
        self.threshold = HeatmapView("> 0.5", "CET-L1")
        self.final = HeatmapView("final mask on the image", "CET-L1")
        self.final_mask = pg.ImageItem(axisOrder="row-major")  # RGBA mask over the image crop
        self.final.vb.addItem(self.final_mask)
        self.zoom = QCheckBox("zoom to the box")
        self.zoom.setChecked(True)
        self.zoom.toggled.connect(lambda _on: self._apply_zoom())
        self._composition = None
        self.crop_box = _rect_item(QColor(0, 255, 255), width=1.5)
        self.cropped.vb.addItem(self.crop_box)
        self.box_item = _rect_item(QColor(0, 255, 255), width=1.5)
        self.final.vb.addItem(self.box_item)
        self.text = monospace_text(80)
        strip = QGridLayout()
        for i, view in enumerate((self.assembled, self.sigmoid, self.cropped, self.threshold, self.final)):
            strip.addWidget(view, 0, i)
            strip.setColumnStretch(i, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.zoom)
        layout.addLayout(strip, 3)
        layout.addWidget(self.text, 1)

    def _apply_zoom(self) -> None:
        """Show the prototype-resolution stages around the crop box, or whole."""
        c = self._composition
        if c is None:
            return
        hp, wp = c.assembled.shape
        if self.zoom.isChecked():
            (y1, y2), (x1, x2) = c.crop_rows, c.crop_cols
            pad = max(0.5 * max(x2 - x1, y2 - y1), 6.0)
            rect = QRectF(x1 - pad, y1 - pad, x2 - x1 + 2 * pad, y2 - y1 + 2 * pad).intersected(QRectF(0, 0, wp, hp))
        else:
            rect = QRectF(0, 0, wp, hp)
        for view in (self.assembled, self.sigmoid, self.cropped, self.threshold):
            view.vb.setRange(rect, padding=0.02)

    def show_stages(self, c, image=None) -> None:
        """``c``: DetectionComposition; ``image``: the RGB image, shown under the final mask."""
        self._composition = c
        self.assembled.set_image(c.assembled, symmetric_levels(c.assembled_limit))
        self.sigmoid.set_image(c.sigmoid, (0.0, 1.0))
        self.cropped.set_image(c.cropped, (0.0, 1.0))
        (r0, r1), (c0, c1) = c.crop_rows, c.crop_cols  # the prototype pixels the crop keeps
        self.crop_box.setRect(QRectF(c0, r0, c1 - c0, r1 - r0))
        self.crop_box.setVisible(True)
        self.threshold.set_image(c.thresholded.astype(np.float32), (0.0, 1.0))
        self._show_final(c, image)
        self._apply_zoom()
        self.text.setPlainText("\n".join(c.lines()))

    def _show_final(self, c, image) -> None:
        m = c.mask
        h, w = m.bits.shape
        bx1, by1, bx2, by2 = (int(v) for v in c.box_image)
        # The image around the box (grey), the mask over it in magenta.
        pad = max(4, (max(bx2 - bx1, by2 - by1)) // 3)
        ex1, ey1, ex2, ey2 = bx1, by1, bx2, by2
        if h and w:  # an empty mask has no place of its own
            ex1, ey1, ex2, ey2 = min(ex1, m.x0), min(ey1, m.y0), max(ex2, m.x0 + w), max(ey2, m.y0 + h)
        if image is not None:
            ih, iw = image.shape[:2]
            x0, y0 = max(ex1 - pad, 0), max(ey1 - pad, 0)
            x1, y1 = min(ex2 + pad, iw), min(ey2 + pad, ih)
            crop = image[y0:y1, x0:x1].astype(np.float32).mean(axis=2) if x1 > x0 and y1 > y0 else None
        else:
            crop = None
        if crop is None:
            x0, y0 = bx1, by1
            crop = np.zeros((max(by2 - by1, 1), max(bx2 - bx1, 1)), np.float32)
        ch, cw = crop.shape
        self.final.set_image(crop, (0.0, 255.0), (float(x0), float(y0), float(cw), float(ch)), fit=False)
        if h and w:
            rgba = np.zeros((h, w, 4), np.uint8)
            rgba[m.bits] = (255, 0, 255, 150)
            self.final_mask.setImage(rgba, levels=None, autoLevels=False)
            self.final_mask.setRect(QRectF(float(m.x0), float(m.y0), float(w), float(h)))
            self.final_mask.setVisible(True)
            self.final.set_title(f"final mask: {m.area} px")
        else:
            self.final_mask.setVisible(False)
            self.final.set_title("final mask: empty")
        self.box_item.setRect(QRectF(bx1, by1, bx2 - bx1, by2 - by1))
        self.box_item.setVisible(True)
        self.final.fit()
