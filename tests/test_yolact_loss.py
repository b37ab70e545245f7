"""YOLACT training: matching, the four losses and the augmentation, on small hand-made cases.

Expected values are derived by hand in the comments (yolact-spec.md section 15).
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from engine.yolact.augment import MEANS, BaseTransform, SSDAugmentation, to_network
from engine.yolact.boxes import decode, encode
from engine.yolact.loss import (
    hard_negatives,
    losses_finite,
    mask_loss_single,
    ohem_conf_loss,
    semantic_loss_single,
    total_loss,
    yolact_losses,
)
from engine.yolact.match import match

LOG2 = math.log(2.0)


def priors_from_corners(corners: list[list[float]]) -> torch.Tensor:
    """Point-form boxes -> (cx, cy, w, h) priors."""
    b = torch.tensor(corners, dtype=torch.float32)
    return torch.cat(((b[:, :2] + b[:, 2:]) / 2, b[:, 2:] - b[:, :2]), dim=1)


# ---- matching ---------------------------------------------------------------------------------


def test_match_forces_each_gt_its_best_remaining_prior() -> None:
    priors = priors_from_corners(
        [
            [0.0, 0.0, 0.2, 0.2],  # p0: IoU 1 with A, 0.8 with B
            [0.1, 0.0, 0.3, 0.2],  # p1: IoU 1/3 with A, 0.2 with B
            [0.6, 0.6, 1.0, 1.0],  # p2: far from both
            [0.5, 0.0, 0.7, 0.2],  # p3: far from both
        ]
    )
    truths = torch.tensor([[0.0, 0.0, 0.2, 0.2], [0.0, 0.0, 0.16, 0.2]])  # A, B
    labels = torch.tensor([4, 7])
    m = match(truths, labels, priors)
    # Round 1 takes (A, p0) with IoU 1; round 2 gives B its best remaining prior p1 (IoU 0.2),
    # which would otherwise be background (its best IoU, 1/3 with A, is < 0.4).
    assert m.conf_t.tolist() == [5, 8, 0, 0]
    assert m.idx_t[:2].tolist() == [0, 1]
    assert torch.equal(m.gt_box_t[1], truths[1])


def test_match_neutral_band_and_thresholds() -> None:
    # GT D equals p0 (forced). Priors shifted right by d have IoU (0.2 - d) / (0.2 + d):
    # d = 0.06 -> 0.538 (positive), 0.07 -> 0.481 and 0.08 -> 0.429 (neutral), 0.09 -> 0.379 (background).
    shifts = [0.0, 0.06, 0.07, 0.08, 0.09]
    priors = priors_from_corners([[0.5 + d, 0.0, 0.7 + d, 0.2] for d in shifts])
    m = match(torch.tensor([[0.5, 0.0, 0.7, 0.2]]), torch.tensor([2]), priors)
    assert m.conf_t.tolist() == [3, 3, -1, -1, 0]


def test_match_crowd_neutralises_background_priors_only() -> None:
    priors = priors_from_corners(
        [
            [0.0, 0.0, 0.2, 0.2],  # p0: equals the GT -> positive even though inside the crowd
            [0.6, 0.6, 1.0, 1.0],  # p1: fully inside the crowd -> inter/area(prior) = 1 -> neutral
            [0.4, 0.5, 0.6, 0.7],  # p2: half inside (0.5) -> stays background
            [0.45, 0.5, 0.65, 0.7],  # p3: 0.75 inside -> neutral
        ]
    )
    crowd = torch.tensor([[0.0, 0.0, 0.2, 0.2], [0.5, 0.5, 1.0, 1.0]])
    m = match(torch.tensor([[0.0, 0.0, 0.2, 0.2]]), torch.tensor([0]), priors, crowd)
    assert m.conf_t.tolist() == [1, -1, 0, -1]
    no_crowd = match(torch.tensor([[0.0, 0.0, 0.2, 0.2]]), torch.tensor([0]), priors)
    assert no_crowd.conf_t.tolist() == [1, 0, 0, 0]


def test_match_without_objects_is_all_background() -> None:
    priors = priors_from_corners([[0.0, 0.0, 0.2, 0.2], [0.5, 0.5, 1.0, 1.0]])
    m = match(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long), priors)
    assert m.conf_t.tolist() == [0, 0]


def test_encode_values_and_decode_round_trip() -> None:
    prior = torch.tensor([[0.5, 0.5, 0.2, 0.2]])
    gt = torch.tensor([[0.4, 0.45, 0.64, 0.55]])  # centre (0.52, 0.5), size 0.24 x 0.1
    expected = torch.tensor([[0.02 / 0.02, 0.0, math.log(1.2) / 0.2, math.log(0.5) / 0.2]])
    assert torch.allclose(encode(gt, prior), expected, atol=1e-5)
    torch.manual_seed(0)
    priors = torch.cat((torch.rand(50, 2), torch.rand(50, 2) * 0.5 + 0.05), dim=1)
    xy = torch.rand(50, 2)
    boxes = torch.cat((xy, xy + torch.rand(50, 2) * 0.4 + 0.01), dim=1)
    assert torch.allclose(decode(encode(boxes, priors), priors), boxes, atol=1e-5)


# ---- OHEM ----------------------------------------------------------------------------------------


def ohem_case() -> tuple[torch.Tensor, torch.Tensor]:
    # Two classes (background + 1). Logits [0, a]: background CE = log(1 + e^a).
    # Image 0: prior 0 positive, prior 1 neutral with the largest a, priors 2..9 background.
    # Image 1: no positive, so no negative either.
    a = [0.5, 10.0, -3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0]
    conf = torch.zeros(2, 10, 2)
    conf[0, :, 1] = torch.tensor(a)
    conf[1, :, 1] = torch.tensor(a)
    conf_t = torch.zeros(2, 10, dtype=torch.long)
    conf_t[0, 0] = 1
    conf_t[0, 1] = -1
    return conf, conf_t


def test_ohem_picks_three_hardest_negatives_per_positive() -> None:
    conf, conf_t = ohem_case()
    neg = hard_negatives(conf, conf_t)
    assert neg[0].nonzero().flatten().tolist() == [7, 8, 9]  # a = 2, 3, 4; never the neutral prior 1
    assert not neg[1].any()
    expected = math.log(1 + math.exp(-0.5)) + sum(math.log(1 + math.exp(v)) for v in (2.0, 3.0, 4.0))
    assert ohem_conf_loss(conf, conf_t).item() == pytest.approx(expected, rel=1e-6)


def test_ohem_takes_every_negative_when_few_and_the_hardest_otherwise() -> None:
    conf = torch.zeros(1, 4, 3)
    conf_t = torch.tensor([[2, 1, 0, 0]])  # 2 positives -> 6 negatives wanted, capped at P - 1 = 3
    neg = hard_negatives(conf, conf_t)
    assert neg[0].tolist() == [False, False, True, True]  # ranks 0..2: both negatives, then a positive
    conf_big = torch.zeros(1, 20, 3)
    conf_big[0, :, 0] = -torch.arange(20.0)  # later priors are harder negatives
    conf_t_big = torch.zeros(1, 20, dtype=torch.long)
    conf_t_big[0, 0] = 1
    assert hard_negatives(conf_big, conf_t_big)[0].nonzero().flatten().tolist() == [17, 18, 19]


def test_ohem_is_stable_for_huge_logits() -> None:
    conf, conf_t = ohem_case()
    conf = conf * 1000  # plain exp would overflow; the batch-global max shift keeps it finite
    assert math.isfinite(ohem_conf_loss(conf, conf_t).item())


# ---- mask and semantic losses -------------------------------------------------------------------------


def test_mask_loss_single_normalised_by_gt_box_area() -> None:
    gt = torch.zeros(1, 4, 4)
    gt[0, 2:, 2:] = 1
    proto = torch.zeros(4, 4, 2)
    proto[..., 0] = gt[0]  # prototype 0 is the object; prototype 1 is ignored by the coefficient 0
    proto[..., 1] = 5.0
    coef = torch.tensor([[2.0, 0.0]])
    box = torch.tensor([[0.5, 0.5, 1.0, 1.0]])  # proto px [2, 4) x [2, 4), area 2 x 2 = 4
    # Crop with padding 1 keeps rows/cols 1..3 (9 pixels): 4 object pixels with sigmoid(2) against
    # target 1 and 5 pixels with sigmoid(0) = 0.5 against 0. The 7 cropped pixels are 0 vs 0.
    expected = (4 * math.log(1 + math.exp(-2.0)) + 5 * LOG2) / 4
    assert mask_loss_single(proto, coef, gt, box, masks_to_train=100).item() == pytest.approx(expected, rel=1e-6)


def test_mask_loss_subsample_rescales_by_old_over_new() -> None:
    proto = torch.zeros(4, 4, 2)
    gt = torch.zeros(3, 4, 4)
    coef = torch.zeros(3, 2)
    boxes = torch.tensor([[0.0, 0.0, 0.5, 0.5]] * 3)  # each: 9 kept px at 0.5 -> 9 log 2 / 4
    full = mask_loss_single(proto, coef, gt, boxes, masks_to_train=100)
    gen = torch.Generator().manual_seed(0)
    sub = mask_loss_single(proto, coef, gt, boxes, masks_to_train=1, generator=gen)
    assert full.item() == pytest.approx(3 * 9 * LOG2 / 4, rel=1e-6)
    assert sub.item() == pytest.approx(full.item(), rel=1e-6)


def test_semantic_loss_single_tiny_case() -> None:
    segm = torch.empty(2, 2, 2)
    segm[0] = 1.0
    segm[1] = -1.0
    masks = torch.zeros(2, 4, 4)
    masks[0, :2, :2] = 1  # class 0, top-left segm pixel
    masks[1, :2, :1] = 1  # class 0 again, inside the first: max, not sum
    labels = torch.tensor([0, 0])
    # BCE-with-logits(x, t) = log(1 + e^x) - t x.  Class 0: 4 log(1 + e) - 1; class 1: 4 log(1 + e^-1).
    expected = (4 * math.log(1 + math.e) - 1 + 4 * math.log(1 + math.exp(-1))) / 4
    assert semantic_loss_single(segm, masks, labels).item() == pytest.approx(expected, rel=1e-6)


# ---- the whole loss over a batch of two ---------------------------------------------------------------------


def batch_case() -> tuple[dict[str, torch.Tensor], list[dict]]:
    """Priors p0..p2 equal the GT boxes, p3..p9 lie outside the image (IoU 0 with everything).

    Image 0 has one object (p0) and a crowd; image 1 has two (p1, p2). So N = 3.
    """
    corners = [[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0], [0.0, 0.5, 0.5, 1.0]]
    corners += [[5.0 + i, 5.0, 5.1 + i, 5.1] for i in range(7)]
    priors = priors_from_corners(corners)
    num_classes = 3
    loc = torch.zeros(2, 10, 4)
    loc[0, 0] = torch.tensor([0.5, 0.0, 0.0, 0.0])  # smooth-L1 0.5 * 0.5^2 = 0.125
    loc[1, 1] = torch.tensor([0.0, 0.0, 0.0, 2.0])  # smooth-L1 2 - 0.5 = 1.5
    loc[1, 2] = torch.tensor([0.0, 0.0, 0.0, -2.0])  # 1.5
    preds = {
        "loc": loc,
        "conf": torch.zeros(2, 10, num_classes + 1),
        "mask": torch.zeros(2, 10, 2),
        "priors": priors,
        "proto": torch.zeros(2, 4, 4, 2),
        "segm": torch.zeros(2, num_classes, 2, 2),
    }

    def target(boxes: list[list[float]], labels: list[int], num_crowds: int) -> dict:
        b = torch.tensor(boxes)
        masks = torch.zeros(len(boxes), 8, 8)
        for i, (x1, y1, x2, y2) in enumerate((b * 8).long().tolist()):
            masks[i, y1:y2, x1:x2] = 1
        return {"boxes": b, "labels": torch.tensor(labels), "masks": masks, "num_crowds": num_crowds}

    targets = [
        target([[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0]], [1, -1], 1),
        target([[0.5, 0.5, 1.0, 1.0], [0.0, 0.5, 0.5, 1.0]], [0, 2], 0),
    ]
    return preds, targets


def test_losses_normalised_by_positives_of_whole_batch() -> None:
    preds, targets = batch_case()
    losses = yolact_losses(preds, targets)
    assert set(losses) == {"B", "C", "M", "S"}
    n = 3
    # B: 1.5 * (0.125 + 1.5 + 1.5) / N.
    assert losses["B"].item() == pytest.approx(1.5 * 3.125 / n, rel=1e-6)
    # C: all logits 0 -> CE = log 4 for every chosen prior; image 0: 1 pos + 3 neg (the crowd prior
    # p1 is neutral), image 1: 2 pos + 6 neg. 12 log 4 / N.
    assert losses["C"].item() == pytest.approx(12 * math.log(4) / n, rel=1e-6)
    # M: proto 0 -> 0.5 everywhere; each box is 2 x 2 proto px, its padded crop keeps 9 px: 9 log 2 / 4.
    assert losses["M"].item() == pytest.approx(6.125 * 3 * 9 * LOG2 / 4 / n, rel=1e-6)
    # S: logits 0 -> log 2 per element; C * h * w * log 2 / (h * w) per image, / batch size 2.
    assert losses["S"].item() == pytest.approx(3 * LOG2, rel=1e-6)
    assert total_loss(losses).item() == pytest.approx(sum(v.item() for v in losses.values()), rel=1e-6)
    # Subsampling to one mask per image leaves M unchanged here (equal per-instance losses, old/new factor).
    sub = yolact_losses(preds, targets, masks_to_train=1, generator=torch.Generator().manual_seed(1))
    assert sub["M"].item() == pytest.approx(losses["M"].item(), rel=1e-6)


def test_losses_exclude_crowds_from_semantic_target_and_backprop() -> None:
    preds, targets = batch_case()
    preds["segm"] = torch.full((2, 3, 2, 2), -1.0, requires_grad=True)
    preds["loc"].requires_grad_(True)
    losses = yolact_losses(preds, targets)
    # Image 0 target: class 1 at the top-left segm pixel (the crowd, label -1, would set class 2 at
    # bottom-right if it leaked). Image 1: class 0 bottom-right, class 2 bottom-left.
    # log(1 + e^-1) per element, + 1 per target pixel (t * x with x = -1): 12 log(1 + e^-1) + 1 each.
    per_image = 12 * math.log(1 + math.exp(-1.0)) + 1
    per_image_2 = 12 * math.log(1 + math.exp(-1.0)) + 2
    assert losses["S"].item() == pytest.approx((per_image + per_image_2) / 4 / 2, rel=1e-6)
    total_loss(losses).backward()
    assert preds["segm"].grad is not None and preds["loc"].grad.abs().sum() > 0


def test_losses_finite_helper_and_empty_batch() -> None:
    preds, targets = batch_case()
    for t in targets:
        t.update(boxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long), masks=torch.zeros(0, 8, 8))
        t["num_crowds"] = 0
    losses = yolact_losses(preds, targets)
    assert losses_finite(losses)
    assert losses["B"].item() == 0 and losses["C"].item() == 0 and losses["M"].item() == 0
    assert not losses_finite({"B": torch.tensor(float("nan")), "C": torch.tensor(1.0)})
    assert not losses_finite({"B": torch.tensor(float("inf"))})


# ---- augmentation ---------------------------------------------------------------------------------------


def scene(shapes: str = "rect") -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A 100 x 120 BGR scene: three objects and a crowd last; boxes are the masks' tight boxes."""
    img = np.zeros((100, 120, 3), np.uint8)
    img[:] = (40, 80, 120)
    masks = np.zeros((4, 100, 120), np.uint8)
    cv2.rectangle(masks[0], (10, 15), (49, 59), 1, -1)
    if shapes == "rect":
        cv2.rectangle(masks[1], (62, 22), (97, 57), 1, -1)
        cv2.rectangle(masks[2], (30, 70), (85, 95), 1, -1)
    else:
        cv2.circle(masks[1], (80, 40), 18, 1, -1)
        cv2.fillPoly(masks[2], [np.array([[30, 95], [70, 70], [100, 97]])], 1)
    cv2.rectangle(masks[3], (90, 70), (118, 98), 1, -1)
    for m, c in zip(masks, [(0, 0, 255), (0, 255, 0), (255, 0, 0), (200, 200, 200)], strict=True):
        img[m > 0] = c
    boxes = []
    for m in masks:
        ys, xs = np.nonzero(m)
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    return img.astype(np.float32), masks.astype(np.float32), np.array(boxes, np.float32), np.array([0, 1, 2, -1])


