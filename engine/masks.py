"""Compact instance masks: a boolean patch plus its offset in the image, and conversions to RLE.

Memory grows with object area, not with image area times instance count: a mask is stored as
the patch covering its own bounding box only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pycocotools import mask as mask_utils


@dataclass(frozen=True)
class CroppedMask:
    """A binary mask ``bits`` (h, w) placed at column ``x0``, row ``y0`` of an image of ``image_size``."""

    x0: int
    y0: int
    bits: np.ndarray  # bool (h, w)
    image_size: tuple[int, int]  # (height, width) of the full image

    @property
    def area(self) -> int:
        return int(self.bits.sum())

    @property
    def shape(self) -> tuple[int, int]:
        return self.image_size

    def to_full(self) -> np.ndarray:
        """The mask as a full-image bool array (only for display or export of one instance at a time)."""
        full = np.zeros(self.image_size, dtype=bool)
        h, w = self.bits.shape
        full[self.y0 : self.y0 + h, self.x0 : self.x0 + w] = self.bits
        return full

    def to_rle(self) -> dict:
        """COCO compressed RLE (``counts`` as str) of the full-image mask."""
        return encode_rle(self.to_full())

    def tight(self) -> CroppedMask:
        """The same mask cropped to the bounding box of its set pixels (empty masks stay 0x0)."""
        ys, xs = np.nonzero(self.bits)
        if len(ys) == 0:
            return CroppedMask(self.x0, self.y0, np.zeros((0, 0), bool), self.image_size)
        y1, y2, x1, x2 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        return CroppedMask(self.x0 + int(x1), self.y0 + int(y1), self.bits[y1:y2, x1:x2].copy(), self.image_size)

    def bbox_xywh(self) -> list[float]:
        """Tight box of the set pixels in COCO [x, y, w, h] form (zeros when empty)."""
        t = self.tight()
        h, w = t.bits.shape
        if h == 0:
            return [0.0, 0.0, 0.0, 0.0]
        return [float(t.x0), float(t.y0), float(w), float(h)]

    @staticmethod
    def from_full(full: np.ndarray) -> CroppedMask:
        """Crop a full-image mask to its set pixels."""
        full = np.asarray(full, dtype=bool)
        return CroppedMask(0, 0, full, full.shape).tight()

    @staticmethod
    def from_rle(rle: dict) -> CroppedMask:
        return CroppedMask.from_full(decode_rle(rle))


def encode_rle(full: np.ndarray) -> dict:
    """Encode a (H, W) bool mask as COCO compressed RLE with ``counts`` as a str (JSON-ready)."""
    rle = mask_utils.encode(np.asfortranarray(full.astype(np.uint8)))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def decode_rle(rle: dict) -> np.ndarray:
    """Decode COCO RLE (compressed str/bytes or uncompressed list counts) into a (H, W) bool mask."""
    h, w = rle["size"]
    counts = rle["counts"]
    if isinstance(counts, list):
        rle = mask_utils.frPyObjects({"size": [h, w], "counts": counts}, h, w)
    elif isinstance(counts, str):
        rle = {"size": [h, w], "counts": counts.encode("ascii")}
    return mask_utils.decode(rle).astype(bool)


def paste_box_probabilities(
    probs: np.ndarray, box: np.ndarray, image_size: tuple[int, int], threshold: float = 0.5
) -> CroppedMask:
    """Resize a box-relative probability map (e.g. 28x28) into ``box`` and threshold it, cropped.

    Equivalent in spirit to torchvision's ``paste_masks_in_image`` but never allocates a full image.
    """
    import cv2

    h_img, w_img = image_size
    x1, y1, x2, y2 = (float(v) for v in box)
    x0, y0 = max(int(np.floor(x1)), 0), max(int(np.floor(y1)), 0)
    xe, ye = min(int(np.ceil(x2)), w_img), min(int(np.ceil(y2)), h_img)
    if xe <= x0 or ye <= y0:
        return CroppedMask(x0, y0, np.zeros((0, 0), bool), image_size)
    resized = cv2.resize(probs.astype(np.float32), (xe - x0, ye - y0), interpolation=cv2.INTER_LINEAR)
    return CroppedMask(x0, y0, resized > threshold, image_size)
