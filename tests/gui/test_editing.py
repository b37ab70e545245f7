"""Editing on the real main window: accept/reject, brush/eraser, polygons, relabel, delete, undo per image."""

from __future__ import annotations

import numpy as np
import pytest
from gui_fakes import FakeSegmenter
from PySide6.QtCore import QPoint, QPointF, Qt, QTimer
from PySide6.QtWidgets import QApplication

from app.editing import install_editing
from app.editing.class_picker import ClassPickerDialog, rank_classes
from app.editing.mask_ops import GrowableMask, fill_holes, segment_footprint
from app.image_loader import normalise_path
from app.instance_list import COL_CLASS
from app.instance_overlay import annotation_rgb
from app.overlay import pack_argb
from app.selection import annotation_key, prediction_key
from engine.annotations import masks_equal
from engine.masks import CroppedMask
from engine.polygons import polygons_to_mask


@pytest.fixture
def editing(window, qtbot, image_folder):
    """img_0 (160x120) on screen with the fake prediction (scores 0.95, 0.70, 0.30; threshold 0.5)."""
    ed = install_editing(window)
    with qtbot.waitSignal(window.imageShown, timeout=10000):
        window.open_image(str(image_folder / "img_0.png"))
    pred = FakeSegmenter().predict(window.current_image)
    window.set_prediction(window.current_image_path, pred)
    window.set_score_threshold(0.5)
    window.canvas.fit_to_window()
    return ed, pred


def _stack(ed):
    return ed.history.group.activeStack()


def _full(mask: CroppedMask) -> np.ndarray:
    return mask.to_full()


def _view(window, x: float, y: float) -> QPoint:
    return window.canvas.mapFromScene(QPointF(x, y))


def _drag(qtbot, window, points_image: list[tuple[float, float]], button=Qt.MouseButton.LeftButton):
    """Press at the first point, move through the others, release; returns the image points the canvas saw."""
    viewport = window.canvas.viewport()
    views = [_view(window, x, y) for x, y in points_image]
    seen = [window.canvas.image_pos(v) for v in views]
    qtbot.mousePress(viewport, button, pos=views[0])
    for v in views[1:]:
        qtbot.mouseMove(viewport, pos=v)
    qtbot.mouseRelease(viewport, button, pos=views[-1])
    return [(p.x(), p.y()) for p in seen]


def _click(
    qtbot, window, x: float, y: float, button=Qt.MouseButton.LeftButton, modifier=Qt.KeyboardModifier.NoModifier
):
    v = _view(window, x, y)
    qtbot.mouseClick(window.canvas.viewport(), button, modifier, pos=v)
    p = window.canvas.image_pos(v)
    return (p.x(), p.y())


def _stroke_truth(points: list[tuple[float, float]], radius: float, size: tuple[int, int]) -> np.ndarray:
    """Brute force over the whole image: pixel centres within ``radius`` of any stroke segment."""
    h, w = size
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64) + 0.5
    out = np.zeros((h, w), bool)
    segments = [(points[0], points[0])] + list(zip(points[:-1], points[1:], strict=True))
    for (ax, ay), (bx, by) in segments:
        dx, dy = bx - ax, by - ay
        length2 = dx * dx + dy * dy
        t = np.zeros_like(xs) if length2 == 0 else np.clip(((xs - ax) * dx + (ys - ay) * dy) / length2, 0, 1)
        out |= (xs - ax - t * dx) ** 2 + (ys - ay - t * dy) ** 2 <= radius * radius
    return out


# --- accept / reject -------------------------------------------------------------------------------
def test_accept_prediction_undo_redo(editing, window, qtbot):
    ed, pred = editing
    window.select_instance(0)
    ed.actions.accept.trigger()
    ann = ed.annotations
    assert len(ann) == 1
    inst = ann.instances[0]
    assert inst.category == "disc" and inst.source == "prediction" and inst.score == pytest.approx(0.95)
    assert masks_equal(inst.mask, pred.instances[0].mask)
    assert "disc" in ed.project.classes
    assert not window.canvas.overlay.visible[0]  # it left the prediction view
    assert ed.selected_id == inst.id
    # The overlay's annotation fill shows it.
    x1, y1, x2, y2 = (int(v) for v in pred.instances[0].box)
    cx, cy = (x1 + x2) // 2, (y1 + y2) // 2
    assert ed.overlay.pixel(cx, cy) == int(pack_argb(annotation_rgb(inst.id)))
    assert ed.list.model.count("annotation") == 1 and ed.list.text(annotation_key(inst.id), COL_CLASS) == "disc"
    assert window.file_list.state(window.current_image_path).annotated

    # Ctrl+Z through the real shortcut, then redo with Ctrl+Shift+Z and Ctrl+Y.
    window.activateWindow()
    window.canvas.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is window.canvas, timeout=3000)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert len(ed.annotations) == 0
    assert window.canvas.overlay.visible[0]
    assert ed.overlay.pixel(cx, cy) == 0
    assert not window.file_list.state(window.current_image_path).annotated
    qtbot.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert len(ed.annotations) == 1 and masks_equal(ed.annotations.instances[0].mask, pred.instances[0].mask)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)
    assert len(ed.annotations) == 1


