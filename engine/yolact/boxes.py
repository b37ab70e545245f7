"""Box helpers in YOLACT's conventions (relative coordinates, variances 0.1 / 0.2).

Written from ../shared/yolact-spec.md sections 9, 10 and 15; quirks are kept on purpose.
"""

from __future__ import annotations

import torch

VARIANCES = (0.1, 0.2)


def point_form(priors: torch.Tensor) -> torch.Tensor:
    """(cx, cy, w, h) -> (x1, y1, x2, y2)."""
    return torch.cat((priors[:, :2] - priors[:, 2:] / 2, priors[:, :2] + priors[:, 2:] / 2), dim=1)


def intersect(box_a: torch.Tensor, box_b: torch.Tensor) -> torch.Tensor:
    """Pairwise intersection areas of point-form boxes: [..., A, 4] x [..., B, 4] -> [..., A, B]."""
    max_xy = torch.min(box_a[..., :, None, 2:], box_b[..., None, :, 2:])
    min_xy = torch.max(box_a[..., :, None, :2], box_b[..., None, :, :2])
    wh = (max_xy - min_xy).clamp(min=0)
    return wh[..., 0] * wh[..., 1]


def jaccard(box_a: torch.Tensor, box_b: torch.Tensor, iscrowd: bool = False) -> torch.Tensor:
    """Plain IoU (no +1, no clipping) of point-form boxes, pairwise: [..., A, 4] x [..., B, 4].

    With ``iscrowd`` it is intersection over the area of ``box_a`` (pass the priors first).
    """
    inter = intersect(box_a, box_b)
    area_a = ((box_a[..., 2] - box_a[..., 0]) * (box_a[..., 3] - box_a[..., 1]))[..., :, None]
    area_b = ((box_b[..., 2] - box_b[..., 0]) * (box_b[..., 3] - box_b[..., 1]))[..., None, :]
    if iscrowd:
        return inter / area_a
    return inter / (area_a + area_b - inter)


def decode(loc: torch.Tensor, priors: torch.Tensor) -> torch.Tensor:
    """Regression offsets [P, 4] + priors (cx, cy, w, h) -> unclipped relative x1y1x2y2.

    x2 is computed as x1 + w (not cx + w/2), as in the official code.
    """
    cxcy = priors[:, :2] + loc[:, :2] * VARIANCES[0] * priors[:, 2:]
    wh = priors[:, 2:] * torch.exp(loc[:, 2:] * VARIANCES[1])
    x1y1 = cxcy - wh / 2
    return torch.cat((x1y1, x1y1 + wh), dim=1)


def encode(matched: torch.Tensor, priors: torch.Tensor) -> torch.Tensor:
    """Point-form ground truth [P, 4] matched to priors -> regression targets [P, 4]."""
    g_cxcy = ((matched[:, :2] + matched[:, 2:]) / 2 - priors[:, :2]) / (VARIANCES[0] * priors[:, 2:])
    g_wh = torch.log((matched[:, 2:] - matched[:, :2]) / priors[:, 2:]) / VARIANCES[1]
    return torch.cat((g_cxcy, g_wh), dim=1)


def sanitize_coordinates(
    _x1: torch.Tensor, _x2: torch.Tensor, img_size: int, padding: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale relative coords by ``img_size``, order them, pad and clamp to [0, img_size] (floats)."""
    _x1 = _x1 * img_size
    _x2 = _x2 * img_size
    x1 = torch.min(_x1, _x2)
    x2 = torch.max(_x1, _x2)
    x1 = torch.clamp(x1 - padding, min=0)
    x2 = torch.clamp(x2 + padding, max=img_size)
    return x1, x2


def crop(masks: torch.Tensor, boxes: torch.Tensor, padding: int = 1) -> torch.Tensor:
    """Zero every pixel outside each box: masks [H, W, N], relative boxes [N, 4].

    Half-open integer test x1' <= c < x2' at mask resolution, with ``padding`` px around the box.
    """
    h, w, n = masks.shape
    x1, x2 = sanitize_coordinates(boxes[:, 0], boxes[:, 2], w, padding)
    y1, y2 = sanitize_coordinates(boxes[:, 1], boxes[:, 3], h, padding)
    cols = torch.arange(w, device=masks.device, dtype=x1.dtype).view(1, -1, 1).expand(h, w, n)
    rows = torch.arange(h, device=masks.device, dtype=x1.dtype).view(-1, 1, 1).expand(h, w, n)
    keep = (cols >= x1.view(1, 1, -1)) & (cols < x2.view(1, 1, -1))
    keep &= (rows >= y1.view(1, 1, -1)) & (rows < y2.view(1, 1, -1))
    return masks * keep.to(masks.dtype)
