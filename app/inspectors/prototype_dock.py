"""The prototype viewer dock: YOLACT's prototypes, a detection's coefficients and its mask stages.

Switching a prototype off recomputes the selected detection's mask without it (in the engine) and
shows the result on the canvas in magenta. Work happens only while the dock is visible.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QTabWidget, QVBoxLayout, QWidget

from app.inspectors.canvas_overlays import MaskPatchItem
from app.inspectors.inspector_dock import InspectorDock
from app.inspectors.widgets import DEFAULT_DPI, ask_and_export_figure


class PrototypeViewerDock(InspectorDock):
    def __init__(self, window) -> None:
        super().__init__("Prototype viewer (YOLACT)", "PrototypeViewerDock", window)
        self.trace = None
        self.grid = None
        self.mosaic = None
        self.enabled: np.ndarray | None = None
        self.composition = None
        self.comparison = None
        self._trace_id = None
        self.mask_item = MaskPatchItem()
        self.mask_item.setVisible(False)
        window.canvas.add_item(self.mask_item, 31.0)

    def _build(self) -> None:
        from app.inspectors.prototype_panels import CoefficientPanel, PrototypeGridPanel, StagesPanel

        self.header = QLabel()
        self.header.setTextFormat(Qt.TextFormat.RichText)
        top = QHBoxLayout()
        top.addWidget(self.header, 1)
        top.addWidget(self.export_button)
        self.tabs = QTabWidget()
        self.grid_panel = PrototypeGridPanel()
        self.coef_panel = CoefficientPanel()
        self.stages_panel = StagesPanel()
        self.tabs.addTab(self.grid_panel, "Prototypes")
        self.tabs.addTab(self.coef_panel, "Coefficients")
        self.tabs.addTab(self.stages_panel, "Mask stages")
        self.grid_panel.prototypePicked.connect(self.pick_prototype)
        self.grid_panel.prototypeToggled.connect(self.toggle_prototype)
        self.grid_panel.allOnRequested.connect(self.enable_all)
        self.coef_panel.prototypePicked.connect(self.pick_prototype)
        self.coef_panel.orderChanged.connect(self._show_coefficients)
        self.coef_panel.compareChanged.connect(self._on_compare)
        body_widget = QWidget()
        body = QVBoxLayout(body_widget)
        body.setContentsMargins(0, 0, 0, 0)
        body.addLayout(top)
        body.addWidget(self.tabs, 1)
        self._set_body(body_widget)

    # ------------------------------------------------------------------------------------------
    # State from the window
    # ------------------------------------------------------------------------------------------
    def _sync_canvas(self, visible: bool) -> None:
        self._update_canvas()

    def refresh(self) -> None:
        if not self.isVisible():
            self._dirty = True
            self._update_canvas()
            return
        self._dirty = False
        from engine.inspect.availability import has_prototypes, prototype_viewer_status

        pred = self.shown_prediction()
        self.status = prototype_viewer_status(pred, self._index)
        if not has_prototypes(self.status):
            self._clear(self.status.message, self.status.rerun_helps)
            return
        self.banner.show_message("" if self.status.ready else self.status.message)
        self.body.setEnabled(True)
        if pred.trace is not self.trace:
            self._load_trace(pred.trace)
        self._compose()

    def _clear(self, message: str, rerun: bool) -> None:
        self.trace = self.grid = self.mosaic = self.composition = self.comparison = None
        self.enabled = None
        self.banner.show_message(message, rerun)
        self.body.setEnabled(False)
        self.header.setText("")
        self._update_canvas()

    def _load_trace(self, trace) -> None:
        from app.inspectors.prototype_panels import GRID_COLUMNS
        from engine.inspect import prototype_grid, tile_maps

        self.trace = trace
        self.grid = prototype_grid(trace)
        self.mosaic = tile_maps(self.grid.maps, GRID_COLUMNS)
        self.enabled = np.ones(self.grid.count, bool)  # switched-off prototypes reset per image
        self.grid_panel.show_grid(self.grid, self.mosaic)
        pred = self.shown_prediction()
        tag = "drawn box" if getattr(trace, "prompt", None) is not None else "#{}"
        labels = [
            f"{tag.format(i + 1)} {pred.class_name(inst)} {inst.score:.2f}" for i, inst in enumerate(pred.instances)
        ]
        self._labels = labels

    # ------------------------------------------------------------------------------------------
    # The selected detection
    # ------------------------------------------------------------------------------------------
    def _compose(self) -> None:
        """Recompute the selected detection's stages with the enabled prototypes (engine)."""
        from engine.inspect import compose_detection

        pred = self.shown_prediction()
        if self.trace is None or not 0 <= self._index < len(self.trace):
            self.composition = self.comparison = None
            self.header.setText(f"<b>{self.grid.count} prototypes</b> \u2014 select a detection for its mask")
            self.grid_panel.show_enabled(None)
            self.grid_panel.show_prototype(self.grid_panel.current, None, "")
            self._update_canvas()
            return
        inst = pred.instances[self._index]
        self.composition = compose_detection(
            self.trace, self._index, self.enabled, pred.class_names, inst.mask, prototype_maps=self.grid.maps
        )
        c = self.composition
        prior = getattr(self.trace, "prompt", None)
        who = (
            f"<b>Drawn box</b> \u2192 {c.class_name}: the coefficients of prior #{prior.index} "
            f"(IoU {prior.iou:.2f} with the box, rule \u201c{prior.rule}\u201d)"
            if prior is not None
            else f"<b>#{c.det_index + 1} {c.class_name}</b>"
        )
        self.header.setText(
            f"{who} score {c.score:.3f} \u2014 "
            f"{int(c.enabled.sum())} of {len(c.enabled)} prototypes on, mask {c.mask.area} px"
            + (f" ({c.changed_pixels} px changed)" if c.changed_pixels else "")
        )
        self.coef_panel.set_choices(self._labels, self._index)
        self.grid_panel.show_enabled(self.enabled)
        self._show_prototype()
        self._update_comparison()
        self._show_coefficients()
        self.stages_panel.show_stages(c, self.window_.current_image)
        self._update_canvas()

    def _show_prototype(self) -> None:
        p = self.grid_panel.current
        c = self.composition
        coef = float(c.coefficients[p]) if c is not None else None
        label = f"#{c.det_index + 1} {c.class_name}" if c is not None else ""
        self.grid_panel.show_prototype(p, coef, label)
        self.grid_panel.show_enabled(self.enabled if c is not None else None)

    def _show_coefficients(self) -> None:
        c = self.composition
        if c is None:
            return
        from app.inspectors.prototype_panels import GRID_COLUMNS
        from engine.inspect import tile_maps

        order = c.order("magnitude" if self.coef_panel.by_magnitude else "index")
        self.coef_panel.show_coefficients(c, order, self.comparison)
        weighted = tile_maps(c.weighted[order], GRID_COLUMNS)
        sort = "by |coefficient|" if self.coef_panel.by_magnitude else "by index"
        self.coef_panel.show_weighted(weighted, c.weighted_limit, f"prototypes x coefficients ({sort})")

    def _update_comparison(self) -> None:
        from engine.inspect import compare_coefficients

        other = self.coef_panel.compare_with
        pred = self.shown_prediction()
        if self.composition is None or other < 0 or other >= len(self.trace):
            self.comparison = None
        else:
            self.comparison = compare_coefficients(self.trace, self._index, other, pred.class_names)

    def _on_compare(self) -> None:
        self._update_comparison()
        self._show_coefficients()

    def pick_prototype(self, index: int) -> None:
        if self.grid is None or not 0 <= index < self.grid.count:
            return
        self.grid_panel.current = index
        self._show_prototype()

    def toggle_prototype(self, index: int) -> None:
        """Switch prototype ``index`` on/off for the selected detection's mask and recompute it."""
        if self.enabled is None or not 0 <= index < len(self.enabled) or self.composition is None:
            self.grid_panel.show_enabled(None)
            return
        self.enabled[index] = not self.enabled[index]
        self.grid_panel.current = index
        self._compose()

    def set_enabled(self, enabled: np.ndarray) -> None:
        if self.enabled is None:
            return
        self.enabled[:] = np.asarray(enabled, dtype=bool)
        self._compose()

    def enable_all(self) -> None:
        if self.enabled is not None:
            self.set_enabled(np.ones_like(self.enabled))

    def _update_canvas(self) -> None:
        c = self.composition
        show = self.isVisible() and c is not None and not bool(c.enabled.all())
        if show:
            self.mask_item.set_mask(c.mask.x0, c.mask.y0, c.mask.bits)
        self.mask_item.setVisible(show)

    # ------------------------------------------------------------------------------------------
    # Export
    # ------------------------------------------------------------------------------------------
    def _ask_export(self) -> None:
        if self.grid is None:
            return
        name = f"prototypes_det{self._index + 1}.png" if self.composition is not None else "prototypes.png"
        ask_and_export_figure(self, name, self.export_figure, self.window_.statusBar())

    def export_figure(self, path: str | Path, dpi: float = DEFAULT_DPI) -> tuple[Path, Path]:
        """Save the composed figure (PNG at ``dpi``, SVG or PDF by ``path``'s suffix) and its numbers
        (JSON with the same stem)."""
        from app.inspectors.figure import prototype_figure, write_figure
        from engine.errors import MaskScopeError
        from engine.inspect.figure_export import prototype_figure_data

        if self.grid is None:
            raise MaskScopeError("Nothing to export: the prototype viewer shows no YOLACT prediction.")
        data = prototype_figure_data(self.grid, self.composition, self.comparison)
        figure = prototype_figure(self.grid, self.composition, self.comparison, self.window_.current_image, data)
        return write_figure(figure, path, dpi)