def test_accept_all_above_threshold_and_reject(editing, window):
    ed, pred = editing
    window.select_instance(1)
    ed.actions.reject.trigger()
    assert not window.canvas.overlay.visible[1]
    ed.actions.accept_all.trigger()  # 0.95 shown; 0.70 rejected; 0.30 under the threshold
    assert [i.category for i in ed.annotations] == ["disc"]
    _stack(ed).undo()  # accept all
    _stack(ed).undo()  # reject
    assert window.canvas.overlay.visible[1]
    ed.accept_all_predictions()
    assert [i.category for i in ed.annotations] == ["disc", "block"]
    assert _stack(ed).count() == 1  # the undone steps were replaced by the new one
    assert _stack(ed).undoText() == "Accept 2 Predictions"


def test_rerun_keeps_accepted_predictions_out_of_the_prediction_view(editing, window, qtbot):
    ed, pred = editing
    window.select_instance(0)
    ed.accept_prediction()
    assert not ed.accept_prediction(0)  # hidden now: not accepted twice
    assert len(ed.annotations) == 1
    rerun = FakeSegmenter().predict(window.current_image)  # the same masks again, new objects
    with qtbot.waitSignal(ed.review.predictionsStored, timeout=5000):  # stored by the writer thread
        window.set_prediction(window.current_image_path, rerun)
    # The accepted one is not predicted again: the run keeps it, accepted, beside the new ones.
    assert len(window.current_prediction.instances) == 3
    states = ed.review.states(window.current_image_path, 3)
    assert sorted(states) == ["accepted", "pending", "pending"]
    visible = list(window.canvas.overlay.visible)
    assert visible == [
        s == "pending" and i.score >= 0.5 for s, i in zip(states, window.current_prediction.instances, strict=True)
    ]
    assert sum(visible) == 1


# --- brush and eraser --------------------------------------------------------------------------------
def test_brush_stroke_adds_exactly_the_pixels_under_it(editing, window, qtbot):
    ed, pred = editing
    window.select_instance(0)
    ed.accept_prediction()
    before = ed.annotations.instances[0]
    ed.set_tool("brush")
    ed.set_brush_size(9)
    steps = _stack(ed).count()
    pts = _drag(qtbot, window, [(60.3, 70.2), (75.0, 72.5), (90.7, 95.1), (110.2, 96.0)])
    after = ed.annotations.instances[0]
    truth = _stroke_truth(pts, 4.5, (120, 160))
    assert np.array_equal(_full(after.mask), _full(before.mask) | truth)
    assert after.polygons is None
    assert _stack(ed).count() == steps + 1  # press..release is one undo step
    assert ed.selected_id == after.id
    # The layer shows the stroke: a painted pixel outside the original disc has the instance colour.
    ys, xs = np.nonzero(truth & ~_full(before.mask))
    assert ed.overlay.pixel(int(xs[0]), int(ys[0])) == int(pack_argb(annotation_rgb(after.id)))
    _stack(ed).undo()
    assert masks_equal(ed.annotations.instances[0].mask, before.mask)
    assert ed.overlay.pixel(int(xs[0]), int(ys[0])) == 0


