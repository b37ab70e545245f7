"""One test per quirk of yolact-spec.md section 16, on small hand-made tensors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine.yolact.boxes import crop, decode, jaccard
from engine.yolact.config import yolact_base, yolact_im700, yolact_tiny
from engine.yolact.detect import cc_fast_nms, detect, fast_nms, greedy_nms, traditional_nms
from engine.yolact.model import FPN, Yolact
from engine.yolact.postprocess import postprocess_reference
from engine.yolact.priors import make_priors

f32 = np.float32


def python_priors(conv_h: int, conv_w: int, scale: float, ars, max_size: int) -> torch.Tensor:
    """Section 7's loop, literally: Python floats, then one cast to float32."""
    data: list[float] = []
    for j in range(conv_h):
        for i in range(conv_w):
            cx = (i + 0.5) / conv_w
            cy = (j + 0.5) / conv_h
            for ar in ars:
                r = math.sqrt(ar)
                w = scale * r / max_size
                data += [cx, cy, w, w]  # h = w: square anchors
    return torch.tensor(data, dtype=torch.float32).view(-1, 4)


# --- 1, 14: priors ------------------------------------------------------------------------------


def test_priors_first_values_at_550_and_square_anchors():
    p = make_priors(69, 69, 24, (1, 0.5, 2), 550)
    assert p.shape == (69 * 69 * 3, 4) and p.dtype == torch.float32
    assert p[0].tolist() == pytest.approx([0.0072464, 0.0072464, 0.0436364, 0.0436364], abs=5e-8)
    assert p[1, 2].item() == pytest.approx(0.0308556, abs=5e-8)
    assert p[2, 2].item() == pytest.approx(0.0617111, abs=5e-8)
    # square: the aspect ratio changes the size (s * sqrt(ar) / max_size), never the shape
    assert torch.equal(p[:, 2], p[:, 3])
    assert p[3, 0].item() == pytest.approx(1.5 / 69)  # row-major: next column, same row
    assert p[69 * 3, 1].item() == pytest.approx(1.5 / 69)  # next row


def test_priors_float64_then_float32_bit_exact_at_all_levels():
    for cfg, sizes in ((yolact_base, (69, 35, 18, 9, 5)), (yolact_im700, (88, 44, 22, 11, 6))):
        for size, scale in zip(sizes, cfg.pred_scales, strict=True):
            ours = make_priors(size, size, scale, cfg.aspect_ratios, cfg.max_size)
            assert torch.equal(ours, python_priors(size, size, scale, cfg.aspect_ratios, cfg.max_size))
    # quirk 14: doing the arithmetic in float32 gives another value (im700, scale 61, ar 1/2)
    side32 = f32(61) * f32(math.sqrt(0.5)) / f32(700)
    assert side32 != make_priors(44, 44, 61, (1, 0.5, 2), 700)[1, 2].item()


def test_priors_cached_per_size():
    a = make_priors(9, 9, 192, (1, 0.5, 2), 550)
    assert make_priors(9, 9, 192, (1, 0.5, 2), 550) is a
    assert make_priors(10, 9, 192, (1, 0.5, 2), 550).shape == (270, 4)


# --- 2, 3: FPN ----------------------------------------------------------------------------------


def test_fpn_sizes_order_and_relu_placement():
    torch.manual_seed(0)
    fpn = FPN([8, 16, 32], num_features=4)
    assert [lat.in_channels for lat in fpn.lat_layers] == [32, 16, 8]  # reversed: index 0 is C5
    with torch.no_grad():
        fpn.downsample_layers[0].bias.fill_(-0.5)  # make P6 negative somewhere: no relu after it
        c3, c4, c5 = torch.randn(1, 8, 69, 69), torch.randn(1, 16, 35, 35), torch.randn(1, 32, 18, 18)
        outs = fpn([c3, c4, c5])
        assert [o.shape[-1] for o in outs] == [69, 35, 18, 9, 5]
        # top-down path on the pre-pred sums, upsampled to the exact next size (18 -> 35 -> 69)
        t5 = fpn.lat_layers[0](c5)
        t4 = F.interpolate(t5, size=(35, 35), mode="bilinear", align_corners=False) + fpn.lat_layers[1](c4)
        t3 = F.interpolate(t4, size=(69, 69), mode="bilinear", align_corners=False) + fpn.lat_layers[2](c3)
        p5, p4, p3 = F.relu(fpn.pred_layers[0](t5)), F.relu(fpn.pred_layers[1](t4)), F.relu(fpn.pred_layers[2](t3))
        p6 = fpn.downsample_layers[0](p5)
        p7 = fpn.downsample_layers[1](p6)
        for got, want in zip(outs, (p3, p4, p5, p6, p7), strict=True):
            assert torch.equal(got, want)
        assert p6.min() < 0 and p7.min() < 0
        # scale_factor=2 would give 36, not 35: the sizes must come from the next level
        assert F.interpolate(t5, scale_factor=2, mode="bilinear").shape[-1] == 36


