"""Heatmap widgets for the inspectors: a pyqtgraph image view with an optional colour bar, and a
table of numbers with a colour per cell. They only draw arrays the engine computed."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem, QWidget

SEQUENTIAL = "viridis"
DIVERGING = "CET-D1"  # blue - white - red, for signed values
PROBABILITY = "inferno"
BACKGROUND = QColor(32, 32, 36)


def colormap(name: str) -> pg.ColorMap:
    return pg.colormap.get(name)


def symmetric_levels(limit: float) -> tuple[float, float]:
    limit = abs(float(limit)) or 1.0
    return -limit, limit


def value_levels(values: np.ndarray) -> tuple[float, float]:
    """Min/max of the finite values (a flat map gets a unit range around its value)."""
    finite = values[np.isfinite(values)] if values.size else values
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = float(finite.min()), float(finite.max())
    return (lo, hi) if hi > lo else (lo - 0.5, hi + 0.5)


class HeatmapView(pg.GraphicsLayoutWidget):
    """One image in data coordinates (y down), optional title and colour bar; reports clicks.

    ``clicked(x, y, pixel)``: a left click at data point (x, y); ``pixel`` is the size of one screen
    pixel in data units (for pick tolerances). ``doubleClicked(x, y)`` likewise.
    """

    clicked = Signal(float, float, float)
    doubleClicked = Signal(float, float)

    def __init__(
        self,
        title: str = "",
        cmap: str = SEQUENTIAL,
        colorbar: bool = False,
        interactive: bool = False,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setBackground(BACKGROUND)
        self.ci.setContentsMargins(2, 2, 2, 2)
        self.ci.setSpacing(2)
        self.title = self.addLabel(title, row=0, col=0, colspan=2, size="9pt")
        self.vb: pg.ViewBox = self.addViewBox(row=1, col=0, lockAspect=True, invertY=True, enableMenu=False)
        self.vb.setMouseEnabled(interactive, interactive)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setColorMap(colormap(cmap))
        self.vb.addItem(self.image)
        self.bar: pg.ColorBarItem | None = None
        if colorbar:
            self.bar = pg.ColorBarItem(colorMap=colormap(cmap), interactive=False, width=12)
            self.addItem(self.bar, row=1, col=1)
            self.bar.setImageItem(self.image)
        self._has_image = False
        self._double_pending = False
        self.scene().sigMouseClicked.connect(self._on_click)
        self.setMinimumSize(80, 80)

    # --- content -------------------------------------------------------------------------------
    def set_title(self, text: str) -> None:
        self.title.setText(text)

    def set_colormap(self, name: str) -> None:
        cmap = colormap(name)
        self.image.setColorMap(cmap)
        if self.bar is not None:
            self.bar.setColorMap(cmap)

    def set_image(
        self,
        values: np.ndarray,
        levels: tuple[float, float] | None = None,
        rect: tuple[float, float, float, float] | None = None,
        fit: bool = True,
    ) -> None:
        """Show ``values`` (h, w); ``rect`` = x, y, width, height in data units (default: one unit per
        value, top-left at 0, 0)."""
        values = np.ascontiguousarray(values, dtype=np.float32)
        lv = levels if levels is not None else value_levels(values)
        self.image.setImage(values, levels=lv, autoLevels=False)
        h, w = values.shape
        x, y, rw, rh = rect if rect is not None else (0.0, 0.0, float(w), float(h))
        self.image.setRect(QRectF(x, y, rw, rh))
        if self.bar is not None:
            self.bar.setLevels(lv)
        self._has_image = True
        self.image.setVisible(True)
        if fit:
            self.fit()

    def clear_image(self) -> None:
        self._has_image = False
        self.image.setVisible(False)

    @property
    def has_image(self) -> bool:
        return self._has_image

    def fit(self) -> None:
        self.vb.autoRange(padding=0.02)

    # --- mouse -------------------------------------------------------------------------------------
    def _on_click(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton or not self._has_image:
            return
        pos = event.scenePos()
        if not self.vb.sceneBoundingRect().contains(pos):
            return
        point = self.vb.mapSceneToView(pos)
        if event.double():
            # pyqtgraph reports one double-click as two click events (Qt turns the double-click into
            # a second press too): emit once, after the scene has delivered both.
            if not self._double_pending:
                self._double_pending = True
                x, y = point.x(), point.y()
                QTimer.singleShot(0, lambda: self._emit_double(x, y))
        else:
            self.clicked.emit(point.x(), point.y(), float(self.vb.viewPixelSize()[0]))
        event.accept()

    def _emit_double(self, x: float, y: float) -> None:
        self._double_pending = False
        self.doubleClicked.emit(x, y)


class ValueGrid(QTableWidget):
    """A small 2-D array as numbers, each cell tinted by its value; ``cellPicked(row, col)``.

    The exact value of each cell is kept in its ``Qt.UserRole`` data (the text is rounded).
    """

    cellPicked = Signal(int, int)

    def __init__(self, cmap: str = SEQUENTIAL, digits: int = 4, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._cmap = colormap(cmap)
        self._digits = digits
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.horizontalHeader().setMinimumSectionSize(20)
        self.cellClicked.connect(self.cellPicked.emit)

    def set_colormap(self, name: str) -> None:
        self._cmap = colormap(name)

    def set_values(self, values: np.ndarray, levels: tuple[float, float] | None = None) -> None:
        values = np.asarray(values, dtype=np.float64)
        h, w = values.shape
        lo, hi = levels if levels is not None else value_levels(values)
        span = hi - lo if hi > lo else 1.0
        self.setRowCount(h)
        self.setColumnCount(w)
        self.setHorizontalHeaderLabels([str(c) for c in range(w)])
        self.setVerticalHeaderLabels([str(r) for r in range(h)])
        colors = self._cmap.map(np.clip((values - lo) / span, 0, 1).reshape(-1), mode="qcolor")
        for r in range(h):
            for c in range(w):
                v = float(values[r, c])
                item = QTableWidgetItem(f"{v:.{self._digits}g}")
                item.setData(Qt.ItemDataRole.UserRole, v)
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                color = colors[r * w + c]
                item.setBackground(QBrush(color))
                item.setForeground(QBrush(QColor(0, 0, 0) if color.lightness() > 140 else QColor(255, 255, 255)))
                item.setToolTip(f"({r}, {c}) = {v!r}")
                self.setItem(r, c, item)

    def values(self) -> np.ndarray:
        """The exact values shown (from the items' data)."""
        out = np.zeros((self.rowCount(), self.columnCount()), np.float64)
        for r in range(self.rowCount()):
            for c in range(self.columnCount()):
                out[r, c] = float(self._cell(r, c).data(Qt.ItemDataRole.UserRole))
        return out

    def texts(self) -> list[list[str]]:
        return [[self._cell(r, c).text() for c in range(self.columnCount())] for r in range(self.rowCount())]

    def _cell(self, row: int, col: int) -> QTableWidgetItem:
        item = self.item(row, col)
        assert item is not None  # every cell gets an item when the table is filled
        return item

    def select(self, row: int, col: int) -> None:
        if 0 <= row < self.rowCount() and 0 <= col < self.columnCount():
            self.blockSignals(True)
            self.setCurrentCell(row, col)
            self.blockSignals(False)