def test_eraser_removes_and_brush_with_no_selection_creates(editing, window, qtbot):
    ed, pred = editing
    window.select_instance(0)
    ed.accept_prediction()
    disc = ed.annotations.instances[0]
    ed.set_tool("eraser")
    ed.set_brush_size(6)
    pts = _drag(qtbot, window, [(20.0, 30.0), (55.0, 50.0)])
    erased = ed.annotations.instances[0]
    truth = _stroke_truth(pts, 3.0, (120, 160))
    assert np.array_equal(_full(erased.mask), _full(disc.mask) & ~truth)
    assert (_full(disc.mask) & truth).any()

    # Nothing selected: the brush makes a new instance of the current class.
    ed.select(-1)
    ed.set_current_class("bar")
    ed.set_tool("brush")
    pts = _drag(qtbot, window, [(130.0, 100.0), (150.0, 105.0)])
    new = ed.annotations.instances[-1]
    assert new.category == "bar" and new.source == "manual" and new.id == 2
    assert np.array_equal(_full(new.mask), _stroke_truth(pts, 3.0, (120, 160)))
    # Brush size keys: ] grows, [ shrinks; the cursor circle follows.
    window.activateWindow()
    window.canvas.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is window.canvas, timeout=3000)
    qtbot.keyClick(window.canvas, Qt.Key.Key_BracketRight)
    assert ed.brush_size == 8 and ed.actions.size_spin.value() == 8
    qtbot.keyClick(window.canvas, Qt.Key.Key_BracketLeft)
    qtbot.keyClick(window.canvas, Qt.Key.Key_BracketLeft)
    assert ed.brush_size == 5
    cursor = ed.tools["brush"].cursor
    assert cursor.isVisible()
    assert cursor.boundingRect().width() == pytest.approx(2 * (2.5 * window.canvas.scale_factor) + 6, abs=0.01)


def test_brush_erases_from_others_when_asked(editing, window, qtbot):
    ed, pred = editing
    ed.accept_all_predictions()  # disc (id 1) and block (id 2)
    disc, block = ed.annotations.instances
    ed.select(disc.id)
    ed.set_tool("brush")
    ed.set_brush_size(10)
    ed.actions.erase_others.setChecked(True)
    assert ed.erase_others
    # From inside the disc across into the block.
    pts = _drag(qtbot, window, [(50.0, 40.0), (110.0, 45.0)])
    truth = _stroke_truth(pts, 5.0, (120, 160))
    disc2, block2 = ed.annotations.instances
    assert np.array_equal(_full(disc2.mask), _full(disc.mask) | truth)
    assert np.array_equal(_full(block2.mask), _full(block.mask) & ~truth)
    assert (_full(block.mask) & truth).any()
    assert not (_full(disc2.mask) & _full(block2.mask)).any()
    _stack(ed).undo()  # one step restores both
    assert masks_equal(ed.annotations.instances[1].mask, block.mask)
    # Without the option the other instance keeps its pixels.
    ed.actions.erase_others.setChecked(False)
    _drag(qtbot, window, [(50.0, 40.0), (110.0, 45.0)])
    assert masks_equal(ed.annotations.instances[1].mask, block.mask)


def test_stroke_touches_only_its_region(editing, window, qtbot):
    ed, _ = editing
    ed.accept_all_predictions()
    ed.select(1)
    ed.set_tool("brush")
    ed.set_brush_size(4)
    start = ed.overlay.composite_pixels
    ed.begin_stroke("brush", (30.0, 30.0))
    ed.extend_stroke((33.0, 31.0))
    ed.extend_stroke((36.0, 33.0))
    # three segments of a 4 px brush: a few hundred pixels, not the 19,200 of the image
    assert ed.overlay.composite_pixels - start < 3 * 12 * 12
    ed.end_stroke()


# --- polygons ------------------------------------------------------------------------------------
def test_polygon_tool_creates_and_edits_an_instance(editing, window, qtbot):
    ed, _ = editing
    ed.project.classes.ensure("region")
    ed.set_current_class("region")
    ed.set_tool("polygon")
    corners = [(20.0, 20.0), (70.0, 25.0), (60.0, 80.0), (25.0, 70.0)]
    seen = [_click(qtbot, window, x, y) for x, y in corners]
    assert ed.tools["polygon"].drawing and len(ed.annotations) == 0
    _click(qtbot, window, *corners[0])  # clicking the first point closes it
    assert len(ed.annotations) == 1
    inst = ed.annotations.instances[0]
    flat = [v for p in seen for v in p]
    assert inst.category == "region" and inst.polygons == (tuple(flat),)
    assert masks_equal(inst.mask, polygons_to_mask([flat], (120, 160)))
    assert ed.selected_id == inst.id

    # Drag a vertex: the mask follows the polygon; one undo step.
    moved = _drag(qtbot, window, [corners[2], (80.0, 95.0)])
    edited = ed.annotations.instances[0]
    expected = list(seen)
    expected[2] = moved[-1]
    flat2 = [v for p in expected for v in p]
    assert edited.polygons == (tuple(flat2),)
    assert masks_equal(edited.mask, polygons_to_mask([flat2], (120, 160)))
    assert edited.area > inst.area
    # Right click deletes a vertex.
    _click(qtbot, window, *corners[3], button=Qt.MouseButton.RightButton)
    three = ed.annotations.instances[0]
    flat3 = [v for p in expected[:3] for v in p]
    assert three.polygons == (tuple(flat3),)
    assert masks_equal(three.mask, polygons_to_mask([flat3], (120, 160)))
    # Ctrl+click on an edge inserts a vertex there.
    mid = ((expected[0][0] + expected[1][0]) / 2, (expected[0][1] + expected[1][1]) / 2)
    added = _click(qtbot, window, *mid, modifier=Qt.KeyboardModifier.ControlModifier)
    four = ed.annotations.instances[0].polygons[0]
    assert len(four) == 8 and four[2:4] == added
    for _ in range(3):
        _stack(ed).undo()
    assert ed.annotations.instances[0].polygons == (tuple(flat),)


