"""Synthetic shapes dataset: seeded, visible masks consistent with the pixels, COCO files that
pycocotools loads."""

from __future__ import annotations

import contextlib
import io
import json

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from engine.synthetic import (
    DEMO_CLASSES,
    MIN_VISIBLE,
    SHAPES,
    UNSEEN_CLASS,
    generate_dataset,
    generate_image,
    shape_mask,
    write_coco_dataset,
)


def test_same_seed_same_images_other_seed_other_images():
    a = list(generate_dataset(3, 64, seed=5))
    b = list(generate_dataset(3, 64, seed=5))
    c = list(generate_dataset(3, 64, seed=6))
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x.image, y.image) and np.array_equal(x.masks, y.masks)
    assert not all(np.array_equal(x.image, z.image) for x, z in zip(a, c, strict=True))
    # image i does not depend on how many are drawn
    assert np.array_equal(list(generate_dataset(5, 64, seed=5))[2].image, a[2].image)


def test_masks_are_visible_disjoint_and_boxes_tight():
    for s in generate_dataset(20, (80, 96), SHAPES, seed=1, n_objects=(2, 5)):
        assert s.image.shape == (80, 96, 3) and s.image.dtype == np.uint8
        assert s.masks.shape[1:] == (80, 96) and len(s.masks) == len(s.labels) >= 1
        assert s.masks.sum(0).max() <= 1  # later shapes hide the earlier ones' pixels
        assert all(0 <= lab < len(SHAPES) for lab in s.labels)
        for m, box in zip(s.masks, s.boxes, strict=True):
            ys, xs = np.nonzero(m)
            assert list(box) == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]


def test_occlusion_keeps_most_of_each_shape_visible():
    rng = np.random.default_rng(3)
    occluded = 0
    for _ in range(30):
        s = generate_image(rng, 96, DEMO_CLASSES, n_objects=(4, 4), radius_range=(0.2, 0.3))
        visible = s.masks.sum((1, 2))
        assert (visible >= MIN_VISIBLE * s.full_areas).all() and visible[-1] == s.full_areas[-1]
        occluded += int((visible < s.full_areas).any())
    assert occluded > 5  # occlusion does happen


def test_shapes_differ_and_ring_has_a_hole():
    masks = {name: shape_mask(name, (64, 64), (32, 32), 20, 0.3) for name in SHAPES}
    areas = {k: int(m.sum()) for k, m in masks.items()}
    assert len(set(areas.values())) == len(SHAPES)
    assert not masks["ring"][32, 32] and masks["circle"][32, 32]
    assert areas["ring"] == pytest.approx(areas["circle"] * (1 - 0.55**2), rel=0.08)
    assert UNSEEN_CLASS in SHAPES and UNSEEN_CLASS not in DEMO_CLASSES
    with pytest.raises(ValueError):
        generate_image(np.random.default_rng(0), 64, ["blob"])


def test_shapes_stand_out_from_the_background():
    for s in generate_dataset(10, 96, seed=2):
        for m in s.masks:
            ring = cv2.dilate(m.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool) & ~s.masks.any(0)
            if ring.sum() < 10:
                continue
            inside = s.image[m].astype(float).mean(0)
            outside = s.image[ring].astype(float).mean(0)
            assert np.linalg.norm(inside - outside) > 30


@pytest.mark.parametrize("fmt", ["png", "jpg"])
def test_write_coco_dataset_loads_in_pycocotools(tmp_path, fmt):
    path = write_coco_dataset(tmp_path, 4, (64, 80), ("star", "cross"), seed=2, image_format=fmt)
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(path))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == ["star", "cross"]
    assert len(coco.getImgIds()) == 4
    for ann in coco.loadAnns(coco.getAnnIds()):
        img = coco.loadImgs(ann["image_id"])[0]
        assert (tmp_path / "images" / img["file_name"]).is_file() and img["file_name"].endswith(fmt)
        m = coco.annToMask(ann)
        assert m.shape == (64, 80) and int(m.sum()) == ann["area"]
        assert list(mask_utils.toBbox(coco.annToRLE(ann))) == pytest.approx(ann["bbox"])
    data = json.loads(path.read_text())
    assert data["info"]["seed"] == 2 and all(isinstance(a["segmentation"]["counts"], str) for a in data["annotations"])
    # the PNG pixels are exactly the generated image
    if fmt == "png":
        first = next(generate_dataset(1, (64, 80), ("star", "cross"), seed=2))
        disk = cv2.cvtColor(cv2.imread(str(tmp_path / "images" / "synthetic_00000.png")), cv2.COLOR_BGR2RGB)
        assert np.array_equal(disk, first.image)
