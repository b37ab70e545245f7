"""The RoI inspector and the prototype viewer in the real main window, with tiny real models.

Predictions are made here with ``trace=True`` and handed to the window (``set_prediction``), as the
worker does for a run with internals; the tests then select detections and check what the docks
show: the numbers (against torchvision), the grid on the canvas, non-blank images, toggles, export.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from gui_fakes import INSPECT_CLASSES, tiny_maskrcnn, tiny_yolact, write_shapes_picture
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QImage
from torchvision.ops import roi_align

from app.inspectors import install_inspectors

CLASSES = INSPECT_CLASSES


@pytest.fixture(scope="module")
def picture(tmp_path_factory) -> Path:
    return write_shapes_picture(tmp_path_factory.mktemp("inspect") / "shapes.png")


@pytest.fixture(scope="module")
def maskrcnn():
    return tiny_maskrcnn()


@pytest.fixture(scope="module")
def yolact():
    return tiny_yolact()


@pytest.fixture
def docks(window):
    roi, proto = install_inspectors(window, visible=True)
    window.resize(1300, 900)
    return roi, proto


def _show(window, qtbot, picture: Path, segmenter, trace: bool = True):
    with qtbot.waitSignal(window.imageShown, timeout=10000):
        window.open_image(str(picture))
    pred = segmenter.predict(window.current_image, trace=trace)
    window.set_prediction(window.current_image_path, pred)
    return pred


def _not_blank(image: QImage, min_colors: int = 8) -> bool:
    """At least ``min_colors`` distinct colours in the grabbed widget."""
    image = image.convertToFormat(QImage.Format.Format_RGB32)
    arr = np.frombuffer(image.constBits(), np.uint32, image.width() * image.height())
    return len(np.unique(arr)) >= min_colors


def _click_view(qtbot, heatmap, x: float, y: float, double: bool = False) -> None:
    """A real mouse click at data point (x, y) of a HeatmapView."""
    scene = heatmap.vb.mapViewToScene(QPointF(x, y))
    pos = heatmap.mapFromScene(scene)
    if double:  # what a real double-click delivers: press, release, double-click, release
        left = Qt.MouseButton.LeftButton
        qtbot.mousePress(heatmap.viewport(), left, pos=pos)
        qtbot.mouseRelease(heatmap.viewport(), left, pos=pos)
        qtbot.mouseDClick(heatmap.viewport(), left, pos=pos)
        qtbot.mouseRelease(heatmap.viewport(), left, pos=pos)
        qtbot.wait(20)  # the double-click is reported once the scene has delivered it
    else:
        qtbot.mouseClick(heatmap.viewport(), Qt.MouseButton.LeftButton, pos=pos)


def test_roi_inspector_shows_torchvision_values_grid_and_steps(window, qtbot, docks, picture, maskrcnn, tmp_path):
    roi, proto = docks
    roi.raise_()
    pred = _show(window, qtbot, picture, maskrcnn)
    assert "Select a detection" in roi.banner.message
    window.select_instance(1)
    assert roi.banner.message == "" and roi.body.isEnabled()
    insp = roi.inspection
    det = pred.trace.detections[1]
    assert insp.det_index == 1 and insp.branch == "box"
    assert "#2" in roi.header.text() and f"P{det.box_level}" in roi.header.text()

    # 1. proposal and refined box, top-5 classes.
    boxes = roi.boxes_panel.boxes
    assert boxes.item(0, 0).text() == f"proposal #{det.proposal_index}"
    assert boxes.item(0, 2).text() == "(" + ", ".join(f"{v:.1f}" for v in det.proposal_box) + ")"
    top = det.top_classes(5)
    assert roi.boxes_panel.classes.item(0, 0).text() == CLASSES[top[0][0]]
    assert roi.boxes_panel.classes.item(0, 1).text() == f"{top[0][1]:.4f}"
    # 2. the level formula with this RoI's numbers.
    formula = roi.boxes_panel.formula_text()
    assert f"k = {det.box_level}" in formula and "s0 = 224" in formula and "stride" in formula
    assert f"{insp.level.sqrt_area:.6g}" in formula

    # 3. the sampling grid on the canvas and in the feature view: one point per sample.
    oh, ow = insp.output_size
    gh, gw = insp.grid
    assert roi.overlay.isVisible() and roi.overlay.sample_count == oh * ow * gh * gw == 7 * 7 * 2 * 2
    assert roi.overlay.segment_count == oh + ow + 2
    assert roi.align_panel.feature.sample_count == oh * ow * gh * gw
    canvas = window.canvas.render_to_image()
    x1, y1, x2, y2 = (int(round(v)) for v in insp.roi_image)
    patch = canvas.copy(x1, y1, max(x2 - x1, 1), max(y2 - y1, 1))
    assert _not_blank(patch, 3)

    # The displayed pooled values are torchvision's roi_align for this RoI (channel view).
    roi.view.setCurrentIndex(roi.view.findData("channel"))
    roi.channel.setValue(3)
    feat = pred.trace.feature(insp.level.featmap)
    box = torch.tensor(insp.roi_network, dtype=torch.float32)[None]
    ref = roi_align(feat[None], [box], (7, 7), insp.level.spatial_scale, 2, False)[0, 3].double().numpy()
    shown = roi.shown_pooled_values()
    np.testing.assert_allclose(shown, ref, rtol=0, atol=1e-6)
    assert roi.align_panel.pooled.texts()[0][0] == f"{ref[0, 0]:.4g}"
    assert _not_blank(roi.align_panel.feature.grab().toImage())

    # 5. a real click on a sample point of the feature view explains that sample.
    k = (2 * ow + 5) * gh * gw + 1  # bin (2, 5), sample (0, 1)
    x, y = insp.sample_points_feature()[k]
    _click_view(qtbot, roi.align_panel.feature, x, y)
    assert roi.selection == (2, 5, (0, 1))
    text = roi.align_panel.example.toPlainText()
    assert "sample (0, 1) of bin (row 2, col 5)" in text and f"{ref[2, 5]:.6g}" in text
    assert "weights hy*hx" in text

    # 6. RoIPool beside it.
    roi.tabs.setCurrentWidget(roi.compare_panel)
    np.testing.assert_array_equal(roi.compare_panel.pool_values.values(), insp.pool_pooled(3))
    assert "RoIPool bin (row 2, col 5)" in roi.compare_panel.text.toPlainText()
    assert roi.compare_panel.diff.has_image and _not_blank(roi.compare_panel.diff.grab().toImage())
    # 7. mask probabilities and paste.
    roi.tabs.setCurrentWidget(roi.mask_panel)
    assert roi.mask_panel.probs.has_image and _not_blank(roi.mask_panel.probs.grab().toImage())
    assert f"pixels with probability > 0.5: {pred.instances[1].area}" in roi.mask_panel.text.toPlainText()

    # The mask head and changed settings (the model's own are marked).
    roi.branch.setCurrentIndex(1)
    assert roi.inspection.output_size == (14, 14) and roi.overlay.sample_count == 14 * 14 * 4
    assert "model's own settings" in roi.defaults_note.text()
    roi.out_size.setValue(5)
    roi.ratio.setValue(3)
    roi.aligned.setChecked(True)
    insp = roi.inspection
    assert insp.settings.output_size == (5, 5) and roi.overlay.sample_count == 5 * 5 * 9
    assert "changed" in roi.defaults_note.text() and "output 14x14" in roi.defaults_note.text()
    feat = pred.trace.feature(insp.level.featmap)
    box = torch.tensor(insp.roi_network, dtype=torch.float32)[None]
    ref = roi_align(feat[None], [box], (5, 5), insp.level.spatial_scale, 3, True)[0, 3].double().numpy()
    np.testing.assert_allclose(roi.shown_pooled_values(), ref, rtol=0, atol=1e-6)
    roi.reset.click()
    assert roi.inspection.uses_model_settings and roi.inspection.output_size == (14, 14)

    # Export: the view as PNG, its numbers as JSON.
    png, js = roi.export_figure(tmp_path / "roi.png")
    assert QImage(str(png)).width() > 100
    data = json.loads(js.read_text())
    np.testing.assert_allclose(data["roi_align"]["pooled"], roi.shown_pooled_values(), atol=1e-6)
    assert data["head"] == "mask head" and data["level"]["level"] == det.mask_level

    # The prototype viewer explains why it has nothing to show for Mask R-CNN.
    proto.raise_()
    qtbot.waitUntil(proto.isVisible)
    assert "Mask R-CNN" in proto.banner.message and not proto.body.isEnabled()
    assert not roi.overlay.isVisible()  # the RoI grid leaves the canvas with its dock


def test_prototype_viewer_toggles_and_compares(window, qtbot, docks, picture, yolact, tmp_path):
    roi, proto = docks
    proto.raise_()
    qtbot.waitUntil(proto.isVisible)
    pred = _show(window, qtbot, picture, yolact)
    trace = pred.trace
    k = trace.num_prototypes
    # Prototypes are shown before any selection.
    assert proto.grid is not None and proto.grid.count == k
    assert len(proto.grid_panel._labels) == k
    assert _not_blank(proto.grid_panel.mosaic_view.grab().toImage())
    window.select_instance(2)
    c = proto.composition
    assert c is not None and c.det_index == 2 and c.changed_pixels == 0
    np.testing.assert_allclose(proto.coef_panel.heights, trace.coefficients[2], rtol=1e-6)
    proto.coef_panel.sort.setChecked(True)
    heights = proto.coef_panel.heights
    assert np.all(np.diff(np.abs(heights)) <= 0)
    np.testing.assert_allclose(sorted(np.abs(heights)), sorted(np.abs(trace.coefficients[2])), rtol=1e-6)

    # A click on a tile enlarges it; a double-click switches it off and recomputes the mask.
    target = int(c.order("magnitude")[0])
    x, y, w, h = proto.mosaic.tile_rect(target)
    _click_view(qtbot, proto.grid_panel.mosaic_view, x + w / 2, y + h / 2)
    assert proto.grid_panel.current == target and proto.grid_panel.large.has_image
    _click_view(qtbot, proto.grid_panel.mosaic_view, x + w / 2, y + h / 2, double=True)
    c2 = proto.composition
    assert not proto.enabled[target] and c2.disabled == [target]
    expected = trace.prototypes @ (trace.coefficients[2] * proto.enabled)
    np.testing.assert_allclose(c2.assembled, expected, atol=1e-5)
    assert proto.mask_item.isVisible() and proto.mask_item.area == c2.mask.area
    assert f"{k - 1} of {k} prototypes on" in proto.header.text()
    assert not proto.grid_panel.use.isChecked()
    proto.tabs.setCurrentWidget(proto.stages_panel)
    for view in (proto.stages_panel.assembled, proto.stages_panel.sigmoid, proto.stages_panel.cropped):
        assert view.has_image and _not_blank(view.grab().toImage())
    assert "off: " + str(target) in proto.stages_panel.text.toPlainText()
    proto.enable_all()
    assert proto.enabled.all() and not proto.mask_item.isVisible() and proto.composition.changed_pixels == 0

    # Two detections side by side.
    proto.tabs.setCurrentWidget(proto.coef_panel)
    combo = proto.coef_panel.compare
    combo.setCurrentIndex(combo.findData(0))
    assert proto.comparison is not None and proto.comparison.second == 0
    assert proto.coef_panel.other_bars.isVisible()
    assert "cosine similarity" in proto.coef_panel.text.toPlainText()

    png, js = proto.export_figure(tmp_path / "proto.png")
    assert QImage(str(png)).width() > 100
    data = json.loads(js.read_text())
    assert data["detection"]["index"] == 2 and data["comparison"]["second"] == 0

    # The RoI inspector explains why it has nothing to show for YOLACT.
    roi.raise_()
    qtbot.waitUntil(roi.isVisible)
    assert "YOLACT" in roi.banner.message and roi.inspection is None


def test_without_trace_the_panels_offer_a_rerun(window, qtbot, docks, picture, maskrcnn, monkeypatch):
    roi, _ = docks
    roi.raise_()
    calls = []
    monkeypatch.setattr(window, "run_current", lambda: calls.append(1))
    _show(window, qtbot, picture, maskrcnn, trace=False)
    window.select_instance(0)
    assert "without the model's internals" in roi.banner.message
    assert roi.banner.button.isVisible() and roi.inspection is None
    roi.banner.button.click()
    assert calls == [1]


def test_hidden_docks_compute_nothing_until_shown(window, qtbot, picture, maskrcnn):
    roi, proto = install_inspectors(window)  # hidden by default
    assert not roi.isVisible() and not proto.isVisible()
    _show(window, qtbot, picture, maskrcnn)
    window.select_instance(0)
    assert roi.inspection is None and not roi.overlay.isVisible()
    roi.toggleViewAction().trigger()
    qtbot.waitUntil(lambda: roi.inspection is not None)
    assert roi.inspection.det_index == 0 and roi.overlay.isVisible()