def mask_box(mask: np.ndarray) -> np.ndarray | None:
    ys, xs = np.nonzero(mask > 0.5)
    if len(xs) == 0:
        return None
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)


def test_augment_keeps_masks_and_boxes_consistent() -> None:
    aug = SSDAugmentation(max_size=96, normalize=False)
    for seed in range(40):
        s = aug(*scene("rect"), rng=np.random.default_rng(seed))
        assert s.image.shape == (96, 96, 3) and s.masks.shape[1:] == (96, 96)
        assert s.masks.shape[0] == s.boxes.shape[0] == s.labels.shape[0] >= 1
        assert (s.labels >= 0).any(), "at least one non-crowd object survives"
        crowd = s.labels < 0
        assert not crowd.any() or crowd[int(np.argmax(crowd)) :].all(), "crowds stay last"
        assert s.boxes.min() >= 0 and s.boxes.max() <= 1
        for m, b in zip(s.masks, s.boxes, strict=True):
            mb = mask_box(m)
            assert mb is not None
            # Rectangles: the box of the augmented mask equals the augmented box within 1 px.
            assert np.abs(mb - b * 96).max() <= 1.0, (seed, mb, b * 96)
    # Other shapes: crops clip boxes instead of recomputing them, so only containment holds.
    for seed in range(40):
        s = aug(*scene("round"), rng=np.random.default_rng(seed))
        for m, b in zip(s.masks, s.boxes, strict=True):
            mb = mask_box(m)
            if mb is not None:
                assert (mb[:2] >= b[:2] * 96 - 1).all() and (mb[2:] <= b[2:] * 96 + 1).all()


