"""The RoI inspector dock: Mask R-CNN's RoIAlign, step by step, for the selected detection.

It follows the main window's selection (``instanceSelected``) and prediction (``predictionChanged``),
asks ``engine.inspect`` for every number, and draws the RoI's boxes, bins and samples on the canvas.
Work happens only while the dock is visible.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.inspectors.canvas_overlays import RoIOverlayItem
from app.inspectors.inspector_dock import InspectorDock
from app.inspectors.widgets import DEFAULT_DPI, ask_and_export_figure

BRANCHES = (("box", "Box head (RPN proposal)"), ("mask", "Mask head (refined box)"))
VIEWS = (("mean", "Mean over channels"), ("max", "Max over channels"), ("channel", "Channel"))
CLICK_RADIUS_PX = 6.0  # a click this close (screen pixels) to a sample point picks it


class RoIInspectorDock(InspectorDock):
    def __init__(self, window) -> None:
        super().__init__("RoI inspector (Mask R-CNN)", "RoIInspectorDock", window)
        self.inspection = None
        self.paste = None
        self.selection: tuple[int, int, tuple[int, int] | None] | None = None
        self.overlay = RoIOverlayItem()
        self.overlay.setVisible(False)
        window.canvas.add_item(self.overlay, 30.0)

    # ------------------------------------------------------------------------------------------
    # Widgets
    # ------------------------------------------------------------------------------------------
    def _build(self) -> None:
        from app.inspectors.roi_panels import AlignPanel, BoxesPanel, ComparePanel, MaskPanel

        self.header = QLabel()
        self.header.setTextFormat(Qt.TextFormat.RichText)

        self.branch = QComboBox()
        for key, label in BRANCHES:
            self.branch.addItem(label, key)
        self.branch.setToolTip(
            "Which head's RoIAlign to explain: the box head pools the RPN proposal "
            "(7x7), the mask head the refined box (14x14)"
        )
        self.out_size = QSpinBox()
        self.out_size.setRange(1, 32)
        self.out_size.setToolTip("RoIAlign output size (bins per side)")
        self.ratio = QSpinBox()
        self.ratio.setRange(0, 16)
        self.ratio.setSpecialValueText("adaptive")
        self.ratio.setToolTip("Samples per bin along each axis; adaptive = ceil(bin size in cells)")
        self.aligned = QCheckBox("aligned")
        self.aligned.setToolTip("aligned=True shifts the box by half a cell (pixel-centre model)")
        self.reset = QPushButton("Model settings")
        self.reset.setToolTip("Back to the settings the model itself pools with")
        self.defaults_note = QLabel()
        self.defaults_note.setTextFormat(Qt.TextFormat.RichText)

        self.view = QComboBox()
        for key, label in VIEWS:
            self.view.addItem(label, key)
        self.channel = QSpinBox()
        self.channel.setRange(0, 0)
        self.channel.setPrefix("#")
        self.channel.setToolTip("Feature channel shown in the feature map, pooled values and worked example")
        self.show_grid = QCheckBox("bins")
        self.show_samples = QCheckBox("samples")
        self.show_pool = QCheckBox("RoIPool bins")
        for box, on in ((self.show_grid, True), (self.show_samples, True), (self.show_pool, False)):
            box.setChecked(on)
            box.toggled.connect(self._apply_layers)

        settings = QHBoxLayout()
        for w in (QLabel("Head"), self.branch, QLabel("output"), self.out_size, QLabel("sampling"), self.ratio):
            settings.addWidget(w)
        settings.addWidget(self.aligned)
        settings.addWidget(self.reset)
        settings.addWidget(self.defaults_note, 1)
        view = QHBoxLayout()
        for w in (QLabel("Feature"), self.view, self.channel, QLabel("Show"), self.show_grid, self.show_samples):
            view.addWidget(w)
        view.addWidget(self.show_pool)
        view.addStretch(1)
        view.addWidget(self.export_button)

        self.tabs = QTabWidget()
        self.boxes_panel = BoxesPanel()
        self.align_panel = AlignPanel()
        self.compare_panel = ComparePanel()
        self.mask_panel = MaskPanel()
        self.tabs.addTab(self.align_panel, "RoIAlign grid")
        self.tabs.addTab(self.boxes_panel, "Boxes && level")
        self.tabs.addTab(self.compare_panel, "vs RoIPool")
        self.tabs.addTab(self.mask_panel, "Mask")
        self.align_panel.featureClicked.connect(self._on_feature_click)
        self.align_panel.binPicked.connect(lambda r, c: self.select_bin(r, c))
        self.compare_panel.binPicked.connect(lambda r, c: self.select_bin(r, c))

        body_widget = QWidget()
        body = QVBoxLayout(body_widget)
        body.setContentsMargins(0, 0, 0, 0)
        body.addWidget(self.header)
        body.addLayout(settings)
        body.addLayout(view)
        body.addWidget(self.tabs, 1)
        self._set_body(body_widget)

        self.branch.currentIndexChanged.connect(self._on_branch)
        self.out_size.valueChanged.connect(self._recompute)
        self.ratio.valueChanged.connect(self._recompute)
        self.aligned.toggled.connect(self._recompute)
        self.reset.clicked.connect(self.reset_settings)
        self.view.currentIndexChanged.connect(self._on_view)
        self.channel.valueChanged.connect(self._on_view)

    # ------------------------------------------------------------------------------------------
    # State from the window
    # ------------------------------------------------------------------------------------------
    def _sync_canvas(self, visible: bool) -> None:
        self.overlay.setVisible(visible and self.inspection is not None)

    @property
    def drawn_box(self) -> bool:
        """The inspected RoI is a box the user drew (a box prompt's trace), not a detection."""
        pred = self.shown_prediction()
        return bool(getattr(getattr(pred, "trace", None), "prompt", False))

    @property
    def feature_view(self):
        """The current feature view: a channel index, 'mean' or 'max'."""
        key = self.view.currentData()
        return int(self.channel.value()) if key == "channel" else key

    def _settings(self) -> tuple[int, int, bool]:
        return int(self.out_size.value()), int(self.ratio.value()), bool(self.aligned.isChecked())

    # ------------------------------------------------------------------------------------------
    # Computing (engine) and showing
    # ------------------------------------------------------------------------------------------
    def refresh(self, keep_settings: bool = True) -> None:
        """Recompute for the window's current prediction and selection (when visible)."""
        if not self.isVisible():
            self._dirty = True
            self.overlay.setVisible(False)
            return
        self._dirty = False
        from engine.inspect import roi_inspector_status

        pred = self.shown_prediction()
        self.status = roi_inspector_status(pred, self._index)
        if not self.status.ready:
            self._show_unavailable(self.status.message, self.status.rerun_helps)
            return
        trace = pred.trace
        drawn = self.drawn_box
        for i, (_key, label) in enumerate(BRANCHES):  # a drawn box is no proposal and is not refined
            self.branch.setItemText(i, label.split(" (")[0] + " (drawn box)" if drawn else label)
        pooler = trace.box_pooler if self.branch.currentData() == "box" else trace.mask_pooler
        if not keep_settings or self.inspection is None:
            self._set_controls(pooler)
        self._compute()

    def _set_controls(self, pooler) -> None:
        for w in (self.out_size, self.ratio, self.aligned):
            w.blockSignals(True)
        self.out_size.setValue(int(pooler.output_size[0]))
        self.ratio.setValue(max(int(pooler.sampling_ratio), 0))
        self.aligned.setChecked(bool(pooler.aligned))
        for w in (self.out_size, self.ratio, self.aligned):
            w.blockSignals(False)

    def reset_settings(self) -> None:
        pred = self.shown_prediction()
        if pred is None or pred.trace is None or not hasattr(pred.trace, "box_pooler"):
            return
        trace = pred.trace
        self._set_controls(trace.box_pooler if self.branch.currentData() == "box" else trace.mask_pooler)
        self._recompute()

    def _on_branch(self) -> None:
        self.inspection = None  # each head has its own model settings
        self.refresh(keep_settings=False)

    def _recompute(self) -> None:
        if self.isVisible() and self.status is not None and self.status.ready:
            self._compute()

    def _compute(self) -> None:
        from engine.errors import MaskScopeError
        from engine.inspect import inspect_mask_paste, inspect_roi

        pred = self.shown_prediction()
        out, ratio, aligned = self._settings()
        try:
            insp = inspect_roi(
                pred.trace, self._index, self.branch.currentData(), out, ratio, aligned, pred.class_names
            )
            paste = inspect_mask_paste(pred.trace, self._index, pred.instances[self._index].box, 0.5, pred.class_names)
        except (MaskScopeError, ValueError, IndexError) as exc:
            self._show_unavailable(f"Cannot inspect this detection: {exc}", False)
            return
        self.inspection, self.paste = insp, paste
        self.banner.show_message("")
        self.body.setEnabled(True)
        self.channel.blockSignals(True)
        self.channel.setRange(0, insp.channels - 1)
        self.channel.blockSignals(False)
        self.channel.setEnabled(self.view.currentData() == "channel")
        self._show_header()
        self.boxes_panel.show_inspection(insp, drawn=self.drawn_box)
        self.mask_panel.show_paste(paste)
        oh, ow = insp.output_size
        self.selection = (oh // 2, ow // 2, None)
        self._show_values(fit=True)
        self._show_canvas()

    def _show_unavailable(self, message: str, rerun: bool) -> None:
        self.inspection = None
        self.paste = None
        self.selection = None
        self.banner.show_message(message, rerun)
        self.body.setEnabled(False)
        self.header.setText("")
        self.overlay.setVisible(False)

    def _show_header(self) -> None:
        insp = self.inspection
        assert insp is not None  # called right after _compute set it
        s, m = insp.settings, insp.model_settings
        if self.drawn_box:
            self.header.setText(
                f"<b>Drawn box</b> \u2192 {insp.class_name} score {insp.score:.3f} \u2014 {insp.head_name} pools "
                f"the drawn box from <b>P{insp.level.level}</b> (stride {insp.level.stride:g})"
            )
        else:
            self.header.setText(
                f"<b>#{insp.det_index + 1} {insp.class_name}</b> score {insp.score:.3f} \u2014 {insp.head_name} "
                f"pools the {insp.roi_name} from <b>P{insp.level.level}</b> (stride {insp.level.stride:g})"
            )
        if insp.uses_model_settings:
            self.defaults_note.setText("<span style='color:#3a3'>\u2713 the model's own settings</span>")
        else:
            self.defaults_note.setText(f"<span style='color:#c80'>changed; model: {m.describe()}</span>")
        self.out_size.setSuffix(f"  (model {m.output_size[0]})" if s.output_size != m.output_size else "  (model)")
        ratio_default = "adaptive" if m.sampling_ratio <= 0 else str(m.sampling_ratio)
        self.ratio.setSuffix("  (model)" if s.sampling_ratio == m.sampling_ratio else f"  (model {ratio_default})")
        self.aligned.setText("aligned (model)" if s.aligned == m.aligned else f"aligned (model: {m.aligned})")

    def _on_view(self) -> None:
        self.channel.setEnabled(self.view.currentData() == "channel")
        if self.inspection is not None:
            self._show_values(fit=False)

    def _show_values(self, fit: bool) -> None:
        insp, view = self.inspection, self.feature_view
        self.align_panel.show_values(insp, view, fit=fit)
        self.compare_panel.show_values(insp, view)
        self._apply_layers()
        self._show_selection()

    def _show_canvas(self) -> None:
        insp = self.inspection
        assert insp is not None  # called right after _compute set it
        top = insp.top_classes[0]
        if self.drawn_box:  # no RPN proposal and no box regression: both heads pool the drawn box
            boxes = [(insp.roi_image, "proposal", f"drawn box: {insp.class_name} {insp.score:.2f} (top {top[0]})")]
        else:
            boxes = [
                (
                    insp.proposal_image,
                    "proposal",
                    f"proposal #{insp.proposal_index}  obj {insp.proposal_objectness:.2f}",
                ),
                (insp.refined_image, "refined", f"refined: {insp.class_name} {insp.score:.2f} (top {top[0]})"),
            ]
        self.overlay.set_geometry(
            boxes,
            insp.grid_segments_image(),
            insp.sample_points_image(),
            insp.sample_valid(),
            insp.pool_rects_image(),
        )
        self._apply_layers()
        self._show_selection()
        self.overlay.setVisible(self.isVisible())

    def _apply_layers(self) -> None:
        grid, samples, pool = self.show_grid.isChecked(), self.show_samples.isChecked(), self.show_pool.isChecked()
        self.overlay.set_layers(grid, samples, pool)
        self.align_panel.feature.set_layers(grid, samples, pool)
        if self.inspection is not None and self.selection is not None:
            self.align_panel.show_selection(self.inspection, self.feature_view, self.selection)

    # ------------------------------------------------------------------------------------------
    # Selection of a bin / sample
    # ------------------------------------------------------------------------------------------
    def _on_feature_click(self, x: float, y: float, pixel: float) -> None:
        if self.inspection is None:
            return
        hit = self.inspection.locate_feature(x, y, CLICK_RADIUS_PX * pixel)
        if hit is not None:
            self.select_bin(*hit)

    def select_bin(self, row: int, col: int, sample: tuple[int, int] | None = None) -> None:
        if self.inspection is None:
            return
        oh, ow = self.inspection.output_size
        if not (0 <= row < oh and 0 <= col < ow):
            return
        self.selection = (row, col, sample)
        self._show_selection()

    def _show_selection(self) -> None:
        insp, sel, view = self.inspection, self.selection, self.feature_view
        if insp is None or sel is None:
            return
        self.align_panel.show_selection(insp, view, sel)
        self.compare_panel.show_selection(insp, view, sel)
        row, col, sample = sel
        xy, neighbors = None, []
        if sample is not None:
            detail = insp.sample_detail(row, col, sample[0], sample[1], view)
            xy = detail.xy_image
            if detail.valid:
                neighbors = [insp.cell_rect_image(r, c) for r, c in detail.neighbors]
        self.overlay.set_selection(insp.bin_rect_image(row, col), xy, neighbors)

    # ------------------------------------------------------------------------------------------
    # Export
    # ------------------------------------------------------------------------------------------
    def _ask_export(self) -> None:
        if self.inspection is None:
            return
        name = f"roi_det{self.inspection.det_index + 1}_{self.inspection.branch}.png"
        ask_and_export_figure(self, name, self.export_figure, self.window_.statusBar())

    def export_figure(self, path: str | Path, dpi: float = DEFAULT_DPI) -> tuple[Path, Path]:
        """Save the composed figure (PNG at ``dpi``, SVG or PDF by ``path``'s suffix) and its numbers
        (JSON with the same stem)."""
        from app.inspectors.figure import roi_figure, write_figure
        from engine.errors import MaskScopeError
        from engine.inspect.figure_export import roi_figure_data

        if self.inspection is None:
            raise MaskScopeError("Nothing to export: the RoI inspector shows no detection.")
        data = roi_figure_data(self.inspection, self.feature_view, self.selection, self.paste)
        figure = roi_figure(self.inspection, self.feature_view, self.window_.current_image, data)
        return write_figure(figure, path, dpi)

    # ------------------------------------------------------------------------------------------
    # For tests and scripts
    # ------------------------------------------------------------------------------------------
    def shown_pooled_values(self) -> np.ndarray:
        return self.align_panel.pooled.values()
