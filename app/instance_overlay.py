"""State and items of the instance overlay: which instances show, their colours, fill, outlines, boxes.

Refresh costs, by what changed:
- new instances or visibility/threshold: one numpy composite over the visible masks' crops;
- opacity: only the fill item's opacity (no compositing);
- outlines/boxes/labels toggles, hover and selection: repaint only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QRectF
from PySide6.QtGui import QColor, QPainterPath
from PySide6.QtWidgets import QGraphicsScene

from app.canvas_items import BoxLabelItem, HighlightItem, MaskLayerItem, OutlineItem, contours_path
from app.colors import instance_colors
from app.overlay import FillLayer, composite_fill, instance_at, prediction_contours
from engine.masks import CroppedMask

# Z values: photo 0, masks 10, outlines 20, highlight 25, boxes 30; other items can slot in between.
Z_MASKS, Z_OUTLINES, Z_HIGHLIGHT, Z_BOXES = 10.0, 20.0, 25.0, 30.0


@dataclass
class PreparedOverlay:
    """What showing a prediction needs that can be computed off the GUI thread (in the worker).

    ``fill`` is the mask layer composited for ``fill_visible``; it is used once, when the result
    arrives, if the visible set still matches, and then dropped (it can be large).
    """

    contours: list  # per instance, list of (K, 2) float32 outlines in image coordinates
    paths: list[QPainterPath]
    areas: np.ndarray  # int64 pixel count per instance
    fill: FillLayer | None = None
    fill_visible: np.ndarray | None = None


def prepare_overlay(
    masks: Sequence[CroppedMask], image_size: tuple[int, int], visible: np.ndarray | None
) -> PreparedOverlay:
    """Outlines, their painter paths, areas and (for ``visible``) the composited mask layer.

    QPainterPath and numpy work only: safe in a worker thread.
    """
    contours = prediction_contours(masks)
    paths = [contours_path(c) for c in contours]
    areas = np.array([int(np.count_nonzero(m.bits)) for m in masks], np.int64)
    fill = None
    if visible is not None:
        order = [int(i) for i in np.flatnonzero(visible)[::-1]]
        fill = composite_fill(masks, instance_colors(len(masks)), order, image_size)
    return PreparedOverlay(contours, paths, areas, fill, None if visible is None else np.asarray(visible, bool))


class InstanceOverlay:
    """Owns the mask, outline and box items for one list of instances on a scene."""

    def __init__(self, scene: QGraphicsScene) -> None:
        self.fill = MaskLayerItem()
        self.outlines = OutlineItem()
        self.highlight = HighlightItem()
        self._selected = -1
        self._hovered = -1
        self.boxes = BoxLabelItem()
        for item, z in (
            (self.fill, Z_MASKS),
            (self.outlines, Z_OUTLINES),
            (self.highlight, Z_HIGHLIGHT),
            (self.boxes, Z_BOXES),
        ):
            item.setZValue(z)
            scene.addItem(item)
        self.fill.setOpacity(0.5)
        self._masks: list[CroppedMask] = []
        self._colors_rgb = np.zeros((0, 3), np.uint8)
        self._visible = np.zeros(0, bool)
        self._image_size = (0, 0)
        self.composite_count = 0  # how many times masks were composited (tests and benchmarks read it)

    # --- content ---------------------------------------------------------------------------------
    def set_instances(
        self,
        masks: Sequence[CroppedMask],
        boxes: np.ndarray,
        class_names: list[str],
        scores: np.ndarray,
        image_size: tuple[int, int],
        prepared: PreparedOverlay | None = None,
        visible: np.ndarray | None = None,
    ) -> None:
        """Show these instances (index order = colour order); ``prepared`` may come from a worker."""
        self._masks = list(masks)
        self._image_size = image_size
        n = len(self._masks)
        self._colors_rgb = instance_colors(n)
        qcolors = [QColor(int(r), int(g), int(b)) for r, g, b in self._colors_rgb]
        if prepared is None or len(prepared.paths) != n:
            prepared = prepare_overlay(self._masks, image_size, None)
        rect = QRectF(0, 0, image_size[1], image_size[0])
        self.outlines.set_outlines(prepared.paths, qcolors, rect)
        self.boxes.set_boxes(boxes, class_names, scores, qcolors, rect)
        self._selected = self._hovered = self.boxes.selected = -1
        self.highlight.set_lines([], rect)
        visible = np.ones(n, bool) if visible is None else np.asarray(visible, bool)
        fill = prepared.fill
        if fill is not None and prepared.fill_visible is not None and np.array_equal(prepared.fill_visible, visible):
            self._visible = visible.copy()
            self._apply_fill(fill)  # composited by the worker for exactly this visible set
        else:
            self.set_visible(visible, force=True)

    def clear(self) -> None:
        self.set_instances([], np.zeros((0, 4), np.float32), [], np.zeros(0, np.float32), self._image_size)

    def set_visible(self, visible: np.ndarray, force: bool = False) -> None:
        """Which instances show (threshold and per-instance checkboxes combined); recomposites the fill.

        Nothing happens when the set is unchanged (most steps of a threshold slider drag), unless ``force``.
        """
        visible = np.asarray(visible, bool)
        if not force and len(visible) == len(self._visible) and np.array_equal(visible, self._visible):
            return
        self._visible = visible.copy()
        # Highest score (lowest index) painted last, so it is on top, matching hit testing.
        order = [int(i) for i in np.flatnonzero(self._visible)[::-1]]
        self.composite_count += 1
        self._apply_fill(composite_fill(self._masks, self._colors_rgb, order, self._image_size))

    def _apply_fill(self, layer: FillLayer) -> None:
        self.fill.set_layer(layer.argb, layer.x0, layer.y0)
        self.outlines.set_visible_instances(self._visible)
        self._update_highlight()
        self.boxes.set_visible_instances(self._visible)

    # --- display options ---------------------------------------------------------------------------
    def set_opacity(self, opacity: float) -> None:
        self.fill.setOpacity(float(opacity))

    def set_show_outlines(self, on: bool) -> None:
        self.outlines.setVisible(on)  # hover and selection highlights stay

    def set_show_boxes(self, on: bool) -> None:
        self.boxes.set_flags(boxes=on)

    def set_show_labels(self, on: bool) -> None:
        self.boxes.set_flags(labels=on)

    def set_show_scores(self, on: bool) -> None:
        self.boxes.set_flags(scores=on)

    @property
    def selected(self) -> int:
        return self._selected

    @property
    def hovered(self) -> int:
        return self._hovered

    def set_selected(self, index: int) -> None:
        self._selected = self.boxes.selected = index
        self._update_highlight()
        self.boxes.update()

    def set_hovered(self, index: int) -> None:
        if index != self._hovered:
            self._hovered = index
            self._update_highlight()

    def _update_highlight(self) -> None:
        paths, colors, shown = self.outlines.paths, self.outlines.colors, self._visible
        lines = []
        for i, width in ((self._hovered, 2.0), (self._selected, 2.5)):
            if 0 <= i < len(paths) and i < len(shown) and shown[i]:
                lines.append((paths[i], QColor(255, 255, 255) if i == self._selected else colors[i], width))
        self.highlight.set_lines(lines)

    # --- queries -----------------------------------------------------------------------------------
    @property
    def visible(self) -> np.ndarray:
        return self._visible

    @property
    def colors(self) -> np.ndarray:
        return self._colors_rgb

    def __len__(self) -> int:
        return len(self._masks)

    def instance_at(self, x: float, y: float) -> int:
        """Topmost visible instance at image point (x, y), -1 if none."""
        return instance_at(self._masks, np.flatnonzero(self._visible), x, y)
