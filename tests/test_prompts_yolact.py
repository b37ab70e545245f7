"""YOLACT prompts: a detection's own box gives back its mask and coefficients, prior rules, points,
the trace for the prototype viewer, the cache, bad boxes."""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest
import torch

from engine.errors import PromptError
from engine.inspect.prototype_inspection import compose_detection
from engine.prompts import DEDUP_IOU, covers, mask_iou
from engine.yolact import YolactSegmenter, create
from engine.yolact.prompt import PRIOR_RULES, choose_prior, relative_box
from engine.yolact.trace import YolactTrace

CLASSES = ["a", "b", "c", "d"]


def detecting_segmenter() -> YolactSegmenter:
    """Random tiny YOLACT whose class logits are raised so that many priors pass Detect's 0.05 gate."""
    torch.manual_seed(0)
    seg = create("yolact_tiny", "random", device="cpu", class_names=CLASSES, score_thresh=0)
    c = seg.cfg.num_classes
    with torch.no_grad():
        bias = seg.model.prediction_layers[0].conf_layer.bias.view(3, c)
        bias[:, 1:] = torch.rand(c - 1) * 3
        bias[:, 1 + torch.randperm(c - 1)[:2]] += 4
        seg.model.prediction_layers[0].mask_layer.bias.normal_(0, 1.0)
    return seg


@pytest.fixture(scope="module")
def seg() -> YolactSegmenter:
    return detecting_segmenter()


