"""COCO export/import, the RLE codec and mask <-> polygon conversion, checked against pycocotools."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from engine.annotations import AnnotatedInstance, ClassList, ImageAnnotations
from engine.coco_io import (
    ExportCancelled,
    build_coco,
    export_coco,
    load_coco,
    parse_coco,
    rle_problem,
)
from engine.errors import AnnotationError
from engine.masks import CroppedMask, counts_to_string, cropped_from_counts, encode_cropped, string_to_counts
from engine.polygons import has_holes, mask_to_polygons, polygons_to_mask, trace_polygons
from engine.project import Project

H, W = 120, 160


# --- shape generators ------------------------------------------------------------------------
def _ellipse(rng, size=(H, W), lo=17, hi=45) -> np.ndarray:
    h, w = size
    m = np.zeros(size, np.uint8)
    axes = (int(rng.integers(lo, hi)), int(rng.integers(lo, hi)))
    center = (int(rng.integers(axes[0] // 2, w - axes[0] // 2)), int(rng.integers(axes[1] // 2, h - axes[1] // 2)))
    cv2.ellipse(m, center, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    return m.astype(bool)


def _rotated_rect(rng, size=(H, W)) -> np.ndarray:
    h, w = size
    m = np.zeros(size, np.uint8)
    center = (float(rng.uniform(45, w - 45)), float(rng.uniform(45, h - 45)))
    sides = (float(rng.uniform(34, 60)), float(rng.uniform(34, 60)))
    rect = (center, sides, float(rng.uniform(0, 90)))
    cv2.fillPoly(m, [cv2.boxPoints(rect).round().astype(np.int32)], 1)
    return m.astype(bool)


def _blob(rng, size=(H, W)) -> np.ndarray:
    """The largest part of thresholded smooth noise, holes filled (this test is about outlines)."""
    h, w = size
    noise = cv2.resize(rng.random((h // 12, w // 12)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    noise = cv2.GaussianBlur(noise, (0, 0), 5)
    m = (noise > np.quantile(noise, 0.75)).astype(np.uint8)
    _, labels, stats, _ = cv2.connectedComponentsWithStats(m)
    blob = labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    outside = np.pad(~blob, 1).astype(np.uint8)
    cv2.floodFill(outside, None, (0, 0), 2)  # background reachable from the border
    return outside[1:-1, 1:-1] != 2


def _shapes(seed: int, n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    makers = (_ellipse, _rotated_rect, _blob)
    return [makers[k % 3](rng) for k in range(n)]


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def _make_images(seed=0, n_images=4, per_image=5, classes=("cat", "dog", "bird")) -> list[ImageAnnotations]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n_images):
        ann = ImageAnnotations(f"img_{i}.png", W, H)
        for k in range(per_image):
            full = _ellipse(rng, lo=6, hi=40) if k % 2 else _rotated_rect(rng)
            ann.add_new(classes[(i + k) % len(classes)], CroppedMask.from_full(full))
        out.append(ann)
    return out


def _quiet(fn, *args):
    with contextlib.redirect_stdout(io.StringIO()):
        return fn(*args)


# --- RLE codec -------------------------------------------------------------------------------
def _codec_cases():
    rng = np.random.default_rng(3)
    for h, w in [(1, 1), (1, 7), (7, 1), (9, 13), (64, 48)]:
        yield np.zeros((h, w), bool)
        yield np.ones((h, w), bool)
        for p in (0.02, 0.5, 0.97):
            yield rng.random((h, w)) < p
        m = np.zeros((h, w), bool)
        m[0, 0] = m[-1, -1] = True
        yield m
        m = np.zeros((h, w), bool)
        m[h // 3 :, w // 2 :] = True  # runs from the bottom of one column into the next
        yield m
        m = np.zeros((h, w), bool)
        m[:, w // 3 :] = True
        yield m


def test_rle_codec_matches_pycocotools_exactly():
    for full in _codec_cases():
        mask = CroppedMask.from_full(full)
        ours = encode_cropped(mask)
        ref = mask_utils.encode(np.asfortranarray(full.astype(np.uint8)))
        assert ours == {"size": list(full.shape), "counts": ref["counts"].decode("ascii")}
        counts = string_to_counts(ours["counts"])
        assert counts.sum() == full.size and counts_to_string(counts, full.shape) == ours["counts"]
        assert np.array_equal(cropped_from_counts(counts, full.shape).to_full(), full)
        assert np.array_equal(mask_utils.decode({"size": list(full.shape), "counts": ref["counts"]}), full)


def test_rle_codec_large_counts_and_negative_deltas():
    full = np.zeros((700, 900), bool)
    full[600:, 850:] = True
    full[3, 2] = True
    ours = encode_cropped(CroppedMask.from_full(full))
    assert ours["counts"] == mask_utils.encode(np.asfortranarray(full.astype(np.uint8)))["counts"].decode()


@pytest.mark.parametrize(
    "rle, match",
    [
        ("not a dict", "must be an object"),
        ({"size": [H, W]}, "needs 'size' and 'counts'"),
        ({"size": [H], "counts": [H * W]}, "size' must be"),
        ({"size": [H + 1, W], "counts": [(H + 1) * W]}, "does not match the image"),
        ({"size": [H, W], "counts": [H * W - 1]}, "add up to"),
        ({"size": [H, W], "counts": [H * W + 5, -5]}, "negative"),
        ({"size": [H, W], "counts": [1.5, H * W - 1.5]}, "list of integers"),
        ({"size": [H, W], "counts": []}, "empty"),
        ({"size": [H, W], "counts": "ab{"}, "cannot occur"),
        ({"size": [H, W], "counts": "0o"}, "ends in the middle"),
        ({"size": [H, W], "counts": "PP\u00e9"}, "cannot occur"),
        ({"size": [H, W], "counts": 12}, "string or a list"),
        ({"size": [H, W], "counts": "PP0"}, "add up to"),
    ],
)
def test_rle_validation_names_the_problem(rle, match):
    problem, counts = rle_problem(rle, (H, W))
    assert problem is not None and match in problem and counts is None


# --- polygons --------------------------------------------------------------------------------
def test_polygon_pixel_convention_is_pycocotools():
    # Pixel (x, y) is the square [x, x+1] x [y, y+1]; a pixel is in when its centre is.
    square = polygons_to_mask([[2, 2, 8, 2, 8, 8, 2, 8]], (12, 12))
    assert (square.x0, square.y0, square.bits.shape, square.area) == (2, 2, (6, 6), 36)
    rng = np.random.default_rng(5)
    for _ in range(60):
        poly = rng.uniform(-10, 170, size=2 * int(rng.integers(3, 9))).tolist()
        ref = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects([poly], H, W))).astype(bool)
        assert np.array_equal(polygons_to_mask([poly], (H, W)).to_full(), ref)
    with pytest.raises(ValueError, match="at least 3 points"):
        polygons_to_mask([[0, 0, 5, 5]], (H, W))


def test_mask_to_polygons_round_trip_iou():
    for k, full in enumerate(_shapes(11, 15)):
        mask = CroppedMask.from_full(full)
        polys, holes = trace_polygons(mask)
        assert polys and not holes
        assert all(len(p) >= 6 and len(p) % 2 == 0 for p in polys)
        back = polygons_to_mask(polys, (H, W)).to_full()
        assert _iou(back, full) >= 0.98, f"shape {k}"


def test_mask_to_polygons_thin_structures_and_single_pixels():
    full = np.zeros((40, 40), bool)
    full[5, 5] = True  # single pixel
    full[10:30, 20] = True  # one-pixel-wide line
    full[10, 20:35] = True  # an L: a spike each way
    full[33:36, 3:15] = True
    mask = CroppedMask.from_full(full)
    back = polygons_to_mask(mask_to_polygons(mask), (40, 40)).to_full()
    assert np.array_equal(back, full)


def test_holes_are_detected_and_filled_by_polygons():
    full = np.zeros((50, 50), bool)
    full[5:45, 5:45] = True
    full[20:30, 20:30] = False
    mask = CroppedMask.from_full(full)
    assert has_holes(mask) and not has_holes(CroppedMask.from_full(full | ~full))
    filled = polygons_to_mask(mask_to_polygons(mask), (50, 50)).to_full()
    assert filled.sum() == 40 * 40  # the hole is gone: COCO polygons cannot express it


def test_tolerance_simplifies_polygons():
    full = _ellipse(np.random.default_rng(2), lo=40, hi=50)
    mask = CroppedMask.from_full(full)
    exact, simple = mask_to_polygons(mask), mask_to_polygons(mask, tolerance=1.0)
    assert len(simple[0]) < len(exact[0]) / 2
    assert _iou(polygons_to_mask(simple, (H, W)).to_full(), full) > 0.95


# --- export ----------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["rle", "polygons"])
def test_export_loads_in_pycocotools_and_self_evaluation_gives_ap_1(tmp_path, mode):
    images = _make_images()
    classes = ClassList.from_names(["cat", "dog", "bird"])
    out = tmp_path / "out.json"
    stats = export_coco(out, images, classes, mode)
    assert stats.annotations == 20 and stats.images == 4 and stats.path == out
    assert (stats.polygons if mode == "polygons" else stats.rle) == 20
    gt = _quiet(COCO, str(out))
    assert sorted(gt.getCatIds()) == [1, 2, 3] and len(gt.getImgIds()) == 4
    for ann in gt.loadAnns(gt.getAnnIds()):
        img = next(i for i in images if i.file_name == gt.imgs[ann["image_id"]]["file_name"])
        inst = [i for i in img if i.bbox_xywh() == ann["bbox"]][0]
        assert gt.cats[ann["category_id"]]["name"] == inst.category
        assert ann["area"] == inst.area == int(mask_utils.area(encode_cropped(inst.mask)))
        decoded = gt.annToMask(ann).astype(bool)
        if mode == "rle":
            assert isinstance(ann["segmentation"], dict) and isinstance(ann["segmentation"]["counts"], str)
            assert np.array_equal(decoded, inst.mask.to_full())
        else:
            assert isinstance(ann["segmentation"], list)
            assert _iou(decoded, inst.mask.to_full()) >= 0.98
    results = []
    for ann in gt.loadAnns(gt.getAnnIds()):
        rle = gt.annToRLE(ann)
        results.append(
            {
                "image_id": ann["image_id"],
                "category_id": ann["category_id"],
                "segmentation": rle,
                "bbox": ann["bbox"],
                "score": 1.0,
            }
        )
    for iou_type in ("segm", "bbox"):
        dt = _quiet(gt.loadRes, copy.deepcopy(results))
        ev = COCOeval(gt, dt, iou_type)
        _quiet(ev.evaluate)
        _quiet(ev.accumulate)
        _quiet(ev.summarize)
        assert ev.stats[0] == pytest.approx(1.0), iou_type  # AP@[.5:.95]
        assert ev.stats[1] == pytest.approx(1.0), iou_type  # AP@.5


def test_polygon_export_keeps_user_polygons_and_falls_back_to_rle_for_holes():
    ann = ImageAnnotations("a.png", W, H)
    drawn = [[10.0, 10.0, 40.0, 12.0, 25.0, 40.0]]
    ann.add(AnnotatedInstance.from_polygons(1, "cat", drawn, (H, W)))
    ring = np.zeros((H, W), bool)
    ring[50:100, 50:100] = True
    ring[65:85, 65:85] = False
    ann.add_new("dog", CroppedMask.from_full(ring))
    ann.add_new("dog", CroppedMask(0, 0, np.zeros((0, 0), bool), (H, W)))  # empty: not written
    classes = ClassList(["cat", "dog"])
    coco, stats = build_coco([ann], classes, "polygons")
    segs = [a["segmentation"] for a in coco["annotations"]]
    assert segs[0] == drawn and isinstance(segs[1], dict)
    assert (stats.polygons, stats.rle, stats.rle_for_holes, stats.empty_skipped) == (1, 1, 1, 1)
    assert "holes" in stats.summary()
    coco, _ = build_coco([ann], classes, "rle")  # plain RLE export: everything RLE
    assert all(isinstance(a["segmentation"], dict) for a in coco["annotations"])
    coco, _ = build_coco([ann], classes, "auto")  # project file: drawn polygons kept
    assert coco["annotations"][0]["segmentation"] == drawn and coco["annotations"][0]["source"] == "manual"
    with pytest.raises(AnnotationError, match="not in the project's class list"):
        build_coco([ann], ClassList(["cat"]), "rle")
    with pytest.raises(ValueError):
        build_coco([ann], classes, "svg")


def test_export_keeps_image_ids_and_category_ids():
    images = _make_images(n_images=3, per_image=2)
    images[1].image_id = 77
    images[1].extra = {"license": 3, "coco_url": "http://x"}
    classes = ClassList.from_names(["cat", "dog", "bird"])
    classes.rename("bird", "parrot")
    for img in images:
        img.restore([i.with_category("parrot") if i.category == "bird" else i for i in img])
    coco, _ = build_coco(images, classes)
    assert [i["id"] for i in coco["images"]] == [78, 77, 79]
    assert coco["images"][1]["license"] == 3
    assert coco["categories"][2] == {"id": 3, "name": "parrot", "supercategory": "parrot"}


# --- reading / validation --------------------------------------------------------------------
def _valid_coco() -> dict:
    images = _make_images(n_images=2, per_image=3)
    coco, _ = build_coco(images, ClassList.from_names(["cat", "dog", "bird"]))
    coco["annotations"][1]["segmentation"] = [[10, 10, 50, 10, 50, 40, 10, 40]]
    return coco


def test_parse_round_trip_rle_identical_and_polygons_kept():
    coco = _valid_coco()
    ds = parse_coco(json.loads(json.dumps(coco)), "x.json")
    assert [c.name for c in ds.categories] == ["cat", "dog", "bird"] and ds.instance_count == 6
    originals = _make_images(n_images=2, per_image=3)
    for img, orig in zip(ds.images, originals, strict=True):
        assert img.file_name == orig.file_name and img.image_size == orig.image_size
        for got, want in zip(img, orig, strict=True):
            if got.polygons:
                assert got.polygons == ((10.0, 10.0, 50.0, 10.0, 50.0, 40.0, 10.0, 40.0),)
                assert got.area == 40 * 30
            else:
                assert got.mask.x0 == want.mask.x0 and np.array_equal(got.mask.bits, want.mask.bits)
            assert got.source == "import" and got.category == want.category


def test_uncompressed_rle_and_iscrowd_are_imported():
    full = np.zeros((H, W), bool)
    full[30:60, 40:90] = True
    coco = {
        "images": [{"id": 1, "file_name": "a.png", "width": W, "height": H}],
        "categories": [{"id": 5, "name": "crowd"}],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 5,
                "iscrowd": 1,
                "segmentation": {
                    "size": [H, W],
                    "counts": [40 * H + 30, 30, H - 30, 30]
                    + [H - 30, 30] * 48
                    + [H * W - (40 * H + 30) - 30 * 50 - (H - 30) * 49],
                },
            }
        ],
    }
    ds = parse_coco(coco)
    inst = ds.images[0].instances[0]
    assert inst.iscrowd and np.array_equal(inst.mask.to_full(), full)


def _mutations():
    def m(fn):
        def apply(coco):
            fn(coco)
            return coco

        return apply

    return [
        (m(lambda c: c.pop("images")), "missing key 'images'"),
        (m(lambda c: c.update(annotations={})), "annotations: must be a list"),
        (m(lambda c: c["images"][0].pop("width")), "images[0] (id 1): 'width' must be a positive integer"),
        (m(lambda c: c["images"][0].update(file_name=7)), "'file_name' must be a non-empty string"),
        (m(lambda c: c["images"][1].update(id=1)), "duplicate image id 1"),
        (m(lambda c: c["images"][1].update(file_name="img_0.png")), "listed twice"),
        (m(lambda c: c["categories"][0].update(id="1")), "categories[0]: 'id' must be an integer"),
        (m(lambda c: c["categories"][1].update(name="cat")), "duplicate category name 'cat'"),
        (m(lambda c: c["annotations"][2].update(image_id=99)), "annotations[2] (id 3): 'image_id' 99"),
        (m(lambda c: c["annotations"][2].update(category_id=42)), "'category_id' 42"),
        (m(lambda c: c["annotations"][2].update(id=1)), "duplicate annotation id 1"),
        (m(lambda c: c["annotations"][0].pop("segmentation")), "box-only"),
        (m(lambda c: c["annotations"][0].update(segmentation=5)), "must be an RLE object or a list"),
        (m(lambda c: c["annotations"][0].update(iscrowd=2)), "'iscrowd' must be 0 or 1"),
        (
            m(lambda c: c["annotations"][0]["segmentation"].update(size=[H, W + 1])),
            "annotations[0] (id 1).segmentation: RLE size",
        ),
        (
            m(lambda c: c["annotations"][1].update(segmentation=[[1, 1, 5, 5]])),
            "annotations[1] (id 2).segmentation[0]: a polygon needs at least 3 points",
        ),
        (m(lambda c: c["annotations"][1].update(segmentation=[[1, 1, 5, 5, "x", 3]])), "finite numbers"),
        (m(lambda c: c["annotations"][1].update(segmentation=[[1, 1, 5, 5, 7]])), "even number"),
    ]


@pytest.mark.parametrize("mutate, match", _mutations())
def test_malformed_coco_is_rejected_with_its_json_path(mutate, match):
    coco = mutate(_valid_coco())
    with pytest.raises(AnnotationError) as err:
        parse_coco(coco, "bad.json")
    assert match in str(err.value) and "bad.json" in str(err.value)


def test_all_problems_are_listed_at_once():
    coco = _valid_coco()
    coco["annotations"][0]["image_id"] = 50
    coco["annotations"][2]["category_id"] = 50
    with pytest.raises(AnnotationError, match="2 problems") as err:
        parse_coco(coco, "bad.json")
    assert "annotations[0]" in str(err.value) and "annotations[2]" in str(err.value)


@pytest.mark.parametrize(
    "content, match",
    [
        (b"", "empty"),
        (b'{"images": [', "not valid JSON (line 1"),
        (b"\xff\xfe\x00x", "not UTF-8"),
        (b"[]", "results"),
        (b"42", "expected a JSON object"),
    ],
)
def test_unreadable_files(tmp_path, content, match):
    path = tmp_path / "x.json"
    path.write_bytes(content)
    with pytest.raises(AnnotationError, match=re.escape(match)):
        load_coco(path)
    with pytest.raises(AnnotationError, match="not found"):
        load_coco(tmp_path / "missing.json")


def test_empty_segmentations_are_skipped_with_warnings():
    coco = _valid_coco()
    coco["annotations"][0]["segmentation"] = []
    coco["annotations"][1]["segmentation"] = [[-50, -50, -40, -50, -40, -40]]  # outside the image
    ds = parse_coco(coco)
    assert ds.instance_count == 4 and len(ds.warnings) == 2


# --- import onto a project -------------------------------------------------------------------
def _project_with_images(folder: Path, names=("img_0.png", "img_1.png"), size=(H, W)) -> Project:
    for n in names:
        (folder / n).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (size[1], size[0]), (90, 90, 90)).save(folder / n)
    return Project.open(folder)


def test_import_round_trip_rle_identical_polygons_close(tmp_path):
    images = _make_images(n_images=2, per_image=4)
    classes = ClassList.from_names(["cat", "dog", "bird"])
    for mode in ("rle", "polygons"):
        folder = tmp_path / mode
        folder.mkdir()
        project = _project_with_images(folder)
        export_coco(tmp_path / f"{mode}.json", images, classes, mode)
        summary = project.import_file(tmp_path / f"{mode}.json")
        assert summary.instances == 8 and summary.images == 2 and not summary.missing_images
        for orig in images:
            got = project.annotations(orig.file_name)
            for a, b in zip(got, orig, strict=True):
                assert a.category == b.category
                if mode == "rle":
                    assert a.mask.x0 == b.mask.x0 and np.array_equal(a.mask.bits, b.mask.bits)
                else:
                    assert a.polygons is not None
                    assert _iou(a.mask.to_full(), b.mask.to_full()) >= 0.98


def test_polygon_round_trip_iou_for_generated_shapes(tmp_path):
    ann = ImageAnnotations("img_0.png", W, H)
    for full in _shapes(21, 12):
        ann.add_new("thing", CroppedMask.from_full(full))
    export_coco(tmp_path / "p.json", [ann], ClassList(["thing"]), "polygons")
    ds = load_coco(tmp_path / "p.json")
    for a, b in zip(ds.images[0], ann, strict=True):
        assert a.area > 32 * 32 * 0.5
        assert _iou(a.mask.to_full(), b.mask.to_full()) >= 0.98


def test_import_matches_by_basename_and_reports_missing_images(tmp_path):
    project = _project_with_images(tmp_path, names=("sub/img_0.png",))
    coco = _valid_coco()
    coco["images"][0]["file_name"] = "/elsewhere/data/img_0.png"  # matched by base name
    path = tmp_path / "in.json"
    path.write_text(json.dumps(coco))
    summary = project.import_file(path)
    assert summary.images == 1 and summary.missing_images == ["img_1.png"]
    assert len(project.annotations("sub/img_0.png")) == 3
    assert "1 images not found" in summary.summary()


def test_import_refuses_size_mismatch_and_changes_nothing(tmp_path):
    project = _project_with_images(tmp_path, size=(H, W + 10))
    project.annotations("img_0.png").add_new("old", CroppedMask.from_full(np.ones((H, W + 10), bool)))
    before = project.serialize()
    path = tmp_path / "in.json"
    path.write_text(json.dumps(_valid_coco()))
    with pytest.raises(AnnotationError, match="resized image") as err:
        project.import_file(path)
    assert "nothing was imported" in str(err.value)
    assert project.serialize() == before


def test_import_merges_classes_and_replace_mode(tmp_path):
    project = _project_with_images(tmp_path)
    project.classes.add("dog", 9)
    project.annotations("img_0.png").add_new("dog", CroppedMask.from_full(np.ones((H, W), bool)))
    path = tmp_path / "in.json"
    path.write_text(json.dumps(_valid_coco()))
    summary = project.import_file(path)
    assert summary.new_classes == ["cat", "bird"]
    assert project.classes.id_of("dog") == 9 and project.classes.id_of("cat") == 1
    assert project.classes.id_of("bird") == 3
    assert project.annotations("img_0.png").ids() == [1, 2, 3, 4]
    summary = project.import_file(path, replace=True)
    assert project.annotations("img_0.png").ids() == [1, 2, 3] and summary.replaced


def test_export_reports_progress_and_can_be_cancelled(tmp_path):
    images = _make_images(n_images=3, per_image=1)
    classes = ClassList.from_names(["cat", "dog", "bird"])
    seen = []
    export_coco(tmp_path / "a.json", images, classes, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 3), (2, 3), (3, 3)]
    calls = []

    def cancel() -> bool:
        calls.append(1)
        return len(calls) > 1  # stop before the second image

    with pytest.raises(ExportCancelled):
        export_coco(tmp_path / "b.json", images, classes, cancel=cancel)
    assert not (tmp_path / "b.json").exists()
