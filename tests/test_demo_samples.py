"""The bundled samples and the demo models agree: both demo models find every shipped sample shape
with the right class and mask IoU >= 0.9 at the window's default threshold, and the shipped ground
truth is exactly what the recorded generator recipe draws."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.synthetic import DEMO_CLASSES
from engine.training.data import read_rgb
from engine.training.demo import RECIPES, demo_path
from engine.training.demo_samples import (
    DEFAULT_THRESHOLD,
    MIN_MASK_IOU,
    SAMPLE_STREAMS,
    SAMPLES_DIR,
    generate_sample,
    load_ground_truth,
    match_shapes,
)


@pytest.fixture(scope="module")
def ground_truth():
    return load_ground_truth(SAMPLES_DIR)


def test_ground_truth_is_the_recorded_recipe(ground_truth):
    assert len(ground_truth) == len(SAMPLE_STREAMS)
    seen: set[str] = set()
    for (path, masks, names), stream in zip(ground_truth, SAMPLE_STREAMS, strict=True):
        sample = generate_sample(stream)
        assert path.is_file()
        assert names == [DEMO_CLASSES[int(k)] for k in sample.labels]
        assert np.array_equal(masks, sample.masks)
        seen.update(names)
    assert seen == set(DEMO_CLASSES)  # every class the demo knows is on show


@pytest.mark.parametrize("arch", list(RECIPES))
def test_demo_model_gets_every_sample_shape_right(arch, ground_truth):
    from engine.models import load_segmenter

    torch.set_num_threads(1)
    seg = load_segmenter(demo_path(arch), device="cpu", score_thresh=0.05)  # as the window loads it
    own = load_segmenter(demo_path(arch), device="cpu").score_thresh  # the sidecar's (CLI default)
    for path, masks, names in ground_truth:
        pred = seg.predict(read_rgb(path))
        found = (
            [i.mask.to_full() for i in pred.instances],
            [pred.class_name(i) for i in pred.instances],
            [i.score for i in pred.instances],
        )
        for threshold in (DEFAULT_THRESHOLD, own):
            matches, extra = match_shapes(masks, names, *found, threshold)
            for k, m in enumerate(matches):
                assert m.pred_label == m.gt_label, f"{arch} {path.name} shape {k} at {threshold}: {m}"
                assert m.iou >= MIN_MASK_IOU, f"{arch} {path.name} shape {k} at {threshold}: {m}"
            if threshold == DEFAULT_THRESHOLD:
                assert extra == 0, f"{arch} {path.name}: {extra} extra detections in the window"


def test_matching_reports_wrong_class_low_iou_and_extras():
    gt = np.zeros((2, 20, 20), bool)
    gt[0, 2:8, 2:8] = True
    gt[1, 10:18, 10:18] = True
    shifted = np.zeros((20, 20), bool)
    shifted[11:19, 11:19] = True  # IoU 49/79 with gt[1]
    extra = np.zeros((20, 20), bool)
    extra[0:2, 15:20] = True
    matches, n_extra = match_shapes(
        gt,
        ["circle", "ring"],
        [gt[0], shifted, extra, gt[0]],
        ["square", "ring", "star", "circle"],
        [0.9, 0.8, 0.7, 0.3],
    )
    assert [m.pred_label for m in matches] == ["square", "ring"]  # the 0.3 circle is below the threshold
    assert not matches[0].ok and not matches[1].ok
    assert matches[1].iou == pytest.approx(49 / 79)
    assert n_extra == 1
    # Detections claim shapes by score, as in COCO: a weaker exact duplicate cannot take the shape
    # from a stronger detection and is an extra one.
    matches, n_extra = match_shapes(gt, ["circle", "ring"], [gt[1], shifted], ["star", "ring"], [0.55, 0.8])
    assert [m.pred_label for m in matches] == [None, "ring"] and n_extra == 1
