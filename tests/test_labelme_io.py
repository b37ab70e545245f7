"""labelme import: every shape type, groups, image resolution, validation, folder import, CLI."""

from __future__ import annotations

import base64
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.cli import main as cli_main
from engine.errors import AnnotationError
from engine.labelme_io import plan_labelme_import, union_masks
from engine.masks import CroppedMask
from engine.project import Project

H, W = 60, 80


def _image(path: Path, size=(H, W)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size[1], size[0]), (10, 20, 30)).save(path)


def _png_b64(bits: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(bits).save(buf, format="PNG")  # bool array -> mode "1", as labelme writes it
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _shape(label, points, shape_type="polygon", group_id=None, **extra) -> dict:
    return {"label": label, "points": points, "group_id": group_id, "shape_type": shape_type, "flags": {}, **extra}


def _labelme(image_path: str, shapes: list, size=(H, W)) -> dict:
    return {
        "version": "5.5.0",
        "flags": {},
        "shapes": shapes,
        "imagePath": image_path,
        "imageData": None,
        "imageHeight": size[0],
        "imageWidth": size[1],
    }


def _write(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def project(tmp_path) -> Project:
    _image(tmp_path / "images" / "a.png")
    _image(tmp_path / "images" / "b.png")
    return Project.open(tmp_path / "images")


def test_every_area_shape_type(tmp_path, project):
    mask_bits = np.zeros((10, 15), bool)
    mask_bits[2:8, 3:12] = True
    shapes = [
        _shape("tri", [[10, 10], [30, 10], [20, 30]]),
        _shape("box", [[50, 40], [40, 30]], "rectangle"),  # corners in any order
        _shape("round", [[60, 15], [60, 25]], "circle"),  # centre + a point at radius 10
        _shape("blob", [[5, 40], [19, 49]], "mask", mask=_png_b64(mask_bits)),
        _shape("pin", [[1, 1]], "point"),
        _shape("wire", [[1, 1], [5, 5], [9, 1]], "linestrip"),
    ]
    path = _write(tmp_path / "a.json", _labelme("images/a.png", shapes))
    plan = plan_labelme_import(path, project)
    assert plan.format == "labelme" and not plan.missing_images
    assert len(plan.warnings) == 2 and "'point'" in plan.warnings[0] and "'linestrip'" in plan.warnings[1]
    (img,) = plan.images
    assert img.file_name == "a.png" and img.image_size == (H, W)
    by_label = {i.category: i for i in img}
    assert list(by_label) == ["tri", "box", "round", "blob"]
    box = by_label["box"]
    assert box.bbox_xywh() == [40.0, 30.0, 10.0, 10.0] and box.area == 100  # pixel-edge corners
    assert box.polygons == ((40.0, 30.0, 50.0, 30.0, 50.0, 40.0, 40.0, 40.0),)
    assert by_label["tri"].polygons is not None and 180 < by_label["tri"].area < 220
    assert abs(by_label["round"].area - math.pi * 100) < 12
    blob = by_label["blob"]
    assert blob.polygons is None and blob.area == 6 * 9
    assert blob.bbox_xywh() == [8.0, 42.0, 9.0, 6.0]  # placed at the first corner, as labelme does
    assert all(i.source == "import" for i in img)


def test_group_id_unions_shapes_of_one_label(tmp_path, project):
    shapes = [
        _shape("car", [[0, 0], [10, 10]], "rectangle", group_id=1),
        _shape("car", [[20, 0], [30, 10]], "rectangle", group_id=1),
        _shape("car", [[40, 0], [50, 10]], "rectangle", group_id=2),
        _shape("person", [[0, 20], [10, 30]], "rectangle", group_id=1),  # other label: other instance
        _shape("car", [[60, 0], [70, 10]], "rectangle"),  # no group: its own instance
    ]
    plan = plan_labelme_import(_write(tmp_path / "a.json", _labelme("images/a.png", shapes)), project)
    insts = plan.images[0].instances
    assert [(i.category, i.area) for i in insts] == [("car", 200), ("car", 100), ("person", 100), ("car", 100)]
    assert len(insts[0].polygons) == 2  # union kept as two COCO polygons


def test_image_resolution_relative_basename_and_stem(tmp_path, project):
    # imagePath relative to the JSON file
    (tmp_path / "labels").mkdir()
    one = _write(tmp_path / "labels" / "x.json", _labelme("../images/b.png", [_shape("t", [[1, 1], [9, 1], [5, 9]])]))
    assert plan_labelme_import(one, project).images[0].file_name == "b.png"
    # a path from another machine: matched by base name
    two = _write(tmp_path / "y.json", _labelme("C:\\data\\shots\\a.png", [_shape("t", [[1, 1], [9, 1], [5, 9]])]))
    assert plan_labelme_import(two, project).images[0].file_name == "a.png"
    # no imagePath: the JSON next to its image
    three = _write(tmp_path / "images" / "b.json", {**_labelme("", [_shape("t", [[1, 1], [9, 1], [5, 9]])])})
    assert plan_labelme_import(three, project).images[0].file_name == "b.png"
    # not in the project: reported, not an error
    four = _write(tmp_path / "z.json", _labelme("elsewhere/q.png", [_shape("t", [[1, 1], [9, 1], [5, 9]])]))
    plan = plan_labelme_import(four, project)
    assert plan.images == [] and plan.missing_images == ["elsewhere/q.png (from z.json)"]


@pytest.mark.parametrize(
    "shape, match",
    [
        (_shape("t", [[1, 1], [5, 5]]), "shapes[0]: a polygon needs at least 3 points"),
        (_shape("t", [[1, 1], [5, 5], [3]]), "shapes[0]: points[2] must be [x, y]"),
        (_shape("t", [[1, 1], [5, "a"], [3, 3]]), "points[1]"),
        (_shape("t", "nope"), "'points' must be a list"),
        (_shape("", [[1, 1], [9, 1], [5, 9]]), "'label' must be a non-empty string"),
        (_shape("t", [[1, 1], [9, 1], [5, 9]], group_id="g"), "'group_id' must be an integer"),
        (_shape("t", [[1, 1], [5, 5], [6, 6]], "rectangle"), "a rectangle needs 2 corner points"),
        (_shape("t", [[1, 1], [1, 9]], "rectangle"), "no area"),
        (_shape("t", [[5, 5], [5, 5]], "circle"), "radius 0"),
        (_shape("t", [[1, 1], [5, 5]], "hexagon"), "unknown shape_type 'hexagon'"),
        (_shape("t", [[1, 1], [5, 5]], "mask"), "needs its 'mask' field"),
        (_shape("t", [[1, 1], [5, 5]], "mask", mask="@@@"), "not valid base64"),
        (_shape("t", [[1, 1], [5, 5]], "mask", mask=base64.b64encode(b"not a png").decode()), "not a readable PNG"),
        (_shape("t", [[1, 1], [5, 5]], "mask", mask=_png_b64(np.ones((3, 3), bool))), "mask PNG is 3x3"),
        (_shape("t", [[70, 50], [85, 55]], "mask", mask=_png_b64(np.ones((6, 16), bool))), "outside the 80x60"),
        ("just a string", "shapes[0]: must be an object"),
    ],
)
def test_malformed_shapes_name_file_and_index(tmp_path, project, shape, match):
    path = _write(tmp_path / "bad.json", _labelme("images/a.png", [shape]))
    with pytest.raises(AnnotationError) as err:
        plan_labelme_import(path, project)
    assert match in str(err.value) and "bad.json" in str(err.value)


def test_declared_image_size_must_match(tmp_path, project):
    path = _write(tmp_path / "a.json", _labelme("images/a.png", [_shape("t", [[1, 1], [9, 1], [5, 9]])], (H, W + 1)))
    with pytest.raises(AnnotationError, match="imageWidth x imageHeight is 81x60 but the image a.png is 80x60"):
        plan_labelme_import(path, project)
    data = _labelme("images/a.png", [])
    data["imageHeight"] = "60"
    with pytest.raises(AnnotationError, match="must be integers"):
        plan_labelme_import(_write(tmp_path / "a.json", data), project)


def test_not_a_labelme_file(tmp_path, project):
    path = _write(tmp_path / "x.json", {"hello": 1})
    with pytest.raises(AnnotationError, match="not a labelme file"):
        plan_labelme_import(path, project)
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(AnnotationError, match="broken.json: not valid JSON"):
        plan_labelme_import(tmp_path / "broken.json", project)


def test_folder_import_is_all_or_nothing(tmp_path, project):
    folder = tmp_path / "labels"
    folder.mkdir()
    _write(folder / "a.json", _labelme("a.png", [_shape("cat", [[1, 1], [30, 1], [15, 30]])]))
    _write(folder / "b.json", _labelme("b.png", [_shape("dog", [[1, 1], [20, 20]], "rectangle")]))
    _write(folder / "coco.json", {"images": [], "annotations": [], "categories": []})  # not labelme
    summary = project.import_file(folder)
    assert summary.images == 2 and summary.instances == 2 and summary.new_classes == ["cat", "dog"]
    assert any("coco.json: not a labelme file" in w for w in summary.warnings)
    project.save()
    before = project.annotations_path.read_bytes()
    # one bad shape in one file: nothing from any file is applied
    _write(folder / "c.json", _labelme("b.png", [_shape("bird", [[1, 1], [2, 2]])]))
    with pytest.raises(AnnotationError, match=r"c.json: shapes\[0\]") as err:
        project.import_file(folder)
    assert "nothing was imported" in str(err.value)
    assert not project.is_dirty and project.annotations_path.read_bytes() == before
    assert project.instance_count() == 2


def test_empty_folder_and_shapes_outside_the_image(tmp_path, project):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(AnnotationError, match="no labelme .json files"):
        plan_labelme_import(empty, project)
    path = _write(tmp_path / "a.json", _labelme("images/a.png", [_shape("t", [[-30, -30], [-10, -30], [-20, -10]])]))
    plan = plan_labelme_import(path, project)
    assert plan.instance_count == 0 and "covers no pixel" in plan.warnings[0]


def test_union_masks():
    a = CroppedMask(2, 3, np.ones((2, 2), bool), (10, 10))
    b = CroppedMask(6, 1, np.ones((1, 3), bool), (10, 10))
    u = union_masks([a, b, CroppedMask(0, 0, np.zeros((0, 0), bool), (10, 10))], (10, 10))
    assert (u.x0, u.y0, u.area) == (2, 1, 7)
    assert np.array_equal(u.to_full(), a.to_full() | b.to_full())


def test_cli_import_labelme_folder_then_export(tmp_path, capsys):
    images = tmp_path / "images"
    _image(images / "a.png")
    _image(images / "b.png")
    # labelme's habit: JSON files next to the images
    _write(images / "a.json", _labelme("a.png", [_shape("cat", [[1, 1], [30, 1], [15, 30]])]))
    _write(images / "b.json", _labelme("b.png", [_shape("dog", [[40, 30], [20, 10]], "circle")]))
    assert cli_main(["import", str(images), "--images", str(images)]) == 0
    out = capsys.readouterr().out
    # the first open of the folder already imports its labelme files into the new store, and says so
    assert "Imported 2 instances of 2 images from labelme files" in out
    assert "2 instances already in the project" in out
    # a second import of the same folder skips the project's own annotations.json silently
    assert cli_main(["import", str(images), "--images", str(images), "--replace"]) == 0
    assert "not a labelme file" not in capsys.readouterr().out
    project = Project.open(images)
    assert project.instance_count() == 2
    assert cli_main(["export", str(images), "--out", str(tmp_path / "coco.json"), "--polygons"]) == 0
    data = json.loads((tmp_path / "coco.json").read_text())
    assert [c["name"] for c in data["categories"]] == ["cat", "dog"]
    assert all(isinstance(a["segmentation"], list) for a in data["annotations"])
