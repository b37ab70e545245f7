"""The one instance list (model/view over predictions with review states and annotations), its
filter, and the one selection shared by the list, the canvas and the editing tools."""

from __future__ import annotations

import numpy as np
import pytest
from gui_fakes import FakeSegmenter
from PySide6.QtCore import QPointF, Qt

from app.editing import install_editing
from app.instance_list import (
    COL_KIND,
    COL_SCORE,
    COL_STATE,
    FILTER_ALL,
    FILTER_ANNOTATIONS,
    FILTER_PENDING,
    FILTER_REVIEWED,
    InstanceListDock,
)
from app.selection import annotation_key, prediction_key
from engine.annotations import AnnotatedInstance
from engine.masks import CroppedMask

P, A = prediction_key, annotation_key


def _annotation(inst_id: int, category: str, x0: int) -> AnnotatedInstance:
    return AnnotatedInstance(inst_id, category, CroppedMask(x0, 5, np.ones((4, 6), bool), (50, 80)), source="manual")


@pytest.fixture
def dock(qtbot):
    dock = InstanceListDock()
    qtbot.addWidget(dock)
    colors = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [9, 9, 9]], np.uint8)
    dock.set_predictions(
        ["cat", "dog", "cat", "bird"],
        np.array([0.9, 0.8, 0.6, 0.2], np.float32),
        np.array([10, 20, 30, 40]),
        colors,
        ["pending", "rejected", "accepted", "pending"],
    )
    dock.set_annotations([_annotation(1, "cat", 0), _annotation(2, "dog", 20)], lambda inst: (1, 2, 3))
    dock.set_threshold(0.5)
    dock.resize(600, 400)
    dock.show()
    return dock


def test_rows_of_both_kinds_look_different(dock):
    assert dock.model.rowCount() == 6
    assert dock.text(P(0), COL_KIND) == "prediction" and dock.text(A(1), COL_KIND) == "annotation"
    assert [dock.text(P(i), COL_STATE) for i in range(3)] == ["pending", "rejected", "accepted"]
    assert dock.text(A(2), COL_STATE) == "manual" and dock.text(A(2), COL_SCORE) == ""
    pending, rejected, annotation = dock.item(P(0)), dock.item(P(1)), dock.item(A(1))
    # Pending predictions: italic, ticked; reviewed ones: dimmed, unticked; annotations: plain, no check box.
    assert pending.font().italic() and pending.isCheckable() and pending.checkState() == Qt.CheckState.Checked
    assert not rejected.font().italic() and rejected.checkState() == Qt.CheckState.Unchecked
    assert rejected.foreground().color() != annotation.foreground().color()
    assert not annotation.font().italic() and not annotation.isCheckable()


def test_filter_and_threshold(dock):
    listed = set(dock.listed_keys())
    assert listed == {P(0), P(1), P(2), A(1), A(2)}  # 0.2 is under the threshold
    assert dock.windowTitle() == "Instances (5 of 6)"
    dock.set_filter(FILTER_ANNOTATIONS)
    assert set(dock.listed_keys()) == {A(1), A(2)}
    dock.set_filter(FILTER_PENDING)
    assert dock.listed_keys() == [P(0)]
    dock.set_threshold(0.1)
    assert set(dock.listed_keys()) == {P(0), P(3)}
    dock.set_filter(FILTER_REVIEWED)
    assert set(dock.listed_keys()) == {P(1), P(2)}
    assert dock.filter_combo.currentData() == FILTER_REVIEWED  # the combo follows
    dock.filter_combo.setCurrentIndex(dock.filter_combo.findData(FILTER_ALL))
    assert len(dock.listed_keys()) == 6
    with pytest.raises(ValueError, match="unknown filter"):
        dock.proxy.set_mode("nonsense")


def test_sorting_and_review_state_updates(dock):
    # By score, highest first: annotations (no score: certain) first, then predictions.
    order = dock.listed_keys()
    assert set(order[:2]) == {A(1), A(2)} and order[2:] == [P(0), P(1), P(2)]
    dock.view.sortByColumn(COL_KIND, Qt.SortOrder.AscendingOrder)
    assert [k[0] for k in dock.listed_keys()] == ["prediction"] * 3 + ["annotation"] * 2
    dock.set_review_states(["rejected", "pending", "accepted", "pending"])
    assert dock.text(P(0), COL_STATE) == "rejected" and dock.item(P(1)).font().italic()
    dock.set_filter(FILTER_PENDING)
    assert dock.listed_keys() == [P(1)]


