"""YOLACT training losses B (box), C (confidence, OHEM), M (mask), S (semantic).

Follows yolact-spec.md section 15 ("Losses"); the per-term normalisation (B, C, M by the number of
positives N of the whole batch, S by the batch size) is applied here, so the total loss is the
plain sum of the returned terms.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import cast

import torch
import torch.nn.functional as F

from engine.yolact.boxes import crop
from engine.yolact.match import CROWD_THRESH, NEG_THRESH, POS_THRESH, match

BBOX_ALPHA = 1.5
CONF_ALPHA = 1.0
MASK_ALPHA = 6.125
SEMANTIC_ALPHA = 1.0
NEGPOS_RATIO = 3


def split_crowds(target: Mapping[str, torch.Tensor | int]) -> tuple[torch.Tensor, ...]:
    """Split one target into (boxes, labels, masks) of normal objects and the crowd boxes.

    Crowds sit at the end of the lists (spec section 12); their count is ``num_crowds``.
    """
    boxes = cast(torch.Tensor, target["boxes"])
    labels = cast(torch.Tensor, target["labels"])
    masks = cast(torch.Tensor, target["masks"])
    num_crowds = int(target.get("num_crowds", 0))
    keep = boxes.shape[0] - num_crowds
    return boxes[:keep], labels[:keep], masks[:keep], boxes[keep:]


def hard_negatives(conf: torch.Tensor, conf_t: torch.Tensor, negpos_ratio: int = NEGPOS_RATIO) -> torch.Tensor:
    """Boolean [B, P] of the background priors OHEM trains on.

    ``conf`` [B, P, C+1] logits, ``conf_t`` [B, P] (-1 neutral, 0 background, >0 class + 1).
    Each image keeps its ``negpos_ratio * num_pos`` background priors (capped at P - 1) with the
    highest background loss; positives and neutrals are never chosen.
    """
    batch, num_priors, num_classes = conf.shape
    pos = conf_t > 0
    neutral = conf_t < 0
    with torch.no_grad():
        flat = conf.reshape(-1, num_classes)
        # log-sum-exp shifted by the max of the whole batch (not per row), as in the official code.
        gmax = flat.max()
        lse = torch.log(torch.sum(torch.exp(flat - gmax), 1)) + gmax
        mining = (lse - flat[:, 0]).view(batch, num_priors)
        mining[pos] = 0
        mining[neutral] = 0
        # Rank of every prior in its image when sorted by descending background loss.
        _, loss_idx = mining.sort(dim=1, descending=True, stable=True)
        _, idx_rank = loss_idx.sort(dim=1, stable=True)
        num_pos = pos.long().sum(1, keepdim=True)
        num_neg = torch.clamp(negpos_ratio * num_pos, max=num_priors - 1)
        return (idx_rank < num_neg) & ~pos & ~neutral


def ohem_conf_loss(conf: torch.Tensor, conf_t: torch.Tensor, negpos_ratio: int = NEGPOS_RATIO) -> torch.Tensor:
    """Cross-entropy summed over the positives and the hard negatives (not normalised)."""
    chosen = (conf_t > 0) | hard_negatives(conf, conf_t, negpos_ratio)
    return F.cross_entropy(conf[chosen], conf_t[chosen], reduction="sum")


def mask_loss_single(
    proto: torch.Tensor,
    coef: torch.Tensor,
    gt_masks: torch.Tensor,
    gt_boxes: torch.Tensor,
    masks_to_train: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Summed, area-normalised mask BCE of one image's positives (before mask_alpha and / N).

    ``proto`` [Hp, Wp, k]; ``coef`` [n, k] of the positive priors; ``gt_masks`` [n, Hp, Wp]
    binarised masks at proto resolution; ``gt_boxes`` [n, 4] the matched GT boxes (relative).
    """
    hp, wp = proto.shape[:2]
    old_num = coef.shape[0]
    if old_num > masks_to_train:
        select = torch.randperm(old_num, generator=generator)[:masks_to_train].to(coef.device)
        coef, gt_masks, gt_boxes = coef[select], gt_masks[select], gt_boxes[select]
    pred = torch.sigmoid(proto @ coef.t())  # [Hp, Wp, n]
    pred = crop(pred, gt_boxes, padding=1)  # crop by the GT box, not the predicted one
    pre = F.binary_cross_entropy(torch.clamp(pred, 0, 1), gt_masks.permute(1, 2, 0), reduction="none")
    # "Emulate ROI pooling": each instance's loss is divided by its GT box area in proto pixels.
    box_w = (gt_boxes[:, 2] - gt_boxes[:, 0]) * wp
    box_h = (gt_boxes[:, 3] - gt_boxes[:, 1]) * hp
    per_instance = pre.sum(dim=(0, 1)) / box_w / box_h
    if old_num > coef.shape[0]:
        per_instance = per_instance * (old_num / coef.shape[0])
    return per_instance.sum()


