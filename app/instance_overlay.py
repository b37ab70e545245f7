"""The one overlay stack of the image on screen: predictions (pending review) and annotations.

One object owns every item drawn over the photo, for both kinds of instance, addressed by one
kind of key (``app.selection``: ``("prediction", index)`` or ``("annotation", id)``):

- two fill layers, because the two change differently: the predictions' fill is one layer
  composited over the visible masks' crops (in the worker when a result arrives, again when the
  threshold or a review state changes); the annotations' fill is an image-sized ARGB buffer that
  an edit recomposites only in its dirty rectangle, so a brush segment on a 4000x3000 image costs
  what its own bounding box costs. Annotations paint above predictions.
- one outline item, one highlight item (hover and the selection) and one box/label item for
  all instances, so labels of predictions and annotations are placed together (label_layout).

Refresh costs, by what changed:
- new predictions or their visibility/threshold: one numpy composite over the visible crops;
- an annotation edit: its dirty rectangle; outlines and labels when the stroke ends;
- opacity: only the fill items' opacity (no compositing);
- outlines/boxes/labels toggles, hover and selection: repaint only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from PySide6.QtCore import QRectF
from PySide6.QtGui import QColor, QPainterPath
from PySide6.QtWidgets import QGraphicsScene

from app.canvas_items import ArgbImageItem, BoxLabelItem, HighlightItem, MaskLayerItem, OutlineItem, contours_path
from app.colors import instance_colors, instance_rgb
from app.editing.mask_ops import Rect, mask_rect, rect_intersection, rect_is_empty, rect_union
from app.overlay import FillLayer, composite_fill, instance_at, mask_contours, pack_argb, prediction_contours
from app.selection import ANNOTATION, PREDICTION, ItemKey
from engine.annotations import AnnotatedInstance
from engine.masks import CroppedMask

# Z values: photo 0, prediction masks 10, annotation masks 12, outlines 20, highlight 25, boxes and
# labels 30; other items can slot in between (inspector overlays 15, editing tools above 50).
Z_MASKS, Z_ANNOTATIONS, Z_OUTLINES, Z_HIGHLIGHT, Z_BOXES = 10.0, 12.0, 20.0, 25.0, 30.0
WHITE = QColor(255, 255, 255)
OUTLINE_TOLERANCE = 0.7  # pixels
COLOR_OFFSET = 5  # annotation colours start elsewhere in the sequence than prediction colours


def annotation_rgb(instance_id: int) -> tuple[int, int, int]:
    """Stable colour of an annotated instance (by its id, so it keeps its colour across edits)."""
    return instance_rgb(instance_id - 1 + COLOR_OFFSET)


def outline_path(mask: CroppedMask) -> QPainterPath:
    """The mask's outlines, simplified to within 0.7 px: pixel staircases make paths 5-10x longer
    and Qt's stroker (wide or antialiased pens) slows down with every vertex."""
    simplified = []
    for contour in mask_contours(mask):
        if len(contour) > 4:
            contour = cv2.approxPolyDP(contour.reshape(-1, 1, 2), OUTLINE_TOLERANCE, True).reshape(-1, 2)
        simplified.append(contour)
    return contours_path(simplified)


def _qrect(r: Rect) -> QRectF:
    return QRectF(r[0], r[1], r[2] - r[0], r[3] - r[1])