def test_check_box_toggles_only_predictions(dock, qtbot):
    with qtbot.waitSignal(dock.visibilityToggled) as blocker:
        dock.item(P(0)).setCheckState(Qt.CheckState.Unchecked)
    assert blocker.args == [0, False]


def test_selection_follows_the_filter(dock, qtbot):
    with qtbot.waitSignal(dock.itemSelected) as blocker:
        rect = dock.row_rect(A(2))
        qtbot.mouseClick(dock.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert blocker.args == [A(2)]
    dock.select(P(0))
    assert dock.selected_key() == P(0)
    dock.set_filter(FILTER_ANNOTATIONS)  # its row is filtered out: nothing shows selected
    assert dock.selected_key() is None
    dock.set_filter(FILTER_ALL)  # and back: the selection shows again
    assert dock.selected_key() == P(0)


@pytest.fixture
def editing(window, qtbot, image_folder):
    """img_0 with the fake prediction (0.95, 0.70, 0.30; threshold 0.5) and prediction 0 accepted."""
    ed = install_editing(window)
    with qtbot.waitSignal(window.imageShown, timeout=10000):
        window.open_image(str(image_folder / "img_0.png"))
    pred = FakeSegmenter().predict(window.current_image)
    window.set_prediction(window.current_image_path, pred)
    window.set_score_threshold(0.5)
    window.canvas.fit_to_window()
    assert ed.accept_prediction(0)
    return ed, pred


def _click_canvas(qtbot, window, x: float, y: float) -> None:
    pos = window.canvas.mapFromScene(QPointF(x, y))
    qtbot.mouseClick(window.canvas.viewport(), Qt.MouseButton.LeftButton, pos=pos)


def test_window_lists_predictions_and_annotations_in_one_list(editing, window):
    ed, _pred = editing
    ann_id = ed.annotations.instances[0].id
    lst = window.instance_list
    assert lst.text(P(0), COL_STATE) == "accepted" and lst.text(A(ann_id), COL_KIND) == "annotation"
    assert set(lst.listed_keys()) == {P(0), P(1), A(ann_id)}  # 0.30 is under the threshold
    lst.set_filter(FILTER_PENDING)
    assert lst.listed_keys() == [P(1)]
    ed.actions.undo.trigger()  # the accept is undone: its annotation row goes, the prediction is pending again
    assert lst.model.count("annotation") == 0 and set(lst.listed_keys()) == {P(0), P(1)}
    # One overlay stack: the outlines and labels of both kinds are in one item each.
    ed.actions.redo.trigger()
    assert window.canvas.overlay.keys() == [P(0), P(1), P(2), A(ann_id)]


def test_one_selection_across_list_canvas_and_tools(editing, window, qtbot):
    ed, pred = editing
    ann_id = ed.annotations.instances[0].id
    lst, overlay = window.instance_list, window.canvas.overlay
    assert window.selection.key == A(ann_id)  # the accepted instance is selected as an annotation
    with qtbot.waitSignal(window.instanceSelected) as blocker:
        qtbot.mouseClick(lst.view.viewport(), Qt.MouseButton.LeftButton, pos=lst.row_rect(P(1)).center())
    assert blocker.args == [1]
    assert window.selection.key == P(1) == overlay.selected and ed.selected_id == -1
    # A click on the canvas where the annotation is: annotations are above predictions.
    x1, y1, x2, y2 = pred.instances[0].box
    with qtbot.waitSignal(ed.annotationSelected) as blocker:
        _click_canvas(qtbot, window, (x1 + x2) / 2, (y1 + y2) / 2)
    assert blocker.args == [ann_id]
    assert window.selection.key == A(ann_id) == lst.selected_key() == overlay.selected
    assert window.selected_instance == -1
    # The inspectors' signal says "no prediction"; selecting nothing clears every view.
    _click_canvas(qtbot, window, 1, 1)
    assert window.selection.key is None and lst.selected_key() is None and overlay.selected is None
    # The brush paints the selected annotation, whichever view selected it.
    ed.select(ann_id)
    before = ed.annotations.find(ann_id).area
    ed.set_tool("brush")
    ed.begin_stroke("brush", (2.0, 2.0))
    ed.end_stroke()
    assert len(ed.annotations) == 1 and ed.annotations.find(ann_id).area > before
    assert window.selection.key == A(ann_id)
