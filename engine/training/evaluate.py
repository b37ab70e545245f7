"""COCO mask and box AP of a segmenter on a ground-truth set, with pycocotools' COCOeval.

The ground truth is rebuilt from the loaded masks (the same pixels training sees) as RLE, so
polygon and RLE sets are scored alike. Predictions are matched to the ground truth classes by
name; classes the model does not know score 0 where they have ground truth.
"""

from __future__ import annotations

import contextlib
import io
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from engine.errors import DataError
from engine.segmenter import Segmenter
from engine.training.data import Cancelled, CocoSource, ImageRecord, load_sample

STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl")


def _rle_bytes(mask: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"]}


def _quiet_coco(dataset: dict) -> COCO:
    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def _per_class(ev: COCOeval, cat_ids: Sequence[int]) -> dict[int, tuple[float, float]]:
    """(AP, AP50) per category id, area 'all', maxDets 100; -1 where the class has no GT."""
    prec = ev.eval["precision"]  # [T iou, R recall, K cat, A area, M maxdets]
    out = {}
    for k, cid in enumerate(ev.params.catIds):
        if cid not in cat_ids:
            continue
        p = prec[:, :, k, 0, -1]
        p50 = prec[0, :, k, 0, -1]
        ap = float(p[p > -1].mean()) if (p > -1).any() else -1.0
        ap50 = float(p50[p50 > -1].mean()) if (p50 > -1).any() else -1.0
        out[cid] = (ap, ap50)
    return out


def _run_cocoeval(gt: COCO, results: list[dict], iou_type: str) -> tuple[dict, dict]:
    cat_ids = [c["id"] for c in gt.dataset["categories"]]
    if not results:  # loadRes refuses an empty list: no detection means AP 0 where there is GT
        has_gt = {cid: bool(gt.getAnnIds(catIds=[cid])) for cid in cat_ids}
        stats = dict.fromkeys(STAT_NAMES, 0.0 if any(has_gt.values()) else -1.0)
        return stats, {cid: ((0.0, 0.0) if has_gt[cid] else (-1.0, -1.0)) for cid in cat_ids}
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(results)
        ev = COCOeval(gt, dt, iou_type)
        ev.params.imgIds = sorted(gt.getImgIds())
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    stats = {name: float(v) for name, v in zip(STAT_NAMES, ev.stats[:6], strict=True)}
    return stats, _per_class(ev, cat_ids)


def evaluate_segmenter(
    segmenter: Segmenter,
    source: CocoSource,
    image_ids: Sequence[int] | None = None,
    score_thresh: float = 0.05,
    max_dets: int = 100,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
) -> dict:
    """Mask and box AP/AP50/AP75 (+ small/medium/large) and per-class AP/AP50 on ``image_ids``
    (default: every image of ``source``). Returns a plain, JSON-ready dict."""
    records: list[ImageRecord] = source.subset(image_ids) if image_ids is not None else list(source.records)
    if not records:
        raise DataError(f"{source.json_path}: no images to evaluate on")
    name_to_cat = dict(zip(source.classes, source.category_ids, strict=True))
    model_cat = [name_to_cat.get(name) for name in segmenter.class_names]

    images: list[dict[str, Any]] = []
    gt_anns: list[dict[str, Any]] = []
    segm_res: list[dict[str, Any]] = []
    bbox_res: list[dict[str, Any]] = []
    old_thresh = segmenter.score_thresh
    segmenter.score_thresh = score_thresh  # low threshold: AP integrates over the score ranking
    try:
        for n, rec in enumerate(records):
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            image, masks, labels, crowd = load_sample(rec)
            h, w = image.shape[:2]
            images.append({"id": rec.image_id, "height": h, "width": w, "file_name": rec.path.name})
            for m, label, c in zip(masks, labels, crowd, strict=True):
                rle = _rle_bytes(m)
                x, y, bw, bh = (float(v) for v in mask_utils.toBbox(rle))
                gt_anns.append(
                    {
                        "id": len(gt_anns) + 1,
                        "image_id": rec.image_id,
                        "category_id": source.category_ids[int(label)],
                        "segmentation": rle,
                        "area": float(m.sum()),
                        "bbox": [x, y, bw, bh],
                        "iscrowd": int(c),
                    }
                )
            pred = segmenter.predict(image)
            for inst in pred.instances[:max_dets]:
                cid = model_cat[inst.label] if 0 <= inst.label < len(model_cat) else None
                if cid is None:
                    continue  # a class the ground truth does not have
                x1, y1, x2, y2 = (float(v) for v in inst.box)
                score = float(inst.score)
                segm_res.append(
                    {
                        "image_id": rec.image_id,
                        "category_id": cid,
                        "segmentation": _rle_bytes(inst.mask.to_full()),
                        "score": score,
                    }
                )
                bbox_res.append(
                    {"image_id": rec.image_id, "category_id": cid, "bbox": [x1, y1, x2 - x1, y2 - y1], "score": score}
                )
            if progress is not None:
                progress(n + 1, len(records))
    finally:
        segmenter.score_thresh = old_thresh

    categories = [{"id": cid, "name": name} for name, cid in name_to_cat.items()]
    gt = _quiet_coco({"images": images, "annotations": gt_anns, "categories": categories})
    mask_stats, mask_pc = _run_cocoeval(gt, segm_res, "segm")
    box_stats, box_pc = _run_cocoeval(gt, bbox_res, "bbox")
    n_gt = {cid: 0 for cid in source.category_ids}
    for a in gt_anns:
        n_gt[a["category_id"]] += 1
    per_class = {
        name: {
            "mask_AP": mask_pc[cid][0],
            "mask_AP50": mask_pc[cid][1],
            "box_AP": box_pc[cid][0],
            "box_AP50": box_pc[cid][1],
            "instances": n_gt[cid],
        }
        for name, cid in name_to_cat.items()
    }
    return {
        "mask": mask_stats,
        "box": box_stats,
        "per_class": per_class,
        "images": len(records),
        "instances": len(gt_anns),
        "detections": len(segm_res),
        "score_thresh": score_thresh,
    }


def format_ap_table(metrics: dict) -> str:
    """A plain-text table: overall mask/box AP rows, then one row per class."""
    lines = [f"{'':<16}{'AP':>8}{'AP50':>8}{'AP75':>8}{'APs':>8}{'APm':>8}{'APl':>8}"]
    for kind in ("mask", "box"):
        s = metrics[kind]
        lines.append(f"{kind:<16}" + "".join(f"{s[k]:>8.3f}" for k in STAT_NAMES))
    lines.append("")
    lines.append(f"{'class':<16}{'mask AP':>9}{'AP50':>8}{'box AP':>9}{'AP50':>8}{'GT':>6}")
    for name, pc in metrics["per_class"].items():
        lines.append(
            f"{name[:15]:<16}{pc['mask_AP']:>9.3f}{pc['mask_AP50']:>8.3f}{pc['box_AP']:>9.3f}"
            f"{pc['box_AP50']:>8.3f}{pc['instances']:>6d}"
        )
    lines.append(
        f"{metrics['images']} images, {metrics['instances']} instances, {metrics['detections']} detections "
        f"(score >= {metrics['score_thresh']})"
    )
    return "\n".join(lines)
