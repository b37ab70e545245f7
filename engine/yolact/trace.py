"""What the YOLACT inspector shows: prototypes, coefficients and every mask stage per detection.

Stages follow the official postprocess order (yolact-spec.md section 10): the linear combination
``proto @ coefficients`` (``assembled``), its ``sigmoid``, then the crop to the box + 1 px at
prototype resolution (``cropped``), which is what gets resized to the image and thresholded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from engine.masks import CroppedMask
from engine.yolact.boxes import crop, sanitize_coordinates
from engine.yolact.postprocess import AssembledMasks, crop_ranges, instance_masks


@dataclass(frozen=True)
class PromptPrior:
    """Where a box prompt's coefficients came from (engine.yolact.prompt)."""

    index: int  # row of the network's prior list
    box_rel: np.ndarray  # [4] that prior's decoded box, relative x1y1x2y2
    iou: float  # IoU of that box with the prompt box
    rule: str  # the selection rule ("iou" or "iou_conf")


@dataclass
class YolactTrace:
    """Index i of every per-detection array is instance i of the ``Prediction``."""

    input_size: tuple[int, int]  # network input (height, width)
    image_size: tuple[int, int]  # original image (height, width)
    prototypes: np.ndarray  # [Hp, Wp, k] float32, >= 0
    coefficients: np.ndarray  # [N, k] float32 in (-1, 1)
    boxes_rel: np.ndarray  # [N, 4] decoded x1y1x2y2 relative to the image, unclipped
    boxes_abs: np.ndarray  # [N, 4] int64 pixels (clamped, truncated: the official output)
    crop_boxes: np.ndarray  # [N, 4] float x1', y1', x2', y2' of the crop at prototype resolution
    classes: np.ndarray  # [N] int64 class index
    scores: np.ndarray  # [N] float32
    assembled: np.ndarray  # [N, Hp, Wp] proto @ coefficients (logits), before sigmoid and crop
    sigmoid: np.ndarray  # [N, Hp, Wp] sigmoid(assembled), before the crop
    cropped: np.ndarray  # [N, Hp, Wp] sigmoid, then zero outside the crop box
    nms_mode: str = "fast"
    # Set for the trace of a box prompt (Segmenter.trace_box): its one "detection" is the prompt box,
    # with the coefficients of this prior; boxes_rel is the user's box, not the prior's.
    prompt: PromptPrior | None = None

    def __len__(self) -> int:
        return int(self.coefficients.shape[0])

    def __repr__(self) -> str:
        return (
            f"YolactTrace({len(self)} detections, {self.num_prototypes} prototypes of {self.proto_size}, "
            f"input {self.input_size}, image {self.image_size})"
        )

    @property
    def num_prototypes(self) -> int:
        return int(self.prototypes.shape[-1])

    @property
    def proto_size(self) -> tuple[int, int]:
        return int(self.prototypes.shape[0]), int(self.prototypes.shape[1])


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float32).numpy().copy()


def crop_boxes_proto(boxes: torch.Tensor, hp: int, wp: int, padding: int = 1) -> torch.Tensor:
    """The float crop bounds ``boxes.crop`` uses, as [N, 4] x1', y1', x2', y2' in prototype pixels."""
    x1, x2 = sanitize_coordinates(boxes[:, 0], boxes[:, 2], wp, padding)
    y1, y2 = sanitize_coordinates(boxes[:, 1], boxes[:, 3], hp, padding)
    return torch.stack([x1, y1, x2, y2], dim=1)


def build_trace(
    proto: torch.Tensor,
    det: dict[str, torch.Tensor] | None,
    assembled: AssembledMasks | None,
    boxes_abs: torch.Tensor | None,
    input_size: tuple[int, int],
    image_size: tuple[int, int],
    nms_mode: str = "fast",
) -> YolactTrace:
    """Collect the trace of one image from the tensors the prediction itself used."""
    hp, wp, k = proto.shape
    if det is None or assembled is None or boxes_abs is None:
        empty = np.zeros((0, hp, wp), np.float32)
        return YolactTrace(
            input_size=input_size,
            image_size=image_size,
            prototypes=_np(proto),
            coefficients=np.zeros((0, k), np.float32),
            boxes_rel=np.zeros((0, 4), np.float32),
            boxes_abs=np.zeros((0, 4), np.int64),
            crop_boxes=np.zeros((0, 4), np.float32),
            classes=np.zeros(0, np.int64),
            scores=np.zeros(0, np.float32),
            assembled=empty,
            sigmoid=empty.copy(),
            cropped=empty.copy(),
            nms_mode=nms_mode,
        )
    return YolactTrace(
        input_size=input_size,
        image_size=image_size,
        prototypes=_np(proto),
        coefficients=_np(det["mask"]),
        boxes_rel=_np(det["box"]),
        boxes_abs=boxes_abs.cpu().numpy().astype(np.int64),
        crop_boxes=_np(crop_boxes_proto(det["box"], hp, wp)),
        classes=det["class"].cpu().numpy().astype(np.int64),
        scores=_np(det["score"]),
        assembled=_np(assembled.logits),
        sigmoid=_np(assembled.sigmoid),
        cropped=_np(assembled.cropped),
        nms_mode=nms_mode,
    )


def recompose_mask(
    trace: YolactTrace, det_index: int, enabled_prototypes: np.ndarray | list[bool], image_mask: bool = False
) -> dict[str, np.ndarray | CroppedMask]:
    """Recompute detection ``det_index``'s mask stages using only the enabled prototypes.

    A disabled prototype contributes nothing (its coefficient is taken as 0). Returns
    ``assembled``, ``sigmoid``, ``cropped`` ([Hp, Wp] each) and, with ``image_mask``, ``mask``: the
    thresholded mask in image pixels (``CroppedMask``), computed as the prediction does.
    """
    enabled = np.asarray(enabled_prototypes, dtype=bool)
    if enabled.shape != (trace.num_prototypes,):
        raise ValueError(f"enabled_prototypes needs {trace.num_prototypes} flags, got shape {enabled.shape}")
    if not 0 <= det_index < len(trace):
        raise IndexError(f"detection {det_index} out of range (trace has {len(trace)})")
    proto = torch.from_numpy(trace.prototypes)
    coef = torch.from_numpy(trace.coefficients[det_index] * enabled.astype(np.float32))
    box = torch.from_numpy(trace.boxes_rel[det_index : det_index + 1])
    logits = proto @ coef[:, None]  # [Hp, Wp, 1]
    sig = torch.sigmoid(logits)
    cropped = crop(sig, box)[..., 0]
    out: dict[str, np.ndarray | CroppedMask] = {
        "assembled": logits[..., 0].numpy(),
        "sigmoid": sig[..., 0].numpy(),
        "cropped": cropped.numpy(),
    }
    if image_mask:
        rows, cols = crop_ranges(box, *trace.proto_size)
        one = AssembledMasks(logits.permute(2, 0, 1), sig.permute(2, 0, 1), cropped[None], rows, cols)
        out["mask"] = instance_masks(one, trace.image_size)[0]
    return out
