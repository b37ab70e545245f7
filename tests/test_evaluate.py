"""COCO evaluation of a segmenter: exact ground truth scores 1.0, shifted masks score less, unknown
classes score 0, and the numbers agree with pycocotools run directly on the files."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from engine.masks import CroppedMask, encode_rle
from engine.segmenter import Instance, Prediction, Segmenter
from engine.synthetic import write_coco_dataset
from engine.training.data import decode_segmentation, load_coco_source
from engine.training.evaluate import evaluate_segmenter, format_ap_table

ROOT = Path(__file__).resolve().parents[1]


class OracleSegmenter(Segmenter):
    """Answers with the ground truth of the image it is shown (found by its pixels), optionally
    with masks shifted right by ``shift`` pixels, scored ``score``."""

    architecture = "oracle"

    def __init__(self, source, class_names, shift=0, drop_class=None):
        super().__init__(torch.nn.Identity(), "oracle", class_names, "cpu", 0.5)
        from engine.training.data import read_rgb

        self.by_pixels = {}
        for rec in source.records:
            self.by_pixels[read_rgb(rec.path).tobytes()] = rec
        self.source = source
        self.shift = shift
        self.drop_class = drop_class
        self.thresholds_seen = []

    def losses(self, images, targets):
        raise NotImplementedError

    def _predict(self, image, trace):
        self.thresholds_seen.append(self.score_thresh)
        rec = self.by_pixels[image.tobytes()]
        h, w = image.shape[:2]
        out = []
        for k, ann in enumerate(rec.annotations):
            name = self.source.classes[ann["label"]]
            if name == self.drop_class:
                continue
            m = decode_segmentation(ann["segmentation"], h, w)
            if self.shift:
                m = np.roll(m, self.shift, axis=1)
            cm = CroppedMask.from_full(m)
            x, y, bw, bh = cm.bbox_xywh()
            box = np.array([x, y, x + bw, y + bh], np.float32)
            out.append(Instance(self.class_names.index(name), 0.9 - 0.01 * k, box, cm))
        return Prediction((h, w), out, self.class_names)


@pytest.fixture(scope="module")
def gt_set(tmp_path_factory) -> Path:
    return write_coco_dataset(tmp_path_factory.mktemp("gt"), 6, 96, ("circle", "square", "star"), seed=11)


def test_exact_ground_truth_scores_one(gt_set):
    src = load_coco_source(gt_set)
    seg = OracleSegmenter(src, src.classes)
    m = evaluate_segmenter(seg, src)
    assert m["mask"]["AP"] == pytest.approx(1.0) and m["box"]["AP"] == pytest.approx(1.0)
    assert m["mask"]["AP50"] == pytest.approx(1.0) and m["mask"]["AP75"] == pytest.approx(1.0)
    assert all(pc["mask_AP"] == pytest.approx(1.0) for pc in m["per_class"].values() if pc["instances"])
    assert m["images"] == 6 and m["detections"] == m["instances"] > 0
    assert seg.thresholds_seen == [0.05] * 6 and seg.score_thresh == 0.5  # low threshold, restored after
    json.dumps(m)  # plain, JSON-ready
    table = format_ap_table(m)
    assert "mask" in table and "circle" in table and "1.000" in table


def test_shifted_masks_score_lower(gt_set):
    src = load_coco_source(gt_set)
    m1 = evaluate_segmenter(OracleSegmenter(src, src.classes, shift=2), src)
    m4 = evaluate_segmenter(OracleSegmenter(src, src.classes, shift=6), src)
    assert 0 < m4["mask"]["AP"] < m1["mask"]["AP"] < 1.0
    assert m4["mask"]["AP75"] < m4["mask"]["AP50"]


def test_unknown_and_missing_classes(gt_set):
    src = load_coco_source(gt_set)
    # the model lacks 'star' and names an extra class the GT does not have
    seg = OracleSegmenter(src, ["square", "hexagon", "circle", "star"], drop_class="star")
    m = evaluate_segmenter(seg, src)
    assert m["per_class"]["circle"]["mask_AP"] == pytest.approx(1.0)
    assert m["per_class"]["star"]["mask_AP"] == 0.0 and m["per_class"]["star"]["instances"] > 0
    assert "hexagon" not in m["per_class"]
    # a subset of images only
    ids = [r.image_id for r in src.records][:2]
    assert evaluate_segmenter(OracleSegmenter(src, src.classes), src, ids)["images"] == 2


def test_no_detections_scores_zero(gt_set):
    src = load_coco_source(gt_set)

    class Blind(OracleSegmenter):
        def _predict(self, image, trace):
            return Prediction(image.shape[:2], [], self.class_names)

    m = evaluate_segmenter(Blind(src, src.classes), src)
    assert m["mask"]["AP"] == 0.0 and m["detections"] == 0
    assert all(pc["mask_AP50"] == 0.0 for pc in m["per_class"].values() if pc["instances"])


def test_matches_pycocotools_on_files(gt_set, tmp_path):
    """Our numbers equal COCOeval run directly on the GT file and a results file."""
    src = load_coco_source(gt_set)
    seg = OracleSegmenter(src, src.classes, shift=3)
    ours = evaluate_segmenter(seg, src)
    results = []
    seg.score_thresh = 0.05
    for rec in src.records:
        from engine.training.data import read_rgb

        for inst in seg.predict(read_rgb(rec.path)).instances:
            results.append(
                {
                    "image_id": rec.image_id,
                    "category_id": src.category_ids[inst.label],
                    "segmentation": encode_rle(inst.mask.to_full()),
                    "score": inst.score,
                }
            )
    res_path = tmp_path / "res.json"
    res_path.write_text(json.dumps(results))
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_set))
        ev = COCOeval(gt, gt.loadRes(str(res_path)), "segm")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    assert ours["mask"]["AP"] == pytest.approx(ev.stats[0], abs=1e-9)
    assert ours["mask"]["AP50"] == pytest.approx(ev.stats[1], abs=1e-9)


def test_eval_cli_reports_clear_error_for_missing_files(tmp_path):
    r = subprocess.run(
        [
            sys.executable,
            "main.py",
            "eval",
            "--coco",
            str(tmp_path / "x.json"),
            "--weights",
            str(tmp_path / "w.safetensors"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 1 and "error:" in r.stderr and "x.json" in r.stderr
