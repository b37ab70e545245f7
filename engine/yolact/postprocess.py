"""From Detect's output to boxes and masks in original image pixels (yolact-spec.md section 10).

``postprocess_reference`` is the official full-image path, quirks included (in-place box edit,
four references to one empty tensor). ``instance_masks`` gives the same masks bit for bit but
only computes each one inside the region where it can be non-zero, so memory grows with object
area instead of image area times detections.

Why the compact path is exact: PyTorch's generic bilinear kernel computes every output pixel as
``t0 * h0 + t1 * h1`` with ``t = x0 * w0 + x1 * w1`` along the row, with weights that depend only
on the output index and the two sizes. Resizing one axis to its own size gives weights (1, 0), an
exact copy. So a width-only pass (rows unchanged) followed by a height-only pass (columns
unchanged) performs the very same float operations as the one-pass resize, and each pass can be
restricted to the rows / columns that are not all zero. PyTorch's CPU channels-last kernel (used
for outputs with h + w <= 128, and for 3 channels on one thread) groups the products differently;
the passes are padded so that they never take it, and where the official call takes it, that call
is made as is. Tests compare both paths on random tensors, float for float. (On CUDA the kernel
computes ``h0 * (w0 * x00 + w1 * x01) + h1 * (...)`` too; not tested here, there is no GPU.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from engine.masks import CroppedMask
from engine.yolact.boxes import crop, sanitize_coordinates


def filter_by_score(det: dict[str, torch.Tensor] | None, score_threshold: float) -> dict[str, torch.Tensor] | None:
    """Keep ``score > score_threshold`` (strict) when the threshold is > 0; None when nothing is left."""
    if det is None:
        return None
    if score_threshold > 0:
        keep = det["score"] > score_threshold
        det = {k: (v if k == "proto" else v[keep]) for k, v in det.items()}
        if det["score"].size(0) == 0:
            return None
    return det


def postprocess_reference(
    det_output: list[dict[str, torch.Tensor] | None],
    w: int,
    h: int,
    batch_idx: int = 0,
    interpolation_mode: str = "bilinear",
    crop_masks: bool = True,
    score_threshold: float = 0,
) -> list[torch.Tensor] | tuple[torch.Tensor, ...]:
    """The official postprocess: (classes, scores, boxes int64 [N,4], masks float 0/1 [N,h,w]).

    Modifies ``det['box']`` in place and returns ``[torch.Tensor()] * 4`` when empty, like the
    original (quirk 11). Allocates N full-image masks: for checks, not for the app.
    """
    dets = det_output[batch_idx]
    if dets is None:
        return [torch.Tensor()] * 4
    if score_threshold > 0:
        keep = dets["score"] > score_threshold
        for k in dets:
            if k != "proto":
                dets[k] = dets[k][keep]
        if dets["score"].size(0) == 0:
            return [torch.Tensor()] * 4
    classes, boxes, scores, masks = dets["class"], dets["box"], dets["score"], dets["mask"]
    masks = torch.sigmoid(dets["proto"] @ masks.t())
    if crop_masks:
        masks = crop(masks, boxes)
    masks = masks.permute(2, 0, 1).contiguous()
    masks = F.interpolate(masks.unsqueeze(0), (h, w), mode=interpolation_mode, align_corners=False).squeeze(0)
    masks.gt_(0.5)
    boxes[:, 0], boxes[:, 2] = sanitize_coordinates(boxes[:, 0], boxes[:, 2], w)
    boxes[:, 1], boxes[:, 3] = sanitize_coordinates(boxes[:, 1], boxes[:, 3], h)
    boxes = boxes.long()
    return classes, scores, boxes, masks


def absolute_boxes(boxes: torch.Tensor, w: int, h: int) -> torch.Tensor:
    """Relative x1y1x2y2 -> int64 pixels: scale, min/max swap, clamp to [0, size], truncate (quirk 9).

    Same values as the official in-place edit, on a copy.
    """
    boxes = boxes.clone()
    boxes[:, 0], boxes[:, 2] = sanitize_coordinates(boxes[:, 0], boxes[:, 2], w)
    boxes[:, 1], boxes[:, 3] = sanitize_coordinates(boxes[:, 1], boxes[:, 3], h)
    return boxes.long()


@dataclass
class AssembledMasks:
    """The mask stages at prototype resolution, [N, Hp, Wp] each (official order: sigmoid, then crop)."""

    logits: torch.Tensor  # proto @ coefficients
    sigmoid: torch.Tensor  # sigmoid(logits), before the crop
    cropped: torch.Tensor  # sigmoid then crop to the box + 1 px: what gets upsampled
    crop_rows: np.ndarray  # [N, 2] kept row range [r0, r1) at proto resolution
    crop_cols: np.ndarray  # [N, 2] kept column range [c0, c1)


def crop_ranges(boxes: torch.Tensor, hp: int, wp: int, padding: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Integer row / column ranges [start, end) that ``boxes.crop`` keeps, per box ([N, 2] each).

    Uses the same float comparisons as ``crop`` so the two always agree.
    """

    def ranges(lo: torch.Tensor, hi: torch.Tensor, size: int) -> np.ndarray:
        idx = torch.arange(size, device=lo.device, dtype=lo.dtype)
        keep = ((idx[None, :] >= lo[:, None]) & (idx[None, :] < hi[:, None])).cpu().numpy()
        start = np.where(keep.any(1), keep.argmax(1), 0)
        count = keep.sum(1)  # the kept set is an interval
        return np.stack([start, start + count], axis=1).astype(np.int64)

    x1, x2 = sanitize_coordinates(boxes[:, 0], boxes[:, 2], wp, padding)
    y1, y2 = sanitize_coordinates(boxes[:, 1], boxes[:, 3], hp, padding)
    return ranges(y1, y2, hp), ranges(x1, x2, wp)


