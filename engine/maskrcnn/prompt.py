"""Mask R-CNN prompts: torchvision's own RoI heads run on a user's box or around a user's click.

A box prompt takes the path a detection's final box takes in eval mode (``RoIHeads.forward``):
the mask branch pools the box with ``mask_roi_pool`` (a ``MultiScaleRoIAlign``, whose
``LevelMapper`` picks the FPN level from the box area), then ``mask_head``, ``mask_predictor`` and
``maskrcnn_inference`` pick the 28x28 probabilities of one class. The class comes from the box
branch run on the same box (``box_roi_pool``, ``box_head``, ``box_predictor``, softmax): the most
likely foreground class unless the caller gives one. The box itself is not regressed: the user
drew it. So a detection's own final box and label give back exactly that detection's mask.

A point prompt runs the box branch over all RPN proposals once per image (cached), keeps every
(proposal, class) pair scoring above ``POINT_SCORE_FLOOR`` with torchvision's selection (decode,
clip, per-class NMS), takes those whose box contains the point, best first, and runs the mask
branch on them; candidates whose mask covers the point are de-duplicated by mask IoU.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.roi_heads import maskrcnn_inference
from torchvision.models.detection.transform import resize_boxes

from engine.maskrcnn.configs import DEFAULT_BOX_SCORE_THRESH
from engine.maskrcnn.paste import paste_masks_cropped
from engine.maskrcnn.steps import pooled_levels, pooler_settings, rpn_proposals, select_detections
from engine.maskrcnn.trace import DetectionTrace, MaskRCNNTrace
from engine.masks import CroppedMask
from engine.prompts import covers, dedupe

# Point candidates go down to torchvision's default detection threshold (below it: noise).
POINT_SCORE_FLOOR = DEFAULT_BOX_SCORE_THRESH
# Boxes containing the point that get a mask, per wanted candidate (some masks miss the point).
POINT_MASKS_PER_CANDIDATE = 2


@dataclass
class ImageFeatures:
    """One image's backbone/FPN output and what point prompts add to it (lazily)."""

    original_size: tuple[int, int]
    network_size: tuple[int, int]
    padded_size: tuple[int, int]
    features: dict[str, Tensor]
    proposals: Tensor | None = None  # (P, 4) RPN proposals, network coordinates
    objectness: Tensor | None = None  # (P,)
    class_logits: Tensor | None = None  # (P, num_classes) box head over the proposals
    box_regression: Tensor | None = None  # (P, num_classes * 4)

    @property
    def image_sizes(self) -> list[tuple[int, int]]:
        return [self.network_size]

    def to_network(self, boxes: Tensor) -> Tensor:
        return resize_boxes(boxes, self.original_size, self.network_size)

    def to_original(self, boxes: Tensor) -> Tensor:
        return resize_boxes(boxes, self.network_size, self.original_size)


def compute_features(model: MaskRCNN, image: Tensor) -> ImageFeatures:
    """``GeneralizedRCNN.forward``'s transform and backbone for one (3, H, W) float image in 0..1."""
    images, _ = model.transform([image])
    features = model.backbone(images.tensors)
    h, w = image.shape[-2:]
    nh, nw = images.image_sizes[0]
    ph, pw = images.tensors.shape[-2:]
    return ImageFeatures((int(h), int(w)), (int(nh), int(nw)), (int(ph), int(pw)), dict(features))


@dataclass
class BoxResult:
    """The heads' output for one box in network coordinates (torchvision label, 1..N)."""

    box_network: Tensor  # (1, 4)
    class_probs: Tensor  # (num_classes,) softmax of the box head, background at 0
    label: int
    mask_probs: Tensor  # (1, 1, 28, 28)
    box_level: int  # level index (k - k_min) in the box pooler
    mask_level: int  # level index in the mask pooler


def run_box(model: MaskRCNN, feats: ImageFeatures, box_network: Tensor, label: int | None) -> BoxResult:
    """Box and mask branch on one box (1, 4), network coordinates; ``label`` is torchvision's (1..N)."""
    heads = model.roi_heads
    box_features = heads.box_head(heads.box_roi_pool(feats.features, [box_network], feats.image_sizes))
    class_logits, _ = heads.box_predictor(box_features)
    class_probs = F.softmax(class_logits, -1)[0]
    if label is None:
        label = int(torch.argmax(class_probs[1:])) + 1  # the background column is never a label
    labels = torch.tensor([label], dtype=torch.int64, device=box_network.device)
    mask_probs = _mask_probs(model, feats, box_network, labels)
    return BoxResult(
        box_network=box_network,
        class_probs=class_probs,
        label=label,
        mask_probs=mask_probs,
        box_level=int(pooled_levels(heads.box_roi_pool, box_network)[0]),
        mask_level=int(pooled_levels(heads.mask_roi_pool, box_network)[0]),
    )


def _mask_probs(model: MaskRCNN, feats: ImageFeatures, boxes: Tensor, labels: Tensor) -> Tensor:
    """``RoIHeads.forward``'s mask branch in eval mode: (M, 1, 28, 28) probabilities of ``labels``."""
    heads = model.roi_heads
    mask_features = heads.mask_head(heads.mask_roi_pool(feats.features, [boxes], feats.image_sizes))
    return maskrcnn_inference(heads.mask_predictor(mask_features), [labels])[0]