def test_polygon_enter_closes_and_delete_key_removes_vertex(editing, window, qtbot):
    ed, _ = editing
    ed.project.classes.ensure("region")
    ed.set_current_class("region")
    ed.set_tool("polygon")
    window.activateWindow()
    window.canvas.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is window.canvas, timeout=3000)
    pts = [(100.0, 10.0), (150.0, 10.0), (150.0, 60.0), (100.0, 60.0)]
    for x, y in pts:
        _click(qtbot, window, x, y)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Return)
    inst = ed.annotations.instances[0]
    assert len(inst.polygons[0]) == 8
    # Click a vertex to make it active, then Delete removes that vertex (not the instance).
    _drag(qtbot, window, [pts[1], pts[1]])
    qtbot.keyClick(window.canvas, Qt.Key.Key_Delete)
    assert len(ed.annotations) == 1
    assert len(ed.annotations.instances[0].polygons[0]) == 6
    # Escape cancels a polygon being drawn; Delete with no active vertex deletes the instance.
    _click(qtbot, window, 10.0, 100.0)
    _click(qtbot, window, 30.0, 100.0)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Escape)
    assert not ed.tools["polygon"].drawing and len(ed.annotations) == 1
    qtbot.keyClick(window.canvas, Qt.Key.Key_Delete)
    assert len(ed.annotations) == 0


# --- relabel, delete, classes ----------------------------------------------------------------------
def _answer_picker(qtbot, typed: str, seen: list) -> None:
    def run() -> None:
        dialog = QApplication.activeModalWidget()
        assert isinstance(dialog, ClassPickerDialog)
        qtbot.keyClicks(dialog.filter_edit, typed)
        seen.append(dialog.visible_names())
        qtbot.keyClick(dialog.filter_edit, Qt.Key.Key_Return)

    QTimer.singleShot(0, run)


def test_relabel_through_the_class_picker(editing, window, qtbot):
    ed, _ = editing
    window.select_instance(0)
    ed.accept_prediction()
    ed.project.classes.ensure("block")
    ed.project.classes.ensure("blob")
    seen: list = []
    _answer_picker(qtbot, "blo", seen)
    assert ed.relabel()
    assert seen[0][:2] == ["block", "blob"] or seen[0][:2] == ["blob", "block"]
    assert ed.annotations.instances[0].category == seen[0][0]
    assert ed.list.text(annotation_key(1), COL_CLASS) == seen[0][0]
    _stack(ed).undo()
    assert ed.annotations.instances[0].category == "disc"
    # A name that is not a class yet becomes one.
    _answer_picker(qtbot, "zebra", seen)
    ed.actions.relabel.trigger()
    assert ed.annotations.instances[0].category == "zebra"
    assert "zebra" in ed.project.classes
    assert rank_classes(["cat", "bobcat", "Catfish", "dog"], "cat") == ["cat", "Catfish", "bobcat"]


def test_new_instance_asks_its_class_then_the_brush_creates_it(editing, window, qtbot):
    ed, _ = editing
    seen: list = []
    _answer_picker(qtbot, "wheel", seen)
    ed.actions.new_instance.trigger()
    assert ed.current_class == "wheel" and ed.tool_name == "brush" and ed.selected_id == -1
    assert ed.class_row.class_combo.currentText() == "wheel"
    ed.begin_stroke("brush", (20.0, 20.0))
    ed.end_stroke()
    assert [(i.category, i.source) for i in ed.annotations] == [("wheel", "manual")]
    assert ed.project.classes.names == ["wheel"]


def test_delete_and_undo(editing, window):
    ed, pred = editing
    ed.accept_all_predictions()
    ed.select(2)
    ed.actions.delete.trigger()
    assert [i.id for i in ed.annotations] == [1]
    assert ed.selected_id == -1
    _stack(ed).undo()
    assert [i.id for i in ed.annotations] == [1, 2]
    assert ed.selected_id == 2
    assert masks_equal(ed.annotations.find(2).mask, pred.instances[1].mask)


