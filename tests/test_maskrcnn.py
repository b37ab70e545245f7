"""Mask R-CNN segmenter: step-by-step run == torchvision's forward, sub-pixel paste, trace, losses, checkpoints."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torchvision.models.detection.roi_heads import paste_masks_in_image
from torchvision.ops import roi_align

from engine.maskrcnn import CONFIGS, MaskRCNNSegmenter, MaskRCNNTrace, create
from engine.maskrcnn.configs import build_model, get_config, state_dict_shapes
from engine.maskrcnn.paste import paste_masks_cropped
from engine.maskrcnn.steps import run
from engine.models import create_segmenter, load_segmenter
from engine.roialign import explain_roi_align
from engine.synthetic import generate_image
from engine.training.demo_samples import mask_iou

CLASSES = ["circle", "square"]


def small_segmenter(seed: int = 0, score_thresh: float = 0.5, detections: int = 12) -> MaskRCNNSegmenter:
    """Random small model whose class scores spread out (scaled classifier) so detections exist."""
    torch.manual_seed(seed)
    seg = create("maskrcnn_r18_fpn", "random", "cpu", CLASSES, score_thresh, min_size=160, max_size=224)
    with torch.no_grad():
        seg.model.roi_heads.box_predictor.cls_score.weight.mul_(30)
    seg.model.roi_heads.detections_per_img = detections  # fewer mask-head runs: faster tests
    return seg


@pytest.fixture(scope="module")
def seg() -> MaskRCNNSegmenter:
    return small_segmenter()


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return generate_image(np.random.default_rng(3), (150, 190)).image


def to_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1).float().div(255.0)


@torch.inference_mode()
def test_step_by_step_equals_model_forward(seg, image):
    model = seg.model.eval()
    model.roi_heads.score_thresh = 0.3
    x = to_tensor(image)
    expected = model([x])[0]
    assert len(expected["boxes"]) > 3  # the comparison must see real detections
    for capture in (True, False):
        det, cap = run(model, x, capture=capture)
        assert (cap is not None) == capture
        out = {"boxes": det.boxes, "labels": det.labels, "scores": det.scores, "masks": det.mask_probs}
        images, _ = model.transform([x])
        got = model.transform.postprocess([out], images.image_sizes, [tuple(image.shape[:2])])[0]
        for key in ("boxes", "labels", "scores", "masks"):
            assert torch.equal(got[key], expected[key]), key


@torch.inference_mode()
def test_predict_matches_torchvision_outputs(seg, image):
    seg.score_thresh = 0.3
    pred = seg.predict(image, trace=False)
    seg.model.roi_heads.score_thresh = 0.3
    expected = seg.model([to_tensor(image)])[0]
    assert len(pred) == len(expected["boxes"]) > 3
    assert pred.image_size == image.shape[:2]
    probs = run(seg.model, to_tensor(image))[0].mask_probs
    for i, inst in enumerate(pred.instances):
        assert inst.label == int(expected["labels"][i]) - 1  # torchvision label k -> our k - 1
        assert inst.score == float(expected["scores"][i])
        assert np.array_equal(inst.box, expected["boxes"][i].numpy())
        # torchvision's probabilities (test above), our sub-pixel paste (not its integer-box one).
        reference = _reference_paste(probs[i, 0], inst.box.tolist(), image.shape[:2])
        np.testing.assert_array_equal(inst.mask.to_full(), reference)
        h, w = inst.mask.bits.shape  # compact: never bigger than the (expanded) box
        x1, y1, x2, y2 = inst.box
        assert h <= (y2 - y1) * 1.1 + 3 and w <= (x2 - x1) * 1.1 + 3
    scores = [inst.score for inst in pred.instances]
    assert scores == sorted(scores, reverse=True) and min(scores) > 0.3


def test_score_threshold_zero_and_high(seg, image):
    seg.score_thresh = 0.0
    everything = seg.predict(image)
    assert len(everything) == seg.model.roi_heads.detections_per_img
    # A threshold only removes candidates below it: per-class NMS and the top-k keep the same ones above.
    cut = everything.instances[len(everything) // 2].score
    seg.score_thresh = cut
    some = seg.predict(image, trace=True)
    expected = [(i.label, i.score) for i in everything.instances if i.score > cut]
    assert [(i.label, i.score) for i in some.instances] == expected
    assert 0 < len(some) < len(everything) and len(some.trace.detections) == len(some)
    seg.score_thresh = 1.0
    none = seg.predict(image, trace=True)
    assert len(none) == 0 and none.trace.detections == []
    assert none.trace.proposals.shape[1] == 4


def test_trace_follows_each_detection_back(seg, image):
    seg.score_thresh = 0.3
    pred = seg.predict(image, trace=True)
    tr = pred.trace
    assert isinstance(tr, MaskRCNNTrace)
    assert len(tr.detections) == len(pred) > 3
    assert tr.original_size == image.shape[:2]
    assert tr.network_size == (160, math.floor(190 * 160 / 150)) and tr.padded_size == (160, 224)
    assert tr.scale == pytest.approx((160 / 150, 202 / 190))
    assert set(tr.features) == {"0", "1", "2", "3", "pool"}
    bp = tr.box_pooler
    assert (bp.output_size, bp.sampling_ratio, bp.aligned) == ((7, 7), 2, False)
    assert (bp.k_min, bp.k_max, bp.canonical_scale, bp.canonical_level) == (2, 5, 224, 4)
    assert bp.scales == [0.25, 0.125, 0.0625, 0.03125] and tr.mask_pooler.output_size == (14, 14)

    heads = seg.model.roi_heads
    with torch.inference_mode():
        props = torch.from_numpy(tr.proposals)
        pooled_all = heads.box_roi_pool(tr.features, [props], [tr.network_size])
    for inst, d in zip(pred.instances, tr.detections, strict=True):
        assert d.label == inst.label and d.score == pytest.approx(inst.score)
        assert d.score == pytest.approx(float(d.class_probs[d.label]), rel=1e-6)
        assert d.class_probs.sum() + d.background_prob == pytest.approx(1.0, abs=1e-5)
        assert d.top_classes(5)[0][1] == pytest.approx(d.class_probs.max())
        assert np.array_equal(d.proposal_box, tr.proposals[d.proposal_index])
        # The FPN paper's eq. 1 gives the level torchvision's LevelMapper chose.
        for box, level in ((d.proposal_box, d.box_level), (d.box_network, d.mask_level)):
            side = math.sqrt((box[2] - box[0]) * (box[3] - box[1]))
            assert level == min(max(math.floor(4 + math.log2(side / 224) + 1e-6), 2), 5)
        assert d.box_spatial_scale == 2.0**-d.box_level and d.box_featmap == str(d.box_level - 2)
        np.testing.assert_allclose(tr.to_original(d.box_network.reshape(2, 2)).ravel(), inst.box, rtol=1e-5)
        assert d.mask_probs.shape == (28, 28) and 0 <= d.mask_probs.min() <= d.mask_probs.max() <= 1
        # The inspector's RoIAlign explanation reproduces what the box branch pooled for this proposal.
        ex = explain_roi_align(
            tr.feature(d.box_featmap), d.proposal_box, d.box_spatial_scale, bp.output_size, bp.sampling_ratio
        )
        torch.testing.assert_close(ex.pooled, pooled_all[d.proposal_index], rtol=1e-5, atol=1e-5)

    # Re-running the box head on a detection's proposal alone gives its class scores and refined box.
    d = tr.detections[0]
    with torch.inference_mode():
        prop = torch.from_numpy(d.proposal_box)[None]
        feats = heads.box_head(heads.box_roi_pool(tr.features, [prop], [tr.network_size]))
        logits, deltas = heads.box_predictor(feats)
        probs = torch.softmax(logits, -1)[0]
        refined = heads.box_coder.decode(deltas, [prop])[0, d.label + 1]
    np.testing.assert_allclose(probs[1:].numpy(), d.class_probs, atol=1e-5)
    np.testing.assert_allclose(refined.numpy(), d.box_network, atol=1e-3)


def _reference_paste(probs: torch.Tensor, box: list[float], size: tuple[int, int]) -> np.ndarray:
    """Every image pixel, one at a time: its centre's cell coordinate, bilinear on the zero-padded map."""
    m = probs.shape[-1]
    x1, y1, x2, y2 = box
    cw, ch = max(x2 - x1, 1e-6) / m, max(y2 - y1, 1e-6) / m
    padded = np.pad(probs.numpy().astype(np.float64), 1)
    out = np.zeros(size)
    for y in range(size[0]):
        v = float(np.clip((y + 0.5 - y1) / ch - 0.5 + 1, 0, m + 1))
        r = min(int(np.floor(v)), m)
        for x in range(size[1]):
            u = float(np.clip((x + 0.5 - x1) / cw - 0.5 + 1, 0, m + 1))
            c = min(int(np.floor(u)), m)
            fy, fx = v - r, u - c
            out[y, x] = (
                padded[r, c] * (1 - fy) * (1 - fx)
                + padded[r, c + 1] * (1 - fy) * fx
                + padded[r + 1, c] * fy * (1 - fx)
                + padded[r + 1, c + 1] * fy * fx
            )
    return out > 0.5


