"""The RoI inspector's tabs. Each shows numbers an ``engine.inspect.RoIInspection`` computed:

1. ``BoxesPanel``: proposal and refined box, box-head top-5 scores, the FPN level formula.
2. ``AlignPanel``: the feature map around the RoI with bins and samples, pooled values, worked example.
3. ``ComparePanel``: RoIAlign beside RoIPool and their difference.
4. ``MaskPanel``: the 28x28 probabilities and how they are pasted into the box.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QSplitter, QVBoxLayout, QWidget

from app.inspectors.feature_view import FeatureMapView
from app.inspectors.heatmap import DIVERGING, PROBABILITY, SEQUENTIAL, HeatmapView, ValueGrid, symmetric_levels
from app.inspectors.widgets import fill_table, monospace_text, small_table

Selection = tuple[int, int, tuple[int, int] | None]


def _xyxy(box) -> str:
    return "(" + ", ".join(f"{float(v):.1f}" for v in box) + ")"


def _section(text: str) -> QLabel:
    label = QLabel(f"<b>{text}</b>")
    label.setTextFormat(Qt.TextFormat.RichText)
    return label


class BoxesPanel(QWidget):
    """Step 1 and 2: where the RoI came from, what the box head thinks, and which level it used."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.boxes = small_table()
        self.classes = small_table()
        self.formula = monospace_text(150)
        self.levels = small_table()
        left = QVBoxLayout()
        left.addWidget(_section("1. Proposal and refined box"))
        left.addWidget(self.boxes, 2)
        left.addWidget(_section("Box head: top-5 class probabilities"))
        left.addWidget(self.classes, 3)
        right = QVBoxLayout()
        self.level_title = _section("2. FPN level")
        right.addWidget(self.level_title)
        right.addWidget(self.formula, 3)
        right.addWidget(self.levels, 2)
        layout = QHBoxLayout(self)
        layout.addLayout(left, 1)
        layout.addLayout(right, 1)

    def show_inspection(self, insp, drawn: bool = False) -> None:
        """``drawn``: the RoI is a box the user drew (a box prompt), pooled as is by both heads."""
        sy, sx = insp.scale
        if drawn:
            rows = [
                ["drawn box", _xyxy(insp.roi_image), _xyxy(insp.roi_network), "no RPN proposal"],
                ["refined box", "(none)", "(none)", f"score {insp.score:.4f} for the drawn box"],
            ]
        else:
            rows = [
                [
                    f"proposal #{insp.proposal_index}",
                    _xyxy(insp.proposal_image),
                    _xyxy(insp.proposal_network),
                    f"objectness {insp.proposal_objectness:.4f}",
                ],
                ["refined box", _xyxy(insp.refined_image), _xyxy(insp.refined_network), f"score {insp.score:.4f}"],
            ]
        fill_table(self.boxes, ["box", "image x1, y1, x2, y2", f"network (x{sx:.3g}, x{sy:.3g})", ""], rows)
        top = [[name, f"{p:.4f}"] for name, p in insp.top_classes] + [["(background)", f"{insp.background_prob:.4f}"]]
        fill_table(self.classes, ["class", "probability"], top, bold_row=0)
        lv = insp.level
        roi_name = "drawn box" if drawn else insp.roi_name
        self.level_title.setText(f"<b>2. FPN level for the {insp.head_name} (pools the {roi_name}): P{lv.level}</b>")
        self.formula.setPlainText("\n".join(lv.formula_lines()))
        rows = [
            [f"P{r['level']}", r["featmap"], f"{r['stride']:g}", f"{r['size'][0]} x {r['size'][1]}", str(r["channels"])]
            for r in insp.levels
        ]
        chosen = next((i for i, r in enumerate(insp.levels) if r["level"] == lv.level), -1)
        fill_table(self.levels, ["level", "feature", "stride", "cells (h x w)", "channels"], rows, bold_row=chosen)

    def formula_text(self) -> str:
        return self.formula.toPlainText()