def semantic_loss_single(segm: torch.Tensor, masks: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """BCE-with-logits of one image's semantic map [C, hs, ws], summed and divided by hs * ws.

    ``masks`` [G, H, W] (non-crowd, input resolution), ``labels`` [G] in 0..C-1.
    """
    _, hs, ws = segm.shape
    with torch.no_grad():
        target = torch.zeros_like(segm)
        if masks.shape[0] > 0:
            small = F.interpolate(masks[None].float(), (hs, ws), mode="bilinear", align_corners=False)[0]
            small = (small > 0.5).to(segm.dtype)
            # Per class, the union (max) of its objects.
            index = labels.long().view(-1, 1, 1).expand(-1, hs, ws)
            target.scatter_reduce_(0, index, small, reduce="amax", include_self=True)
    return F.binary_cross_entropy_with_logits(segm, target, reduction="sum") / (hs * ws)


def yolact_losses(
    preds: Mapping[str, torch.Tensor],
    targets: Sequence[Mapping[str, torch.Tensor | int]],
    masks_to_train: int = 100,
    bbox_alpha: float = BBOX_ALPHA,
    conf_alpha: float = CONF_ALPHA,
    mask_alpha: float = MASK_ALPHA,
    semantic_alpha: float = SEMANTIC_ALPHA,
    negpos_ratio: int = NEGPOS_RATIO,
    pos_thresh: float = POS_THRESH,
    neg_thresh: float = NEG_THRESH,
    crowd_thresh: float = CROWD_THRESH,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """The four normalised YOLACT losses {'B', 'C', 'M', 'S'} of a batch; total = their sum.

    ``preds``: ``loc`` [B,P,4], ``conf`` [B,P,C+1] logits, ``mask`` [B,P,k] (tanh'd),
    ``priors`` [P,4], ``proto`` [B,Hp,Wp,k], ``segm`` [B,C,hs,ws] logits (optional: without it
    there is no 'S'). Each target: ``boxes`` [G,4] relative x1y1x2y2, ``labels`` [G] int64,
    ``masks`` [G,H,W] 0/1 at network input resolution, ``num_crowds`` (crowds last).
    ``generator`` drives the random subset when an image has more than ``masks_to_train``
    positives (None: torch's global RNG, as the official code).
    """
    loc, conf, coef, priors, proto = (preds[k] for k in ("loc", "conf", "mask", "priors", "proto"))
    segm = preds.get("segm")
    batch = loc.shape[0]
    if len(targets) != batch:
        raise ValueError(f"yolact_losses: {len(targets)} targets for a batch of {batch} images")
    hp, wp = proto.shape[1:3]

    loc_t, conf_t = [], []
    loss_m = loc.new_zeros(())
    loss_s = loc.new_zeros(())
    for b, target in enumerate(targets):
        boxes, labels, masks, crowd_boxes = split_crowds(target)
        boxes = boxes.to(priors)
        labels = labels.to(priors.device).long()
        masks = masks.to(device=priors.device, dtype=proto.dtype)
        m = match(boxes, labels, priors, crowd_boxes.to(priors), pos_thresh, neg_thresh, crowd_thresh)
        loc_t.append(m.loc_t)
        conf_t.append(m.conf_t)

        pos = m.conf_t > 0
        if bool(pos.any()):
            with torch.no_grad():
                small = F.interpolate(masks[None], (hp, wp), mode="bilinear", align_corners=False)[0]
                small = (small > 0.5).to(proto.dtype)
            pos_idx = m.idx_t[pos]
            loss_m = loss_m + mask_loss_single(
                proto[b], coef[b, pos], small[pos_idx], m.gt_box_t[pos], masks_to_train, generator
            )
        if segm is not None:
            loss_s = loss_s + semantic_loss_single(segm[b], masks, labels)

    loc_t_all = torch.stack(loc_t)
    conf_t_all = torch.stack(conf_t)
    pos_all = conf_t_all > 0
    # N = positives of the whole batch; clamped at 1 so that a batch without objects gives
    # finite zeros for B, C and M (they are sums over empty sets then) instead of 0 / 0.
    num_pos = pos_all.sum().clamp(min=1).to(loc.dtype)

    losses = {
        "B": bbox_alpha * F.smooth_l1_loss(loc[pos_all], loc_t_all[pos_all], beta=1.0, reduction="sum") / num_pos,
        "C": conf_alpha * ohem_conf_loss(conf, conf_t_all, negpos_ratio) / num_pos,
        "M": mask_alpha * loss_m / num_pos,
    }
    if segm is not None:
        losses["S"] = semantic_alpha * loss_s / batch
    return losses


def total_loss(losses: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Sum of the loss terms (the quantity the optimiser minimises)."""
    return sum(losses.values(), start=next(iter(losses.values())).new_zeros(()))


def losses_finite(losses: Mapping[str, torch.Tensor]) -> bool:
    """False when any term is NaN or infinite: the trainer then skips the optimiser step."""
    return all(math.isfinite(float(v.detach())) for v in losses.values())
