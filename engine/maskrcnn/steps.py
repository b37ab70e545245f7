"""Run a torchvision ``MaskRCNN`` in eval mode submodule by submodule, optionally recording a trace.

Nothing of torchvision is copied: each step calls the model's own submodules and torchvision's own
functions in the order ``GeneralizedRCNN.forward`` / ``RPN.forward`` / ``RoIHeads.forward`` do. The
one re-implemented piece is the *selection* in ``RoIHeads.postprocess_detections`` (score threshold,
small-box removal, per-class NMS, top-k): it calls the same ``box_ops`` functions in the same order
on the same tensors, carrying along each candidate's proposal index, so the kept detections are
identical and can be traced back to their proposal. tests/test_maskrcnn.py checks that the result
equals ``model(images)`` exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.roi_heads import maskrcnn_inference
from torchvision.models.detection.rpn import concat_box_prediction_layers
from torchvision.ops import boxes as box_ops
from torchvision.ops.poolers import MultiScaleRoIAlign

from engine.maskrcnn.trace import PoolerSettings


@dataclass
class Detections:
    """Eval-mode RoI-head output for one image, network coordinates, torchvision labels (1..N)."""

    boxes: Tensor  # (M, 4)
    scores: Tensor  # (M,)
    labels: Tensor  # (M,) int64, 0 = background never appears
    mask_probs: Tensor  # (M, 1, 28, 28) probabilities for each detection's label
    network_size: tuple[int, int]  # (h, w) after resize, before padding
    padded_size: tuple[int, int] = (0, 0)  # (h, w) of the batched tensor
    features: dict[str, Tensor] | None = None  # the FPN output (prompts reuse it)


@dataclass
class Capture:
    """Tensors recorded on the traced path (turned into a MaskRCNNTrace by the segmenter)."""

    padded_size: tuple[int, int]
    features: dict[str, Tensor]
    proposals: Tensor  # (P, 4)
    proposal_objectness: Tensor  # (P,)
    class_probs: Tensor  # (P, num_classes) softmax of the box head, incl. background column 0
    proposal_index: Tensor  # (M,) source proposal of each detection
    box_levels: Tensor  # (M,) level index (k - k_min) of the source proposal in the box pooler
    mask_levels: Tensor  # (M,) level index of the refined box in the mask pooler


def run(model: MaskRCNN, image: Tensor, capture: bool = False) -> tuple[Detections, Capture | None]:
    """Detections for one (3, H, W) float image in 0..1 on the model's device; ``model`` must be in eval."""
    images, _ = model.transform([image])
    network_size = tuple(images.image_sizes[0])
    features = model.backbone(images.tensors)
    if not capture:
        # The exact calls of GeneralizedRCNN.forward, without transform.postprocess (see segmenter).
        proposals, _ = model.rpn(images, features)
        result, _ = model.roi_heads(features, proposals, images.image_sizes)
        r = result[0]
        padded = tuple(images.tensors.shape[-2:])
        return Detections(r["boxes"], r["scores"], r["labels"], r["masks"], network_size, padded, features), None

    proposals, objectness = rpn_proposals(model, images, features)
    heads = model.roi_heads
    box_features = heads.box_roi_pool(features, [proposals], images.image_sizes)
    box_features = heads.box_head(box_features)
    class_logits, box_regression = heads.box_predictor(box_features)
    boxes, scores, labels, src, class_probs = select_detections(
        heads, class_logits, box_regression, proposals, network_size
    )

    mask_features = heads.mask_roi_pool(features, [boxes], images.image_sizes)
    mask_features = heads.mask_head(mask_features)
    mask_logits = heads.mask_predictor(mask_features)
    mask_probs = maskrcnn_inference(mask_logits, [labels])[0]

    cap = Capture(
        padded_size=tuple(images.tensors.shape[-2:]),
        features=dict(features),
        proposals=proposals,
        proposal_objectness=objectness,
        class_probs=class_probs,
        proposal_index=src,
        box_levels=pooled_levels(heads.box_roi_pool, proposals[src]),
        mask_levels=pooled_levels(heads.mask_roi_pool, boxes),
    )
    det = Detections(boxes, scores, labels, mask_probs, network_size, cap.padded_size, cap.features)
    return det, cap