class AnnotationFillItem(ArgbImageItem):
    """Draws the exposed part of the annotations' image-sized ARGB buffer. Cached in device pixels:
    a partial ``update(rect)`` re-renders only ``rect`` into the cache, the rest is blitted."""

    smooth_below = 1.0  # sharp pixels from 100 % zoom on (the photo and predictions: from PIXEL_ZOOM)

    def set_buffer(self, argb: np.ndarray | None, size: tuple[int, int]) -> None:
        self._set_argb(argb, size[1], size[0])
        self.update()


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
    """Fill, outlines, highlight, boxes and labels of one image's predictions and annotations."""

    def __init__(self, scene: QGraphicsScene) -> None:
        self.fill = MaskLayerItem()  # predictions
        self.annotation_fill = AnnotationFillItem()
        self.outlines = OutlineItem()
        self.highlight = HighlightItem(tight=True)  # tight: brush repaints elsewhere never stroke it
        self.labels = BoxLabelItem()
        for item, z in (
            (self.fill, Z_MASKS),
            (self.annotation_fill, Z_ANNOTATIONS),
            (self.outlines, Z_OUTLINES),
            (self.highlight, Z_HIGHLIGHT),
            (self.labels, Z_BOXES),
        ):
            item.setZValue(z)
            scene.addItem(item)
        self.fill.setOpacity(0.5)
        self.annotation_fill.setOpacity(0.5)
        self._selected: ItemKey | None = None
        self._hovered: ItemKey | None = None
        self._image_size = (0, 0)
        # Predictions (index order = colour order)
        self._masks: list[CroppedMask] = []
        self._colors_rgb = np.zeros((0, 3), np.uint8)
        self._visible = np.zeros(0, bool)
        self._pred_paths: list[QPainterPath] = []
        self._pred_boxes = np.zeros((0, 4), np.float32)
        self._pred_names: list[str] = []
        self._pred_scores = np.zeros(0, np.float32)
        self.composite_count = 0  # how many times prediction masks were composited (tests, benchmarks)
        # Annotations (list order: later ones paint on top)
        self._ann_size = (0, 0)
        self._argb: np.ndarray | None = None
        self._instances: list[AnnotatedInstance] = []
        self._overrides: dict[int, CroppedMask] = {}
        self._path_cache: dict[int, tuple[AnnotatedInstance, QPainterPath]] = {}
        self.class_colours: dict[str, tuple[int, int, int]] = {}  # classes with a colour of their own
        self.composite_pixels = 0  # annotation pixels recomposited so far (tests check edits stay local)

    # ==============================================================================================
    # Predictions
    # ==============================================================================================
    def set_predictions(
        self,
        masks: Sequence[CroppedMask],
        boxes: np.ndarray,
        class_names: list[str],
        scores: np.ndarray,
        image_size: tuple[int, int],
        prepared: PreparedOverlay | None = None,
        visible: np.ndarray | None = None,
    ) -> None:
        """Show these predictions (index order = colour order); ``prepared`` may come from a worker."""
        self._masks = list(masks)
        self._image_size = image_size
        n = len(self._masks)
        self._colors_rgb = instance_colors(n)
        if prepared is None or len(prepared.paths) != n:
            prepared = prepare_overlay(self._masks, image_size, None)
        self._pred_paths = list(prepared.paths)
        self._pred_boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        self._pred_names = list(class_names)
        self._pred_scores = np.asarray(scores, np.float32)
        if self._selected is not None and self._selected[0] == PREDICTION:
            self._selected = None
        if self._hovered is not None and self._hovered[0] == PREDICTION:
            self._hovered = None
        visible = np.ones(n, bool) if visible is None else np.asarray(visible, bool)
        fill = prepared.fill
        self._visible = visible.copy()
        self._update_vectors()
        if fill is not None and prepared.fill_visible is not None and np.array_equal(prepared.fill_visible, visible):
            self.fill.set_layer(fill.argb, fill.x0, fill.y0)  # composited by the worker for this visible set
        else:
            self._composite_predictions()

    def clear_predictions(self) -> None:
        self.set_predictions([], np.zeros((0, 4), np.float32), [], np.zeros(0, np.float32), self._image_size)

    def set_visible(self, visible: np.ndarray, force: bool = False) -> None:
        """Which predictions show (threshold and review state combined); recomposites their fill.

        Nothing happens when the set is unchanged (most steps of a threshold slider drag), unless ``force``.
        """
        visible = np.asarray(visible, bool)
        if not force and len(visible) == len(self._visible) and np.array_equal(visible, self._visible):
            return
        self._visible = visible.copy()
        self._composite_predictions()
        shown = self._shown()
        self.outlines.set_visible_instances(shown)
        self.labels.set_visible_instances(shown)
        self._update_highlight()

    def _composite_predictions(self) -> None:
        # Highest score (lowest index) painted last, so it is on top, matching hit testing.
        order = [int(i) for i in np.flatnonzero(self._visible)[::-1]]
        self.composite_count += 1
        layer: FillLayer = composite_fill(self._masks, self._colors_rgb, order, self._image_size)
        self.fill.set_layer(layer.argb, layer.x0, layer.y0)

    @property
    def visible(self) -> np.ndarray:
        """Which predictions show."""
        return self._visible

    @property
    def colors(self) -> np.ndarray:
        """The predictions' colours (RGB, index order)."""
        return self._colors_rgb

    @property
    def prediction_count(self) -> int:
        return len(self._masks)

    # ==============================================================================================
    # Annotations
    # ==============================================================================================
    @property
    def annotation_size(self) -> tuple[int, int]:
        return self._ann_size

    @property
    def annotations(self) -> list[AnnotatedInstance]:
        return list(self._instances)

    def set_annotation_image(self, size: tuple[int, int] | None, instances: Sequence[AnnotatedInstance] = ()) -> None:
        """A new image: drop the buffer, composite ``instances`` from scratch."""
        self._ann_size = (0, 0) if size is None else (int(size[0]), int(size[1]))
        self._argb = None
        self._overrides = {}
        self._path_cache = {}
        if self._selected is not None and self._selected[0] == ANNOTATION:
            self._selected = None
        self.outlines.set_hidden(set())
        self._instances = list(instances)
        self.annotation_fill.set_buffer(None, self._ann_size)
        if self._instances:
            self._refresh(None)
        self._update_vectors()

    def set_annotations(self, instances: Sequence[AnnotatedInstance]) -> None:
        """The image's annotations changed: recomposite only where an instance changed."""
        old = {inst.id: inst for inst in self._instances}
        new = {inst.id: inst for inst in instances}
        dirty: Rect | None = None
        for inst_id in old.keys() | new.keys():
            a, b = old.get(inst_id), new.get(inst_id)
            if a is b:
                continue
            for inst in (a, b):
                if inst is not None:
                    dirty = rect_union(dirty, mask_rect(inst.mask))
        order_changed = [i.id for i in self._instances if i.id in new] != [i.id for i in instances if i.id in old]
        self._instances = list(instances)
        if order_changed:  # overlaps may paint in another order: recomposite the union of all
            for inst in self._instances:
                dirty = rect_union(dirty, mask_rect(inst.mask))
        if dirty is not None:
            self._refresh(dirty)
        self._update_vectors()

    def clear_annotations(self) -> None:
        self.set_annotation_image(None)

    def set_overrides(self, masks: dict[int, CroppedMask]) -> None:
        """Show these annotation masks instead of the instances' own (working copies during a stroke).

        Their outlines are stale until the stroke ends, so they are hidden meanwhile.
        """
        self._overrides = dict(masks)
        keys = {(ANNOTATION, i) for i in masks}
        if keys != self.outlines.hidden:
            self.outlines.set_hidden(keys)
            self._update_highlight()

    def clear_overrides(self) -> None:
        self._overrides = {}
        if self.outlines.hidden:
            self.outlines.set_hidden(set())
            self._update_highlight()

    def refresh_rect(self, rect: Rect | None) -> None:
        """Recomposite the annotations in ``rect`` (image pixels) and repaint just that part."""
        if not rect_is_empty(rect):
            self._refresh(rect)

    def annotation_color(self, instance_id: int) -> tuple[int, int, int]:
        for inst in self._instances:
            if inst.id == instance_id:
                return self.rgb(inst)
        return annotation_rgb(instance_id)

    def rgb(self, inst: AnnotatedInstance) -> tuple[int, int, int]:
        """An annotation's colour: its class's when it has one, else its own (by id)."""
        return self.class_colours.get(inst.category) or annotation_rgb(inst.id)

    def set_class_colours(self, colours: dict[str, tuple[int, int, int]]) -> None:
        """Classes' own colours; a change recomposites the annotations."""
        if colours == self.class_colours:
            return
        self.class_colours = dict(colours)
        if self._instances:
            self._refresh(None)
            self._update_vectors()

    def pixel(self, x: int, y: int) -> int:
        """The composited annotation ARGB value at image pixel (x, y) (0 where none; for tests)."""
        return 0 if self._argb is None else int(self._argb[y, x])

    def _ensure_buffer(self) -> bool:
        if self._argb is None:
            h, w = self._ann_size
            if h <= 0 or w <= 0:
                return False
            self._argb = np.zeros((h, w), np.uint32)
            self.annotation_fill.set_buffer(self._argb, self._ann_size)
        return True

    def _refresh(self, rect: Rect | None) -> None:
        h, w = self._ann_size
        full = (0, 0, w, h)
        rect = full if rect is None else rect_intersection(rect, full)
        if rect is None or not self._ensure_buffer():
            return
        assert self._argb is not None
        x0, y0, x1, y1 = rect
        region = self._argb[y0:y1, x0:x1]
        region[:] = 0
        for inst in self._instances:  # list order: later instances paint on top
            m = self._overrides.get(inst.id, inst.mask)
            inter = rect_intersection(rect, mask_rect(m))
            if inter is None:
                continue
            bits = m.bits[inter[1] - m.y0 : inter[3] - m.y0, inter[0] - m.x0 : inter[2] - m.x0]
            target = region[inter[1] - y0 : inter[3] - y0, inter[0] - x0 : inter[2] - x0]
            np.copyto(target, pack_argb(self.rgb(inst)), where=bits)
        self.composite_pixels += (x1 - x0) * (y1 - y0)
        # One pixel of margin: smooth scaling when zoomed out reads the neighbours.
        self.annotation_fill.update(_qrect((x0 - 1, y0 - 1, x1 + 1, y1 + 1)))

    # ==============================================================================================
    # Both: outlines, labels, display options, hover, selection, hit tests
    # ==============================================================================================
    def clear(self) -> None:
        """Nothing over the photo (a new image is coming)."""
        self.clear_predictions()
        self.clear_annotations()

    def keys(self) -> list[ItemKey]:
        """Every item's key: predictions (index order), then annotations (paint order)."""
        return [(PREDICTION, i) for i in range(len(self._masks))] + [(ANNOTATION, a.id) for a in self._instances]

    def _position(self, key: ItemKey | None) -> int:
        """Where ``key`` is in the outline and label items (-1: nowhere)."""
        if key is None:
            return -1
        if key[0] == PREDICTION:
            return key[1] if 0 <= key[1] < len(self._masks) else -1
        for j, inst in enumerate(self._instances):
            if inst.id == key[1]:
                return len(self._masks) + j
        return -1

    def _shown(self) -> np.ndarray:
        return np.concatenate([self._visible, np.ones(len(self._instances), bool)])

    def _update_vectors(self) -> None:
        """Rebuild the shared outline and label items from both kinds (annotation paths are cached)."""
        pred_colors = [QColor(int(r), int(g), int(b)) for r, g, b in self._colors_rgb]
        paths, colors = list(self._pred_paths), list(pred_colors)
        boxes, names = [self._pred_boxes], list(self._pred_names)
        cache: dict[int, tuple[AnnotatedInstance, QPainterPath]] = {}
        for inst in self._instances:
            cached = self._path_cache.get(inst.id)
            path = cached[1] if cached is not None and cached[0] is inst else outline_path(inst.mask)
            cache[inst.id] = (inst, path)
            paths.append(path)
            colors.append(QColor(*self.rgb(inst)))
            boxes.append(np.asarray(inst.box_xyxy(), np.float32).reshape(1, 4))
            names.append(inst.category)
        self._path_cache = cache
        n_ann = len(self._instances)
        size = self._image_size if self._masks or not n_ann else self._ann_size
        rect = QRectF(0, 0, size[1], size[0])
        shown = self._shown()
        self.outlines.set_outlines(paths, colors, rect, self.keys(), shown)
        scores = np.concatenate([self._pred_scores, np.zeros(n_ann, np.float32)])
        predicted = np.concatenate([np.ones(len(self._masks), bool), np.zeros(n_ann, bool)])
        self.labels.set_boxes(np.concatenate(boxes), names, scores, colors, rect, predicted, shown)
        self.highlight.set_lines([], rect)
        self._sync_selection()

    def set_opacity(self, opacity: float) -> None:
        self.fill.setOpacity(float(opacity))
        self.annotation_fill.setOpacity(float(opacity))

    def set_show_outlines(self, on: bool) -> None:
        self.outlines.setVisible(on)  # hover and selection highlights stay

    def set_show_boxes(self, on: bool) -> None:
        self.labels.set_flags(boxes=on)

    def set_show_labels(self, on: bool) -> None:
        self.labels.set_flags(labels=on)

    def set_show_scores(self, on: bool) -> None:
        self.labels.set_flags(scores=on)

    def set_view_scale(self, scale: float) -> None:
        self.highlight.set_view_scale(scale)

    @property
    def selected(self) -> ItemKey | None:
        return self._selected

    @property
    def hovered(self) -> ItemKey | None:
        return self._hovered

    def set_selected(self, key: ItemKey | None) -> None:
        self._selected = key
        self._sync_selection()
        self.labels.update()

    def _sync_selection(self) -> None:
        self.outlines.set_selected(self._selected)
        self.labels.selected = self._position(self._selected)
        self._update_highlight()

    def set_hovered(self, key: ItemKey | None) -> None:
        if key != self._hovered:
            self._hovered = key
            self._update_highlight()

    def _update_highlight(self) -> None:
        shown, hidden = self._shown(), self.outlines.hidden
        paths, colors = self.outlines.paths, self.outlines.colors
        lines = []
        for key, width in ((self._hovered, 2.0), (self._selected, 2.5)):
            i = self._position(key)
            if i < 0 or i >= len(paths) or not shown[i] or key in hidden:
                continue
            lines.append((paths[i], WHITE if key == self._selected else colors[i], width))
        self.highlight.set_lines(lines)

    def prediction_at(self, x: float, y: float) -> int:
        """Topmost visible prediction at image point (x, y), -1 if none."""
        return instance_at(self._masks, np.flatnonzero(self._visible).tolist(), x, y)

    def annotation_at(self, x: float, y: float) -> int:
        """Id of the topmost annotation covering image point (x, y); -1 if none."""
        col, row = int(np.floor(x)), int(np.floor(y))
        for inst in reversed(self._instances):
            m = self._overrides.get(inst.id, inst.mask)
            h, w = m.bits.shape[:2]
            c, r = col - int(m.x0), row - int(m.y0)
            if 0 <= r < h and 0 <= c < w and m.bits[r, c]:
                return inst.id
        return -1

    def key_at(self, x: float, y: float) -> ItemKey | None:
        """The topmost item at image point (x, y): annotations paint above predictions."""
        inst_id = self.annotation_at(x, y)
        if inst_id > 0:
            return (ANNOTATION, inst_id)
        index = self.prediction_at(x, y)
        return (PREDICTION, index) if index >= 0 else None
