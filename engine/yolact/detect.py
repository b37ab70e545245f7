"""Detect: decode boxes, keep confident priors, NMS (yolact-spec.md section 9).

Three NMS flavours: per-class Fast NMS (eval.py's default, used unless told otherwise), cross-class
Fast NMS (no 100 cap, quirk 8) and the traditional greedy NMS of Detect's own default (quirk 12).
"""

from __future__ import annotations

import numpy as np
import torch

from engine.yolact.boxes import decode, jaccard
from engine.yolact.config import YolactConfig

NMS_MODES = ("fast", "cross_class", "traditional")


def detect(
    loc: torch.Tensor,
    conf: torch.Tensor,
    mask: torch.Tensor,
    priors: torch.Tensor,
    proto: torch.Tensor,
    cfg: YolactConfig,
    nms_mode: str = "fast",
) -> list[dict[str, torch.Tensor] | None]:
    """Per image: ``{'box' [N,4] rel x1y1x2y2, 'mask' [N,k], 'class' [N], 'score' [N], 'proto'}``
    or None when no prior passes the confidence threshold.

    ``conf`` holds softmax probabilities [B, P, C+1] (channel 0 = background).
    """
    if nms_mode not in NMS_MODES:
        raise ValueError(f"nms_mode must be one of {NMS_MODES}, got {nms_mode!r}")
    results: list[dict[str, torch.Tensor] | None] = []
    for b in range(loc.shape[0]):
        decoded = decode(loc[b], priors)
        cur_scores = conf[b, :, 1:].t()  # [C, P]; background dropped, not renormalised (quirk 5)
        conf_scores, _ = torch.max(cur_scores, dim=0)
        keep = conf_scores > cfg.nms_conf_thresh  # strict; only decides who enters NMS (quirk 6)
        scores = cur_scores[:, keep]
        boxes = decoded[keep, :]
        masks = mask[b, keep, :]
        if scores.size(1) == 0:
            results.append(None)
            continue
        if nms_mode == "fast":
            boxes, masks, classes, scores = fast_nms(
                boxes, masks, scores, cfg.nms_thresh, cfg.nms_top_k, cfg.max_num_detections
            )
        elif nms_mode == "cross_class":
            boxes, masks, classes, scores = cc_fast_nms(boxes, masks, scores, cfg.nms_thresh, cfg.nms_top_k)
        else:
            boxes, masks, classes, scores = traditional_nms(
                boxes, masks, scores, cfg.nms_thresh, cfg.nms_conf_thresh, cfg.max_size, cfg.max_num_detections
            )
        results.append({"box": boxes, "mask": masks, "class": classes, "score": scores, "proto": proto[b]})
    return results


