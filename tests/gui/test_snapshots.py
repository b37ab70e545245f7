"""Looks are tested: pixel snapshots of the main window with a prediction, the RoI inspector, the
prototype viewer and the training dock, compared with the references in tests/gui/snapshots.

Each part is rendered on its own (the canvas, each dock), so a change to one panel leaves the other
references valid. Everything on screen is deterministic: a generated image, the fake segmenter or
seeded tiny models, a scripted training run, fixed window and dock sizes, and the pinned look of
``snapshot.fixed_look``. After an intended change: ``python scripts/update_snapshots.py``.
"""

from __future__ import annotations

import pytest
from gui_fakes import FakeSegmenter, tiny_maskrcnn, tiny_yolact, write_shapes_picture
from PySide6.QtCore import Qt
from snapshot import check_snapshot, fixed_look

from app.inspectors import install_inspectors

WINDOW_SIZE = (1400, 1000)
DOCK_HEIGHT = 500  # the bottom docks (inspectors, training)


@pytest.fixture(autouse=True)
def _fixed_look():
    """Set before the window is made, so every widget is built with the pinned font."""
    with fixed_look():
        yield


@pytest.fixture
def shown(window, qtbot, tmp_path):
    """The window at its fixed size showing a generated image; returns a function that hands it a
    prediction of ``segmenter`` and settles the layout."""
    picture = tmp_path / "pictures"
    picture.mkdir()
    image = write_shapes_picture(picture / "shapes.png", seed=3, size=(300, 400))
    window.resize(*WINDOW_SIZE)
    with qtbot.waitSignal(window.imageShown, timeout=10000):
        window.open_image(str(image))

    def show(segmenter, trace: bool = False, select: int = -1):
        pred = segmenter.predict(window.current_image, trace=trace)
        window.set_prediction(window.current_image_path, pred, store=False)
        if select >= 0:
            window.select_instance(select)
        window.canvas.setFocus()  # no blinking text cursor in a snapshot
        settle(qtbot)
        return pred

    return show


def settle(qtbot) -> None:
    """Let resizes, deferred redraws (plots redraw on a timer) and layout passes finish."""
    qtbot.wait(250)


def bottom_dock(window, dock, qtbot) -> None:
    dock.show()
    dock.raise_()
    qtbot.waitUntil(dock.isVisible)
    window.resizeDocks([dock], [DOCK_HEIGHT], Qt.Orientation.Vertical)


def test_main_window_with_a_prediction(window, qtbot, shown, tmp_path, update_snapshots):
    shown(FakeSegmenter(), select=0)
    for name, widget in (
        ("main_canvas", window.canvas),
        ("main_instance_list", window.instance_list),
        ("main_overlay_controls", window.overlay_controls),
        ("main_file_list", window.file_list),
    ):
        check_snapshot(name, widget, tmp_path, update_snapshots)


def test_roi_inspector(window, qtbot, shown, tmp_path, update_snapshots):
    roi, _proto = install_inspectors(window, visible=True)
    bottom_dock(window, roi, qtbot)
    shown(tiny_maskrcnn(), trace=True, select=1)
    assert roi.inspection is not None and roi.inspection.det_index == 1
    check_snapshot("roi_inspector", roi, tmp_path, update_snapshots)
    check_snapshot("roi_canvas", window.canvas, tmp_path, update_snapshots)  # the sampling grid


def test_prototype_viewer(window, qtbot, shown, tmp_path, update_snapshots):
    _roi, proto = install_inspectors(window, visible=True)
    bottom_dock(window, proto, qtbot)
    shown(tiny_yolact(), trace=True, select=2)
    assert proto.composition is not None and proto.composition.det_index == 2
    check_snapshot("prototype_viewer", proto, tmp_path, update_snapshots)


