"""The annotation layer on the canvas: the image's annotated instances, apart from the prediction overlay.

Fill: one image-sized premultiplied ARGB buffer (allocated only while there are annotations),
wrapped by a QImage without copying. An edit recomposites only its dirty rectangle (numpy over
the crops of the instances that touch it) and calls ``update(rect)`` on the item, whose device
cache then repaints only that part of the screen: a brush segment on a 4000x3000 image costs
about what its own bounding box costs.

Outlines (one path per instance, cached by instance object) and class labels are redrawn only
when instances change, not during a stroke; the selected instance gets a thick white outline.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from PySide6.QtCore import QRectF
from PySide6.QtGui import QColor, QPainterPath
from PySide6.QtWidgets import QGraphicsScene

from app.canvas_items import ArgbImageItem, BoxLabelItem, HighlightItem, OutlineItem, contours_path
from app.colors import instance_rgb
from app.editing.mask_ops import Rect, mask_rect, rect_intersection, rect_is_empty, rect_union
from app.overlay import mask_contours, pack_argb
from engine.annotations import AnnotatedInstance
from engine.masks import CroppedMask

# Above the prediction overlay (masks 10 .. boxes 30): what the user made is what they look at.
Z_FILL, Z_OUTLINES, Z_HIGHLIGHT, Z_LABELS = 40.0, 41.0, 41.5, 42.0
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


class FillItem(ArgbImageItem):
    """Draws the exposed part of the layer's ARGB buffer. Cached in device pixels: a partial
    ``update(rect)`` re-renders only ``rect`` into the cache, the rest is blitted."""

    smooth_below = 1.0  # sharp pixels from 100 % zoom on (the photo and predictions: from PIXEL_ZOOM)

    def set_buffer(self, argb: np.ndarray | None, size: tuple[int, int]) -> None:
        self._set_argb(argb, size[1], size[0])
        self.update()


class AnnotationLayer:
    """Fill, outlines and labels of one image's annotated instances on a scene."""

    def __init__(self, scene: QGraphicsScene) -> None:
        self.fill = FillItem()
        self.outlines = OutlineItem()
        self.highlight = HighlightItem(tight=True)
        self.labels = BoxLabelItem()
        self.labels.set_flags(boxes=False, labels=True, scores=False)
        items = (
            (self.fill, Z_FILL),
            (self.outlines, Z_OUTLINES),
            (self.highlight, Z_HIGHLIGHT),
            (self.labels, Z_LABELS),
        )
        for item, z in items:
            item.setZValue(z)
            scene.addItem(item)
        self.fill.setOpacity(0.5)
        self._size = (0, 0)
        self._argb: np.ndarray | None = None
        self._instances: list[AnnotatedInstance] = []
        self._overrides: dict[int, CroppedMask] = {}
        self._path_cache: dict[int, tuple[AnnotatedInstance, QPainterPath]] = {}
        self.selected = -1
        self.class_colours: dict[str, tuple[int, int, int]] = {}  # classes with a colour of their own
        self.composite_pixels = 0  # pixels recomposited so far (tests check that edits stay local)

    # --- content -----------------------------------------------------------------------------
    @property
    def image_size(self) -> tuple[int, int]:
        return self._size

    @property
    def instances(self) -> list[AnnotatedInstance]:
        return list(self._instances)

    def set_image(self, size: tuple[int, int] | None, instances: Sequence[AnnotatedInstance] = ()) -> None:
        """A new image: drop the buffer, composite ``instances`` from scratch."""
        self._size = (0, 0) if size is None else (int(size[0]), int(size[1]))
        self._argb = None
        self._overrides = {}
        self._path_cache = {}
        self.selected = -1
        self.outlines.selected = -1
        self.outlines.set_hidden(set())
        self._instances = list(instances)
        self.fill.set_buffer(None, self._size)
        if self._instances:
            self._refresh(None)
        self._update_vectors()

    def set_instances(self, instances: Sequence[AnnotatedInstance]) -> None:
        """The image's instances changed: recomposite only where an instance changed."""
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

    def clear(self) -> None:
        self.set_image(None)

    # --- live edits (a stroke in progress) ---------------------------------------------------------
    def set_overrides(self, masks: dict[int, CroppedMask]) -> None:
        """Show these masks instead of the instances' own (working copies during a stroke).

        Their outlines are stale until the stroke ends, so they are hidden meanwhile.
        """
        self._overrides = dict(masks)
        if set(masks) != self.outlines.hidden:
            self.outlines.set_hidden(set(masks))
            self._update_highlight()

    def clear_overrides(self) -> None:
        self._overrides = {}
        if self.outlines.hidden:
            self.outlines.set_hidden(set())
            self._update_highlight()

    def refresh_rect(self, rect: Rect | None) -> None:
        """Recomposite ``rect`` (image pixels) and repaint just that part."""
        if not rect_is_empty(rect):
            self._refresh(rect)

    # --- display -----------------------------------------------------------------------------------
    def set_opacity(self, opacity: float) -> None:
        self.fill.setOpacity(float(opacity))

    def set_show_labels(self, on: bool) -> None:
        self.labels.setVisible(on)

    def set_selected(self, instance_id: int) -> None:
        self.selected = instance_id
        self.outlines.set_selected(instance_id)
        self._update_highlight()

    def set_view_scale(self, scale: float) -> None:
        self.highlight.set_view_scale(scale)

    def _update_highlight(self) -> None:
        hidden = self.selected in self.outlines.hidden
        path = None if hidden else self.outlines.path_of(self.selected)
        self.highlight.set_lines([] if path is None else [(path, WHITE, 2.0)])

    def color(self, instance_id: int) -> tuple[int, int, int]:
        for inst in self._instances:
            if inst.id == instance_id:
                return self.rgb(inst)
        return annotation_rgb(instance_id)

    def rgb(self, inst: AnnotatedInstance) -> tuple[int, int, int]:
        """The class's colour when it has one, else the instance's own (by id)."""
        return self.class_colours.get(inst.category) or annotation_rgb(inst.id)

    def set_class_colours(self, colours: dict[str, tuple[int, int, int]]) -> None:
        """Classes' own colours; a change recomposites the image."""
        if colours == self.class_colours:
            return
        self.class_colours = dict(colours)
        if self._instances:
            self._refresh(None)
            self._update_vectors()

    def instance_at(self, x: float, y: float) -> int:
        """Id of the topmost instance covering image point (x, y); -1 if none."""
        col, row = int(np.floor(x)), int(np.floor(y))
        for inst in reversed(self._instances):
            m = self._overrides.get(inst.id, inst.mask)
            h, w = m.bits.shape[:2]
            c, r = col - int(m.x0), row - int(m.y0)
            if 0 <= r < h and 0 <= c < w and m.bits[r, c]:
                return inst.id
        return -1

    def pixel(self, x: int, y: int) -> int:
        """The composited ARGB value at image pixel (x, y) (0 where no instance; for tests)."""
        return 0 if self._argb is None else int(self._argb[y, x])

    # --- internals ---------------------------------------------------------------------------------
    def _ensure_buffer(self) -> bool:
        if self._argb is None:
            h, w = self._size
            if h <= 0 or w <= 0:
                return False
            self._argb = np.zeros((h, w), np.uint32)
            self.fill.set_buffer(self._argb, self._size)
        return True

    def _refresh(self, rect: Rect | None) -> None:
        h, w = self._size
        full = (0, 0, w, h)
        rect = full if rect is None else rect_intersection(rect, full)
        if rect is None or not self._ensure_buffer():
            return
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
        self.fill.update(_qrect((x0 - 1, y0 - 1, x1 + 1, y1 + 1)))

    def _update_vectors(self) -> None:
        ids, paths, colors = [], [], []
        cache: dict[int, tuple[AnnotatedInstance, QPainterPath]] = {}
        boxes, names = [], []
        for inst in self._instances:
            cached = self._path_cache.get(inst.id)
            if cached is not None and cached[0] is inst:
                path = cached[1]
            else:
                path = outline_path(inst.mask)
            cache[inst.id] = (inst, path)
            ids.append(inst.id)
            paths.append(path)
            colors.append(QColor(*self.rgb(inst)))
            boxes.append(inst.box_xyxy())
            names.append(inst.category)
        self._path_cache = cache
        rect = QRectF(0, 0, self._size[1], self._size[0])
        self.outlines.set_outlines(paths, colors, rect, ids)
        self._update_highlight()
        box_array = np.array(boxes, np.float32).reshape(-1, 4)
        self.labels.set_boxes(box_array, names, np.zeros(len(names), np.float32), colors, rect)