def test_fill_holes(editing, window):
    ed, _ = editing
    ed.accept_all_predictions()
    block = ed.annotations.find(2)
    ed.select(2)
    ed.set_brush_size(6)
    ed.set_tool("eraser")
    ed.begin_stroke("eraser", (110.0, 45.0))  # a hole in the middle of the block
    ed.end_stroke()
    assert ed.annotations.find(2).area < block.area
    assert ed.fill_holes()
    assert masks_equal(ed.annotations.find(2).mask, block.mask)
    assert not ed.fill_holes()  # nothing left to fill
    _stack(ed).undo()
    assert ed.annotations.find(2).area < block.area


def test_click_selects_annotation_and_dock_syncs(editing, window, qtbot):
    ed, pred = editing
    ed.accept_all_predictions()
    ed.select(-1)
    x1, y1, x2, y2 = pred.instances[1].box
    _click(qtbot, window, (x1 + x2) / 2, (y1 + y2) / 2)
    assert ed.selected_id == 2
    assert ed.list.selected_key() == annotation_key(2)
    rect = ed.list.row_rect(annotation_key(1))  # a click on its row selects it everywhere
    qtbot.mouseClick(ed.list.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert ed.selected_id == 1
    assert ed.overlay.outlines.selected == annotation_key(1) == window.selection.key


# --- history per image --------------------------------------------------------------------------------
def test_switching_images_keeps_each_images_history(editing, window, qtbot, image_folder):
    ed, _ = editing
    window.select_instance(0)
    ed.accept_prediction()
    first = window.current_image_path
    with qtbot.waitSignal(window.imageShown, timeout=10000):
        window.show_file(normalise_path(image_folder / "img_1.png"))
    assert len(ed.annotations) == 0 and not _stack(ed).canUndo()
    ed.set_current_class("bar")
    ed.begin_stroke("brush", (20.0, 20.0))
    ed.end_stroke()
    assert len(ed.annotations) == 1
    with qtbot.waitSignal(window.imageShown, timeout=10000):
        window.show_file(first)
    assert len(ed.annotations) == 1 and _stack(ed).undoText() == "Accept Prediction"
    ed.actions.undo.trigger()
    assert len(ed.annotations) == 0
    assert ed.project.annotations("img_1.png").instances[0].category == "bar"  # untouched
    with qtbot.waitSignal(window.imageShown, timeout=10000):
        window.next_image()
    assert _stack(ed).undoText() == "Brush Stroke"
    ed.actions.undo.trigger()
    assert len(ed.annotations) == 0


# --- pure helpers ----------------------------------------------------------------------------------
def test_mask_ops_growth_and_fill():
    m = GrowableMask(CroppedMask(10, 10, np.ones((2, 2), bool), (100, 100)))
    fp = segment_footprint((50.0, 50.0), (50.0, 50.0), 3.0, (46, 46, 55, 55))
    m.paint((46, 46, 55, 55), fp)
    full = m.to_cropped().to_full()
    assert full[10:12, 10:12].all() and full[46:55, 46:55][fp].all() and full.sum() == 4 + fp.sum()
    ring = np.ones((5, 5), bool)
    ring[2, 2] = False
    filled = fill_holes(CroppedMask(3, 4, ring, (20, 20)))
    assert filled.added == 1 and filled.mask.bits.all()
    open_c = np.ones((5, 5), bool)
    open_c[2, 2:] = False  # the gap reaches the border: not a hole
    assert fill_holes(CroppedMask(0, 0, open_c, (20, 20))).added == 0


def test_one_selection_for_predictions_and_annotations(editing, window):
    ed, _ = editing
    window.select_instance(0)
    ed.accept_prediction()
    ann_id = ed.annotations.instances[0].id
    assert ed.selected_id == ann_id and window.selected_instance == -1
    window.select_instance(1)  # a prediction: the annotation is no longer selected
    assert window.selected_instance == 1 and ed.selected_id == -1
    ed.select(ann_id)  # an annotation: the prediction is no longer selected
    assert ed.selected_id == ann_id and window.selected_instance == -1
    assert window.canvas.overlay.selected == annotation_key(ann_id) == window.instance_list.selected_key()
    window.actions_.deselect.trigger()  # Esc: nothing selected, of either kind
    assert window.selection.key is None and ed.selected_id == -1 and window.selected_instance == -1
    assert window.instance_list.selected_key() is None
    window.select_key(prediction_key(1))
    assert window.canvas.overlay.selected == prediction_key(1) and ed.selected_id == -1
