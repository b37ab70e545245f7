"""Mask R-CNN prompts: a detection's own box gives back its mask, point candidates, trace, cache, bad boxes."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from engine.errors import PromptError
from engine.inspect.roi_inspection import inspect_roi, level_for_box
from engine.maskrcnn import MaskRCNNSegmenter, MaskRCNNTrace, create
from engine.prompts import DEDUP_IOU, covers, mask_iou
from engine.synthetic import generate_image

CLASSES = ["circle", "square"]


def small_segmenter(detections: int = 12, score_thresh: float = 0.3) -> MaskRCNNSegmenter:
    """Random small model with spread-out class scores (scaled classifier) so detections exist."""
    torch.manual_seed(0)
    seg = create("maskrcnn_r18_fpn", "random", "cpu", CLASSES, score_thresh, min_size=160, max_size=224)
    with torch.no_grad():
        seg.model.roi_heads.box_predictor.cls_score.weight.mul_(30)
    seg.model.roi_heads.detections_per_img = detections
    return seg


@pytest.fixture(scope="module")
def seg() -> MaskRCNNSegmenter:
    return small_segmenter()


def image_of(shape: tuple[int, int], seed: int = 3) -> np.ndarray:
    return generate_image(np.random.default_rng(seed), shape).image


# 150 x 190 is resized by 160/150 (boxes round-trip through float32 scaling); 160 x 200 is not resized.
@pytest.mark.parametrize("shape", [(150, 190), (160, 200)])
def test_box_prompt_on_each_detection_gives_its_mask(seg, shape):
    image = image_of(shape)
    pred = seg.predict(image, trace=True)
    assert len(pred) > 5
    for i, inst in enumerate(pred.instances):
        prompt = seg.trace_box(image, inst.box, inst.label)
        got, det, mine = prompt.instances[0], pred.trace.detections[i], prompt.trace.detections[0]
        assert np.array_equal(got.mask.to_full(), inst.mask.to_full()), i
        assert got.label == inst.label
        assert np.array_equal(got.box, inst.box)
        assert mine.mask_level == det.mask_level
        np.testing.assert_allclose(mine.box_network, det.box_network, rtol=1e-6)
        # The mask predictor's transposed conv rounds differently for batches of other sizes.
        np.testing.assert_allclose(mine.mask_probs, det.mask_probs, atol=1e-4)


def test_box_prompt_is_bit_exact_when_the_batch_is_the_same():
    """With one detection both paths run the heads on a batch of one: identical probabilities."""
    seg = small_segmenter(detections=1)
    image = image_of((160, 200))
    pred = seg.predict(image, trace=True)
    assert len(pred) == 1
    inst, det = pred.instances[0], pred.trace.detections[0]
    prompt = seg.trace_box(image, inst.box, inst.label)
    mine = prompt.trace.detections[0]
    assert np.array_equal(mine.box_network, det.box_network)
    assert torch.equal(torch.from_numpy(mine.mask_probs), torch.from_numpy(det.mask_probs))
    assert torch.equal(torch.from_numpy(prompt.instances[0].mask.to_full()), torch.from_numpy(inst.mask.to_full()))


def test_label_is_the_box_heads_argmax_unless_given(seg):
    image = image_of((150, 190))
    box = [20.0, 30.0, 110.0, 120.0]
    auto = seg.trace_box(image, box)
    det = auto.trace.detections[0]
    assert auto.instances[0].label == int(np.argmax(det.class_probs))
    assert auto.instances[0].score == pytest.approx(float(det.class_probs.max()))
    other = 1 - auto.instances[0].label
    forced = seg.trace_box(image, box, label=other)
    assert forced.instances[0].label == other
    assert forced.instances[0].score == pytest.approx(float(det.class_probs[other]))
    assert forced.trace.detections[0].mask_probs.shape == (28, 28)


def test_trace_of_a_drawn_box_feeds_the_roi_inspector(seg):
    image = image_of((150, 190))
    box = [12.5, 20.0, 140.0, 95.5]
    prompt = seg.trace_box(image, box)
    trace = prompt.trace
    assert isinstance(trace, MaskRCNNTrace) and trace.prompt
    det = trace.detections[0]
    sy, sx = trace.scale
    np.testing.assert_allclose(det.proposal_box, np.asarray(box) * [sx, sy, sx, sy], rtol=1e-5)
    np.testing.assert_array_equal(det.proposal_box, det.box_network)  # both branches pool the box as drawn
    for branch, level in (("box", det.box_level), ("mask", det.mask_level)):
        view = inspect_roi(trace, 0, branch)
        pooler = trace.box_pooler if branch == "box" else trace.mask_pooler
        assert view.level.level == level == level_for_box(det.box_network, pooler, trace).level
        np.testing.assert_allclose(view.roi_image, box, rtol=1e-5)
        assert view.output_size == ((7, 7) if branch == "box" else (14, 14))
    # A small box maps to a finer FPN level than a big one (LevelMapper, FPN eq. 1).
    small = seg.trace_box(image, [40, 40, 52, 52]).trace.detections[0]
    big = seg.trace_box(image, [0, 0, 190, 150]).trace.detections[0]
    assert small.mask_level < big.mask_level


def _point_inside(mask) -> tuple[int, int]:
    """A pixel of ``mask`` far from its boundary (the literature's simulated click)."""
    import cv2

    full = mask.to_full().astype(np.uint8)
    dist = cv2.distanceTransform(np.pad(full, 1), cv2.DIST_L2, 5)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return int(x), int(y)


def test_point_candidates_start_with_the_detections_covering_it(seg):
    image = image_of((150, 190))
    pred = seg.predict(image)
    x, y = _point_inside(pred.instances[0].mask)
    cands = seg.segment_point(image, x, y)
    covering = [d for d in pred.instances if covers(d.mask, x, y)]
    assert cands and covering
    first = cands[0]
    top = covering[0]
    assert (first.label, first.score) == (top.label, top.score)
    assert np.array_equal(first.box, top.box)
    assert np.array_equal(first.mask.to_full(), top.mask.to_full())
    assert all(covers(c.mask, x, y) for c in cands)
    scores = [c.score for c in cands]
    assert scores == sorted(scores, reverse=True)
    for i in range(len(cands)):
        for j in range(i):
            assert mask_iou(cands[i].mask, cands[j].mask) < DEDUP_IOU


def test_point_candidates_reach_below_the_score_threshold():
    seg = small_segmenter(score_thresh=0.99)
    image = image_of((150, 190))
    below = 0
    for x, y in ((40, 40), (95, 75), (150, 110), (60, 120)):
        cands = seg.segment_point(image, x, y, max_candidates=4)
        assert len(cands) <= 4
        below += sum(c.score <= seg.score_thresh for c in cands)
    assert below > 0


def test_point_candidates_on_a_blank_image_still_cover_the_point(seg):
    flat = np.full((150, 190, 3), 127, np.uint8)
    for x, y in ((3, 3), (95, 75), (189, 149)):
        for inst in seg.segment_point(flat, x, y):
            assert covers(inst.mask, x, y)


def test_feature_cache_holds_one_image_and_is_thread_safe():
    seg = small_segmenter()
    a, b = image_of((150, 190), 1), image_of((150, 190), 2)
    first = seg.segment_box(a, [10, 10, 90, 90])
    assert seg.prompt_cache.misses == 1
    again = seg.segment_box(a.copy(), [10, 10, 90, 90])  # same pixels, another array: still cached
    seg.segment_point(a, 50, 50)
    assert seg.prompt_cache.misses == 1
    assert np.array_equal(first.mask.to_full(), again.mask.to_full())
    seg.segment_box(b, [10, 10, 90, 90])
    assert seg.prompt_cache.misses == 2
    assert seg.prompt_cache.peek(("nothing",)) is None
    # Back to a: recomputed (only one image is kept), same answer.
    assert np.array_equal(seg.segment_box(a, [10, 10, 90, 90]).mask.to_full(), first.mask.to_full())
    assert seg.prompt_cache.misses == 3
    seg.clear_prompt_cache()
    assert not seg.prompt_cache
    results: dict[str, object] = {}

    def worker() -> None:
        results["mask"] = seg.segment_box(a, [10, 10, 90, 90]).mask.to_full()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert np.array_equal(results["mask"], first.mask.to_full())
    assert seg.prompt_cache.misses == 4  # two threads, one computation


def test_prompt_is_cheaper_than_predict_after_the_first():
    """Only the heads run per prompt: no backbone (counted by a forward hook)."""
    seg = small_segmenter()
    image = image_of((150, 190))
    calls = []
    hook = seg.model.backbone.register_forward_hook(lambda *a: calls.append(1))
    try:
        seg.segment_box(image, [10, 10, 90, 90])
        for box in ([20, 20, 60, 60], [0, 0, 190, 150], [100, 50, 180, 140]):
            seg.segment_box(image, box)
        seg.segment_point(image, 40, 40)
        seg.segment_point(image, 120, 90)
    finally:
        hook.remove()
    assert len(calls) == 1


def test_boxes_at_the_border_are_clipped(seg):
    image = image_of((150, 190))
    inst = seg.segment_box(image, [-30, -20, 60, 70])
    np.testing.assert_array_equal(inst.box, [0, 0, 60, 70])
    inst = seg.segment_box(image, [150, 100, 400, 300])
    np.testing.assert_array_equal(inst.box, [150, 100, 190, 150])
    assert inst.mask.image_size == (150, 190)
    full = inst.mask.to_full()
    assert full.shape == (150, 190)
    whole = seg.segment_box(image, [-1e6, -1e6, 1e6, 1e6])
    np.testing.assert_array_equal(whole.box, [0, 0, 190, 150])


def test_tiny_boxes_give_a_result(seg):
    image = image_of((150, 190))
    finest = seg.model.roi_heads.mask_roi_pool.map_levels.k_min
    for box in ([50, 50, 51, 51], [0, 0, 1.5, 1.5], [188.5, 148.5, 190, 150]):
        inst = seg.segment_box(image, box)
        assert 0 <= inst.label < len(CLASSES)
        assert inst.mask.area <= 16  # nothing far outside a one-pixel box
        assert seg.trace_box(image, box).trace.detections[0].mask_level == finest


@pytest.mark.parametrize(
    ("box", "message"),
    [
        ([10, 10, 10, 50], "zero or negative width"),
        ([60, 10, 20, 50], "zero or negative width"),
        ([10, 50, 40, 20], "zero or negative width"),
        ([200, 10, 260, 50], "outside"),
        ([-50, -50, -1, -1], "outside"),
        ([189.5, 10, 260, 50], "at least 1 x 1"),
        ([10, float("nan"), 40, 50], "finite"),
        ([10, 10, 40], "four numbers"),
        ("box", "four numbers"),
    ],
)
def test_degenerate_boxes_raise_a_clear_error(seg, box, message):
    image = image_of((150, 190))
    with pytest.raises(PromptError, match=message):
        seg.segment_box(image, box)


def test_bad_points_labels_and_images_raise_clear_errors(seg):
    image = image_of((150, 190))
    for x, y in ((-1, 5), (190, 5), (5, 150), (float("inf"), 3)):
        with pytest.raises(PromptError, match="outside|not finite"):
            seg.segment_point(image, x, y)
    for label in (-1, 2, 1.5, True):
        with pytest.raises(PromptError, match="class index"):
            seg.segment_box(image, [10, 10, 50, 50], label=label)
    with pytest.raises(ValueError, match="RGB uint8"):
        seg.segment_box(image.astype(np.float32), [10, 10, 50, 50])
    with pytest.raises(ValueError, match="RGB uint8"):
        seg.segment_point(image[..., 0], 3, 3)


def test_training_frees_the_cache(seg):
    image = image_of((150, 190))
    seg.segment_box(image, [10, 10, 90, 90])
    assert seg.prompt_cache
    tensor = torch.from_numpy(image).permute(2, 0, 1).float() / 255
    target = {
        "boxes": torch.tensor([[10.0, 10.0, 90.0, 90.0]]),
        "labels": torch.tensor([0]),
        "masks": torch.zeros((1, 150, 190), dtype=torch.uint8),
    }
    target["masks"][0, 10:90, 10:90] = 1
    seg.losses([tensor], [target])
    seg.model.eval()
    assert not seg.prompt_cache


def test_predict_leaves_its_features_for_the_prompts():
    seg = small_segmenter()
    image = image_of((150, 190))
    calls = []
    hook = seg.model.backbone.register_forward_hook(lambda *a: calls.append(1))
    try:
        seg.predict(image)
        seg.segment_box(image, [10, 10, 90, 90])
        seg.segment_point(image, 50, 50)
    finally:
        hook.remove()
    assert len(calls) == 1 and seg.prompt_cache.misses == 0


def test_a_segmenter_without_prompt_support_says_so(seg):
    from engine.segmenter import Prediction, Segmenter

    class PredictOnly(Segmenter):
        architecture = "predict-only"

        def _predict(self, image, trace):
            return Prediction(image.shape[:2], [], self.class_names)

        def losses(self, images, targets):
            return {}

    other = PredictOnly(torch.nn.Linear(1, 1), "none", CLASSES)
    image = image_of((40, 50))
    with pytest.raises(PromptError, match="cannot segment a box prompt"):
        other.segment_box(image, [1, 1, 20, 20])
    with pytest.raises(PromptError, match="cannot segment a point prompt"):
        other.segment_point(image, 5, 5)
    with pytest.raises(PromptError, match="max_candidates"):
        seg.segment_point(image_of((150, 190)), 5, 5, max_candidates=0)