class AlignPanel(QWidget):
    """Steps 3 to 5: the level around the RoI, the sampling grid, pooled values and a worked example."""

    featureClicked = Signal(float, float, float)  # feature x, y, one screen pixel in feature units
    binPicked = Signal(int, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.feature = FeatureMapView("feature map")
        self.feature.clicked.connect(self.featureClicked.emit)
        self.pooled = ValueGrid(SEQUENTIAL)
        self.pooled.cellPicked.connect(self.binPicked.emit)
        self.pooled_title = _section("RoIAlign output")
        self.example = monospace_text(120)
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(self.pooled_title)
        rl.addWidget(self.pooled, 2)
        rl.addWidget(_section("5. Worked example (click a bin or a sample point)"))
        rl.addWidget(self.example, 3)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.feature)
        split.addWidget(right)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(split)

    def show_values(self, insp, view, fit: bool = True) -> None:
        win = insp.feature_window(view)
        self.feature.set_window(win.values, win.rect_feature, win.value_range, fit=fit)
        h, w = win.values.shape
        self.feature.set_title(
            f"P{insp.level.level} ('{insp.level.featmap}'), {win.label}: "
            f"rows {win.row0}..{win.row0 + h - 1}, cols {win.col0}..{win.col0 + w - 1}"
        )
        self.feature.set_geometry(
            insp.grid_segments_feature(), insp.sample_points_feature(), insp.sample_valid(), insp.pool_rects_feature()
        )
        oh, ow = insp.output_size
        gh, gw = insp.grid
        self.pooled_title.setText(
            f"<b>RoIAlign output {oh}x{ow}, {insp.view_label(view)}</b> ({gh}x{gw} samples per bin, "
            f"{insp.sample_count} in all)"
        )
        self.pooled.set_values(insp.align_pooled(view))

    def show_selection(self, insp, view, sel: Selection) -> None:
        row, col, sample = sel
        text = insp.worked_example(row, col, view)
        sample_xy = None
        neighbors: list = []
        if sample is not None:
            detail = insp.sample_detail(row, col, sample[0], sample[1], view)
            text = "\n".join(["Selected sample:", *detail.lines(), "", text])
            sample_xy = detail.xy_feature
            if detail.valid:
                neighbors = [insp.cell_rect_feature(r, c) for r, c in detail.neighbors]
        self.example.setPlainText(text)
        pool = insp.pool.bin(row, col).rect_feature if self.feature.pool.isVisible() else None
        self.feature.set_selection(insp.bin_rect_feature(row, col), sample_xy, neighbors, pool, None)
        self.pooled.select(row, col)


