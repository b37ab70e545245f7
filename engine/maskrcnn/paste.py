"""Paste Mask R-CNN's 28x28 mask probabilities into their boxes, cropped to the box.

Pixel for pixel the same as ``torchvision.models.detection.roi_heads.paste_masks_in_image`` followed
by ``> threshold`` (torchvision's own helpers ``expand_masks``/``expand_boxes`` do the 1-pixel padding
and box growth, then the same bilinear resize and the same integer placement), but each mask is
written only over its own (clipped) box instead of a full-image array per detection.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.models.detection.roi_heads import expand_boxes, expand_masks

from engine.masks import CroppedMask

PADDING = 1  # torchvision's paste_masks_in_image default


def paste_masks_cropped(
    mask_probs: Tensor, boxes: Tensor, image_size: tuple[int, int], threshold: float = 0.5
) -> list[CroppedMask]:
    """``mask_probs`` (M, 1, m, m) and ``boxes`` (M, 4) in image pixels -> one CroppedMask each."""
    im_h, im_w = image_size
    if len(boxes) == 0:
        return []
    masks, scale = expand_masks(mask_probs, padding=PADDING)
    int_boxes = expand_boxes(boxes, scale).to(dtype=torch.int64).tolist()
    crops: list[Tensor] = []
    places: list[tuple[int, int, int, int]] = []
    for mask, (bx0, by0, bx1, by1) in zip(masks, int_boxes, strict=True):
        w, h = max(bx1 - bx0 + 1, 1), max(by1 - by0 + 1, 1)
        x0, x1 = max(bx0, 0), min(bx1 + 1, im_w)
        y0, y1 = max(by0, 0), min(by1 + 1, im_h)
        if x1 <= x0 or y1 <= y0:
            places.append((x0, y0, 0, 0))
            continue
        resized = F.interpolate(mask[None], size=(h, w), mode="bilinear", align_corners=False)[0, 0]
        crop = resized[y0 - by0 : y1 - by0, x0 - bx0 : x1 - bx0] > threshold
        crops.append(crop.reshape(-1))
        places.append((x0, y0, y1 - y0, x1 - x0))
    # One device->host copy for all masks instead of one per detection.
    flat = torch.cat(crops).cpu().numpy() if crops else np.zeros(0, bool)
    out, offset = [], 0
    for x0, y0, h, w in places:
        bits = flat[offset : offset + h * w].reshape(h, w)
        offset += h * w
        out.append(CroppedMask(x0, y0, bits, (im_h, im_w)))
    return out
