"""The Box and Point prompt tools on the real window with the shipped demo models (issue 11).

The demo Mask R-CNN and YOLACT are small and trained on the generated shapes, so a box around a
shape gives that shape's mask; every candidate the GUI shows is checked against the segmenter's
own ``segment_box`` / ``segment_point`` on the same input.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from gui_fakes import FakeSegmenter
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from app.editing.prompting import PROMPT_RUN
from app.model_catalog import DEMO_WEIGHTS, DEMO_YOLACT_WEIGHTS
from engine.models import load_segmenter
from engine.synthetic import generate_image
from engine.training.demo_samples import mask_iou

SIZE = (128, 160)


@pytest.fixture(scope="module")
def demo_maskrcnn():
    if not DEMO_WEIGHTS.is_file():
        pytest.skip("the trained demo Mask R-CNN is not installed")
    torch.set_num_threads(1)
    return load_segmenter(DEMO_WEIGHTS)


@pytest.fixture(scope="module")
def demo_yolact():
    if not DEMO_YOLACT_WEIGHTS.is_file():
        pytest.skip("the trained demo YOLACT is not installed")
    torch.set_num_threads(1)
    return load_segmenter(DEMO_YOLACT_WEIGHTS)


@pytest.fixture(scope="module")
def shots():
    return [generate_image(np.random.default_rng(seed), SIZE, n_objects=(3, 4)) for seed in (1, 123)]


@pytest.fixture
def scene(tmp_path, shots):
    """Two generated shape images in a fresh folder (its own project), and their ground truth."""
    folder = tmp_path / "prompts"
    folder.mkdir()
    out = []
    for i, shot in enumerate(shots):
        path = folder / f"shapes_{i}.png"
        assert cv2.imwrite(str(path), cv2.cvtColor(shot.image, cv2.COLOR_RGB2BGR))
        out.append((path, shot))
    return out


def _open(window, qtbot, path, segmenter) -> None:
    with qtbot.waitSignal(window.imageShown, timeout=10000):
        window.open_image(str(path))
    if segmenter is not None:
        with qtbot.waitSignal(window.models.modelReady, timeout=10000):
            window.use_segmenter(segmenter, "demo")
    window.canvas.fit_to_window()


def _view(window, x: float, y: float) -> QPoint:
    return window.canvas.mapFromScene(QPointF(x, y))


def _drag(qtbot, window, a, b, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    viewport = window.canvas.viewport()
    left = Qt.MouseButton.LeftButton
    qtbot.mousePress(viewport, left, modifier, pos=_view(window, *a))
    qtbot.mouseMove(viewport, pos=_view(window, (a[0] + b[0]) / 2, (a[1] + b[1]) / 2))
    qtbot.mouseMove(viewport, pos=_view(window, *b))
    qtbot.mouseRelease(viewport, left, modifier, pos=_view(window, *b))


def _box_prompt(window, qtbot, box, modifier=Qt.KeyboardModifier.NoModifier):
    ed = window.editing
    with qtbot.waitSignal(ed.prompts.candidateChanged, timeout=20000):
        _drag(qtbot, window, (box[0], box[1]), (box[2], box[3]), modifier)
    return ed.prompts.answer


def _key(window, qtbot, key, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    window.canvas.setFocus()
    qtbot.keyClick(window.canvas, key, modifier)


def _click_with_candidates(segmenter, image: np.ndarray, step: int = 6) -> tuple[float, float]:
    """A click (on a grid every ``step`` pixels) with the most candidates, also a pixel away: a
    well-trained model answers a click inside one clear shape with that shape alone, so cycling
    needs a spot where shapes or proposals overlap, and the click lands at a fractional pixel."""
    h, w = image.shape[:2]

    def fewest(p: tuple[float, float]) -> int:
        near = [(p[0] + dx, p[1] + dy) for dx, dy in ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))]
        return min(len(segmenter.segment_point(image, x, y)) for x, y in near)

    grid = [(float(x), float(y)) for y in range(step // 2, h - 1, step) for x in range(step // 2, w - 1, step)]
    return max(grid, key=fewest)


def _median_pixel(mask: np.ndarray) -> tuple[float, float]:
    rows, cols = np.nonzero(mask)
    i = len(rows) // 2
    return float(cols[i]) + 0.5, float(rows[i]) + 0.5


def test_box_prompt_enter_accepts_as_annotation_undo_and_edit(window, qtbot, scene, demo_maskrcnn, errors):
    path, shot = scene[0]
    _open(window, qtbot, path, demo_maskrcnn)
    ed = window.editing
    with qtbot.waitSignal(window.predictionArrived, timeout=30000):
        window.run_current()  # a model run first: the prompt run must not replace it as the reviewed run
    qtbot.waitUntil(lambda: ed.review.writes_in_flight == 0, timeout=5000)
    project = ed.project
    model_run = project.active_run
    shown_before = len(window.current_prediction.instances)

    assert ed.actions.tool_actions["box"].shortcut().toString() == "B"
    assert window.actions_.show_boxes.shortcut().toString() == "Shift+B"  # moved off B for the Box tool
    ed.actions.tool_actions["box"].trigger()
    assert ed.tool_name == "box"
    k = int(np.argmax(shot.masks.sum(axis=(1, 2))))  # the largest shape
    x1, y1, x2, y2 = (float(v) for v in shot.boxes[k])
    answer = _box_prompt(window, qtbot, (x1 - 2, y1 - 2, x2 + 2, y2 + 2))

    # The candidate is exactly what the engine gives for that box, and it is the shape.
    assert answer.kind == "box" and len(answer.candidates) == 1
    inst = answer.candidates[0].instance
    ref = demo_maskrcnn.segment_box(window.current_image, answer.box)
    assert np.array_equal(inst.mask.to_full(), ref.mask.to_full()) and inst.label == ref.label
    assert mask_iou(inst.mask.to_full(), shot.masks[k]) > 0.8
    assert ed.prompts.item.has_candidate and ed.prompts.item.isVisible()
    assert ed.prompts.item.label.startswith("prompt: " + demo_maskrcnn.class_names[inst.label])
    assert "Enter accepts" in window.statusBar().currentMessage()
    assert len(ed.annotations.instances) == 0  # pending: not an annotation yet

    # Enter: the same accept path as a prediction (stored in the "prompt" run, accepted, undoable).
    _key(window, qtbot, Qt.Key.Key_Return)
    assert ed.prompts.answer is None and not ed.prompts.item.has_candidate
    anns = ed.annotations.instances
    assert len(anns) == 1 and anns[0].source == "prediction"
    assert anns[0].category == demo_maskrcnn.class_names[inst.label]
    assert np.array_equal(anns[0].mask.to_full(), inst.mask.to_full())
    runs = {r.id: r for r in project.runs()}
    stored = next(p for r in runs.values() if r.model == PROMPT_RUN for p in project.predictions("shapes_0.png", r.id))
    assert anns[0].prediction_id == stored.id and stored.review == "accepted"
    assert project.active_run == model_run  # the model's run is still the one reviewed
    assert len(window.current_prediction.instances) == shown_before

    ed.actions.undo.trigger()
    assert len(ed.annotations.instances) == 0
    assert project.predictions("shapes_0.png", stored.run_id)[0].review == "pending"
    ed.actions.redo.trigger()
    assert len(ed.annotations.instances) == 1

    # The accepted mask is an ordinary annotation: the eraser edits it.
    ed.select(anns[0].id)
    area = ed.annotations.instances[0].area
    ed.actions.tool_actions["eraser"].trigger()
    cx, cy = _median_pixel(shot.masks[k])
    viewport = window.canvas.viewport()
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=_view(window, cx, cy))
    qtbot.mouseMove(viewport, pos=_view(window, cx + 6, cy))
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=_view(window, cx + 6, cy))
    assert 0 < ed.annotations.instances[0].area < area
    assert errors == []


def test_shift_drag_refines_keeping_the_class_and_esc_discards(window, qtbot, scene, demo_maskrcnn, errors):
    path, shot = scene[0]
    _open(window, qtbot, path, demo_maskrcnn)
    ed = window.editing
    ed.set_tool("box")
    x1, y1, x2, y2 = (float(v) for v in shot.boxes[0])
    first = _box_prompt(window, qtbot, (x1 - 10, y1 - 10, x2 + 10, y2 + 10))
    label = first.candidates[0].instance.label
    refined = _box_prompt(window, qtbot, (x1 - 1, y1 - 1, x2 + 1, y2 + 1), Qt.KeyboardModifier.ShiftModifier)
    assert refined is not first and refined.box != first.box  # the new box replaces the old one
    assert refined.candidates[0].instance.label == label  # refining keeps the class
    ref = demo_maskrcnn.segment_box(window.current_image, refined.box, label)
    assert np.array_equal(refined.candidates[0].instance.mask.to_full(), ref.mask.to_full())

    _key(window, qtbot, Qt.Key.Key_Escape)
    assert ed.prompts.answer is None and not ed.prompts.item.has_candidate
    assert len(ed.annotations.instances) == 0 and ed.history.group.activeStack().count() == 0


def test_point_prompt_cycles_with_tab_and_wheel(window, qtbot, scene, demo_maskrcnn, errors):
    path, shot = scene[1]  # overlapping shapes: clicks with several candidates
    _open(window, qtbot, path, demo_maskrcnn)
    ed = window.editing
    ed.actions.tool_actions["point"].trigger()
    assert ed.tool_name == "point" and ed.actions.tool_actions["point"].shortcut().toString() == "K"
    # A click the demo model answers with several candidates (overlapping shapes and weaker proposals).
    image = window.current_image
    best = _click_with_candidates(demo_maskrcnn, image)
    with qtbot.waitSignal(ed.prompts.candidateChanged, timeout=20000):
        qtbot.mouseClick(window.canvas.viewport(), Qt.MouseButton.LeftButton, pos=_view(window, *best))
    answer = ed.prompts.answer
    expected = demo_maskrcnn.segment_point(image, *answer.point)
    n = len(expected)
    assert n >= 2 and len(answer.candidates) == n
    for cand, ref in zip(answer.candidates, expected, strict=True):
        assert cand.instance.label == ref.label and np.array_equal(cand.instance.mask.bits, ref.mask.bits)
    assert ed.prompts.index == 0 and ed.prompts.item.label.endswith(f"1/{n}")

    _key(window, qtbot, Qt.Key.Key_Tab)
    assert ed.prompts.index == 1 and ed.prompts.item.label.endswith(f"2/{n}")
    assert np.array_equal(ed.prompts.candidate.instance.mask.bits, expected[1].mask.bits)
    _key(window, qtbot, Qt.Key.Key_Backtab, Qt.KeyboardModifier.ShiftModifier)
    assert ed.prompts.index == 0

    scale = window.canvas.scale_factor
    viewport = window.canvas.viewport()
    pos = QPointF(_view(window, *best))
    for delta, index in ((-120, 1), (120, 0), (120, n - 1)):
        wheel = QWheelEvent(
            pos,
            viewport.mapToGlobal(pos),
            QPoint(0, 0),
            QPoint(0, delta),
            Qt.MouseButton.NoButton,
            Qt.KeyboardModifier.NoModifier,
            Qt.ScrollPhase.NoScrollPhase,
            False,
        )
        QApplication.sendEvent(viewport, wheel)
        assert ed.prompts.index == index
    assert window.canvas.scale_factor == scale  # the wheel cycled instead of zooming

    # Enter accepts the candidate on screen.
    chosen = ed.prompts.candidate.instance
    _key(window, qtbot, Qt.Key.Key_Return)
    assert len(ed.annotations.instances) == 1
    assert np.array_equal(ed.annotations.instances[0].mask.to_full(), chosen.mask.to_full())
    assert errors == []


def test_roi_inspector_follows_a_drawn_box(window, qtbot, scene, demo_maskrcnn, errors, tmp_path):
    path, shot = scene[0]
    _open(window, qtbot, path, demo_maskrcnn)
    roi, _proto = window.inspector_docks
    window.resize(1300, 900)
    roi.setVisible(True)
    roi.raise_()
    with qtbot.waitSignal(window.predictionArrived, timeout=30000):
        window.run_current()
    window.select_instance(0)
    assert roi.inspection is not None and roi.header.text().startswith("<b>#1 ")

    ed = window.editing
    ed.set_tool("box")
    x1, y1, x2, y2 = (float(v) for v in shot.boxes[1])
    answer = _box_prompt(window, qtbot, (x1 - 3, y1 - 3, x2 + 3, y2 + 3))
    trace = answer.prediction.trace
    assert trace.prompt and len(trace.detections) == 1
    insp = roi.inspection
    assert roi.banner.message == "" and roi.body.isEnabled()
    assert "Drawn box" in roi.header.text() and roi.boxes_panel.boxes.item(0, 0).text() == "drawn box"
    assert roi.branch.itemText(0) == "Box head (drawn box)"
    np.testing.assert_allclose(insp.roi_image, answer.box, atol=1e-3)  # the box as drawn, not a detection
    det = trace.detections[0]
    assert insp.level.level == det.box_level
    assert f"k = {det.box_level}" in roi.boxes_panel.formula_text()
    oh, ow = insp.output_size
    gh, gw = insp.grid
    assert roi.overlay.isVisible() and roi.overlay.sample_count == oh * ow * gh * gw  # the sampling grid
    assert roi.align_panel.feature.sample_count == oh * ow * gh * gw
    roi.select_bin(1, 2)
    assert roi.selection[:2] == (1, 2) and roi.align_panel.example.toPlainText()  # worked example of a bin
    assert roi.paste is not None and roi.paste.probs.shape == (28, 28)  # the mask head's 28x28
    np.testing.assert_allclose(roi.paste.probs, det.mask_probs)

    png, numbers = roi.export_figure(tmp_path / "drawn_box.png", dpi=60)  # the figure of a drawn box exports
    assert png.stat().st_size > 0 and numbers.is_file()

    roi.branch.setCurrentIndex(roi.branch.findData("mask"))
    assert roi.inspection.branch == "mask" and "drawn box" in roi.boxes_panel.level_title.text()
    np.testing.assert_allclose(roi.inspection.roi_image, answer.box, atol=1e-3)

    _key(window, qtbot, Qt.Key.Key_Escape)  # discarded: the inspector follows the selection again
    assert "Drawn box" not in roi.header.text()
    assert roi.branch.itemText(0) == "Box head (RPN proposal)"
    assert errors == []


def test_prototype_viewer_shows_the_coefficients_of_a_yolact_prompt(window, qtbot, scene, demo_yolact, errors):
    path, shot = scene[0]
    _open(window, qtbot, path, demo_yolact)
    _roi, proto = window.inspector_docks
    window.resize(1300, 900)
    proto.setVisible(True)
    proto.raise_()
    ed = window.editing
    ed.set_tool("box")
    x1, y1, x2, y2 = (float(v) for v in shot.boxes[0])
    answer = _box_prompt(window, qtbot, (x1 - 2, y1 - 2, x2 + 2, y2 + 2))
    prior = answer.prediction.trace.prompt
    assert prior is not None
    assert proto.composition is not None and f"prior #{prior.index}" in proto.header.text()
    np.testing.assert_allclose(proto.composition.coefficients, answer.prediction.trace.coefficients[0])
    ref = demo_yolact.segment_box(window.current_image, answer.box)
    assert np.array_equal(answer.candidates[0].instance.mask.to_full(), ref.mask.to_full())
    assert errors == []


def test_yolact_point_prompt_and_ctrl_return_accepts_it(window, qtbot, scene, demo_yolact, errors):
    path, shot = scene[1]  # overlapping shapes: clicks with several candidates
    _open(window, qtbot, path, demo_yolact)
    ed = window.editing
    ed.set_tool("point")
    image = window.current_image
    best = _click_with_candidates(demo_yolact, image)
    with qtbot.waitSignal(ed.prompts.candidateChanged, timeout=20000):
        qtbot.mouseClick(window.canvas.viewport(), Qt.MouseButton.LeftButton, pos=_view(window, *best))
    answer = ed.prompts.answer
    expected = demo_yolact.segment_point(image, *answer.point)
    assert [c.instance.label for c in answer.candidates] == [e.label for e in expected] and len(expected) >= 2
    _key(window, qtbot, Qt.Key.Key_Tab)
    assert np.array_equal(ed.prompts.candidate.instance.mask.bits, expected[1].mask.bits)
    chosen = ed.prompts.candidate.instance
    ed.actions.accept.trigger()  # Ctrl+Return: with a prompt on screen, Accept takes the prompt
    anns = ed.annotations.instances
    assert len(anns) == 1 and np.array_equal(anns[0].mask.to_full(), chosen.mask.to_full())
    assert anns[0].category == demo_yolact.class_names[chosen.label]
    assert errors == []


def test_tools_say_why_without_a_model_or_with_one_that_cannot_prompt(window, qtbot, scene, errors):
    path, _shot = scene[0]
    _open(window, qtbot, path, None)
    ed = window.editing
    bar = window.statusBar()
    ed.set_tool("box")
    assert "No model is loaded" in bar.currentMessage()
    bar.clearMessage()
    _drag(qtbot, window, (10, 10), (60, 50))
    assert "No model is loaded" in bar.currentMessage() and ed.prompts.answer is None
    ed.set_tool("point")
    bar.clearMessage()
    qtbot.mouseClick(window.canvas.viewport(), Qt.MouseButton.LeftButton, pos=_view(window, 30, 30))
    assert "No model is loaded" in bar.currentMessage()

    with qtbot.waitSignal(window.models.modelReady, timeout=10000):
        window.use_segmenter(FakeSegmenter(), "fake")
    ed.set_tool("box")
    assert "cannot segment prompts" in bar.currentMessage()
    assert errors == []


def test_image_switch_frees_the_worker_feature_cache(window, qtbot, scene, demo_maskrcnn, errors):
    path, shot = scene[0]
    _open(window, qtbot, path, demo_maskrcnn)
    ed = window.editing
    ed.set_tool("box")
    x1, y1, x2, y2 = (float(v) for v in shot.boxes[0])
    _box_prompt(window, qtbot, (x1, y1, x2, y2))
    assert demo_maskrcnn.prompt_cache  # the image's features, kept in the worker for the next prompt
    with qtbot.waitSignal(window.imageShown, timeout=10000):
        window.show_file(str(scene[1][0]))
    assert ed.prompts.answer is None and not ed.prompts.item.has_candidate
    qtbot.waitUntil(lambda: not demo_maskrcnn.prompt_cache, timeout=10000)
    assert errors == []


def test_candidate_fill_covers_the_mask_only_and_is_striped():
    from app.editing.prompt_tool import hatched_argb

    bits = np.zeros((20, 30), bool)
    bits[3:15, 4:25] = True
    argb = hatched_argb(bits)
    assert argb.shape == bits.shape and argb.dtype == np.uint32
    assert np.array_equal(argb != 0, bits)  # nothing drawn outside the mask
    alphas = set((argb[bits] >> 24).tolist())
    assert alphas == {70, 150}  # two stripe strengths: never the flat fill of an annotation
