"""How Mask R-CNN's 28x28 mask probabilities become the instance mask (RoI inspector, step 7).

The same steps as ``engine.maskrcnn.paste.paste_masks_cropped`` (torchvision's
``paste_masks_in_image``) for one detection, keeping the probabilities: pad the 28x28 map by one
cell (30x30), grow the box by 30/28 around its centre, truncate it to integers, resize the padded
map bilinearly to that integer box, keep the part inside the image and threshold at 0.5.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.models.detection.roi_heads import expand_boxes, expand_masks

from engine.inspect.availability import InspectionError
from engine.maskrcnn.paste import PADDING
from engine.maskrcnn.trace import MaskRCNNTrace


def _fmt(value: float) -> str:
    return f"{float(value) + 0.0:.6g}"


@dataclass(frozen=True)
class MaskPasteInspection:
    det_index: int
    class_name: str
    probs: np.ndarray  # float32 (m, m): sigmoid mask of the predicted class, box-relative
    threshold: float
    padding: int
    padded: np.ndarray  # float32 (m + 2p, m + 2p)
    growth: float  # (m + 2p) / m: how much the box grows so the padded map covers it
    box_image: tuple[float, float, float, float]  # refined box, original image pixels
    expanded_box: tuple[float, float, float, float]
    int_box: tuple[int, int, int, int]  # truncated expanded box (x0, y0, x1, y1), inclusive ends
    placed: tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive) of the part inside the image
    patch: np.ndarray  # float32 (y1 - y0, x1 - x0) probabilities pasted into the image
    image_size: tuple[int, int]

    @property
    def bits(self) -> np.ndarray:
        """The thresholded patch: the instance mask inside ``placed``."""
        return self.patch > self.threshold

    @property
    def area(self) -> int:
        return int(self.bits.sum())

    @property
    def cells_above(self) -> int:
        """How many of the m x m probabilities exceed the threshold."""
        return int((self.probs > self.threshold).sum())

    def lines(self) -> list[str]:
        m = self.probs.shape[0]
        p = self.padded.shape[0]
        x0, y0, x1, y1 = self.int_box
        px0, py0, px1, py1 = self.placed
        return [
            f"mask head output for '{self.class_name}': {m}x{m} probabilities "
            f"({self.cells_above} of {m * m} above {_fmt(self.threshold)})",
            f"padded by {self.padding} cell of zeros: {p}x{p}; box grown by {p}/{m} = {_fmt(self.growth)} around "
            f"its centre so the padded map covers it",
            "box ("
            + ", ".join(_fmt(v) for v in self.box_image)
            + ") -> ("
            + ", ".join(_fmt(v) for v in self.expanded_box)
            + f") -> integer ({x0}, {y0}, {x1}, {y1})",
            f"{p}x{p} map resized bilinearly to {y1 - y0 + 1} x {x1 - x0 + 1} pixels (h x w), "
            f"kept inside the image: x {px0}..{px1 - 1}, y {py0}..{py1 - 1}",
            f"pixels with probability > {_fmt(self.threshold)}: {self.area}",
        ]


def inspect_mask_paste(
    trace: MaskRCNNTrace,
    det_index: int,
    box_image: np.ndarray,
    threshold: float = 0.5,
    class_names: list[str] | None = None,
) -> MaskPasteInspection:
    """Paste detection ``det_index``'s mask probabilities into ``box_image`` (the instance's box in
    original pixels, ``Instance.box``), keeping every intermediate."""
    if not isinstance(trace, MaskRCNNTrace):
        raise InspectionError(f"Mask pasting is Mask R-CNN's; got a {type(trace).__name__}.")
    if not 0 <= det_index < len(trace.detections):
        raise InspectionError(f"Detection {det_index} is not in the trace ({len(trace.detections)} detections).")
    det = trace.detections[det_index]
    im_h, im_w = trace.original_size
    probs = torch.from_numpy(np.ascontiguousarray(det.mask_probs, dtype=np.float32))
    box = torch.as_tensor(np.asarray(box_image, dtype=np.float32).reshape(1, 4))
    padded, growth = expand_masks(probs[None, None], padding=PADDING)  # (1, 1, m+2p, m+2p)
    expanded = expand_boxes(box, growth)
    bx0, by0, bx1, by1 = expanded.to(dtype=torch.int64)[0].tolist()
    w, h = max(bx1 - bx0 + 1, 1), max(by1 - by0 + 1, 1)
    x0, x1 = max(bx0, 0), min(bx1 + 1, im_w)
    y0, y1 = max(by0, 0), min(by1 + 1, im_h)
    if x1 <= x0 or y1 <= y0:
        patch = np.zeros((0, 0), np.float32)
        x1, y1 = x0, y0
    else:
        resized = F.interpolate(padded[0][None], size=(h, w), mode="bilinear", align_corners=False)[0, 0]
        patch = resized[y0 - by0 : y1 - by0, x0 - bx0 : x1 - bx0].numpy().copy()
    names = class_names or []
    b = box[0].tolist()
    e = expanded[0].tolist()
    return MaskPasteInspection(
        det_index=det_index,
        class_name=names[det.label] if 0 <= det.label < len(names) else f"class {det.label}",
        probs=probs.numpy().copy(),
        threshold=float(threshold),
        padding=PADDING,
        padded=padded[0, 0].numpy().copy(),
        growth=float(growth),
        box_image=(b[0], b[1], b[2], b[3]),
        expanded_box=(e[0], e[1], e[2], e[3]),
        int_box=(bx0, by0, bx1, by1),
        placed=(x0, y0, x1, y1),
        patch=patch,
        image_size=(im_h, im_w),
    )
