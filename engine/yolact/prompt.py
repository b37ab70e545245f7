"""YOLACT prompts: a mask for any box from the image's prototypes and one prior's coefficients.

YOLACT has no RoI head: a detection's mask is ``sigmoid(prototypes @ coefficients)`` of its prior,
cropped to its decoded box. A box prompt therefore needs a coefficient vector, and takes the one of
the prior whose decoded box best overlaps the user box:

- ``"iou"`` (default): the prior whose decoded box has the highest IoU with the user box (ties: the
  more confident prior). The coefficients were trained (mask loss) for priors matched to an object
  by box overlap, and the decoded box is where the network itself thinks that prior's object is, so
  the best-overlapping decoded box is the prior "about" the object in the user box. It is purely
  geometric, so it does not jump to a confident prior of a neighbouring object, and a detection's
  own box selects that detection's prior (IoU 1), giving back exactly its mask.
- ``"iou_conf"``: the highest IoU x best-class confidence. Prefers confident priors, whose
  coefficients may be better, at the price of a looser box fit.

bench/bench_prompts.py compares the two on the demo model: box-prompt NoC@90 1.43 for "iou" and
1.38 for "iou_conf" on 100 held-out images (246 objects, 95 % intervals +-0.11 and +-0.12), 1.49 and
1.47 on 300 (730 objects, +-0.08 each); first-mask IoU 0.906 / 0.909. The difference is inside the
noise, so the default stays the rule that keeps detections exact.

Then the official assembly: prototypes x coefficients, sigmoid, crop to the *user* box (+1
prototype pixel, as ``boxes.crop``), bilinear resize to the image, ``> 0.5``
(engine.yolact.postprocess, the same code as ``predict``).

A point prompt ranks the priors before NMS that pass Detect's confidence gate
(``nms_conf_thresh``) and whose decoded box contains the point, best class score first, assembles
their masks at prototype resolution, drops those that miss the point or repeat a better one
(mask IoU), and returns the best few at image resolution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from engine.masks import CroppedMask
from engine.prompts import DEDUP_IOU, covers, dedupe
from engine.yolact.boxes import decode, jaccard
from engine.yolact.model import Yolact
from engine.yolact.postprocess import AssembledMasks, assemble_masks, instance_masks

PRIOR_RULES = ("iou", "iou_conf")
DEFAULT_PRIOR_RULE = "iou"
# Priors looked at per wanted point candidate (neighbouring priors mostly repeat one object).
POINT_PRIORS_PER_CANDIDATE = 16


@dataclass
class YolactFeatures:
    """One image's network outputs, everything a prompt needs (priors in the network's order)."""

    image_size: tuple[int, int]  # (h, w) of the original image
    proto: Tensor  # [Hp, Wp, k]
    boxes: Tensor  # [P, 4] decoded relative x1y1x2y2 of every prior, as Detect decodes them
    conf: Tensor  # [P, C + 1] softmax class probabilities, background at 0
    coeffs: Tensor  # [P, k] tanh'd mask coefficients

    @property
    def best(self) -> tuple[Tensor, Tensor]:
        """Best foreground class probability [P] and its class index [P] (0-based)."""
        return self.conf[:, 1:].max(dim=1)


def compute_features(model: Yolact, x: Tensor, image_size: tuple[int, int]) -> YolactFeatures:
    """Network outputs for one preprocessed image ``x`` [1, 3, S, S]."""
    return features_from_raw(model.forward_raw(x, with_segm=False), image_size)


def features_from_raw(raw: dict[str, Tensor], image_size: tuple[int, int]) -> YolactFeatures:
    """What prompts keep of ``Yolact.forward_raw``'s output for one image."""
    conf = F.softmax(raw["conf"][0], dim=-1)  # as Yolact.detect: over all classes, background included
    return YolactFeatures(image_size, raw["proto"][0], decode(raw["loc"][0], raw["priors"]), conf, raw["mask"][0])


def relative_box(box: np.ndarray, image_size: tuple[int, int]) -> Tensor:
    """Pixel box -> relative [1, 4] float32. Computed in float64: a box made as ``relative * size``
    in float64 (e.g. from a trace's ``boxes_rel``) comes back bit for bit."""
    h, w = image_size
    rel = np.asarray(box, np.float64) / np.array([w, h, w, h], np.float64)
    return torch.from_numpy(rel.astype(np.float32)).reshape(1, 4)


