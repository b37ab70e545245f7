"""Predictions as a COCO *results* file (what ``COCO.loadRes`` / ``COCOeval`` read), plus its image list.

Two files, both written atomically:

- ``OUT`` (e.g. ``results.json``): a plain JSON list, one entry per instance:
  ``{"image_id", "category_id", "bbox": [x, y, w, h], "score", "segmentation": RLE}``; ``bbox`` is the
  predicted box, ``segmentation`` compressed RLE with ``counts`` as a str.
- ``OUT`` with suffix ``.images.json`` (``results.images.json``): ``{"images": [{"id", "file_name",
  "width", "height", "path"}], "categories": [{"id", "name"}], "model": {...}, "failed": [...]}``,
  i.e. a minimal COCO ground-truth skeleton the results can be loaded against.
"""

from __future__ import annotations

import json
from pathlib import Path

from engine.fileio import atomic_write_text
from engine.masks import encode_cropped
from engine.prediction import Instance, Prediction

IMAGES_SUFFIX = ".images.json"


def images_path_for(out: str | Path) -> Path:
    """``results.json`` -> ``results.images.json`` (beside the results file)."""
    out = Path(out)
    return out.with_name(out.stem + IMAGES_SUFFIX) if out.suffix else out.with_name(out.name + IMAGES_SUFFIX)


def instance_result(inst: Instance, image_id: int, category_id: int) -> dict:
    x1, y1, x2, y2 = (float(v) for v in inst.box)
    # A mask whose patch has no set pixel (tiny boxes) is encoded from its empty 0x0 form.
    mask = inst.mask if inst.mask.bits.any() else inst.mask.tight()
    return {
        "image_id": int(image_id),
        "category_id": int(category_id),
        "bbox": [x1, y1, x2 - x1, y2 - y1],
        "score": float(inst.score),
        "segmentation": encode_cropped(mask),  # built from the patch, no full-image array
    }


def prediction_results(pred: Prediction, image_id: int, category_ids: list[int]) -> list[dict]:
    """One results entry per instance; ``category_ids[label]`` maps class index -> COCO category id."""
    return [instance_result(inst, image_id, category_ids[inst.label]) for inst in pred.instances]


def categories(class_names: list[str], category_ids: list[int]) -> list[dict]:
    return [{"id": int(cid), "name": name} for name, cid in zip(class_names, category_ids, strict=True)]


def write_results(
    out: str | Path,
    results: list[dict],
    images: list[dict],
    cats: list[dict],
    extra: dict | None = None,
) -> tuple[Path, Path]:
    """Write the results list to ``out`` and the image list beside it; returns both paths."""
    out = Path(out)
    images_path = images_path_for(out)
    atomic_write_text(out, json.dumps(results, separators=(",", ":")))
    payload = {"images": images, "categories": cats, **(extra or {})}
    atomic_write_text(images_path, json.dumps(payload, indent=1))
    return out, images_path