def test_augment_is_deterministic_for_a_seed_and_varies_across_seeds() -> None:
    aug = SSDAugmentation(max_size=64)
    a = aug(*scene(), rng=np.random.default_rng(7))
    b = aug(*scene(), rng=np.random.default_rng(7))
    assert np.array_equal(a.image, b.image) and np.array_equal(a.masks, b.masks)
    assert np.array_equal(a.boxes, b.boxes) and np.array_equal(a.labels, b.labels)
    others = [aug(*scene(), rng=np.random.default_rng(s)) for s in range(8, 12)]
    assert any(o.boxes.shape != a.boxes.shape or not np.allclose(o.boxes, a.boxes) for o in others)


def test_base_transform_normalises_and_reorders_to_rgb() -> None:
    img = np.empty((30, 40, 3), np.float32)
    img[:] = MEANS
    img[:, :, 0] = 255.0  # blue channel (BGR index 0) only differs from the means
    img_, masks, boxes, labels = scene()
    s = BaseTransform(max_size=32)(img, masks[:, :30, :40], np.array([[4, 5, 20, 25]] * 4, np.float32), labels)
    assert s.image.shape == (32, 32, 3)
    assert np.allclose(s.image[..., 2], (255.0 - MEANS[0]) / 57.38, atol=1e-4)  # RGB: blue last
    assert np.allclose(s.image[..., :2], 0.0, atol=1e-4)
    assert np.allclose(s.boxes[0], [4 / 40, 5 / 30, 20 / 40, 25 / 30], atol=1e-6)
    assert BaseTransform(max_size=32)(img_).image.shape == (32, 32, 3)