def rpn_proposals(model: MaskRCNN, images, features: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    """RegionProposalNetwork.forward in eval mode, keeping the objectness of the kept proposals."""
    rpn = model.rpn
    feats = list(features.values())
    objectness, deltas = rpn.head(feats)
    anchors = rpn.anchor_generator(images, feats)
    num_anchors_per_level = [o[0].shape[0] * o[0].shape[1] * o[0].shape[2] for o in objectness]
    objectness, deltas = concat_box_prediction_layers(objectness, deltas)
    proposals = rpn.box_coder.decode(deltas.detach(), anchors).view(len(anchors), -1, 4)
    boxes, scores = rpn.filter_proposals(proposals, objectness, images.image_sizes, num_anchors_per_level)
    return boxes[0], scores[0]


def select_detections(
    heads,
    class_logits: Tensor,
    box_regression: Tensor,
    proposals: Tensor,
    image_shape,
    score_thresh: float | None = None,
    limit: int | None = None,
):
    """RoIHeads.postprocess_detections for one image, also returning each detection's proposal.

    ``score_thresh`` / ``limit`` default to the heads' own ``score_thresh`` / ``detections_per_img``
    (point prompts look below the threshold with other values).
    """
    score_thresh = heads.score_thresh if score_thresh is None else score_thresh
    limit = heads.detections_per_img if limit is None else limit
    num_classes = class_logits.shape[-1]
    pred_boxes = heads.box_coder.decode(box_regression, [proposals])
    pred_scores = F.softmax(class_logits, -1)

    boxes = box_ops.clip_boxes_to_image(pred_boxes, image_shape)
    labels = torch.arange(num_classes, device=class_logits.device).view(1, -1).expand_as(pred_scores)
    source = torch.arange(len(proposals), device=class_logits.device).view(-1, 1).expand_as(pred_scores)

    # Drop background, then one candidate per (proposal, class), as torchvision does.
    boxes = boxes[:, 1:].reshape(-1, 4)
    scores = pred_scores[:, 1:].reshape(-1)
    labels = labels[:, 1:].reshape(-1)
    source = source[:, 1:].reshape(-1)

    inds = torch.where(scores > score_thresh)[0]
    boxes, scores, labels, source = boxes[inds], scores[inds], labels[inds], source[inds]
    keep = box_ops.remove_small_boxes(boxes, min_size=1e-2)
    boxes, scores, labels, source = boxes[keep], scores[keep], labels[keep], source[keep]
    keep = box_ops.batched_nms(boxes, scores, labels, heads.nms_thresh)[:limit]
    return boxes[keep], scores[keep], labels[keep], source[keep], pred_scores


def pooled_levels(pooler: MultiScaleRoIAlign, boxes: Tensor) -> Tensor:
    """Level index per box from the pooler's own LevelMapper (set up by its first forward call)."""
    if len(boxes) == 0:
        return torch.zeros(0, dtype=torch.int64)
    return pooler.map_levels([boxes])


def pooler_settings(pooler: MultiScaleRoIAlign) -> PoolerSettings:
    mapper = pooler.map_levels
    out_h, out_w = pooler.output_size  # torchvision stores it as a pair
    return PoolerSettings(
        featmap_names=list(pooler.featmap_names),
        output_size=(int(out_h), int(out_w)),
        sampling_ratio=int(pooler.sampling_ratio),
        aligned=False,  # torchvision.ops.poolers._multiscale_roi_align leaves roi_align's default
        scales=[float(s) for s in pooler.scales],
        k_min=int(mapper.k_min),
        k_max=int(mapper.k_max),
        canonical_scale=int(mapper.s0),
        canonical_level=int(mapper.lvl0),
        eps=float(mapper.eps),
    )
