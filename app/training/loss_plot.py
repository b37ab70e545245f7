"""Live loss curves: one pyqtgraph curve per loss component plus the total, with a legend.

Points are buffered and drawn at most a few times a second, so a fast GPU run (tens of
iterations a second) costs the GUI thread nothing noticeable. pyqtgraph is imported when the plot is
first shown or fed, not with the window (it costs a quarter of a second at start-up).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QVBoxLayout, QWidget

if TYPE_CHECKING:
    import pyqtgraph as pg

TOTAL = "total"
REDRAW_MS = 200


class LossPlot(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plot: pg.PlotWidget | None = None  # built by _ensure_plot
        self.legend: pg.LegendItem | None = None  # built with the plot
        self.log_y = QCheckBox("Log scale")
        self.log_y.setToolTip("Logarithmic loss axis: small components stay readable beside large ones")
        self.log_y.toggled.connect(lambda on: self._ensure_plot().getPlotItem().setLogMode(y=on))
        controls = QHBoxLayout()
        controls.addStretch(1)
        controls.addWidget(self.log_y)
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.addLayout(controls)

        self.curves: dict[str, pg.PlotDataItem] = {}
        self._x: dict[str, list[float]] = {}
        self._y: dict[str, list[float]] = {}
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.redraw)

    def _ensure_plot(self) -> pg.PlotWidget:
        if self.plot is not None:
            return self.plot
        import pyqtgraph as pg

        self.plot = pg.PlotWidget(background="w")
        self.plot.setMinimumHeight(140)
        item = self.plot.getPlotItem()
        item.showGrid(x=True, y=True, alpha=0.25)
        item.setLabel("bottom", "iteration")
        item.setLabel("left", "loss")
        item.setLogMode(y=self.log_y.isChecked())
        self.legend = item.addLegend(offset=(-8, 8), labelTextColor="#222", brush=pg.mkBrush(255, 255, 255, 200))
        self._layout.insertWidget(0, self.plot, 1)
        return self.plot

    def showEvent(self, event: QShowEvent) -> None:
        self._ensure_plot()
        super().showEvent(event)

    def clear(self) -> None:
        self._timer.stop()
        plot, legend = self.plot, self.legend
        if plot is not None and legend is not None:  # curves exist only once the plot does
            for curve in self.curves.values():
                legend.removeItem(curve)
                plot.removeItem(curve)
        self.curves.clear()
        self._x.clear()
        self._y.clear()

    def add_point(self, iteration: int, losses: dict[str, float], total: float | None) -> None:
        """Buffer one iteration's losses (None / non-finite values are skipped); drawn shortly."""
        values = dict(losses)
        if total is not None:
            values[TOTAL] = total
        for key, value in values.items():
            if value is None or not np.isfinite(value):
                continue
            if key not in self.curves:
                self._add_curve(key)
            self._x[key].append(float(iteration))
            self._y[key].append(float(value))
        if not self._timer.isActive():
            self._timer.start(REDRAW_MS)

    def _add_curve(self, key: str) -> None:
        import pyqtgraph as pg

        plot = self._ensure_plot()
        components = [k for k in self.curves if k != TOTAL]
        if key == TOTAL:
            pen = pg.mkPen("#222222", width=2, style=Qt.PenStyle.DashLine)
        else:
            pen = pg.mkPen(pg.intColor(len(components), hues=6, values=1, maxValue=220), width=2)
        curve = plot.plot([], [], pen=pen, name=key)
        self.curves[key] = curve
        self._x[key] = []
        self._y[key] = []

    def redraw(self) -> None:
        for key, curve in self.curves.items():
            curve.setData(np.asarray(self._x[key]), np.asarray(self._y[key]))

    def series(self, key: str) -> tuple[list[float], list[float]]:
        """The points received for ``key`` (iterations, values)."""
        return list(self._x.get(key, [])), list(self._y.get(key, []))

    def drawn_points(self, key: str) -> int:
        """How many points of ``key`` are on screen now."""
        curve = self.curves.get(key)
        if curve is None:
            return 0
        x, _ = curve.getData()
        return 0 if x is None else len(x)