# --- 4: prototypes ------------------------------------------------------------------------------


def test_prototypes_relu_and_x2_bilinear_upsample():
    torch.manual_seed(0)
    model = Yolact(yolact_tiny).eval()
    with torch.no_grad():
        model.proto_net[10].bias.fill_(-0.05)
        x = torch.randn(1, 3, 160, 160)  # any input size runs; prototypes are then 40 x 40
        raw = model.forward_raw(x)
        p3 = model.fpn([model.backbone(x)[i] for i in (1, 2, 3)])[0]
        h = p3
        for i in range(6):
            h = model.proto_net[i](h)
        up = F.interpolate(h, scale_factor=2, mode="bilinear", align_corners=False)
        for i in range(7, 11):
            up = model.proto_net[i](up)
    assert torch.equal(raw["proto"], F.relu(up).permute(0, 2, 3, 1))
    assert raw["proto"].min() == 0 and up.min() < 0


# --- 5, 6: scores -------------------------------------------------------------------------------


def _detect_on(boxes_xyxy: list[list[float]], class_scores: list[list[float]], cfg=yolact_tiny, mode="fast"):
    """Run Detect with priors = the given boxes and zero regression, conf = [bg, classes...]."""
    b = torch.tensor(boxes_xyxy, dtype=torch.float32)
    priors = torch.cat([(b[:, :2] + b[:, 2:]) / 2, b[:, 2:] - b[:, :2]], 1)
    scores = torch.tensor(class_scores, dtype=torch.float32)
    bg = (1 - scores.sum(1, keepdim=True)).clamp(min=0)
    conf = torch.cat([bg, scores], 1)[None]
    n, c = scores.shape
    cfg = cfg.with_num_classes(c)
    mask = torch.arange(n * 2, dtype=torch.float32).view(1, n, 2)
    return detect(torch.zeros(1, n, 4), conf, mask, priors, torch.zeros(1, 4, 4, 2), cfg, mode)[0]


def test_softmax_over_all_classes_is_not_renormalised():
    model = Yolact(yolact_tiny.with_num_classes(2)).eval()
    logits = torch.tensor([[[2.0, 0.5, -1.0]]])  # one prior: background, class 0, class 1
    raw = {
        "loc": torch.zeros(1, 1, 4),
        "conf": logits,
        "mask": torch.zeros(1, 1, 32),
        "priors": torch.tensor([[0.5, 0.5, 0.2, 0.2]]),
        "proto": torch.zeros(1, 2, 2, 32),
    }
    det = model.detect(raw)[0]
    e = np.exp([2.0, 0.5, -1.0])
    expected = e / e.sum()  # 0.7856, 0.1753, 0.0391 (not 0.818 / 0.182 after dropping background)
    assert det["class"].tolist() == [0, 1]
    assert det["score"].tolist() == pytest.approx(expected[1:].tolist(), rel=1e-6)


def test_conf_threshold_is_strict_and_only_gates_priors():
    boxes = [[0.0, 0.0, 0.2, 0.2], [0.5, 0.5, 0.7, 0.7]]
    at = float(f32(0.05))
    above = float(np.nextafter(f32(0.05), f32(1)))
    det = _detect_on(boxes, [[at, 0.01], [0.004, above]])
    # prior 0 (max exactly 0.05) never enters NMS; prior 1 enters with BOTH its class scores
    assert torch.allclose(det["box"], torch.tensor([[0.5, 0.5, 0.7, 0.7]] * 2))
    assert det["class"].tolist() == [1, 0]
    assert det["score"].tolist() == [pytest.approx(above), pytest.approx(0.004)]  # 0.004 < 0.05 is output
    assert _detect_on([[0, 0, 0.1, 0.1]], [[at]]) is None


# --- 7, 8: Fast NMS -----------------------------------------------------------------------------


def test_fast_nms_suppressed_boxes_still_suppress():
    # A-B and B-C overlap by 70/130 = 0.54; A-C by 40/160 = 0.25. Greedy NMS keeps A and C,
    # Fast NMS only A: C is removed by B although B itself was removed.
    boxes = [[0, 0, 10, 10], [3, 0, 13, 10], [6, 0, 16, 10]]
    rel = [[v / 100 for v in b] for b in boxes]
    det = _detect_on(rel, [[0.9], [0.8], [0.7]])
    assert det["score"].tolist() == [pytest.approx(0.9)]
    keep = greedy_nms(np.array([b + [s] for b, s in zip(boxes, (0.9, 0.8, 0.7), strict=True)], np.float32), 0.5)
    assert keep == [0, 2]