def image_of(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    img[h // 4 : h // 2, w // 3 : 2 * w // 3] = (200, 40, 40)
    return img


def own_box(trace: YolactTrace, i: int) -> np.ndarray:
    """Detection ``i``'s decoded box in image pixels, exactly (float64 scaling of its relative box)."""
    h, w = trace.image_size
    return trace.boxes_rel[i].astype(np.float64) * [w, h, w, h]


@pytest.mark.parametrize("shape", [(96, 128), (75, 61)])
def test_box_prompt_with_a_detections_own_box_gives_its_mask(seg, shape):
    image = image_of(*shape)
    pred = seg.predict(image, trace=True)
    n = min(len(pred), 25)
    assert n > 5
    for i in range(n):
        inst = pred.instances[i]
        prompt = seg.trace_box(image, own_box(pred.trace, i), inst.label)
        got, tr = prompt.instances[0], prompt.trace
        assert np.array_equal(got.mask.to_full(), inst.mask.to_full()), i
        assert (got.label, got.score) == (inst.label, pytest.approx(inst.score))
        # The same prior: the very coefficients and box, and the same mask stages.
        assert torch.equal(torch.from_numpy(tr.coefficients[0]), torch.from_numpy(pred.trace.coefficients[i]))
        assert np.array_equal(tr.boxes_rel[0], pred.trace.boxes_rel[i])
        assert np.array_equal(tr.boxes_abs[0], pred.trace.boxes_abs[i])
        assert tr.prompt is not None and tr.prompt.iou == 1.0 and tr.prompt.rule == "iou"
        np.testing.assert_allclose(tr.cropped[0], pred.trace.cropped[i], atol=1e-6)


def test_relative_box_round_trips_exactly():
    rel = torch.rand(50, 4)
    for h, w in ((75, 61), (550, 550), (800, 1333)):
        pixels = rel.numpy().astype(np.float64) * [w, h, w, h]
        for i in range(len(rel)):
            assert torch.equal(relative_box(pixels[i], (h, w))[0], rel[i])


def test_prior_rules(seg):
    image = image_of(96, 128)
    box = np.array([20.0, 10.0, 90.0, 70.0])
    with torch.inference_mode():
        feats = seg._features(image, ("rules",))
    rel = relative_box(box, (96, 128))
    from engine.yolact.boxes import jaccard

    iou = torch.nan_to_num(jaccard(feats.boxes, rel)[:, 0])
    conf, _ = feats.best
    by_iou, iou_a = choose_prior(feats, rel, "iou")
    by_conf, iou_b = choose_prior(feats, rel, "iou_conf")
    assert iou_a == pytest.approx(float(iou.max()))
    assert float(iou[by_conf] * conf[by_conf]) == pytest.approx(float((iou * conf).max()))
    assert iou_b <= iou_a
    with pytest.raises(ValueError, match="rule"):
        choose_prior(feats, rel, "nearest")
    for rule in PRIOR_RULES:
        seg.prior_rule = rule
        tr = seg.trace_box(image, box).trace
        assert tr.prompt.rule == rule and tr.prompt.index == (by_iou if rule == "iou" else by_conf)
        # The box prompt crops by the user's box, whatever prior the coefficients came from.
        np.testing.assert_allclose(tr.boxes_rel[0], rel[0].numpy())
    seg.prior_rule = "iou"


def test_trace_of_a_box_prompt_feeds_the_prototype_viewer(seg):
    image = image_of(96, 128)
    prompt = seg.trace_box(image, [30, 20, 100, 80])
    tr = prompt.trace
    assert isinstance(tr, YolactTrace) and len(tr) == 1
    with torch.inference_mode():
        feats = seg._features(image, ("viewer",))
    assert torch.equal(torch.from_numpy(tr.coefficients[0]), feats.coeffs[tr.prompt.index])
    comp = compose_detection(tr, 0, reference_mask=prompt.instances[0].mask, class_names=CLASSES)
    assert np.array_equal(comp.mask.to_full(), prompt.instances[0].mask.to_full())
    off = compose_detection(tr, 0, enabled=np.arange(tr.num_prototypes) % 2 == 0)
    assert off.disabled == list(range(1, tr.num_prototypes, 2))


def test_point_candidates(seg):
    image = image_of(96, 128)
    pred = seg.predict(image)
    top = pred.instances[0]
    full = top.mask.to_full().astype(np.uint8)
    dist = cv2.distanceTransform(np.pad(full, 1), cv2.DIST_L2, 5)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    cands = seg.segment_point(image, x, y)
    assert cands
    # The best-scoring prior of the image is the top detection (nothing can suppress it).
    assert (cands[0].label, cands[0].score) == (top.label, pytest.approx(top.score))
    assert np.array_equal(cands[0].mask.to_full(), top.mask.to_full())
    assert np.array_equal(cands[0].box, top.box)
    assert all(covers(c.mask, x, y) for c in cands)
    scores = [c.score for c in cands]
    assert scores == sorted(scores, reverse=True)
    for i in range(len(cands)):
        for j in range(i):
            assert mask_iou(cands[i].mask, cands[j].mask) < DEDUP_IOU
    assert len(seg.segment_point(image, x, y, max_candidates=1)) == 1


def test_feature_cache_holds_one_image_and_is_thread_safe():
    seg = detecting_segmenter()
    a, b = image_of(96, 128, 1), image_of(96, 128, 2)
    calls = []
    hook = seg.model.backbone.register_forward_hook(lambda *args: calls.append(1))
    first = seg.segment_box(a, [10, 10, 90, 90])
    seg.segment_box(a.copy(), [20, 5, 60, 50])
    seg.segment_point(a, 50, 40)
    assert len(calls) == seg.prompt_cache.misses == 1
    seg.segment_box(b, [10, 10, 90, 90])
    assert seg.prompt_cache.misses == 2
    seg.clear_prompt_cache()
    assert not seg.prompt_cache
    out = []
    threads = [threading.Thread(target=lambda: out.append(seg.segment_box(a, [10, 10, 90, 90]))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    hook.remove()
    assert seg.prompt_cache.misses == 3 and len(calls) == 3
    assert all(np.array_equal(o.mask.to_full(), first.mask.to_full()) for o in out)


def test_boxes_at_the_border_are_clipped(seg):
    image = image_of(96, 128)
    inst = seg.segment_box(image, [-30, -20, 60, 70])
    np.testing.assert_array_equal(inst.box, [0, 0, 60, 70])
    inst = seg.trace_box(image, [100, 60, 400, 300])
    np.testing.assert_array_equal(inst.instances[0].box, [100, 60, 128, 96])
    np.testing.assert_allclose(inst.trace.boxes_rel[0], [100 / 128, 60 / 96, 1, 1])
    m = inst.instances[0].mask
    if m.area:
        assert m.x0 >= 100 - 128 / seg.cfg.max_size * 8 and m.y0 >= 60 - 96 / seg.cfg.max_size * 8


def test_tiny_boxes_give_a_result(seg):
    image = image_of(96, 128)
    for box in ([50, 50, 51, 51], [0, 0, 1.5, 1.5], [126.5, 94.5, 128, 96]):
        inst = seg.segment_box(image, box)
        assert 0 <= inst.label < len(CLASSES)
        # The crop keeps the box plus one prototype pixel around it, nothing more.
        assert inst.mask.area <= (1 + 2 * 128 / (seg.cfg.max_size / 4)) ** 2 * 4


@pytest.mark.parametrize(
    ("box", "message"),
    [
        ([10, 10, 10, 50], "zero or negative width"),
        ([60, 10, 20, 50], "zero or negative width"),
        ([130, 10, 160, 50], "outside"),
        ([-50, -50, 0, 0], "outside"),
        ([10, 95.5, 40, 200], "at least 1 x 1"),
        ([10, float("inf"), 40, 50], "finite"),
        ([[1, 2], [3]], "four numbers"),
    ],
)
def test_degenerate_boxes_raise_a_clear_error(seg, box, message):
    with pytest.raises(PromptError, match=message):
        seg.segment_box(image_of(96, 128), box)


def test_bad_points_and_labels_raise_clear_errors(seg):
    image = image_of(96, 128)
    for x, y in ((-0.5, 5), (128, 5), (5, 96), (float("nan"), 3)):
        with pytest.raises(PromptError, match="outside|not finite"):
            seg.segment_point(image, x, y)
    with pytest.raises(PromptError, match="class index"):
        seg.segment_box(image, [10, 10, 50, 50], label=4)
    forced = seg.segment_box(image, [10, 10, 50, 50], label=3)
    assert forced.label == 3


def test_predict_leaves_its_outputs_for_the_prompts():
    seg = detecting_segmenter()
    image = image_of(96, 128)
    calls = []
    hook = seg.model.backbone.register_forward_hook(lambda *a: calls.append(1))
    try:
        seg.predict(image)
        seg.segment_box(image, [10, 10, 90, 90])
        seg.segment_point(image, 50, 40)
    finally:
        hook.remove()
    assert len(calls) == 1 and seg.prompt_cache.misses == 0
