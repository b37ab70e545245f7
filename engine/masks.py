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
        """COCO compressed RLE (``counts`` as str) of the full-image mask, built from the patch only."""
        return encode_cropped(self)

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


def counts_from_cropped(mask: CroppedMask) -> np.ndarray:
    """Uncompressed COCO RLE counts (int64) of the full-image mask, built from the patch only."""
    height, width = mask.image_size
    bits = mask.bits
    h, w = bits.shape
    if h == 0 or w == 0 or not bits.any():
        return np.array([height * width], np.int64)
    # Column-major walk over the patch, each column padded with a 0 above and below so that runs
    # never cross columns; run boundaries then map to full-image column-major positions.
    hp = h + 2
    padded = np.zeros((w, hp), np.int8)
    padded[:, 1:-1] = bits.T
    flat = padded.reshape(-1)
    q = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    # full position = (column + x0) * H + (row - 1 + y0), with column, row = divmod(q, hp)
    pos = q + (q // hp) * (height - hp) + (mask.x0 * height + mask.y0 - 1)
    if mask.y0 == 0 and h == height:
        # A run ending on the bottom row and one starting on the top row of the next column are
        # one run in the full image: drop the zero-length gap between them.
        gap = pos[1:-1:2] == pos[2::2]
        if gap.any():
            keep = np.ones(len(pos), bool)
            idx = np.flatnonzero(gap) * 2 + 1
            keep[idx] = False
            keep[idx + 1] = False
            pos = pos[keep]
    n = len(pos)
    counts = np.empty(n + 1, np.int64)
    counts[0] = pos[0]
    counts[1:n] = pos[1:] - pos[:-1]
    counts[n] = height * width - pos[-1]
    return counts if counts[n] else counts[:n]  # pycocotools ends on the last run with pixels


def counts_to_string(counts: np.ndarray, image_size: tuple[int, int]) -> str:
    """pycocotools' compressed form of uncompressed counts (its own C encoder does the work)."""
    height, width = image_size
    rle = mask_utils.frPyObjects([{"size": [height, width], "counts": counts}], height, width)[0]
    return rle["counts"].decode("ascii")


def string_to_counts(s: str | bytes) -> np.ndarray:
    """Decode a compressed RLE string (``rleFrString``), vectorised; ValueError when malformed."""
    if isinstance(s, str):
        try:
            data = s.encode("ascii")
        except UnicodeEncodeError as exc:
            raise ValueError(
                f"character {s[exc.start]!r} at offset {exc.start} cannot occur in compressed RLE"
            ) from None
    else:
        data = bytes(s)
    if not data:
        raise ValueError("the compressed counts string is empty")
    c = np.frombuffer(data, np.uint8).astype(np.int64) - 48
    if (c < 0).any() or (c > 63).any():
        bad = int(np.flatnonzero((c < 0) | (c > 63))[0])
        raise ValueError(f"character {data[bad : bad + 1]!r} at offset {bad} cannot occur in compressed RLE")
    ends = (c & 0x20) == 0
    if not ends[-1]:
        raise ValueError("the compressed counts string ends in the middle of a number")
    starts = np.flatnonzero(np.concatenate(([True], ends[:-1])))
    group = np.cumsum(np.concatenate(([0], ends[:-1].astype(np.int64))))
    k = np.arange(len(c)) - starts[group]
    if k.max() > 11:
        raise ValueError("a run length in the compressed counts string is impossibly long")
    x = np.add.reduceat((c & 0x1F) << (5 * k), starts)
    last = np.flatnonzero(ends)
    negative = (c[last] & 0x10) != 0
    x = np.where(negative, x - (np.int64(1) << (5 * (k[last] + 1))), x)
    counts = x.copy()
    if len(x) > 3:
        counts[3::2] = x[1] + np.cumsum(x[3::2])  # cnts[m] = x[m] + cnts[m - 2] for m > 2
        counts[4::2] = x[2] + np.cumsum(x[4::2])
    return counts


def cropped_from_counts(counts: np.ndarray, image_size: tuple[int, int]) -> CroppedMask:
    """The mask of validated counts (sum == H * W), as a tight patch; no full-image array."""
    height, width = image_size
    counts = np.asarray(counts, np.int64)
    ends = np.cumsum(counts)
    begins = ends - counts
    s1, e1 = begins[1::2], ends[1::2]
    keep = e1 > s1
    s1, e1 = s1[keep], e1[keep]
    if len(s1) == 0:
        return CroppedMask(0, 0, np.zeros((0, 0), bool), (height, width))
    c0, c1 = int(s1[0] // height), int((e1[-1] - 1) // height)
    offset = c0 * height
    n = (c1 - c0 + 1) * height
    delta = np.bincount(s1 - offset, minlength=n + 1) - np.bincount(e1 - offset, minlength=n + 1)
    bits = (np.cumsum(delta[:n]) > 0).reshape(c1 - c0 + 1, height).T
    rows = np.flatnonzero(bits.any(axis=1))
    cols = np.flatnonzero(bits.any(axis=0))
    bits = bits[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    return CroppedMask(c0 + int(cols[0]), int(rows[0]), np.ascontiguousarray(bits), (height, width))


def encode_cropped(mask: CroppedMask) -> dict:
    """COCO compressed RLE ``{"size": [h, w], "counts": str}``; equals pycocotools.mask.encode."""
    height, width = (int(v) for v in mask.image_size)
    return {"size": [height, width], "counts": counts_to_string(counts_from_cropped(mask), (height, width))}