def test_fast_nms_keeps_iou_exactly_one_half():
    a, b = [0, 0, 4 / 8, 1 / 8], [0, 0, 2 / 8, 1 / 8]  # IoU = (2/64) / (4/64) = 0.5 exactly
    assert jaccard(torch.tensor([a]), torch.tensor([b])).item() == 0.5
    det = _detect_on([a, b], [[0.9], [0.8]])
    assert det["score"].tolist() == [pytest.approx(0.9), pytest.approx(0.8)]
    c = [0, 0, 2.25 / 8, 1 / 8]  # IoU 0.5625 -> suppressed
    assert _detect_on([a, c], [[0.9], [0.8]])["score"].tolist() == [pytest.approx(0.9)]


def _grid_boxes(n: int) -> list[list[float]]:
    """n disjoint boxes (no overlaps, so NMS keeps all)."""
    side = math.ceil(math.sqrt(n))
    return [
        [(i % side) / side, (i // side) / side, (i % side + 0.5) / side, (i // side + 0.5) / side] for i in range(n)
    ]


def test_fast_nms_top_k_per_class_and_cap_100_but_cross_class_uncapped():
    n = 250
    scores = [[0.5 + i / 1000] for i in range(n)]  # distinct, all > 0.05
    det = _detect_on(_grid_boxes(n), scores)
    assert len(det["score"]) == 100  # max_num_detections
    assert det["score"][0].item() == pytest.approx(0.5 + 249 / 1000)
    cc = _detect_on(_grid_boxes(n), scores, mode="cross_class")
    assert len(cc["score"]) == 200  # only top_k=200 enter, and there is no 100 cap
    assert torch.all(cc["score"][:-1] >= cc["score"][1:])
    # two classes compete for the 100 slots on score alone (class-major flatten, then one sort)
    two = _detect_on(_grid_boxes(150), [[0.3 + i / 1000, 0.2] for i in range(150)])
    assert len(two["score"]) == 100 and set(two["class"].tolist()) == {0}


def test_fast_nms_direct_class_major_and_sorted():
    boxes = torch.tensor([[0, 0, 0.1, 0.1], [0.5, 0.5, 0.6, 0.6]])
    masks = torch.tensor([[1.0], [2.0]])
    scores = torch.tensor([[0.2, 0.6], [0.7, 0.1]])  # [C=2, K=2]
    b, m, c, s = fast_nms(boxes, masks, scores)
    assert s.tolist() == pytest.approx([0.7, 0.6, 0.2, 0.1])
    assert c.tolist() == [1, 0, 0, 1] and m[:, 0].tolist() == [1.0, 2.0, 1.0, 2.0]
    b, m, c, s = cc_fast_nms(boxes, masks, scores)
    assert c.tolist() == [1, 0] and s.tolist() == pytest.approx([0.7, 0.6])


def test_traditional_nms_uses_plus_one_areas_and_ge():
    # In pixels: A (0,0)-(9,9), B (0,0)-(9,4.2). Plain IoU 37.8/81 = 0.47 (Fast NMS keeps B);
    # with +1 areas 52/100 = 0.52 >= 0.5 (traditional NMS drops B).
    a, b = [0, 0, 9 / 550, 9 / 550], [0, 0, 9 / 550, 4.2 / 550]
    assert len(_detect_on([a, b], [[0.9], [0.8]], cfg=yolact_base)["score"]) == 2
    det = _detect_on([a, b], [[0.9], [0.8]], cfg=yolact_base, mode="traditional")
    assert det["score"].tolist() == [pytest.approx(0.9)]
    # per-class score filter (> 0.05) and the output keeps relative boxes
    boxes = torch.tensor([a, b, [0.5, 0.5, 0.6, 0.6]])
    scores = torch.tensor([[0.9, 0.8, 0.05]])
    out_b, _, out_c, out_s = traditional_nms(boxes, torch.zeros(3, 1), scores, max_size=550)
    assert out_s.tolist() == [pytest.approx(0.9)] and out_c.tolist() == [0]
    assert torch.allclose(out_b, torch.tensor([a]))


# --- 9: decoding and box clamping ---------------------------------------------------------------


def test_decode_x2_is_x1_plus_w_and_unclipped():
    prior = [0.3481282889842987, 0.48411089181900024, 0.14423871040344238, 0.16601523756980896]
    loc = [1.287357211112976, 0.956139326095581, -1.9726907014846802, -0.12145424634218216]
    p, d = [f32(v) for v in prior], [f32(v) for v in loc]
    cx = p[0] + d[0] * f32(0.1) * p[2]
    w = p[2] * f32(torch.exp(torch.tensor(d[2] * f32(0.2))).item())  # exp from torch: same libm
    x1 = cx - w / f32(2)
    got = decode(torch.tensor([loc]), torch.tensor([prior]))[0]
    assert got[0].item() == x1 and got[2].item() == x1 + w
    assert got[2].item() != cx + w / f32(2)  # the "natural" formula differs in the last bit here
    edge = decode(torch.tensor([[-3.0, 0.0, 2.0, 0.0]]), torch.tensor([[0.05, 0.5, 0.2, 0.2]]))[0]
    assert edge[0] < 0  # not clipped


def test_postprocess_box_swap_clamp_truncate_in_place_and_empty():
    proto = torch.zeros(4, 4, 1)
    det = {
        "box": torch.tensor([[0.6, 0.7, 0.2, -0.1], [0.555, 0.1, 1.3, 0.2]]),
        "mask": torch.zeros(2, 1),
        "class": torch.tensor([3, 1]),
        "score": torch.tensor([0.9, 0.4]),
        "proto": proto,
    }
    classes, scores, boxes, masks = postprocess_reference([det], 100, 50)
    # x: min/max swap (60, 20) -> 20..60; y: (35, -5) -> clamp 0 .. 35; 55.5 -> 55; 130 -> 100 (= w)
    assert boxes.tolist() == [[20, 0, 60, 35], [55, 5, 100, 10]]
    assert boxes.dtype == torch.int64 and masks.shape == (2, 50, 100)
    # the input dict's boxes were overwritten with the clamped floats
    assert torch.allclose(det["box"], torch.tensor([[20.0, 0.0, 60.0, 35.0], [55.5, 5.0, 100.0, 10.0]]))
    assert set(masks.unique().tolist()) <= {0.0, 1.0}
    empty = postprocess_reference([None], 100, 50)
    assert len(empty) == 4 and all(e is empty[0] for e in empty) and empty[0].numel() == 0


def test_score_threshold_in_postprocess_is_strict():
    det = {
        "box": torch.tensor([[0.1, 0.1, 0.5, 0.5], [0.2, 0.2, 0.6, 0.6]]),
        "mask": torch.zeros(2, 1),
        "class": torch.tensor([0, 1]),
        "score": torch.tensor([0.5, 0.3]),
        "proto": torch.zeros(4, 4, 1),
    }
    _, scores, _, _ = postprocess_reference([dict(det)], 10, 10, score_threshold=0.3)
    assert scores.tolist() == [0.5]
    assert postprocess_reference([dict(det)], 10, 10, score_threshold=0.5)[0].numel() == 0


# --- 10: crop ------------------------------------------------------------------------------------


def test_crop_half_open_with_one_pixel_padding():
    masks = torch.ones(10, 10, 2)
    boxes = torch.tensor([[0.2, 0.3, 0.5, 0.6], [0.25, 0.05, 0.55, 0.95]])
    out = crop(masks, boxes)
    # box 0: x 2..5 -> [1, 6), y 3..6 -> [2, 7)
    assert torch.nonzero(out[..., 0].any(0)).flatten().tolist() == [1, 2, 3, 4, 5]
    assert torch.nonzero(out[..., 0].any(1)).flatten().tolist() == [2, 3, 4, 5, 6]
    # box 1: x 2.5..5.5 -> [1.5, 6.5) keeps columns 2..6; y 0.5..9.5 -> clamp [0, 10)
    assert torch.nonzero(out[..., 1].any(0)).flatten().tolist() == [2, 3, 4, 5, 6]
    assert torch.nonzero(out[..., 1].any(1)).flatten().tolist() == list(range(10))


def test_masks_cropped_at_proto_resolution_before_upsampling_and_gt_half():
    # one detection, proto 4x4 with a single prototype; coefficient large -> sigmoid ~ 1 everywhere
    proto = torch.ones(4, 4, 1)
    det = {
        "box": torch.tensor([[0.5, 0.5, 0.75, 0.75]]),  # proto px 2..3 -> crop [1, 4)
        "mask": torch.tensor([[20.0]]),
        "class": torch.tensor([0]),
        "score": torch.tensor([0.9]),
        "proto": proto,
    }
    _, _, _, masks = postprocess_reference([det], 8, 8)
    cropped = torch.zeros(4, 4)
    cropped[1:4, 1:4] = torch.sigmoid(torch.tensor(20.0))
    want = F.interpolate(cropped[None, None], (8, 8), mode="bilinear", align_corners=False)[0, 0] > 0.5
    assert torch.equal(masks[0].bool(), want)
    assert masks[0, 0].sum() == 0 and masks[0, 7, 2:].all()  # 1 px padding, crop reaches the border
    # exactly 0.5 after upsampling is not in the mask (strict > 0.5)
    det2 = dict(det, mask=torch.tensor([[0.0]]), box=torch.tensor([[0.0, 0.0, 1.0, 1.0]]))
    assert postprocess_reference([det2], 8, 8)[3].sum() == 0