def choose_prior(feats: YolactFeatures, box_rel: Tensor, rule: str = DEFAULT_PRIOR_RULE) -> tuple[int, float]:
    """Index of the prior whose coefficients a box prompt uses, and its decoded box's IoU with the box."""
    if rule not in PRIOR_RULES:
        raise ValueError(f"rule must be one of {PRIOR_RULES}, got {rule!r}")
    iou = jaccard(feats.boxes, box_rel.to(feats.boxes.device))[:, 0]
    iou = torch.nan_to_num(iou, nan=0.0)  # a degenerate decoded box has no overlap
    best_conf, _ = feats.best
    key = iou if rule == "iou" else iou * best_conf
    top = key.max()
    tied = torch.nonzero(key == top).flatten()
    index = int(tied[torch.argmax(best_conf[tied])])  # ties: the more confident prior
    return index, float(iou[index])


@dataclass
class BoxResult:
    prior: int
    iou: float  # of the prior's decoded box with the user box
    label: int  # 0-based class
    score: float  # that prior's probability for ``label``
    coeffs: Tensor  # [1, k]
    box_rel: Tensor  # [1, 4]
    mask: CroppedMask


def run_box(
    feats: YolactFeatures, box: np.ndarray, label: int | None, rule: str = DEFAULT_PRIOR_RULE
) -> tuple[BoxResult, AssembledMasks]:
    """Mask for a checked pixel box; also returns the assembled stages (for the trace)."""
    box_rel = relative_box(box, feats.image_size).to(feats.proto.device)
    prior, iou = choose_prior(feats, box_rel, rule)
    probs = feats.conf[prior, 1:]
    if label is None:
        label = int(torch.argmax(probs))
    coeffs = feats.coeffs[prior : prior + 1]
    assembled = assemble_masks(feats.proto, coeffs, box_rel)
    mask = instance_masks(assembled, feats.image_size)[0]
    return BoxResult(prior, iou, label, float(probs[label]), coeffs, box_rel, mask), assembled


@dataclass
class PointCandidate:
    prior: int
    label: int
    score: float
    box_rel: np.ndarray  # [4]
    mask: CroppedMask


def point_candidates(
    feats: YolactFeatures, x: float, y: float, conf_thresh: float, max_candidates: int
) -> list[PointCandidate]:
    """Priors before NMS whose masks cover (x, y), best class score first, de-duplicated."""
    h, w = feats.image_size
    rx, ry = (x + 0.5) / w, (y + 0.5) / h  # the clicked pixel's centre, relative
    score, label = feats.best
    b = feats.boxes
    ok = (score > conf_thresh) & (b[:, 0] <= rx) & (rx <= b[:, 2]) & (b[:, 1] <= ry) & (ry <= b[:, 3])
    idx = torch.nonzero(ok).flatten()
    if idx.numel() == 0:
        return []
    idx = idx[torch.argsort(score[idx], descending=True, stable=True)][: max_candidates * POINT_PRIORS_PER_CANDIDATE]
    # Prototype resolution first: which masks cover the point's cell, and which repeat a better one.
    assembled = assemble_masks(feats.proto, feats.coeffs[idx], b[idx])
    binary = assembled.cropped > 0.5  # [T, Hp, Wp]
    hp, wp = binary.shape[1:]
    row, col = min(int(ry * hp), hp - 1), min(int(rx * wp), wp - 1)
    flat = binary.reshape(len(idx), -1).float()
    inter = flat @ flat.t()
    area = flat.sum(1)
    iou = inter / (area[:, None] + area[None, :] - inter).clamp(min=1)
    chosen: list[int] = []
    for i in range(len(idx)):
        if binary[i, row, col] and all(float(iou[i, j]) < DEDUP_IOU for j in chosen):
            chosen.append(i)
            if len(chosen) == max_candidates:
                break
    if not chosen:
        return []
    sel = torch.tensor(chosen, dtype=torch.long, device=idx.device)
    priors = idx[sel]
    stage = assemble_masks(feats.proto, feats.coeffs[priors], b[priors])
    masks = instance_masks(stage, feats.image_size)
    boxes = b[priors].cpu().numpy()
    found = [
        PointCandidate(int(priors[i]), int(label[priors[i]]), float(score[priors[i]]), boxes[i], masks[i])
        for i in range(len(chosen))
        if covers(masks[i], x, y)
    ]
    return [found[i] for i in dedupe([c.mask for c in found])]