def training_messages() -> list[dict]:
    """What the worker reports for a short run (the protocol of engine.training's worker)."""
    per_class = {
        "circle": {"mask_AP": 0.21, "box_AP": 0.25},
        "square": {"mask_AP": 0.34, "box_AP": 0.31},
    }
    before = {"mask": {"AP": 0.275, "AP50": 0.52, "AP75": 0.24}, "box": {"AP": 0.28, "AP50": 0.55, "AP75": 0.22}}
    before["per_class"] = per_class
    after = {
        "mask": {"AP": 0.462, "AP50": 0.81, "AP75": 0.47},
        "box": {"AP": 0.455, "AP50": 0.83, "AP75": 0.44},
        "per_class": {"circle": {"mask_AP": 0.51, "box_AP": 0.49}, "square": {"mask_AP": 0.41, "box_AP": 0.42}},
    }
    total = 24
    msgs: list[dict] = [
        {"kind": "setup", "model": "maskrcnn_r18_fpn", "train_images": 16, "val_images": 4, "device": "cpu"},
        {"kind": "eval", "stage": "before", "epoch": 0, "metrics": before},
        {"kind": "start", "iteration": 0, "total_iterations": total, "epochs": 3},
    ]
    for it in range(1, total + 1):
        decay = 1.0 / (1.0 + 0.15 * it)
        losses = {
            "loss_classifier": 0.9 * decay,
            "loss_box_reg": 0.6 * decay + 0.05,
            "loss_mask": 0.7 * decay + 0.1,
            "loss_objectness": 0.2 * decay,
            "loss_rpn_box_reg": 0.1 * decay,
        }
        msgs.append(
            {
                "kind": "progress",
                "iteration": it,
                "total_iterations": total,
                "epoch": (it - 1) // 8,
                "epochs": 3,
                "eta_s": 2.0 * (total - it),
                "losses": losses,
                "loss": sum(losses.values()),
                "lr": 3e-4,
                "images_per_s": 4.25,
            }
        )
    msgs += [
        {"kind": "eval", "stage": "after", "epoch": 3, "metrics": after},
        {"kind": "done", "cancelled": False, "iterations": total, "images_per_s": 4.25, "message": "done"},
    ]
    return msgs


def test_training_dock(window, qtbot, shown, tmp_path, update_snapshots):
    ctl = window.training
    form = ctl.dock.form
    form.set_coco("/data/shapes/annotations.json", "/data/shapes/images")
    form.set_weights_file("/data/shapes/start.safetensors")
    form.runs_edit.setText("/data/maskscope/runs")
    form.epochs.setValue(3)
    form.batch.setValue(2)
    ctl.show_dock()
    bottom_dock(window, ctl.dock, qtbot)
    shown(FakeSegmenter())
    # A scripted run through the controller's real slots: what the worker process would send.
    ctl.dock.set_running(True)
    for msg in training_messages():
        ctl.process.message.emit(msg)
    ctl.process.finished.emit(0, False)
    assert ctl.outcome == "done" and ctl.dock.plot.series("total")[0][-1] == 24
    window.canvas.setFocus()
    settle(qtbot)
    qtbot.waitUntil(lambda: ctl.dock.plot.drawn_points("total") == 24, timeout=3000)
    check_snapshot("training_dock", ctl.dock, tmp_path, update_snapshots)


def test_a_changed_look_fails_with_the_actual_and_a_diff(window, qtbot, tmp_path):
    """The comparison itself: the same look passes, a visible change is caught and reported with
    the actual image and a diff next to the test."""
    references = tmp_path / "references"
    window.resize(*WINDOW_SIZE)
    settle(qtbot)
    controls = window.overlay_controls
    check_snapshot("controls", controls, tmp_path, update=True, reference_dir=references)
    assert check_snapshot("controls", controls, tmp_path, reference_dir=references) == 0.0
    controls.setStyleSheet("background: #ff00ff;")
    settle(qtbot)
    with pytest.raises(AssertionError) as failed:
        check_snapshot("controls", controls, tmp_path, reference_dir=references)
    message = str(failed.value)
    actual, diff = tmp_path / "controls.actual.png", tmp_path / "controls.diff.png"
    assert actual.is_file() and diff.is_file()
    assert str(actual) in message and str(diff) in message and "update_snapshots.py" in message


def test_snapshot_font_is_the_bundled_one():
    from PySide6.QtGui import QFontInfo
    from PySide6.QtWidgets import QApplication

    info = QFontInfo(QApplication.font())
    assert info.family() == "DejaVu Sans" and info.pointSize() == 9
