"""Publication figures of the inspectors: composed with QPainter and written as SVG (vector, text
kept as text), PDF and PNG at a chosen DPI, with the JSON of the numbers; checked against the trace."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PySide6.QtGui import QImage
from torchvision.ops import roi_align

from app.inspectors import install_inspectors
from app.inspectors.figure import png_size, prototype_figure, roi_figure, value_format
from engine.errors import MaskScopeError
from engine.inspect.figure_export import prototype_figure_data, roi_figure_data
from engine.models import create_segmenter
from engine.synthetic import generate_image

CLASSES = ["circle", "square", "triangle"]


@pytest.fixture(scope="module")
def picture(tmp_path_factory) -> Path:
    rgb = generate_image(np.random.default_rng(3), (150, 190)).image
    path = tmp_path_factory.mktemp("figure") / "shapes.png"
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


@pytest.fixture(scope="module")
def maskrcnn():
    torch.manual_seed(0)
    seg = create_segmenter("maskrcnn", "maskrcnn_r18_fpn", weights="random", class_names=CLASSES, score_thresh=0.0)
    seg.model.transform.min_size = (192,)
    seg.model.transform.max_size = 256
    seg.model.roi_heads.detections_per_img = 5
    with torch.no_grad():
        seg.model.roi_heads.box_predictor.cls_score.weight.mul_(30)
    return seg


@pytest.fixture(scope="module")
def yolact():
    torch.manual_seed(0)
    seg = create_segmenter("yolact", "yolact_tiny", weights="random", class_names=CLASSES, score_thresh=0.0)
    with torch.no_grad():
        seg.model.proto_net[-1].weight.mul_(50)
        seg.model.proto_net[-1].bias.mul_(50)
    return seg


@pytest.fixture
def docks(window):
    roi, proto = install_inspectors(window, visible=True)
    window.resize(1300, 900)
    return roi, proto


def _show(window, qtbot, picture: Path, segmenter):
    with qtbot.waitSignal(window.imageShown, timeout=10000):
        window.open_image(str(picture))
    pred = segmenter.predict(window.current_image, trace=True)
    window.set_prediction(window.current_image_path, pred)
    return pred


def _svg_texts(path: Path) -> list[str]:
    root = ET.parse(path).getroot()  # parses: well-formed XML
    assert root.tag.endswith("svg")
    return ["".join(el.itertext()).strip() for el in root.iter() if el.tag.endswith("text")]


def test_roi_figure_in_every_format(window, qtbot, docks, picture, maskrcnn, tmp_path):
    roi, _proto = docks
    qtbot.waitUntil(roi.isVisible)
    pred = _show(window, qtbot, picture, maskrcnn)
    window.select_instance(1)
    qtbot.waitUntil(lambda: roi.inspection is not None)
    roi.branch.setCurrentIndex(roi.branch.findData("mask"))  # the 14x14 table
    insp = roi.inspection
    assert insp.output_size == (14, 14)
    view = roi.feature_view

    svg, js = roi.export_figure(tmp_path / "roi.svg")
    texts = _svg_texts(svg)
    pooled = insp.align_pooled(view)
    fmt = value_format(pooled)
    for value in pooled.reshape(-1):  # every one of the 196 cells, none cut
        assert fmt.format(value) in texts
    assert sum(t == fmt.format(pooled[13, 13]) for t in texts) >= 1
    caption = " ".join(texts)
    assert f"Detection #2: {insp.class_name}" in caption and "Mean |RoIAlign - RoIPool|" in caption
    assert "RPN proposal" in caption and "RoIPool (14x14)" in caption

    pdf, _ = roi.export_figure(tmp_path / "roi.pdf")
    head = pdf.read_bytes()[:5]
    assert head == b"%PDF-" and pdf.stat().st_size > 2000

    data = roi_figure_data(insp, view, roi.selection, roi.paste)
    fig = roi_figure(insp, view, window.current_image, data)
    for dpi in (72, 150):
        png, _ = roi.export_figure(tmp_path / f"roi_{dpi}.png", dpi=dpi)
        img = QImage(str(png))
        assert (img.width(), img.height()) == png_size(fig, dpi)
    assert png_size(fig, 150)[0] == round(png_size(fig, 72)[0] * 150 / 72)

    # The JSON holds the numbers of the trace: torchvision's roi_align of the traced feature map.
    numbers = json.loads(js.read_text())
    feat = pred.trace.feature(insp.level.featmap)
    box = torch.tensor(insp.roi_network, dtype=torch.float32)[None]
    ratio = insp.settings.sampling_ratio
    ref = roi_align(feat[None], [box], (14, 14), insp.level.spatial_scale, ratio, insp.settings.aligned)[0]
    np.testing.assert_allclose(numbers["roi_align"]["pooled"], ref.mean(0).double().numpy(), atol=1e-5)
    np.testing.assert_allclose(numbers["roi_pool"]["pooled"], insp.pool_pooled(view), atol=1e-6)

    with pytest.raises(MaskScopeError, match="figures are written as"):
        roi.export_figure(tmp_path / "roi.jpg")


def test_prototype_figure_comparison_has_a_legend(window, qtbot, docks, picture, yolact, tmp_path):
    _roi, proto = docks
    proto.raise_()
    qtbot.waitUntil(proto.isVisible)
    pred = _show(window, qtbot, picture, yolact)
    window.select_instance(2)
    combo = proto.coef_panel.compare
    combo.setCurrentIndex(combo.findData(0))
    comp = proto.comparison
    assert comp is not None

    svg, js = proto.export_figure(tmp_path / "proto.svg")
    texts = _svg_texts(svg)
    assert f"#3 {comp.names[0]}" in texts and f"#1 {comp.names[1]}" in texts  # the legend
    assert any("cosine similarity" in t for t in texts)
    k = pred.trace.num_prototypes
    c = proto.composition
    for j in range(k):  # the strip labels every prototype with its coefficient
        assert f"{j}: {float(c.coefficients[j]):+.2f}" in texts

    numbers = json.loads(js.read_text())
    np.testing.assert_allclose(numbers["detection"]["coefficients"], pred.trace.coefficients[2], rtol=1e-6)
    np.testing.assert_allclose(numbers["comparison"]["b"], pred.trace.coefficients[0], rtol=1e-6)

    pdf, _ = proto.export_figure(tmp_path / "proto.pdf")
    assert pdf.read_bytes()[:5] == b"%PDF-"
    fig = prototype_figure(proto.grid, c, comp, window.current_image, prototype_figure_data(proto.grid, c, comp))
    png, _ = proto.export_figure(tmp_path / "proto.png", dpi=96)
    assert (QImage(str(png)).width(), QImage(str(png)).height()) == png_size(fig, 96)