def assemble_masks(proto: torch.Tensor, coeffs: torch.Tensor, boxes: torch.Tensor) -> AssembledMasks:
    """proto [Hp, Wp, k] @ coeffs [N, k] -> the three stages, exactly as the official postprocess."""
    logits = proto @ coeffs.t()
    sig = torch.sigmoid(logits)
    cropped = crop(sig, boxes)
    rows, cols = crop_ranges(boxes, proto.shape[0], proto.shape[1])
    return AssembledMasks(
        logits=logits.permute(2, 0, 1),
        sigmoid=sig.permute(2, 0, 1),
        cropped=cropped.permute(2, 0, 1).contiguous(),
        crop_rows=rows,
        crop_cols=cols,
    )


def official_kernel_is_channels_last(channels: int, out_h: int, out_w: int, device: torch.device) -> bool:
    """Whether PyTorch's CPU bilinear resize of [1, channels, H, W] to (out_h, out_w) takes its
    channels-last kernel, whose arithmetic differs from the generic kernel's.

    PyTorch picks it for outputs with out_h + out_w <= 128, and for 3 channels on one thread.
    """
    if device.type != "cpu":
        return False
    return out_h + out_w <= _CHANNELS_LAST_MAX_SUM or (channels == 3 and torch.get_num_threads() == 1)


_CHANNELS_LAST_MAX_SUM = 128


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(x[None, None], size=size, mode="bilinear", align_corners=False)[0, 0]


def upsample_columns(
    cropped: torch.Tensor, rows: tuple[int, int], cols: tuple[int, int], image_size: tuple[int, int]
) -> tuple[int, torch.Tensor] | None:
    """Bilinear resize of one cropped mask [Hp, Wp] to ``image_size``, only over the output columns
    that can be non-zero: returns (first column, values [h, n_cols]), or None when all zero.

    The values equal those of ``F.interpolate`` over the full image when that call runs PyTorch's
    generic kernel (see ``official_kernel_is_channels_last``). ``rows`` / ``cols`` bound the
    non-zero pixels of ``cropped``.
    """
    h, w = image_size
    hp = cropped.shape[0]
    r0, r1 = int(rows[0]), int(rows[1])
    if r1 <= r0 or cols[1] <= cols[0]:
        return None
    # Width pass over the band of rows that can be non-zero (height unchanged: an exact copy). Extra
    # zero rows keep the output big enough for the generic kernel; rows do not interact here.
    band_rows = max(r1 - r0, _CHANNELS_LAST_MAX_SUM + 1 - w)
    band = cropped.new_zeros((band_rows, cropped.shape[1]))
    band[: r1 - r0] = cropped[r0:r1]
    wide = _resize(band, (band_rows, w))[: r1 - r0]
    nz = torch.nonzero(wide.amax(0) > 0).flatten()  # values are >= 0: sigmoid times a 0/1 crop
    if nz.numel() == 0:
        return None
    xa, xb = int(nz[0]), int(nz[-1]) + 1
    # Height pass over the non-zero columns (width unchanged: an exact copy), padded the same way.
    width = max(xb - xa, _CHANNELS_LAST_MAX_SUM + 1 - h)
    tall_in = wide.new_zeros((hp, width))
    tall_in[r0:r1, : xb - xa] = wide[:, xa:xb]
    return xa, _resize(tall_in, (h, width))[:, : xb - xa]


def upsample_mask(
    cropped: torch.Tensor, rows: tuple[int, int], cols: tuple[int, int], image_size: tuple[int, int]
) -> CroppedMask:
    """One cropped proto-resolution mask -> its ``> 0.5`` mask in image pixels, as a tight patch."""
    empty = CroppedMask(0, 0, np.zeros((0, 0), dtype=bool), image_size)
    strip = upsample_columns(cropped, rows, cols, image_size)
    if strip is None:
        return empty
    xa, values = strip
    bits = values.gt(0.5)
    rows_on = torch.nonzero(bits.any(1)).flatten()
    if rows_on.numel() == 0:
        return empty
    cols_on = torch.nonzero(bits.any(0)).flatten()
    ya, yb = int(rows_on[0]), int(rows_on[-1]) + 1
    ca, cb = int(cols_on[0]), int(cols_on[-1]) + 1
    return CroppedMask(xa + ca, ya, bits[ya:yb, ca:cb].cpu().numpy(), image_size)


def instance_masks(assembled: AssembledMasks, image_size: tuple[int, int]) -> list[CroppedMask]:
    """Compact image-resolution masks of every detection (same bits as the official path).

    Where the official batched resize would take PyTorch's channels-last kernel (tiny outputs, or
    exactly 3 detections on one thread), it is run as is: its arithmetic cannot be split.
    """
    cropped = assembled.cropped
    n = cropped.shape[0]
    if n == 0:
        return []
    if official_kernel_is_channels_last(n, image_size[0], image_size[1], cropped.device):
        full = F.interpolate(cropped[None], image_size, mode="bilinear", align_corners=False)[0].gt(0.5)
        bits = full.cpu().numpy()
        return [CroppedMask.from_full(bits[i]) for i in range(n)]
    return [upsample_mask(cropped[i], assembled.crop_rows[i], assembled.crop_cols[i], image_size) for i in range(n)]