# ---- overfitting one image with the tiny model ---------------------------------------------------------


def shapes_image(size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """BGR image with a red square, a green disc and a blue triangle (numpy drawing) + their GT."""
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    masks = np.zeros((3, size, size), np.float32)
    masks[0, size // 8 : size // 2, size // 10 : size // 2] = 1
    masks[1] = ((xx - 0.72 * size) ** 2 + (yy - 0.3 * size) ** 2 <= (0.18 * size) ** 2).astype(np.float32)
    # Triangle below the others: y >= 0.55 size, above the two slanted edges.
    masks[2] = (yy >= 0.55 * size) & (yy <= 0.95 * size) & (yy - 0.55 * size >= np.abs(xx - 0.5 * size) * 0.9)
    img = np.empty((size, size, 3), np.float32)
    img[:] = (90, 120, 60)
    for m, colour in zip(masks, [(0, 0, 255), (0, 255, 0), (255, 0, 0)], strict=True):
        img[m > 0] = colour
    boxes = []
    for m in masks:
        ys, xs = np.nonzero(m)
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    return img, masks, np.array(boxes, np.float32), np.array([0, 1, 2])


def test_tiny_yolact_overfits_one_image() -> None:
    import dataclasses

    from engine.yolact.config import yolact_tiny
    from engine.yolact.model import Yolact

    size = 96
    torch.manual_seed(0)
    cfg = dataclasses.replace(
        yolact_tiny,
        max_size=size,
        pred_scales=tuple(int(s / 550 * size) for s in (24, 48, 96, 192, 384)),
        num_classes=4,
    )
    model = Yolact(cfg).train()
    s = BaseTransform(size)(*shapes_image(size))
    assert len(s.labels) == 3
    image, target = to_network(s)
    x, targets = image[None], [target]
    assert target["num_crowds"] == 0 and target["masks"].shape == (3, size, size)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    history = []
    for _ in range(15):
        losses = yolact_losses(model(x), targets)
        assert losses_finite(losses)
        opt.zero_grad()
        total_loss(losses).backward()
        opt.step()
        history.append({k: v.item() for k, v in losses.items()})
    first, last = history[0], history[-1]
    assert set(first) == {"B", "C", "M", "S"}
    for key in first:
        assert last[key] < 0.5 * first[key], (key, first[key], last[key])
