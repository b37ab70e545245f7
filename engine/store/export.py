"""The project store as a COCO instances dict, streamed image by image.

Masks are stored as COCO's own compressed RLE, so RLE export copies strings; nothing decodes a
mask unless polygons are asked for. Ignore regions (labelme's ``__ignore__``) become crowd
regions (``iscrowd: 1``) of every exported class, which is how COCO's evaluation ignores them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from engine.annotations import IGNORE, Category
from engine.coco_io import SEGMENTATION_MODES, ExportCancelled, ExportStats, coco_document
from engine.errors import AnnotationError
from engine.polygons import trace_polygons
from engine.store.codec import decode_mask, rle_text
from engine.store.store import ProjectStore

REVIEWED = ("in_review", "done")


def build_coco_from_store(
    store: ProjectStore,
    classes: Sequence[Category],
    segmentation: str = "rle",
    *,
    polygon_tolerance: float = 0.0,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> tuple[dict, ExportStats]:
    """Images that were reviewed or hold annotations, their instances of ``classes``, as COCO."""
    if segmentation not in SEGMENTATION_MODES:
        raise ValueError(f"segmentation must be one of {SEGMENTATION_MODES}, got {segmentation!r}")
    start = time.perf_counter()
    stats = ExportStats()
    category_ids = {c.name: c.id for c in classes}
    out_images: list[dict] = []
    out_anns: list[dict] = []
    with store.snapshot():
        total = len(store.images())
        used_ids: set[int] = set()
        pending_ids: list[dict] = []
        for n, (img, rows) in enumerate(store.iter_images_with_annotations()):
            if cancel is not None and cancel():
                raise ExportCancelled("Export cancelled; nothing was written.")
            if progress is not None and (n % 200 == 0 or n + 1 == total):
                progress(n + 1, total)
            if not rows and img.status not in REVIEWED:
                continue
            own_keys = ("id", "file_name", "width", "height")
            entry: dict[str, Any] = {k: v for k, v in img.extra.items() if k not in own_keys}
            if img.coco_id is not None and img.coco_id not in used_ids:
                used_ids.add(img.coco_id)
                entry["id"] = img.coco_id
            else:
                pending_ids.append(entry)
            entry.update(file_name=img.name, width=img.width, height=img.height)
            out_images.append(entry)
            for inst_id, category, x, y, w, h, area, rle, polygons, score, source, iscrowd in rows:
                if not rle:
                    stats.empty_skipped += 1
                    continue
                if category == IGNORE:
                    targets = list(category_ids.values())
                    iscrowd = 1
                elif category in category_ids:
                    targets = [category_ids[category]]
                else:
                    raise AnnotationError(f"{img.name}: instance {inst_id} has class {category!r}, not exported")
                seg = _segmentation(rle, polygons, img.image_size, segmentation, polygon_tolerance, stats)
                for cid in targets:
                    ann: dict[str, Any] = {
                        "id": len(out_anns) + 1,
                        "image_id": entry,  # the image's id is filled in below
                        "category_id": cid,
                        "segmentation": seg,
                        "area": int(area),
                        "bbox": [float(x), float(y), float(w), float(h)],
                        "iscrowd": int(iscrowd),
                    }
                    if segmentation == "auto":
                        if score is not None:
                            ann["score"] = round(score, 6)
                        ann["source"] = source
                    out_anns.append(ann)
    nxt = max(used_ids, default=0) + 1
    for entry in pending_ids:
        entry["id"], nxt = nxt, nxt + 1
    for entry in out_images:  # COCO's key order: id first
        image_id = entry.pop("id")
        rest = dict(entry)
        entry.clear()
        entry["id"] = image_id
        entry.update(rest)
    for ann in out_anns:
        ann["image_id"] = ann["image_id"]["id"]
    info, licenses = store.get_meta("coco_info"), store.get_meta("coco_licenses")
    coco = coco_document(out_images, out_anns, classes, info, licenses)
    stats.images = len(out_images)
    stats.annotations = len(out_anns)
    stats.seconds = time.perf_counter() - start
    return coco, stats


def _segmentation(
    rle: bytes, polygons: str | None, size: tuple[int, int], mode: str, tolerance: float, stats: ExportStats
) -> Any:
    if mode != "rle" and polygons:
        stats.polygons += 1
        return json.loads(polygons)
    if mode == "polygons":
        polys, holes = trace_polygons(decode_mask(rle, size), tolerance)
        if polys and not holes:
            stats.polygons += 1
            return polys
        stats.rle_for_holes += 1
    stats.rle += 1
    return rle_text(rle, size)