@torch.inference_mode()
def test_paste_matches_a_per_pixel_reference():
    torch.manual_seed(1)
    probs = torch.rand(7, 1, 28, 28)
    boxes = torch.tensor(
        [
            [10.3, 12.7, 60.2, 40.9],  # inside
            [-8.0, -5.0, 20.0, 30.0],  # over the top-left corner
            [90.0, 70.0, 130.0, 95.0],  # over the bottom-right corner
            [50.0, 50.0, 50.4, 50.3],  # tiny
            [0.0, 0.0, 119.0, 89.0],  # whole image
            [33.0, 2.0, 34.0, 88.0],  # one pixel wide
            [100.5, 10.0, 119.9, 11.0],  # one pixel high at the right edge
        ]
    )
    cropped = paste_masks_cropped(probs, boxes, (90, 120))
    for m, p, b in zip(cropped, probs, boxes.tolist(), strict=True):
        assert m.image_size == (90, 120)
        np.testing.assert_array_equal(m.to_full(), _reference_paste(p[0], b, (90, 120)))
    assert paste_masks_cropped(probs[:0], boxes[:0], (90, 120)) == []
    outside = paste_masks_cropped(probs[:1], torch.tensor([[200.0, 5.0, 230.0, 30.0]]), (90, 120))[0]
    assert outside.area == 0


