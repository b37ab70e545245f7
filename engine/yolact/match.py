"""Prior-to-ground-truth matching for YOLACT training (yolact-spec.md section 15, "Matching").

Per image: every prior takes the GT box it overlaps most; then each GT box in turn forces its best
prior (globally best remaining pair first). Priors below the positive threshold become neutral (-1)
and below the negative threshold background (0). Priors mostly inside a crowd region that would be
background or neutral become neutral, so crowds never teach "background".
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from engine.yolact.boxes import encode, jaccard, point_form

POS_THRESH = 0.5
NEG_THRESH = 0.4
CROWD_THRESH = 0.7


@dataclass
class MatchResult:
    """Per-prior training targets of one image (P priors)."""

    loc_t: torch.Tensor  # [P, 4] encoded regression targets
    conf_t: torch.Tensor  # [P] int64: -1 neutral, 0 background, c + 1 class c
    idx_t: torch.Tensor  # [P] int64 index of the matched (non-crowd) GT box
    gt_box_t: torch.Tensor  # [P, 4] the matched GT box, relative x1y1x2y2


def match(
    truths: torch.Tensor,
    labels: torch.Tensor,
    priors: torch.Tensor,
    crowd_boxes: torch.Tensor | None = None,
    pos_thresh: float = POS_THRESH,
    neg_thresh: float = NEG_THRESH,
    crowd_thresh: float = CROWD_THRESH,
) -> MatchResult:
    """Match the non-crowd GT ``truths`` [G, 4] (relative x1y1x2y2) with ``labels`` [G] (0..C-1)
    to ``priors`` [P, 4] (cx, cy, w, h). ``crowd_boxes`` [K, 4] only neutralise priors.

    With G == 0 every prior is background (the official loader never yields such images; we allow
    them so that images without objects can still teach background).
    """
    num_priors = priors.shape[0]
    device = priors.device
    prior_boxes = point_form(priors)
    if truths.shape[0] == 0:
        conf = torch.zeros(num_priors, dtype=torch.long, device=device)
        best_truth_idx = torch.zeros(num_priors, dtype=torch.long, device=device)
        matches = torch.zeros(num_priors, 4, dtype=priors.dtype, device=device)
        loc = torch.zeros(num_priors, 4, dtype=priors.dtype, device=device)
    else:
        overlaps = jaccard(truths, prior_boxes)  # [G, P]
        best_truth_overlap, best_truth_idx = overlaps.max(0)
        # Forced matches: G rounds over the globally best remaining (gt, prior) pair, so each GT
        # owns at least one prior even when all its IoUs are below the thresholds.
        for _ in range(overlaps.shape[0]):
            best_prior_overlap, best_prior_idx = overlaps.max(1)
            j = best_prior_overlap.argmax()
            i = best_prior_idx[j]
            overlaps[:, i] = -1
            overlaps[j, :] = -1
            best_truth_overlap[i] = 2
            best_truth_idx[i] = j
        matches = truths[best_truth_idx]
        conf = labels[best_truth_idx].long() + 1
        conf[best_truth_overlap < pos_thresh] = -1
        conf[best_truth_overlap < neg_thresh] = 0
        loc = encode(matches, priors)

    if crowd_boxes is not None and crowd_boxes.shape[0] > 0 and crowd_thresh < 1:
        # Intersection over the prior's own area: a small prior fully inside a crowd scores 1.
        crowd_overlap = jaccard(prior_boxes, crowd_boxes, iscrowd=True).max(1).values  # [P]
        conf[(conf <= 0) & (crowd_overlap > crowd_thresh)] = -1

    return MatchResult(loc_t=loc, conf_t=conf, idx_t=best_truth_idx, gt_box_t=matches)