def box_trace(model: MaskRCNN, feats: ImageFeatures, result: BoxResult) -> MaskRCNNTrace:
    """A ``MaskRCNNTrace`` whose one detection is the prompt box (both branches pooled the box)."""
    heads = model.roi_heads
    box_pooler, mask_pooler = pooler_settings(heads.box_roi_pool), pooler_settings(heads.mask_roi_pool)
    box = result.box_network[0].float().cpu().numpy()
    probs = result.class_probs.float().cpu().numpy()
    bl, ml = result.box_level, result.mask_level
    det = DetectionTrace(
        proposal_index=0,
        proposal_box=box.copy(),
        proposal_objectness=float("nan"),  # a drawn box, not an RPN proposal
        box_level=bl + box_pooler.k_min,
        box_featmap=box_pooler.featmap_names[bl],
        box_spatial_scale=box_pooler.scales[bl],
        class_probs=probs[1:].copy(),
        background_prob=float(probs[0]),
        label=result.label - 1,
        score=float(probs[result.label]),
        box_network=box.copy(),
        mask_level=ml + mask_pooler.k_min,
        mask_featmap=mask_pooler.featmap_names[ml],
        mask_spatial_scale=mask_pooler.scales[ml],
        mask_probs=result.mask_probs[0, 0].float().cpu().numpy().copy(),
    )
    (h, w), (nh, nw) = feats.original_size, feats.network_size
    transform = model.transform
    return MaskRCNNTrace(
        original_size=feats.original_size,
        network_size=feats.network_size,
        padded_size=feats.padded_size,
        scale=(nh / h, nw / w),
        image_mean=[float(v) for v in transform.image_mean],
        image_std=[float(v) for v in transform.image_std],
        features=feats.features,
        proposals=box[None].copy(),
        proposal_objectness=np.array([np.nan], np.float32),
        box_pooler=box_pooler,
        mask_pooler=mask_pooler,
        detections=[det],
        prompt=True,
    )


def ensure_proposals(model: MaskRCNN, feats: ImageFeatures) -> None:
    """RPN proposals and the box head over them, once per image (what point prompts select from)."""
    if feats.class_logits is not None:
        return

    device = next(iter(feats.features.values())).device
    # The anchor generator reads only the batch's shape: an expanded 1-element tensor has it for free.
    padded = torch.zeros((1, 1, 1, 1), device=device).expand(1, 3, *feats.padded_size)
    images = ImageList(padded, feats.image_sizes)
    proposals, objectness = rpn_proposals(model, images, feats.features)
    heads = model.roi_heads
    box_features = heads.box_head(heads.box_roi_pool(feats.features, [proposals], feats.image_sizes))
    feats.class_logits, feats.box_regression = heads.box_predictor(box_features)
    feats.proposals, feats.objectness = proposals, objectness


@dataclass
class PointCandidate:
    box_original: np.ndarray  # float32 (4,)
    label: int  # our label (0-based)
    score: float
    mask: CroppedMask


def point_candidates(
    model: MaskRCNN, feats: ImageFeatures, x: float, y: float, score_thresh: float, max_candidates: int
) -> list[PointCandidate]:
    """Detections, then lower-scoring (proposal, class) pairs, whose masks cover (x, y); best first."""
    ensure_proposals(model, feats)
    heads = model.roi_heads
    assert feats.class_logits is not None and feats.box_regression is not None and feats.proposals is not None
    args = (heads, feats.class_logits, feats.box_regression, feats.proposals, feats.network_size)
    det_boxes, det_scores, det_labels, det_src, _ = select_detections(*args, score_thresh=score_thresh)
    floor = min(POINT_SCORE_FLOOR, score_thresh)
    low_boxes, low_scores, low_labels, low_src, _ = select_detections(
        *args, score_thresh=floor, limit=len(feats.proposals)
    )
    # The low-threshold set repeats the detections; keep each (proposal, class) pair once.
    seen = set(zip(det_src.tolist(), det_labels.tolist(), strict=True))
    extra = torch.tensor(
        [(s, lab) not in seen for s, lab in zip(low_src.tolist(), low_labels.tolist(), strict=True)],
        dtype=torch.bool,
        device=low_boxes.device,
    ).reshape(-1)
    boxes = torch.cat([det_boxes, low_boxes[extra]])
    scores = torch.cat([det_scores, low_scores[extra]])
    labels = torch.cat([det_labels, low_labels[extra]])
    # Boxes that contain the point (network coordinates), detections first, each part by score.
    sy, sx = feats.network_size[0] / feats.original_size[0], feats.network_size[1] / feats.original_size[1]
    nx, ny = (x + 0.5) * sx, (y + 0.5) * sy  # the clicked pixel's centre
    inside = (boxes[:, 0] <= nx) & (nx <= boxes[:, 2]) & (boxes[:, 1] <= ny) & (ny <= boxes[:, 3])
    idx = torch.nonzero(inside).flatten()[: max_candidates * POINT_MASKS_PER_CANDIDATE]
    if idx.numel() == 0:
        return []
    boxes, scores, labels = boxes[idx], scores[idx], labels[idx]
    probs = _mask_probs(model, feats, boxes, labels)
    boxes_orig = feats.to_original(boxes)
    masks = paste_masks_cropped(probs, boxes_orig, feats.original_size)
    boxes_np = boxes_orig.float().cpu().numpy()
    hits = [
        PointCandidate(boxes_np[i], int(labels[i]) - 1, float(scores[i]), m)
        for i, m in enumerate(masks)
        if covers(m, x, y)
    ]
    return [hits[i] for i in dedupe([c.mask for c in hits])][:max_candidates]
