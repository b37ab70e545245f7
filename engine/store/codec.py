"""Rows <-> the engine's objects: masks as COCO compressed RLE, polygons as JSON.

The RLE is the full-image COCO string (its length follows the object's width, not the image's
area), so export copies it as it is and display decodes it into a patch without a full-image array.
"""

from __future__ import annotations

import json

import numpy as np

from engine.annotations import AnnotatedInstance
from engine.masks import CroppedMask, counts_from_cropped, counts_to_string, cropped_from_counts, string_to_counts

EMPTY_RLE = b""


def encode_mask(mask: CroppedMask) -> tuple[int, int, int, int, bytes]:
    """(x, y, w, h) of the set pixels and the compressed RLE counts (b'' for an empty mask)."""
    tight = mask.tight()
    h, w = tight.bits.shape
    if h == 0 or w == 0:
        return 0, 0, 0, 0, EMPTY_RLE
    counts = counts_from_cropped(tight)
    return tight.x0, tight.y0, w, h, counts_to_string(counts, tight.image_size).encode("ascii")


def decode_mask(rle: bytes, image_size: tuple[int, int]) -> CroppedMask:
    if not rle:
        return CroppedMask(0, 0, np.zeros((0, 0), bool), image_size)
    return cropped_from_counts(string_to_counts(rle), image_size)


def rle_text(rle: bytes, image_size: tuple[int, int]) -> dict:
    """The COCO segmentation dict of a stored mask (no decoding)."""
    if not rle:
        h, w = image_size
        return {"size": [h, w], "counts": counts_to_string(np.array([h * w], np.int64), image_size)}
    return {"size": [int(image_size[0]), int(image_size[1])], "counts": rle.decode("ascii")}


def polygons_json(inst: AnnotatedInstance) -> str | None:
    return json.dumps([list(p) for p in inst.polygons], separators=(",", ":")) if inst.polygons else None


def instance_from_row(row: tuple, image_size: tuple[int, int]) -> AnnotatedInstance:
    """A row of ``ANNOTATION_COLUMNS`` (class name joined in) -> an instance."""
    inst_id, category, rle, polygons, score, source, iscrowd, prediction_id = row
    mask = decode_mask(rle, image_size)
    polys = tuple(tuple(p) for p in json.loads(polygons)) if polygons else None
    return AnnotatedInstance(inst_id, category, mask, polys, score, source, bool(iscrowd), prediction_id=prediction_id)