def fast_nms(
    boxes: torch.Tensor,
    masks: torch.Tensor,
    scores: torch.Tensor,
    iou_threshold: float = 0.5,
    top_k: int = 200,
    max_num_detections: int = 100,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-class Fast NMS: ``scores`` [C, K] for every kept prior; boxes [K, 4], masks [K, k].

    A box is dropped when any better-scoring box of its class overlaps it by more than
    ``iou_threshold``, even one that was itself dropped (quirk 7). No second score threshold.
    """
    scores, idx = scores.sort(1, descending=True)
    idx = idx[:, :top_k].contiguous()
    scores = scores[:, :top_k]
    num_classes, num_dets = idx.size()
    boxes = boxes[idx.view(-1), :].view(num_classes, num_dets, 4)
    masks = masks[idx.view(-1), :].view(num_classes, num_dets, -1)

    iou = jaccard(boxes, boxes)
    iou.triu_(diagonal=1)
    iou_max, _ = iou.max(dim=1)
    keep = iou_max <= iou_threshold  # IoU exactly at the threshold is kept

    classes = torch.arange(num_classes, device=boxes.device)[:, None].expand_as(keep)
    classes = classes[keep]
    boxes = boxes[keep]
    masks = masks[keep]
    scores = scores[keep]

    scores, idx = scores.sort(0, descending=True)
    idx = idx[:max_num_detections]
    scores = scores[:max_num_detections]
    return boxes[idx], masks[idx], classes[idx], scores


def cc_fast_nms(
    boxes: torch.Tensor, masks: torch.Tensor, scores: torch.Tensor, iou_threshold: float = 0.5, top_k: int = 200
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Cross-class Fast NMS on each prior's best class; results in score order, no 100 cap (quirk 8)."""
    scores, classes = scores.max(dim=0)
    _, idx = scores.sort(0, descending=True)
    idx = idx[:top_k]
    boxes_idx = boxes[idx]
    iou = jaccard(boxes_idx, boxes_idx)
    iou.triu_(diagonal=1)
    iou_max, _ = torch.max(iou, dim=0)
    idx_out = idx[iou_max <= iou_threshold]
    return boxes[idx_out], masks[idx_out], classes[idx_out], scores[idx_out]


def greedy_nms(dets: np.ndarray, thresh: float) -> list[int]:
    """py-faster-rcnn style greedy NMS on [n, 5] (x1, y1, x2, y2, score) in pixels, float32.

    Areas and overlaps use the +1 pixel convention; a box is suppressed when IoU >= ``thresh``.
    """
    x1, y1, x2, y2, scores = (dets[:, i] for i in range(5))
    one = np.float32(1)
    areas = (x2 - x1 + one) * (y2 - y1 + one)
    order = scores.argsort()[::-1]
    suppressed = np.zeros(len(dets), dtype=bool)
    keep: list[int] = []
    for pos, i in enumerate(order):
        if suppressed[i]:
            continue
        keep.append(int(i))
        rest = order[pos + 1 :]
        rest = rest[~suppressed[rest]]
        if len(rest) == 0:
            continue
        w = np.maximum(np.float32(0), np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + one)
        h = np.maximum(np.float32(0), np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + one)
        inter = w * h
        ovr = inter / (areas[i] + areas[rest] - inter)
        suppressed[rest[ovr >= thresh]] = True
    return keep


def traditional_nms(
    boxes: torch.Tensor,
    masks: torch.Tensor,
    scores: torch.Tensor,
    iou_threshold: float = 0.5,
    conf_thresh: float = 0.05,
    max_size: int = 550,
    max_num_detections: int = 100,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per class: score > ``conf_thresh``, greedy NMS on boxes x max_size; then the best 100 overall."""
    device = boxes.device
    pix = boxes * max_size
    idx_lst, cls_lst, scr_lst = [], [], []
    for cls in range(scores.size(0)):
        cls_scores = scores[cls, :]
        conf_mask = cls_scores > conf_thresh
        idx = torch.arange(cls_scores.size(0), device=device)[conf_mask]
        cls_scores = cls_scores[conf_mask]
        if cls_scores.size(0) == 0:
            continue
        preds = torch.cat([pix[conf_mask], cls_scores[:, None]], dim=1).cpu().numpy().astype(np.float32)
        keep = torch.as_tensor(greedy_nms(preds, iou_threshold), dtype=torch.long, device=device)
        idx_lst.append(idx[keep])
        cls_lst.append(torch.full_like(keep, cls))
        scr_lst.append(cls_scores[keep])
    if not idx_lst:
        empty = torch.zeros(0, dtype=torch.long, device=device)
        return boxes[empty], masks[empty], empty, scores.new_zeros(0)
    idx = torch.cat(idx_lst)
    classes = torch.cat(cls_lst)
    scores_out = torch.cat(scr_lst)
    scores_out, order = scores_out.sort(0, descending=True)
    order = order[:max_num_detections]
    scores_out = scores_out[:max_num_detections]
    idx = idx[order]
    return pix[idx] / max_size, masks[idx], classes[order], scores_out