class ComparePanel(QWidget):
    """Step 6: RoIPool (quantized bins, max) beside RoIAlign, and the difference of the two."""

    binPicked = Signal(int, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.align = HeatmapView("RoIAlign (bilinear, average)", SEQUENTIAL)
        self.pool = HeatmapView("RoIPool (quantized, max)", SEQUENTIAL, colorbar=True)
        self.diff = HeatmapView("RoIAlign - RoIPool", DIVERGING, colorbar=True)
        self.marks = []
        for view in (self.align, self.pool, self.diff):
            view.clicked.connect(self._clicked)
            mark = pg.QtWidgets.QGraphicsRectItem()
            mark.setPen(pg.mkPen((255, 255, 0), width=2))
            mark.setVisible(False)
            view.vb.addItem(mark)
            self.marks.append(mark)
        self.pool_values = ValueGrid(SEQUENTIAL)
        self.pool_values.cellPicked.connect(self.binPicked.emit)
        self.text = monospace_text(90)
        maps = QGridLayout()
        maps.addWidget(self.align, 0, 0)
        maps.addWidget(self.pool, 0, 1)
        maps.addWidget(self.diff, 0, 2)
        bottom = QSplitter(Qt.Orientation.Horizontal)
        holder = QWidget()
        hl = QVBoxLayout(holder)
        hl.setContentsMargins(0, 0, 0, 0)
        self.values_title = _section("RoIPool values (max of each bin's cells)")
        hl.addWidget(self.values_title)
        hl.addWidget(self.pool_values)
        bottom.addWidget(holder)
        bottom.addWidget(self.text)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(maps, 2)
        layout.addWidget(bottom, 3)

    def _clicked(self, x: float, y: float, _pixel: float) -> None:
        self.binPicked.emit(int(np.floor(y)), int(np.floor(x)))

    def show_values(self, insp, view) -> None:
        a, p, d = insp.align_pooled(view), insp.pool_pooled(view), insp.difference(view)
        both = np.concatenate([a.reshape(-1), p.reshape(-1)])
        levels = (float(both.min()), float(both.max())) if both.size and both.max() > both.min() else None
        self.align.set_image(a, levels)
        self.pool.set_image(p, levels)
        self.diff.set_image(d, symmetric_levels(float(np.abs(d).max()) if d.size else 1.0))
        self.pool_values.set_values(p)
        self.values_title.setText(f"<b>RoIPool values, {insp.view_label(view)}</b> (max of each bin's whole cells)")
        self._summary = (
            f"mean |RoIAlign - RoIPool| = {float(np.abs(d).mean()):.4g} over {d.size} bins; "
            f"RoIPool RoI rounded to cells x {insp.pool.roi_start[0]}..{insp.pool.roi_end[0]}, "
            f"y {insp.pool.roi_start[1]}..{insp.pool.roi_end[1]}"
        )

    def show_selection(self, insp, view, sel: Selection) -> None:
        row, col, _ = sel
        for mark in self.marks:
            mark.setRect(col, row, 1, 1)
            mark.setVisible(True)
        self.pool_values.select(row, col)
        self.text.setPlainText("\n".join([self._summary, "", *insp.pool_bin_lines(row, col, view)]))


class MaskPanel(QWidget):
    """Step 7: the 28x28 mask probabilities of the predicted class and how they land in the box."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.probs = HeatmapView("mask probabilities", PROBABILITY, colorbar=True)
        self.pasted = HeatmapView("pasted into the box (image pixels)", PROBABILITY, colorbar=True)
        self.probs_curve = pg.IsocurveItem(level=0.5, pen=pg.mkPen((0, 255, 255), width=2), axisOrder="row-major")
        self.probs_curve.setParentItem(self.probs.image)
        self.pasted_curve = pg.IsocurveItem(level=0.5, pen=pg.mkPen((0, 255, 255), width=2), axisOrder="row-major")
        self.pasted_curve.setParentItem(self.pasted.image)
        self.box_rect = pg.QtWidgets.QGraphicsRectItem()
        self.box_rect.setPen(pg.mkPen((60, 230, 90), width=2))
        self.reach_rect = pg.QtWidgets.QGraphicsRectItem()
        self.reach_rect.setPen(pg.mkPen((255, 255, 255), width=1, style=Qt.PenStyle.DashLine))
        self.pasted.vb.addItem(self.box_rect)
        self.pasted.vb.addItem(self.reach_rect)
        self.text = monospace_text(90)
        maps = QHBoxLayout()
        maps.addWidget(self.probs)
        maps.addWidget(self.pasted)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(
            _section("7. Mask head output and paste (cyan: 0.5 contour; green: box; dashed: one cell beyond it)")
        )
        layout.addLayout(maps, 3)
        layout.addWidget(self.text, 1)

    def show_paste(self, paste) -> None:
        m = paste.probs.shape[0]
        self.probs.set_title(f"{m}x{m} probabilities, '{paste.class_name}'")
        self.probs.set_image(paste.probs, (0.0, 1.0))
        self.probs_curve.setData(paste.probs.astype(np.float64))
        x0, y0, x1, y1 = paste.placed
        if paste.patch.size:
            self.pasted.set_title(f"pasted: x {x0}..{x1 - 1}, y {y0}..{y1 - 1} (image pixels)")
            self.pasted.set_image(paste.patch, (0.0, 1.0), (float(x0), float(y0), float(x1 - x0), float(y1 - y0)))
            self.pasted_curve.setData(paste.patch.astype(np.float64))
            bx1, by1, bx2, by2 = paste.box_image
            self.box_rect.setRect(bx1, by1, bx2 - bx1, by2 - by1)
            gx1, gy1, gx2, gy2 = paste.reach
            self.reach_rect.setRect(gx1, gy1, gx2 - gx1, gy2 - gy1)
            self.pasted.fit()
        else:
            self.pasted.set_title("the box lies outside the image")
            self.pasted.clear_image()
            self.pasted_curve.setData(None)
        self.text.setPlainText("\n".join(paste.lines()))