@torch.inference_mode()
def test_paste_inverts_roi_align_where_torchvision_paste_shifts_the_edge():
    """A perfect mask head (the ground truth RoIAligned on the box's cell centres) pasted back: our
    paste recovers the object; torchvision's integer-box paste moves its edge by up to a pixel."""
    yy, xx = np.mgrid[0:64, 0:64]
    gt = (xx - 30.3) ** 2 + (yy - 27.6) ** 2 <= 9.5**2  # a 19 px disc
    ours, theirs = [], []
    for box in ([20.4, 17.7, 40.3, 37.2], [19.6, 18.3, 41.1, 36.9], [20.9, 17.2, 39.8, 38.4]):
        rois = torch.tensor([box])
        # aligned=True samples pixel-edge position x1 + (i + 0.5) * w / m: the paste's convention.
        target = roi_align(torch.from_numpy(gt.astype(np.float32))[None, None], [rois], (28, 28), 1.0, aligned=True)
        ours.append(mask_iou(paste_masks_cropped(target, rois, gt.shape)[0].to_full(), gt))
        theirs.append(mask_iou(paste_masks_in_image(target, rois, gt.shape)[0, 0].numpy() > 0.5, gt))
    assert min(ours) > 0.97
    assert np.mean(ours) > np.mean(theirs) + 0.02


def test_losses_and_back_to_predict(image):
    seg = small_segmenter(seed=1)
    rng = np.random.default_rng(5)
    samples = [generate_image(rng, 128, classes=("circle", "square")) for _ in range(2)]
    images = [to_tensor(s.image) for s in samples]
    targets = [
        {
            "boxes": torch.from_numpy(s.boxes),
            "labels": torch.from_numpy(s.labels),
            "masks": torch.from_numpy(s.masks),
            "iscrowd": torch.zeros(len(s.labels), dtype=torch.int64),
        }
        for s in samples
    ]
    losses = seg.losses(images, targets)
    assert set(losses) == {"loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness", "loss_rpn_box_reg"}
    assert all(torch.isfinite(v) for v in losses.values()) and losses["loss_mask"] > 0
    sum(losses.values()).backward()
    assert seg.model.roi_heads.mask_predictor.mask_fcn_logits.weight.grad.abs().sum() > 0
    assert seg.model.training
    pred = seg.predict(image)  # predict switches to eval and back
    assert seg.model.training and pred.image_size == image.shape[:2]


def test_safetensors_round_trip(tmp_path, seg, image):
    seg.score_thresh = 0.4
    path = seg.save(tmp_path / "small")
    loaded = load_segmenter(path)
    assert isinstance(loaded, MaskRCNNSegmenter)
    assert loaded.class_names == CLASSES and loaded.config_name == "maskrcnn_r18_fpn"
    assert loaded.extra_metadata == {"min_size": 160, "max_size": 224}
    assert loaded.score_thresh == 0.4
    loaded.model.roi_heads.detections_per_img = seg.model.roi_heads.detections_per_img
    a, b = seg.predict(image), loaded.predict(image)
    assert len(a) == len(b) > 0
    for x, y in zip(a.instances, b.instances, strict=True):
        assert (x.label, x.score) == (y.label, y.score) and np.array_equal(x.mask.bits, y.mask.bits)
    via_registry = create_segmenter("maskrcnn", weights=str(path), score_thresh=0.2)
    assert via_registry.score_thresh == 0.2 and via_registry.class_names == CLASSES


def test_configs_and_meta_shapes():
    assert set(CONFIGS) == {"maskrcnn_resnet50_fpn", "maskrcnn_resnet50_fpn_v2", "maskrcnn_r18_fpn"}
    cfg = get_config("maskrcnn_r18_fpn")
    model = build_model(cfg, 4, 128, 160)
    assert {k: v.shape for k, v in model.state_dict().items()} == state_dict_shapes(cfg, 4)
    assert model.transform.min_size == (128,) and model.transform.max_size == 160
    assert model.roi_heads.box_predictor.cls_score.out_features == 4
    v1 = state_dict_shapes(get_config("maskrcnn_resnet50_fpn"), 81)
    assert not any(k.endswith("num_batches_tracked") for k in v1)  # FrozenBatchNorm2d, as the COCO model
    assert v1["roi_heads.mask_predictor.mask_fcn_logits.weight"][0] == 81
