"""engine.inspect: the RoI inspector's and prototype viewer's numbers, on tiny real models.

Checked against torchvision (roi_align, roi_pool, LevelMapper, the model's own MultiScaleRoIAlign)
and against the predictions themselves (pasted masks, YOLACT mask stages).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torchvision.ops import roi_align, roi_pool

from engine.errors import MaskScopeError
from engine.inspect import (
    InspectionError,
    compare_coefficients,
    compose_detection,
    inspect_mask_paste,
    inspect_roi,
    level_for_box,
    prototype_grid,
    prototype_viewer_status,
    roi_inspector_status,
    tile_maps,
)
from engine.inspect.availability import NO_PREDICTION, NO_SELECTION, NO_TRACE, READY, WRONG_MODEL, has_prototypes
from engine.inspect.figure_export import prototype_figure_data, roi_figure_data, write_figure_json
from engine.models import create_segmenter
from engine.synthetic import generate_image

CLASSES = ["circle", "square", "triangle"]


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return generate_image(np.random.default_rng(3), (150, 190)).image


@pytest.fixture(scope="module")
def maskrcnn():
    torch.manual_seed(0)
    seg = create_segmenter("maskrcnn", "maskrcnn_r18_fpn", weights="random", class_names=CLASSES, score_thresh=0.0)
    seg.model.transform.min_size = (192,)  # small network input: fast, and boxes still span levels
    seg.model.transform.max_size = 256
    seg.model.roi_heads.detections_per_img = 6
    with torch.no_grad():
        seg.model.roi_heads.box_predictor.cls_score.weight.mul_(30)  # spread the class scores out
    return seg


@pytest.fixture(scope="module")
def mrcnn_pred(maskrcnn, image):
    pred = maskrcnn.predict(image, trace=True)
    assert len(pred) > 0 and len(pred.trace.detections) == len(pred)
    return pred


@pytest.fixture(scope="module")
def yolact():
    torch.manual_seed(0)
    seg = create_segmenter("yolact", "yolact_tiny", weights="random", class_names=CLASSES, score_thresh=0.0)
    with torch.no_grad():  # random prototypes are ~0: make them matter so masks are not all 0.5
        seg.model.proto_net[-1].weight.mul_(50)
        seg.model.proto_net[-1].bias.mul_(50)
    return seg


@pytest.fixture(scope="module")
def yolact_pred(yolact, image):
    pred = yolact.predict(image, trace=True)
    assert len(pred) > 3
    return pred


# --------------------------------------------------------------------------------------------
# Mask R-CNN: level, grid, values
# --------------------------------------------------------------------------------------------


def test_level_formula_equals_the_traced_level_and_torchvision(maskrcnn, mrcnn_pred):
    trace = mrcnn_pred.trace
    for i, det in enumerate(trace.detections):
        for branch, want in (("box", det.box_level), ("mask", det.mask_level)):
            insp = inspect_roi(trace, i, branch, class_names=CLASSES)
            lv = insp.level
            assert lv.level == want == insp.trace_level
            assert lv.k_floor == int(np.floor(lv.k_unclamped)) and lv.level == min(max(lv.k_floor, 2), 5)
            assert lv.sqrt_area == pytest.approx(np.sqrt(lv.width * lv.height), rel=1e-5)
            assert lv.k_unclamped == pytest.approx(4 + np.log2(lv.sqrt_area / 224) + 1e-6, abs=1e-5)
            assert lv.stride == 2**lv.level and lv.featmap == str(lv.level - 2)
    # Boxes of every size, through the pooler's own LevelMapper.
    pooler = maskrcnn.model.roi_heads.box_roi_pool
    gen = torch.Generator().manual_seed(1)
    sizes = torch.exp(torch.empty(200).uniform_(np.log(2.0), np.log(1500.0), generator=gen))
    boxes = torch.stack([torch.zeros(200), torch.zeros(200), sizes, sizes * torch.rand(200, generator=gen) * 2], 1)
    boxes[:, 3] = boxes[:, 3].clamp(min=1.0)
    expected = pooler.map_levels([boxes]) + trace.box_pooler.k_min
    got = [level_for_box(b.numpy(), trace.box_pooler, trace).level for b in boxes]
    assert got == expected.tolist()
    assert {2, 3, 4, 5} <= set(got)
    lines = level_for_box(np.array([0, 0, 900, 900.0]), trace.box_pooler, trace).formula_lines()
    assert any("clamped to [2, 5]: k = 5" in line for line in lines)


def test_pooled_values_equal_torchvision_and_the_models_own_pooler(maskrcnn, mrcnn_pred, image):
    trace = mrcnn_pred.trace
    heads = maskrcnn.model.roi_heads
    sizes = [trace.network_size]
    proposals = torch.from_numpy(trace.proposals)
    refined = torch.from_numpy(np.stack([d.box_network for d in trace.detections]))
    with torch.no_grad():
        box_feats = heads.box_roi_pool(trace.features, [proposals], sizes)
        mask_feats = heads.mask_roi_pool(trace.features, [refined], sizes)
    for i, det in enumerate(trace.detections):
        for branch, model_out in (("box", box_feats[det.proposal_index]), ("mask", mask_feats[i])):
            insp = inspect_roi(trace, i, branch)
            assert insp.uses_model_settings
            pooled = insp.align.pooled
            torch.testing.assert_close(pooled, model_out, rtol=0, atol=1e-6)
            feat = trace.feature(insp.level.featmap)
            roi = torch.tensor(insp.roi_network, dtype=torch.float32)[None]
            ref = roi_align(feat[None], [roi], insp.output_size, insp.level.spatial_scale, 2, False)[0]
            torch.testing.assert_close(pooled, ref, rtol=0, atol=1e-6)
            ref_pool = roi_pool(feat[None], [roi], insp.output_size, insp.level.spatial_scale)[0]
            torch.testing.assert_close(insp.pool.pooled, ref_pool, rtol=0, atol=0)
            for c in (0, 7):
                np.testing.assert_array_equal(insp.align_pooled(c), pooled[c].double().numpy())
                np.testing.assert_array_equal(insp.difference(c), (pooled[c] - ref_pool[c]).double().numpy())


def test_changed_settings_grid_counts_and_reductions(mrcnn_pred):
    trace = mrcnn_pred.trace
    for out, ratio, aligned in ((5, 3, True), (7, 0, False), ((4, 6), 1, False)):
        insp = inspect_roi(trace, 0, "mask", out, ratio, aligned)
        oh, ow = insp.output_size
        gh, gw = insp.grid
        assert (oh, ow) == ((out, out) if isinstance(out, int) else out)
        if ratio > 0:
            assert (gh, gw) == (ratio, ratio)
        assert insp.sample_count == oh * ow * gh * gw
        assert insp.sample_points_feature().shape == (oh * ow * gh * gw, 2)
        assert insp.sample_points_image().shape == (oh * ow * gh * gw, 2)
        assert insp.grid_segments_image().shape == (oh + ow + 2, 4)
        assert insp.pool_rects_image().shape == (oh * ow, 4)
        assert not insp.uses_model_settings
        feat = trace.feature(insp.level.featmap)
        roi = torch.tensor(insp.roi_network, dtype=torch.float32)[None]
        ref = roi_align(feat[None], [roi], (oh, ow), insp.level.spatial_scale, ratio, aligned)[0]
        torch.testing.assert_close(insp.align.pooled, ref, rtol=0, atol=1e-6)
        # The mean view is RoIAlign of the channel-mean map: linear, so the mean of the pooled channels.
        np.testing.assert_allclose(insp.align_pooled("mean"), ref.mean(0).double().numpy(), atol=1e-5)
        assert insp.align_pooled("max").shape == (oh, ow)
    # adaptive spelled -1 or 0 is the same setting
    a = inspect_roi(trace, 0, "box", sampling_ratio=-1)
    b = inspect_roi(trace, 0, "box", sampling_ratio=0)
    assert a.settings == b.settings
    assert inspect_roi(trace, 0, "box", 7, 2, False).uses_model_settings


def test_coordinates_hit_testing_and_worked_example(mrcnn_pred):
    trace = mrcnn_pred.trace
    insp = inspect_roi(trace, 0, "box")
    feat_pts = insp.sample_points_feature()
    img_pts = insp.sample_points_image()
    np.testing.assert_allclose(insp.image_to_feature(img_pts), feat_pts, atol=1e-4)
    x1, y1, x2, y2 = insp.roi_image
    inside = (img_pts[:, 0] >= x1 - 1e-3) & (img_pts[:, 0] <= x2 + 1e-3)
    inside &= (img_pts[:, 1] >= y1 - 1e-3) & (img_pts[:, 1] <= y2 + 1e-3)
    assert inside.all()  # the grid is drawn where the RoI is on the original image
    np.testing.assert_allclose(
        insp.proposal_image * np.array([insp.scale[1], insp.scale[0]] * 2), insp.proposal_network, rtol=1e-6
    )
    gh, gw = insp.grid
    _, ow = insp.output_size
    k = (3 * ow + 4) * gh * gw + 1 * gw + 0  # bin (3, 4), sample (1, 0)
    x, y = feat_pts[k]
    assert insp.locate_feature(x + 0.01, y, radius=0.05) == (3, 4, (1, 0))
    bx1, by1, bx2, by2 = insp.bin_rect_feature(3, 4)
    cx, cy = (bx1 + bx2) / 2, (by1 + by2) / 2
    hit = insp.locate_feature(cx, cy, radius=1e-6)
    assert hit[:2] == (3, 4)
    assert insp.locate_feature(bx1 - 100, by1 - 100, radius=0.1) is None
    ix, iy = insp.feature_to_image(np.array([cx, cy]))
    assert insp.locate_image(ix, iy, 0.0)[:2] == (3, 4)

    d = insp.sample_detail(3, 4, 1, 0, 5)
    assert d.valid and sum(d.weights) == pytest.approx(1.0, abs=1e-6)
    assert d.value == pytest.approx(sum(w * v for w, v in zip(d.weights, d.neighbor_values, strict=True)), abs=1e-5)
    assert d.bin_pooled == pytest.approx(float(insp.align.pooled[5, 3, 4]))
    feat = trace.feature(insp.level.featmap)
    for (r, c), v in zip(d.neighbors, d.neighbor_values, strict=True):
        assert v == float(feat[5, r, c])
    text = insp.worked_example(3, 4, 5)
    assert f"{float(insp.align.pooled[5, 3, 4]):.6g}" in text and "channel 5 of" in text
    assert "mean over" in insp.worked_example(3, 4, "mean")
    lines = insp.pool_bin_lines(3, 4, 5)
    assert f"{float(insp.pool.pooled[5, 3, 4]):.6g}" in " ".join(lines)
    win = insp.feature_window(5)
    assert win.values.shape[0] > 0 and win.values.shape[1] > 0
    np.testing.assert_array_equal(
        win.values, feat[5, win.row0 : win.row0 + win.values.shape[0], win.col0 : win.col0 + win.values.shape[1]]
    )
    with pytest.raises(ValueError):
        insp.align_pooled("median")
    with pytest.raises(IndexError):
        insp.align_pooled(insp.channels)


def test_mask_paste_reproduces_every_instance_mask(mrcnn_pred):
    trace = mrcnn_pred.trace
    for i, inst in enumerate(mrcnn_pred.instances):
        m = inspect_mask_paste(trace, i, inst.box, class_names=CLASSES)
        assert m.probs.shape == (28, 28) and m.padded.shape == (30, 30)
        full = np.zeros(mrcnn_pred.image_size, bool)
        x0, y0, x1, y1 = m.placed
        full[y0:y1, x0:x1] = m.bits
        np.testing.assert_array_equal(full, inst.mask.to_full())
        assert m.area == inst.area and len(m.lines()) == 5


def test_status_messages_and_errors(mrcnn_pred, yolact_pred, image, maskrcnn):
    assert roi_inspector_status(None, 0).kind == NO_PREDICTION
    untraced = maskrcnn.predict(image, trace=False)
    st = roi_inspector_status(untraced, 0)
    assert st.kind == NO_TRACE and st.rerun_helps and "without the model's internals" in st.message
    st = roi_inspector_status(yolact_pred, 0)
    assert st.kind == WRONG_MODEL and "YOLACT" in st.message and "no RoIs" in st.message
    assert roi_inspector_status(mrcnn_pred, -1).kind == NO_SELECTION
    assert roi_inspector_status(mrcnn_pred, 0).kind == READY
    st = prototype_viewer_status(mrcnn_pred, 0)
    assert st.kind == WRONG_MODEL and "Mask R-CNN" in st.message and not has_prototypes(st)
    assert prototype_viewer_status(yolact_pred, -1).kind == NO_SELECTION
    assert has_prototypes(prototype_viewer_status(yolact_pred, -1))
    assert prototype_viewer_status(yolact_pred, 0).ready
    with pytest.raises(InspectionError, match="Mask R-CNN trace"):
        inspect_roi(yolact_pred.trace, 0)
    with pytest.raises(InspectionError, match="not in the trace"):
        inspect_roi(mrcnn_pred.trace, len(mrcnn_pred))
    with pytest.raises(InspectionError, match="YOLACT trace"):
        compose_detection(mrcnn_pred.trace, 0)


# --------------------------------------------------------------------------------------------
# YOLACT
# --------------------------------------------------------------------------------------------


def test_prototype_grid_and_all_on_composition_equal_the_prediction(yolact_pred):
    trace = yolact_pred.trace
    grid = prototype_grid(trace)
    k = trace.num_prototypes
    assert grid.maps.shape == (k, *trace.proto_size)
    assert grid.vmin == pytest.approx(float(trace.prototypes.min()))
    assert grid.vmax == pytest.approx(float(trace.prototypes.max())) and grid.vmax > grid.vmin
    np.testing.assert_array_equal(grid.maps[3], trace.prototypes[..., 3])
    for i in range(4):
        c = compose_detection(trace, i, None, CLASSES, yolact_pred.instances[i].mask, prototype_maps=grid.maps)
        np.testing.assert_allclose(c.assembled, trace.assembled[i], atol=1e-5)
        np.testing.assert_allclose(c.sigmoid, trace.sigmoid[i], atol=1e-6)
        np.testing.assert_allclose(c.cropped, trace.cropped[i], atol=1e-6)
        np.testing.assert_array_equal(c.mask.to_full(), yolact_pred.instances[i].mask.to_full())
        assert c.changed_pixels == 0 and c.reference_area == yolact_pred.instances[i].area
        np.testing.assert_allclose(c.weighted.sum(0), c.assembled, atol=1e-4)
        order = c.order("magnitude")
        assert sorted(order.tolist()) == list(range(k))
        assert np.all(np.diff(np.abs(c.coefficients[order])) <= 0)


def test_switching_prototypes_off_recomputes_the_mask(yolact_pred):
    trace = yolact_pred.trace
    changed_any = False
    for i in range(min(len(trace), 8)):
        ref = yolact_pred.instances[i].mask
        c = compose_detection(trace, i, None, CLASSES, ref)
        # The prototype contributing most inside the crop is the one whose removal matters most.
        x1, y1, x2, y2 = (int(round(v)) for v in c.crop_box)
        contrib = np.abs(c.weighted[:, y1:y2, x1:x2]).sum(axis=(1, 2))
        off = int(np.argmax(contrib))
        enabled = np.ones(trace.num_prototypes, bool)
        enabled[off] = False
        d = compose_detection(trace, i, enabled, CLASSES, ref)
        assert d.disabled == [off] and not d.weighted[off].any()
        expected = trace.prototypes @ (trace.coefficients[i] * enabled)
        np.testing.assert_allclose(d.assembled, expected, atol=1e-5)
        assert d.changed_pixels == int(np.count_nonzero(d.mask.to_full() ^ ref.to_full()))
        changed_any |= d.changed_pixels > 0
        assert "off: " + str(off) in d.lines()[0]
    assert changed_any
    none = compose_detection(trace, 0, np.zeros(trace.num_prototypes, bool))
    np.testing.assert_array_equal(none.assembled, 0)
    with pytest.raises(ValueError, match="flags"):
        compose_detection(trace, 0, [True, False])


def test_compare_coefficients_and_mosaic(yolact_pred):
    trace = yolact_pred.trace
    cmp = compare_coefficients(trace, 0, 2, CLASSES)
    a, b = trace.coefficients[0].astype(np.float64), trace.coefficients[2].astype(np.float64)
    assert cmp.cosine == pytest.approx(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    assert cmp.distance == pytest.approx(np.linalg.norm(a - b))
    assert int(cmp.order[0]) == int(np.argmax(np.abs(a - b)))
    assert "cosine similarity" in cmp.lines()[0]
    maps = np.arange(5 * 3 * 4, dtype=np.float32).reshape(5, 3, 4)
    mosaic = tile_maps(maps, columns=2, gap=1)
    assert mosaic.image.shape == (3 * 3 + 2, 2 * 4 + 1)
    for i in range(5):
        x, y, w, h = mosaic.tile_rect(i)
        np.testing.assert_array_equal(mosaic.image[int(y) : int(y + h), int(x) : int(x + w)], maps[i])
        assert mosaic.tile_at(x + 0.5, y + h - 0.5) == i
    assert mosaic.tile_at(4.5, 0.5) is None  # the gap between columns
    assert np.isnan(mosaic.image[-1, -1])  # no sixth tile


# --------------------------------------------------------------------------------------------
# JSON export
# --------------------------------------------------------------------------------------------


def test_figure_json(tmp_path, mrcnn_pred, yolact_pred):
    trace = mrcnn_pred.trace
    insp = inspect_roi(trace, 0, "box", class_names=CLASSES)
    paste = inspect_mask_paste(trace, 0, mrcnn_pred.instances[0].box, class_names=CLASSES)
    data = roi_figure_data(insp, 2, (1, 2, (0, 1)), paste)
    path = write_figure_json(tmp_path / "roi.json", data)
    back = json.loads(path.read_text())
    np.testing.assert_allclose(back["roi_align"]["pooled"], insp.align.pooled[2].numpy(), rtol=1e-7)
    assert back["level"]["level"] == insp.trace_level and back["level"]["formula"] == insp.level.formula_lines()
    assert len(back["roi_align"]["sample_points_image"]) == insp.sample_count
    assert back["selected"]["sample"]["iy"] == 0 and back["mask_paste"]["area"] == mrcnn_pred.instances[0].area
    assert back["uses_model_settings"] is True

    ytrace = yolact_pred.trace
    grid = prototype_grid(ytrace)
    comp = compose_detection(ytrace, 1, None, CLASSES)
    pdata = prototype_figure_data(grid, comp, compare_coefficients(ytrace, 1, 0))
    back = json.loads(write_figure_json(tmp_path / "proto.json", pdata).read_text())
    np.testing.assert_allclose(back["detection"]["coefficients"], ytrace.coefficients[1], rtol=1e-6)
    assert back["prototypes"]["count"] == ytrace.num_prototypes and "maps" not in back["prototypes"]
    assert back["comparison"]["second"] == 0
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    with pytest.raises(MaskScopeError, match="not_a_folder"):
        write_figure_json(blocker / "out.json", pdata)
