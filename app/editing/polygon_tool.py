"""Polygon canvas tool: draw a new instance point by point, edit the selected polygon's vertices.

Drawing: left click adds a point; clicking the first point (or Enter) closes the polygon and
creates an instance of the current class; Esc cancels; Backspace/Delete or a right click removes
the last (or the clicked) point.
Editing (the selected instance was drawn as polygons): drag a vertex to move it, right click or
Delete removes the clicked vertex, Ctrl+click on an edge inserts one. Every change is one undo step.

Points are in pixel-edge image coordinates (the canvas's scene coordinates), COCO's convention.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem

from app.editing.brush_tool import pan_requested

if TYPE_CHECKING:
    from app.editing.controller import EditingController

HIT_PX = 7.0  # screen pixels: how close a click must be to a vertex or an edge
HANDLE_PX = 4.0  # half size of a vertex handle on screen

Polygons = list[list[tuple[float, float]]]


def flat(points: list[tuple[float, float]]) -> list[float]:
    return [v for p in points for v in p]


def unflat(poly) -> list[tuple[float, float]]:
    return [(float(poly[i]), float(poly[i + 1])) for i in range(0, len(poly) - 1, 2)]


class PolygonItem(QGraphicsItem):
    """The polygon being drawn (open, with a rubber band to the cursor) or edited (closed, with handles).

    Lines and handles are drawn in device pixels so they stay the same size at any zoom.
    """

    def __init__(self) -> None:
        super().__init__()
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.polygons: Polygons = []
        self.closed = True
        # Rubber band end while drawing (not `cursor`, which would hide QGraphicsItem.cursor()).
        self.rubber_end: tuple[float, float] | None = None
        self.active: tuple[int, int] | None = None  # highlighted vertex
        self.close_hint = False  # the cursor is on the first point: a click closes
        self._rect = QRectF()
        self.pad = 10.0  # image pixels of margin for handles (set from the zoom)

    def set_state(
        self,
        polygons: Polygons,
        closed: bool,
        cursor: tuple[float, float] | None = None,
        active: tuple[int, int] | None = None,
        close_hint: bool = False,
    ) -> None:
        self.prepareGeometryChange()
        self.polygons = [list(p) for p in polygons]
        self.closed = closed
        self.rubber_end = cursor
        self.active = active
        self.close_hint = close_hint
        pts = [pt for poly in self.polygons for pt in poly] + ([cursor] if cursor else [])
        if pts:
            xs, ys = [p[0] for p in pts], [p[1] for p in pts]
            self._rect = QRectF(min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)).adjusted(
                -self.pad, -self.pad, self.pad, self.pad
            )
        else:
            self._rect = QRectF()
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt API
        return self._rect

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        transform = painter.worldTransform()
        painter.save()
        painter.resetTransform()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        for pi, poly in enumerate(self.polygons):
            if not poly:
                continue
            dev = [transform.map(QPointF(x, y)) for x, y in poly]
            path = QPainterPath(dev[0])
            for p in dev[1:]:
                path.lineTo(p)
            if self.closed and len(dev) > 2:
                path.closeSubpath()
            elif self.rubber_end is not None:
                path.lineTo(transform.map(QPointF(*self.rubber_end)))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.setPen(QPen(QColor(0, 0, 0, 170), 3.5))
            painter.drawPath(path)
            painter.setPen(QPen(QColor(255, 230, 0), 1.6))
            painter.drawPath(path)
            for vi, p in enumerate(dev):
                first_open = not self.closed and vi == 0
                big = (pi, vi) == self.active or (first_open and self.close_hint)
                s = HANDLE_PX * (1.6 if big else 1.0)
                painter.setPen(QPen(QColor(0, 0, 0), 1.0))
                painter.setBrush(QColor(255, 90, 60) if big else QColor(255, 255, 255))
                if first_open:
                    painter.drawEllipse(p, s + 1, s + 1)
                else:
                    painter.drawRect(QRectF(p.x() - s, p.y() - s, 2 * s, 2 * s))
        painter.restore()


class PolygonTool:
    def __init__(self, controller: EditingController) -> None:
        self.controller = controller
        self.item = PolygonItem()
        self.item.setZValue(55)
        self.points: list[tuple[float, float]] = []  # the polygon being drawn
        self._drag: tuple[int, int] | None = None
        self._drag_start: Polygons | None = None
        self._edit: Polygons = []  # the selected instance's polygons (possibly mid-drag)
        self.active_vertex: tuple[int, int] | None = None

    # --- lifecycle -----------------------------------------------------------------------------
    def activate(self) -> None:
        if self.item.scene() is None:
            self.controller.canvas.add_item(self.item, 55)
        self.refresh()

    def deactivate(self) -> None:
        self.cancel()
        self._drag = None
        self.controller.canvas.remove_item(self.item)

    @property
    def drawing(self) -> bool:
        return bool(self.points)

    @property
    def dragging(self) -> bool:
        return self._drag is not None

    def refresh(self, cursor: tuple[float, float] | None = None, close_hint: bool = False) -> None:
        """Redraw from the state: the polygon being drawn, else the selected instance's polygons."""
        self.item.pad = (HIT_PX + 4) / max(self.controller.canvas.scale_factor, 1e-6)
        if self.points:
            self.item.set_state([self.points], False, cursor, None, close_hint)
            return
        if self._drag is None:
            inst = self.controller.selected_annotation()
            self._edit = [unflat(p) for p in inst.polygons] if inst is not None and inst.polygons else []
            if self.active_vertex is not None and not self._valid(self.active_vertex):
                self.active_vertex = None
        self.item.set_state(self._edit, True, None, self.active_vertex)

    def _valid(self, v: tuple[int, int]) -> bool:
        return 0 <= v[0] < len(self._edit) and 0 <= v[1] < len(self._edit[v[0]])

    # --- hit testing in screen pixels ----------------------------------------------------------------
    def _screen_dist(self, a: tuple[float, float], b: tuple[float, float]) -> float:
        s = self.controller.canvas.scale_factor
        return math.hypot(a[0] - b[0], a[1] - b[1]) * s

    def _vertex_at(self, pos: tuple[float, float], polygons: Polygons) -> tuple[int, int] | None:
        best, best_d = None, HIT_PX
        for pi, poly in enumerate(polygons):
            for vi, p in enumerate(poly):
                d = self._screen_dist(p, pos)
                if d <= best_d:
                    best, best_d = (pi, vi), d
        return best

    def _edge_at(self, pos: tuple[float, float]) -> tuple[int, int] | None:
        """(polygon, index of the edge's second vertex) of the edge nearest ``pos`` on screen."""
        best, best_d = None, HIT_PX
        s = self.controller.canvas.scale_factor
        for pi, poly in enumerate(self._edit):
            n = len(poly)
            for vi in range(n):
                (ax, ay), (bx, by) = poly[vi], poly[(vi + 1) % n]
                dx, dy = bx - ax, by - ay
                length2 = dx * dx + dy * dy
                t = 0.0 if length2 == 0 else min(max(((pos[0] - ax) * dx + (pos[1] - ay) * dy) / length2, 0.0), 1.0)
                d = math.hypot(pos[0] - (ax + t * dx), pos[1] - (ay + t * dy)) * s
                if d <= best_d:
                    best, best_d = (pi, vi + 1), d
        return best

    # --- CanvasTool -----------------------------------------------------------------------------
    def mouse_press(self, event: QMouseEvent, image_pos: QPointF) -> bool:
        pos = (image_pos.x(), image_pos.y())
        button = event.button()
        if pan_requested(self.controller.canvas) or self.controller.image_size is None:
            return False
        if button == Qt.MouseButton.LeftButton:
            if self.points:
                if len(self.points) >= 3 and self._screen_dist(self.points[0], pos) <= HIT_PX:
                    self.finish()
                else:
                    self.points.append(self._clamp(pos))
                    self.refresh(pos)
                return True
            hit = self._vertex_at(pos, self._edit)
            if hit is not None:
                self.active_vertex = hit
                self._drag = hit
                self._drag_start = [list(p) for p in self._edit]
                self.refresh()
                return True
            if self._edit and event.modifiers() & Qt.KeyboardModifier.ControlModifier:
                edge = self._edge_at(pos)
                if edge is not None:
                    pi, vi = edge
                    polys = [list(p) for p in self._edit]
                    polys[pi].insert(vi, self._clamp(pos))
                    self.active_vertex = (pi, vi)
                    self.controller.set_polygons(polys, "Insert Vertex")
                    return True
            self.points = [self._clamp(pos)]
            self.active_vertex = None
            self.refresh(pos)
            return True
        if button == Qt.MouseButton.RightButton:
            if self.points:
                hit = self._vertex_at(pos, [self.points])
                self.points.pop(hit[1] if hit is not None else -1)
                self.refresh(pos)
                return True
            hit = self._vertex_at(pos, self._edit)
            if hit is not None:
                self.delete_vertex(hit)
                return True
        return False

    def mouse_move(self, event: QMouseEvent, image_pos: QPointF) -> bool:
        pos = (image_pos.x(), image_pos.y())
        if self._drag is not None:
            pi, vi = self._drag
            self._edit[pi][vi] = self._clamp(pos)
            self.item.set_state(self._edit, True, None, self._drag)
            return True
        if self.points:
            close = len(self.points) >= 3 and self._screen_dist(self.points[0], pos) <= HIT_PX
            self.refresh(pos, close)
        return False

    def mouse_release(self, event: QMouseEvent, image_pos: QPointF) -> bool:
        if self._drag is not None and event.button() == Qt.MouseButton.LeftButton:
            moved = self._edit != self._drag_start
            self._drag = None
            if moved:
                self.controller.set_polygons([list(p) for p in self._edit], "Move Vertex")
            else:
                self.refresh()
            return True
        return bool(self.points) and event.button() in (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton)

    # --- keyboard (the controller forwards keys while this tool wants them) ------------------------------
    def wants_key(self, key: int) -> bool:
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            return len(self.points) >= 3
        if key == Qt.Key.Key_Escape:
            return bool(self.points) or self._drag is not None
        if key in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            return bool(self.points) or (self.active_vertex is not None and self._valid(self.active_vertex))
        return False

    def key(self, key: int) -> None:
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.finish()
        elif key == Qt.Key.Key_Escape:
            if self._drag is not None:
                self._edit = self._drag_start or self._edit
                self._drag = None
                self.refresh()
            else:
                self.cancel()
        elif key in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            if self.points:
                self.points.pop()
                self.refresh()
            elif self.active_vertex is not None:
                self.delete_vertex(self.active_vertex)

    # --- actions ---------------------------------------------------------------------------------
    def finish(self) -> bool:
        """Close the polygon being drawn into a new instance (needs 3 points)."""
        if len(self.points) < 3:
            return False
        points, self.points = self.points, []
        self.controller.add_polygon_instance([flat(points)])
        self.refresh()
        return True

    def cancel(self) -> None:
        if self.points:
            self.points = []
            self.refresh()

    def delete_vertex(self, vertex: tuple[int, int]) -> None:
        pi, vi = vertex
        polys = [list(p) for p in self._edit]
        if not (0 <= pi < len(polys) and 0 <= vi < len(polys[pi])):
            return
        if len(polys[pi]) <= 3:
            if len(polys) == 1:
                self.controller.status("A polygon needs 3 points: delete the instance instead (Del with no vertex).")
                self.active_vertex = None
                self.refresh()
                return
            polys.pop(pi)
        else:
            polys[pi].pop(vi)
        self.active_vertex = None
        self.controller.set_polygons(polys, "Delete Vertex")

    def _clamp(self, pos: tuple[float, float]) -> tuple[float, float]:
        h, w = self.controller.image_size or (0, 0)
        return (min(max(pos[0], 0.0), float(w)), min(max(pos[1], 0.0), float(h)))
